package redact_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/gatehouse/gatehouse/internal/redact"
)

// plantedSecrets returns one secret of each kind, as it appears in text.
func plantedSecrets(tb testing.TB) map[string]string {
	tb.Helper()
	rsaPEM, edPEM := mustPEM(tb)
	return map[string]string{
		"gk":         mustToken(tb, "gk_"),
		"gadm":       mustToken(tb, "gadm_"),
		"gpat":       mustToken(tb, "gpat_"),
		"jwt":        jwtHS256,
		"jwt none":   jwtNone,
		"aws key":    awsKey,
		"aws secret": "aws_secret_access_key=" + awsSecret,
		"ghp":        ghpToken,
		"gh pat":     ghPAT,
		"slack":      slackBot,
		"slack hook": "https://" + slackHook,
		"pem rsa":    rsaPEM,
		"pem ed":     edPEM,
		"json":       `{"password":"correct horse battery staple"}`,
		"escaped":    `{"log":"{\"password\":\"hunter2 escaped\"}"}`,
		"bearer":     "Bearer 8f2a9c1e7b4d4e0f9a6b3c2d1e0f9a8b",
		"basic":      "Basic dXNlcjpwYXNzd29yZA==",
		"query":      "/cb?state=x&access_token=ya29.a0AfH6SMxyz",
		"card":       visaSpaced,
		"card json":  `{"pan":  ` + visa + `}`,
		"amex":       amex,
	}
}

// secretPart is the part of a planted secret that must not survive.
func secretPart(s string) string {
	switch {
	case strings.HasPrefix(s, "aws_secret_access_key="):
		return awsSecret
	case strings.HasPrefix(s, `{"log"`):
		return "hunter2"
	case strings.HasPrefix(s, "Bearer "), strings.HasPrefix(s, "Basic "):
		return s[strings.IndexByte(s, ' ')+1:]
	case strings.HasPrefix(s, "/cb?"):
		return "ya29"
	case strings.HasPrefix(s, `{"pan"`):
		return visa
	case strings.HasPrefix(s, `{"password"`):
		return "correct horse"
	case strings.HasPrefix(s, "-----BEGIN"):
		lines := strings.Split(s, "\n")
		return lines[1] // a body line
	case strings.HasPrefix(s, "https://"):
		return "services/T0"
	}
	return s
}

// writeSplit writes in to a redacting Writer in the pieces given by the
// split points and returns what came out.
func writeSplit(tb testing.TB, r *redact.Redactor, in string, splits ...int) string {
	tb.Helper()
	var buf bytes.Buffer
	w := r.Writer(&buf)
	last := 0
	for _, s := range splits {
		if _, err := io.WriteString(w, in[last:s]); err != nil {
			tb.Fatal(err)
		}
		last = s
	}
	if _, err := io.WriteString(w, in[last:]); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.String()
}

func TestSplitAtEveryByte(t *testing.T) {
	r := redact.New()
	for name, secret := range plantedSecrets(t) {
		t.Run(name, func(t *testing.T) {
			in := "before " + secret + " after\n"
			want := r.String(in)
			if strings.Contains(want, secretPart(secret)) {
				t.Fatalf("one-shot output keeps the secret: %q", want)
			}
			for i := 0; i <= len(in); i++ {
				if got := writeSplit(t, r, in, i); got != want {
					t.Fatalf("split at %d:\n got %q\nwant %q", i, got, want)
				}
			}
		})
	}
}

func TestStreamEqualsOneShot(t *testing.T) {
	r := redact.New()
	var sb strings.Builder
	rng := rand.New(rand.NewPCG(1, 2))
	secrets := plantedSecrets(t)
	var list []string
	for _, s := range secrets {
		list = append(list, s)
	}
	fillers := []string{"log line ", `{"a":1,"b":"x"} `, "2026-11-22 ", "\n", "4111 ", "eyJ", "gk_", "-----", `"token"`, "AKIA", "xox", "12345 "}
	for sb.Len() < 256<<10 {
		if rng.IntN(4) == 0 {
			// Secrets stand apart from their neighbours, as in real text;
			// the fillers around them are hostile look-alikes.
			sb.WriteString(" " + list[rng.IntN(len(list))] + "\n")
		} else {
			sb.WriteString(fillers[rng.IntN(len(fillers))])
		}
	}
	in := sb.String()
	want := r.String(in)
	for _, chunk := range []int{1, 2, 3, 7, 64, 1000, 4096, 65536} {
		var buf bytes.Buffer
		w := r.Writer(&buf)
		for i := 0; i < len(in); i += chunk {
			w.Write([]byte(in[i:min(i+chunk, len(in))]))
		}
		w.Close()
		if buf.String() != want {
			t.Errorf("writes of %d bytes differ from one-shot", chunk)
		}
	}
	// Reader, one byte at a time and in random sizes.
	for name, src := range map[string]io.Reader{
		"one byte": iotest.OneByteReader(strings.NewReader(in)),
		"half":     iotest.HalfReader(strings.NewReader(in)),
		"data+EOF": iotest.DataErrReader(strings.NewReader(in)),
	} {
		got, err := io.ReadAll(r.Reader(src))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("Reader(%s) differs from one-shot", name)
		}
	}
	for _, s := range list {
		if i := strings.Index(want, secretPart(s)); i >= 0 {
			t.Errorf("secret %q survived: %q", secretPart(s), want[max(0, i-250):min(len(want), i+len(secretPart(s))+20)])
		}
	}
}

