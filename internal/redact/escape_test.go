package redact_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/redact"
)

// escapable reports whether s[i] may be written as a JSON \u escape
// without changing what s means: not a quote or backslash, not the
// character of an escape sequence already there, and ASCII.
func escapable(s string, i int) bool {
	c := s[i]
	if c == '"' || c == '\\' || c >= 0x7f || c < 0x20 && c != '\n' && c != '\r' && c != '\t' {
		return false
	}
	return i == 0 || s[i-1] != '\\'
}

// escapeAt writes the characters of s at the positions pick chooses as
// \uXXXX escapes, with level backslashes (2: JSON inside a JSON string).
func escapeAt(s string, level int, upper bool, pick func(i int) bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if !pick(i) || !escapable(s, i) {
			b.WriteByte(s[i])
			continue
		}
		f := "u%04x"
		if upper {
			f = "u%04X"
		}
		b.WriteString(strings.Repeat(`\`, level))
		fmt.Fprintf(&b, f, s[i])
	}
	return b.String()
}

// escapeSlashes writes every '/' of s as "\/", as PHP's json_encode does.
func escapeSlashes(s string, level int) string {
	return strings.ReplaceAll(s, "/", strings.Repeat(`\`, level)+"/")
}

// escapeVariants are the ways a test writes a secret with escapes: its
// first character, a middle one, every one, every one one level down (in
// JSON inside a JSON string) and in upper-case hex, and its slashes.
func escapeVariants(s string) map[string]string {
	mid := len(s) / 2
	for mid < len(s)-1 && !escapable(s, mid) {
		mid++
	}
	first := 0
	for first < len(s)-1 && !escapable(s, first) {
		first++
	}
	v := map[string]string{
		"first":       escapeAt(s, 1, false, func(i int) bool { return i == first }),
		"middle":      escapeAt(s, 1, false, func(i int) bool { return i == mid }),
		"all":         escapeAt(s, 1, false, func(int) bool { return true }),
		"all level 2": escapeAt(s, 2, false, func(int) bool { return true }),
		"every other": escapeAt(s, 1, true, func(i int) bool { return i%2 == 1 }),
	}
	if strings.Contains(s, "/") {
		v["slashes"] = escapeSlashes(s, 1)
		v["slashes level 2"] = escapeSlashes(s, 2)
	}
	return v
}

// unescapeRE matches what the redactor decodes (and a little more): one or
// two backslashes, then "/" or an ASCII \u escape.
var unescapeRE = regexp.MustCompile(`\\{1,2}(/|u00[0-7][0-9a-fA-F])`)

// unescape decodes the escapes a reader of s would see, independently of
// the package, so that tests can look for a secret however it is spelled.
func unescape(s string) string {
	return unescapeRE.ReplaceAllStringFunc(s, func(m string) string {
		m = strings.TrimLeft(m, `\`)
		if m == "/" {
			return "/"
		}
		var c byte
		fmt.Sscanf(m[1:], "%04x", &c)
		return string(rune(c))
	})
}

// escCase is a secret in its context: before and after stay as they are,
// secret is replaced by the marker of kind; label, if set, is a name in
// before (a JSON member name, a parameter name, an auth scheme) that the
// test also writes escaped.
type escCase struct {
	name, before, secret, after, label string
	kind                               redact.Kind
}

func escCases(t *testing.T) []escCase {
	_, edPEM := mustPEM(t)
	jsonPEM := strings.ReplaceAll(strings.TrimSuffix(edPEM, "\n"), "\n", `\n`)
	return []escCase{
		{name: "gk", before: "key ", secret: mustToken(t, "gk_"), after: " end", kind: redact.KindGatehouseKey},
		{name: "gadm in json", before: `{"k":"`, secret: mustToken(t, "gadm_"), after: `"}`, kind: redact.KindGatehouseKey},
		{name: "gpat", before: "(", secret: mustToken(t, "gpat_"), after: ")", kind: redact.KindGatehouseKey},
		{name: "gcs", before: "", secret: mustToken(t, "gcs_"), after: "\n", kind: redact.KindGatehouseKey},
		{name: "jwt", before: `{"t":"`, secret: jwtHS256, after: `"}`, kind: redact.KindJWT},
		{name: "jwt none", before: "t ", secret: jwtNone, after: " end", kind: redact.KindJWT},
		{name: "aws key", before: `{"id":"`, secret: awsKey, after: `"}`, kind: redact.KindAWSAccessKey},
		{name: "aws sts", before: "(", secret: awsSTS, after: ")", kind: redact.KindAWSAccessKey},
		{name: "aws secret", before: "aws_secret_access_key = ", secret: awsSecret, after: "\n", label: "aws_secret_access_key", kind: redact.KindAWSSecretKey},
		{name: "aws secret json-ish", before: `"msg":"AWS_SECRET_ACCESS_KEY: `, secret: awsSecret, after: `"`, label: "AWS_SECRET_ACCESS_KEY", kind: redact.KindAWSSecretKey},
		{name: "ghp", before: "x ", secret: ghpToken, after: " y", kind: redact.KindGitHubToken},
		{name: "gh pat", before: `{"v":"`, secret: ghPAT, after: `"}`, kind: redact.KindGitHubToken},
		{name: "slack", before: "slack ", secret: slackBot, after: "", kind: redact.KindSlackToken},
		{name: "slack hook", before: `{"url":"https://`, secret: slackHook, after: `"}`, kind: redact.KindSlackToken},
		{name: "pem in json", before: `{"key":"`, secret: jsonPEM, after: `\n"}`, kind: redact.KindPrivateKey},
		{name: "pem text", before: "key:\n", secret: strings.TrimSuffix(edPEM, "\n"), after: "\ndone", kind: redact.KindPrivateKey},
		{name: "json password", before: `{"user":"bob","password":"`, secret: "hunter2 horse", after: `"}`, label: "password", kind: redact.KindJSONSecret},
		{name: "json client secret", before: `{ "Client_Secret" : "`, secret: "s3cr3t/value", after: `" }`, label: "Client_Secret", kind: redact.KindJSONSecret},
		{name: "escaped json", before: `{"log":"{\"user\":\"bob\",\"password\":\"`, secret: "hunter2 inner", after: `\"}"}`, label: "password", kind: redact.KindJSONSecret},
		{name: "bearer", before: "Authorization: Bearer ", secret: "8f2a9c1e7b4d4e0f9a6b3c2d1e0f9a8b", after: "\r\n", label: "Bearer", kind: redact.KindBearerToken},
		{name: "basic", before: "Authorization: Basic ", secret: "dXNlcjpwYXNzd29yZA==", after: "\n", label: "Basic", kind: redact.KindBasicAuth},
		{name: "query", before: "/cb?state=x&access_token=", secret: "ya29.a0AfH6SMxyz", after: "&x=1", label: "access_token", kind: redact.KindQuerySecret},
		{name: "env line", before: "HOME=/root\nDB_PASSWORD=", secret: "pa55w0rd", after: "\n", label: "DB_PASSWORD", kind: redact.KindQuerySecret},
		{name: "card", before: "card ", secret: visa, after: " ok", kind: redact.KindCardNumber},
		{name: "card spaced in json", before: `{"pan":"`, secret: visaSpaced, after: `"}`, kind: redact.KindCardNumber},
		{name: "amex", before: "amex ", secret: amexSpaced, after: ".", kind: redact.KindCardNumber},
	}
}

// checkEscaped redacts in one-shot and split at every byte, and checks the
// output is want, is valid JSON if in is, and that the decoded output no
// longer holds secret.
func checkEscaped(t *testing.T, r *redact.Redactor, in, want, secret string) {
	t.Helper()
	got := r.String(in)
	if got != want {
		t.Fatalf("String(%q)\n got %q\nwant %q", in, got, want)
	}
	if b := string(r.Bytes([]byte(in))); b != want {
		t.Fatalf("Bytes(%q)\n got %q\nwant %q", in, b, want)
	}
	if strings.Contains(unescape(got), secret) {
		t.Fatalf("decoded output keeps the secret: %q", got)
	}
	if json.Valid([]byte(in)) && !json.Valid([]byte(got)) {
		t.Fatalf("output is not valid JSON: %q", got)
	}
	for i := 0; i <= len(in); i++ {
		if s := writeSplit(t, r, in, i); s != want {
			t.Fatalf("split at %d of %q:\n got %q\nwant %q", i, in, s, want)
		}
	}
}

// TestEscapedSecrets: every kind written with \u escapes (first, middle,
// every character, one level down, upper-case hex), "\/" slashes and
// escaped labels and member names is replaced, whole, by its marker, the
// same at every split point, and JSON stays valid.
func TestEscapedSecrets(t *testing.T) {
	r := redact.New()
	for _, c := range escCases(t) {
		for vname, sec := range escapeVariants(c.secret) {
			before, after := c.before, c.after
			if strings.Contains(vname, "level 2") && !strings.Contains(before, `\"`) {
				// Two backslashes stand for one inside escaped JSON.
				before = strings.ReplaceAll(before, `"`, `\"`)
				after = strings.ReplaceAll(after, `"`, `\"`)
			}
			t.Run(c.name+"/"+vname, func(t *testing.T) {
				in := before + sec + after
				checkEscaped(t, r, in, before+marker(c.kind)+after, c.secret)
			})
		}
		if c.label == "" {
			continue
		}
		for vname, label := range escapeVariants(c.label) {
			if strings.Contains(vname, "level 2") && !strings.Contains(c.before, `\"`) {
				continue
			}
			t.Run(c.name+"/label "+vname, func(t *testing.T) {
				before := strings.Replace(c.before, c.label, label, 1)
				in := before + c.secret + c.after
				checkEscaped(t, r, in, before+marker(c.kind)+c.after, c.secret)
			})
		}
	}
}

// TestEscapedExamples pins the output of the cases the issue names.
func TestEscapedExamples(t *testing.T) {
	r := redact.New()
	gk := mustToken(t, "gk_")
	cases := []struct{ in, want string }{
		{`{"key":"gk_\u00` + fmt.Sprintf("%02x", gk[3]) + gk[4:] + `"}`, `{"key":"` + marker(redact.KindGatehouseKey) + `"}`},
		{`"pass\u0077ord":"x"`, `"pass\u0077ord":"` + marker(redact.KindJSONSecret) + `"`},
		{`{"\u0070assword":"x"}`, `{"\u0070assword":"` + marker(redact.KindJSONSecret) + `"}`},
		{`{"password":"\u0068\u0075\u006e\u0074\u0065\u0072"}`, `{"password":"` + marker(redact.KindJSONSecret) + `"}`},
		{`{"msg":"{\"pass\\u0077ord\":\"x\"}"}`, `{"msg":"{\"pass\\u0077ord\":\"` + marker(redact.KindJSONSecret) + `\"}"}`},
		{`{"u":"https:\/\/hooks.slack.com\/services\/T00000000\/B00000000\/XXXXXXXXXXXXXXXXXXXXXXXX"}`, `{"u":"https:\/\/` + marker(redact.KindSlackToken) + `"}`},
		{`"\u002d\u002d\u002d\u002d\u002dBEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA\n-----END PRIVATE KEY-----\n"`, `"` + marker(redact.KindPrivateKey) + `\n"`},
		{`t=eyJ\u0068bGciOiJub25lIn0.eyJzdWIiOiJhIn0.`, `t=` + marker(redact.KindJWT)},
		// Go's encoding/json writes '&', '<' and '>' as \u escapes.
		{`{"url":"/cb?state=x\u0026access_token=ya29.a0AfH6SMxyz\u0026x=1"}`, `{"url":"/cb?state=x\u0026access_token=` + marker(redact.KindQuerySecret) + `\u0026x=1"}`},
		{`{"msg":"\u003c` + gk + `\u003e"}`, `{"msg":"\u003c` + marker(redact.KindGatehouseKey) + `\u003e"}`},
		// The escape is replaced whole, never cut.
		{`x AKIAIOSFODNN7EXAMPL\u0045 y`, `x ` + marker(redact.KindAWSAccessKey) + ` y`},
		{`x \\u0041KIAIOSFODNN7EXAMPLE y`, `x ` + marker(redact.KindAWSAccessKey) + ` y`},
	}
	for _, c := range cases {
		if got := r.String(c.in); got != c.want {
			t.Errorf("String(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

// TestEscapedLookalikes: escaped text that is no secret is passed on byte
// for byte, next to an escaped secret that is replaced.
func TestEscapedLookalikes(t *testing.T) {
	r := redact.New()
	gk := mustToken(t, "gk_")
	// A Gatehouse key spelled with a full-width 'g' (U+FF47) is not decoded:
	// only escapes of ASCII characters the matchers look for are.
	fullwidth := `\uff47` + gk[1:]
	cases := map[string]string{
		"non-ascii":             `{"name":"caf\u00e9 na\u00efve \u4e2d\u6587"}`,
		"full-width look-alike": fullwidth,
		"bad checksum":          `\u0067k_abcdefghijklmnop_0123456789abcdefghijABCDEFGHIJKLmnopqr`,
		"not a secret name":     `{"pass\u0077ord_policy":"x","\u0074oken_count":"5"}`,
		"page token":            `{"nextPage\u0054oken":"abc","token_\u0074ype":"Bearer"}`,
		"non-string value":      `{"\u0070assword":12,"secret":null}`,
		"empty value":           `{"pass\u0077ord":""}`,
		"escaped quote in name": `{"password\u0022":"x"}`,
		"aws short":             `\u0041KIA1234`,
		"aws inside a word":     `X\u0041KIAIOSFODNN7EXAMPLE \u0058AKIAIOSFODNN7EXAMPLE`,
		"slashes":               `{"path":"\/api\/v1\/users","re":"a\\\/b"}`,
		"three backslashes":     `\\\u0067k_ \\\\u0041`,
		"invalid escapes":       `\uZZZZ \u12 \u004g \u`,
		"escaped newlines":      `{"log":"line 1\nline 2\\nline 3\u000a\r\t"}`,
		"non-luhn card":         `\u0034111111111111112 \u0035555 5555 5555 5555`,
		"base64 json":           `eyJ\u006db28iOiJiYXIifQ.eyJhIjoxfQ.c2ln`,
		"public key":            `\u002d----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----`,
		"bearer prose":          `\u0042earer authentication uses \u0042earer tokens`,
		"query plain":           `/search?q=\u0074oken&page=2&next_page_\u0074oken=abc`,
	}
	secret := `"pass\u0077ord":"hunter2"`
	for name, look := range cases {
		t.Run(name, func(t *testing.T) {
			in := look + "\n" + secret + "\n"
			want := look + "\n" + `"pass\u0077ord":"` + marker(redact.KindJSONSecret) + `"` + "\n"
			if got := r.String(in); got != want {
				t.Fatalf("String(%q)\n got %q\nwant %q", in, got, want)
			}
			for i := 0; i <= len(in); i++ {
				if got := writeSplit(t, r, in, i); got != want {
					t.Fatalf("split at %d:\n got %q\nwant %q", i, got, want)
				}
			}
		})
	}
}

// TestEscapedStreamEqualsOneShot feeds text full of escapes, escaped
// secrets and look-alikes to streams cut into pieces of every size and at
// random places; each agrees with the one-shot result and no escaped
// secret survives.
func TestEscapedStreamEqualsOneShot(t *testing.T) {
	r := redact.New()
	var secrets []string
	for _, c := range escCases(t) {
		for _, v := range escapeVariants(c.secret) {
			secrets = append(secrets, c.before+v+c.after)
		}
	}
	fillers := []string{`\`, `\\`, `\u`, `\u00`, `\u0067`, `\u0067k_`, `\/`, `\\/`, `\"`, `{\"token\":\"`, `"pass\u0077ord":"`,
		`\u002d\u002d`, `-----`, "eyJ", `e\u0079J`, "4111 ", `\u0034111`, "AKIA", " ", "\n", `"`, ":", "x"}
	rng := rand.New(rand.NewPCG(5, 6))
	var sb strings.Builder
	for sb.Len() < 128<<10 {
		if rng.IntN(3) == 0 {
			s := secrets[rng.IntN(len(secrets))]
			sb.WriteString("\n" + s + "\n")
		} else {
			sb.WriteString(fillers[rng.IntN(len(fillers))])
		}
	}
	in := sb.String()
	want := r.String(in)
	for _, c := range escCases(t) {
		if n := strings.Count(unescape(want), c.secret); n > 0 {
			t.Errorf("%s: %d copies survived", c.name, n)
		}
	}
	for _, chunk := range []int{1, 2, 3, 5, 6, 7, 13, 64, 1000, 4096} {
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
	got, err := io.ReadAll(r.Reader(strings.NewReader(in)))
	if err != nil || string(got) != want {
		t.Errorf("Reader differs from one-shot (err %v)", err)
	}
	// Short inputs cut at random places.
	for iter := 0; iter < 2000; iter++ {
		var sb strings.Builder
		for range 1 + rng.IntN(12) {
			if rng.IntN(4) == 0 {
				sb.WriteString(secrets[rng.IntN(len(secrets))])
			} else {
				sb.WriteString(fillers[rng.IntN(len(fillers))])
			}
		}
		in := sb.String()
		want := r.String(in)
		cuts := []int{rng.IntN(len(in) + 1)}
		cuts = append(cuts, cuts[0]+rng.IntN(len(in)+1-cuts[0]))
		if got := writeSplit(t, r, in, cuts...); got != want {
			t.Fatalf("input %q cut at %v:\n got %q\nwant %q", in, cuts, got, want)
		}
	}
}

// TestEscapedHoldBackBounded: a secret spelled with escapes is up to seven
// times longer than its text; the stream still holds back at most
// MaxLookbehind bytes plus one write, and agrees with the one-shot path.
func TestEscapedHoldBackBounded(t *testing.T) {
	r := redact.New()
	body := strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\n", 1000) // ~37 KiB decoded
	all := func(int) bool { return true }
	cases := map[string]struct{ in, prefix string }{
		"pem without end, every char escaped": {
			in:     escapeAt("-----BEGIN PRIVATE KEY-----\n"+body, 1, false, all) + " tail",
			prefix: marker(redact.KindPrivateKey),
		},
		"pem one level down": {
			in:     `"` + escapeAt("-----BEGIN PRIVATE KEY-----\n"+body, 2, false, all) + `"`,
			prefix: `"` + marker(redact.KindPrivateKey),
		},
		"long json value": {
			in:     `{"token":"` + escapeAt(strings.Repeat("a", 20000), 1, false, all) + `"}`,
			prefix: `{"token":"` + marker(redact.KindJSONSecret),
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			for _, size := range []int{512, 4096} {
				var buf bytes.Buffer
				w := r.Writer(&buf)
				held := 0
				for i := 0; i < len(c.in); i += size {
					w.Write([]byte(c.in[i:min(i+size, len(c.in))]))
					held = max(held, min(i+size, len(c.in))-buf.Len())
				}
				w.Close()
				if held > redact.MaxLookbehind+size {
					t.Errorf("writes of %d: held back up to %d bytes", size, held)
				}
				want := r.String(c.in)
				if buf.String() != want {
					t.Errorf("writes of %d: stream differs from one-shot", size)
				}
				if !strings.HasPrefix(want, c.prefix) {
					t.Errorf("output starts %.80q, want %q", want, c.prefix)
				}
			}
		})
	}
}