func TestReaderConformance(t *testing.T) {
	r := redact.New()
	in := "hello " + visa + " world " + strings.Repeat("x", 100000)
	if err := iotest.TestReader(r.Reader(strings.NewReader(in)), []byte(r.String(in))); err != nil {
		t.Fatal(err)
	}
}

func TestReaderSourceError(t *testing.T) {
	r := redact.New()
	boom := errors.New("boom")
	// The tail "gk_abc" could be the start of a key: it is not released
	// when the source fails.
	src := io.MultiReader(strings.NewReader("ok gk_abc"), iotest.ErrReader(boom))
	got, err := io.ReadAll(r.Reader(src))
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if string(got) != "ok " {
		t.Errorf("got %q, want %q", got, "ok ")
	}
}

func TestHoldsBackOnlyTheTail(t *testing.T) {
	r := redact.New()
	var buf bytes.Buffer
	w := r.Writer(&buf)
	io.WriteString(w, "plain text then a partial key gk_abcdefgh")
	if got := buf.String(); got != "plain text then a partial key " {
		t.Errorf("before Close got %q", got)
	}
	w.Close()
	if got := buf.String(); got != "plain text then a partial key gk_abcdefgh" {
		t.Errorf("after Close got %q", got)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, redact.ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
}

func TestLongPEMBounded(t *testing.T) {
	// A BEGIN line without END: the stream must not hold more than
	// MaxLookbehind, and the body must still be hidden.
	r := redact.New()
	body := strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\n", 4000) // ~148 KiB
	in := "-----BEGIN PRIVATE KEY-----\n" + body + " tail"
	var buf bytes.Buffer
	w := r.Writer(&buf)
	max := 0
	for i := 0; i < len(in); i += 512 {
		w.Write([]byte(in[i:min(i+512, len(in))]))
		if held := i + 512 - buf.Len(); held > max {
			max = held
		}
	}
	w.Close()
	if max > redact.MaxLookbehind+2*512 {
		t.Errorf("held back up to %d bytes", max)
	}
	if buf.String() != r.String(in) {
		t.Errorf("stream differs from one-shot")
	}
	if !strings.HasPrefix(buf.String(), "[REDACTED:private_key]") {
		t.Errorf("output starts %.60q", buf.String())
	}
}

func TestWriterConcurrent(t *testing.T) {
	r := redact.New()
	var buf bytes.Buffer
	w := r.Writer(&buf)
	var wg sync.WaitGroup
	line := `{"msg":"login","password":"hunter2","card":"` + visa + `"}` + "\n"
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				io.WriteString(w, line)
			}
		}()
	}
	wg.Wait()
	w.Close()
	want := strings.Repeat(r.String(line), 800)
	if buf.String() != want {
		t.Error("concurrent whole-line writes were not kept whole")
	}
}

// TestRandomSplits compares streams cut at random places with the one-shot
// result, on text built from fragments of every kind's syntax.
func TestRandomSplits(t *testing.T) {
	r := redact.New()
	frags := []string{
		"\n", " ", "&", "?", "#", ";", "=", ":", `"`, `\"`, `\\`, "{", "}", ",", ".", "-", "-----", "_",
		"password", "token", "DB_PASSWORD", "access_token", "Bearer ", "Basic ", "dXNlcjpwYXNz",
		"eyJ", "eyJhbGciOiJub25lIn0", "AKIA", "IOSFODNN7EXAMPLE", "aws_secret_access_key", awsSecret,
		"ghp_", "github_pat_", "xoxb-", "hooks.slack.com/services/", "T0000/B0000/XXXXXXXXXX",
		"-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----", "MC4CAQAw",
		"4111", "1111", "378282246310005", "12", "0", "gk_", "abcdefghijklmnop", mustToken(t, "gk_"),
		jwtHS256, visa, "A1b2C3d4E5f6G7h8J9k0",
	}
	rng := rand.New(rand.NewPCG(3, 4))
	n := 3000
	if testing.Short() {
		n = 200
	}
	for iter := 0; iter < n; iter++ {
		var sb strings.Builder
		for range 1 + rng.IntN(40) {
			sb.WriteString(frags[rng.IntN(len(frags))])
		}
		in := sb.String()
		want := r.String(in)
		var cuts []int
		for range rng.IntN(6) {
			cuts = append(cuts, rng.IntN(len(in)+1))
		}
		slices.Sort(cuts)
		if got := writeSplit(t, r, in, cuts...); got != want {
			t.Fatalf("input %q cut at %v:\n got %q\nwant %q", in, cuts, got, want)
		}
	}
}

func TestReleasesAsSoonAsDecided(t *testing.T) {
	r := redact.New()
	var buf bytes.Buffer
	w := r.Writer(&buf)
	io.WriteString(w, "auth: Bearer abc")
	io.WriteString(w, " ok\n")
	if got := buf.String(); got != "auth: Bearer abc ok\n" {
		t.Errorf("got %q before Close", got)
	}
}
