package redact_test

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/redact"
)

// cleanText is about n bytes of realistic JSON access logs and API
// payloads without secrets: ids, timestamps, numbers, paths, UUIDs, hashes.
func cleanText(n int) []byte {
	var sb strings.Builder
	for i := 0; sb.Len() < n; i++ {
		fmt.Fprintf(&sb, `{"time":"2026-11-22T22:%02d:%02d.%06dZ","level":"INFO","msg":"request served","request_id":"01JDB8Z3K4%06dXYZ","trace_id":"4bf92f3577b34da6a3ce929d0e0e%04d","method":"GET","path":"/api/v1/signals/%d","status":200,"duration_ms":%d.%03d,"bytes":%d,"user_agent":"Mozilla/5.0 (X11; Linux x86_64) gatehouse-bench/1.0","principal":{"id":"key_3f2504e0-4f89-41d3-9a0c-0305e82c%04d","kind":"api_key","scopes":["read:signals","demo:read"]},"etag":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","token_count":%d,"nextPageToken":"abc%d"}`+"\n",
			i%60, i%60, i, i, i%10000, i, i%500, i%1000, 1000+i*7, i%10000, i%4096, i)
		fmt.Fprintf(&sb, "%s level=info component=gateway msg=\"upstream response\" upstream=http://127.0.0.1:9000 status=200 size=%d elapsed=%dus cache=hit\n", "2026-11-22T22:08:43Z", i*13, i%999)
	}
	return []byte(sb.String()[:n])
}

// denseText is about n bytes in which every line carries secrets.
func denseText(tb testing.TB, n int) []byte {
	keys := []string{mustToken(tb, "gk_"), mustToken(tb, "gadm_"), mustToken(tb, "gpat_")}
	var sb strings.Builder
	for i := 0; sb.Len() < n; i++ {
		fmt.Fprintf(&sb, `{"time":"2026-11-22T22:08:43Z","password":"hunter%d","authorization":"Bearer %s","card":"%s","key":"%s"}`+"\n",
			i, jwtHS256, visa, keys[i%3])
		fmt.Fprintf(&sb, "aws %s aws_secret_access_key=%s gh %s slack %s card %s\n", awsKey, awsSecret, ghpToken, slackBot, visaSpaced)
	}
	return []byte(sb.String()[:n])
}

func benchWriter(b *testing.B, in []byte) {
	r := redact.New()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		w := r.Writer(io.Discard)
		for i := 0; i < len(in); i += 32 << 10 {
			w.Write(in[i:min(i+32<<10, len(in))])
		}
		w.Close()
	}
}

func benchBytes(b *testing.B, in []byte) {
	r := redact.New()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		_ = r.Bytes(in)
	}
}

// 1 MiB inputs, the stream fed in 32 KiB writes as the proxy does.
func BenchmarkClean(b *testing.B)      { benchWriter(b, cleanText(1<<20)) }
func BenchmarkDense(b *testing.B)      { benchWriter(b, denseText(b, 1<<20)) }
func BenchmarkCleanBytes(b *testing.B) { benchBytes(b, cleanText(1<<20)) }
func BenchmarkDenseBytes(b *testing.B) { benchBytes(b, denseText(b, 1<<20)) }

func BenchmarkStringLogLine(b *testing.B) {
	r := redact.New()
	line := string(cleanText(400))
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for range b.N {
		_ = r.String(line)
	}
}

func TestBenchInputs(t *testing.T) {
	r := redact.New()
	clean := cleanText(1 << 20)
	if out := r.Bytes(clean); string(out) != string(clean) {
		t.Fatal("clean benchmark text is not clean")
	}
	esc := escapedText(1 << 20)
	if out := r.Bytes(esc); string(out) != string(esc) {
		t.Fatal("escaped benchmark text is not clean")
	}
	dense := denseText(t, 1<<20)
	out := r.Bytes(dense)
	if n := strings.Count(string(out), "[REDACTED:"); n < 10000 {
		t.Errorf("dense text has only %d redactions", n)
	}
}

// Hostile inputs: many candidates that each need a long look ahead.
func BenchmarkAdversarial(b *testing.B) {
	inputs := map[string]string{
		"pem begins":           strings.Repeat("-----BEGIN PRIVATE KEY-----\nQUJD\n", 1<<15),
		"pem no end":           "-----BEGIN PRIVATE KEY-----\n" + strings.Repeat("QUJDREVG ", 1<<17),
		"jwt headers":          strings.Repeat("eyJhbGciOiJub25lIn0.", 1<<16),
		"digits":               strings.Repeat("4111 ", 1<<18),
		"json secrets":         strings.Repeat(`{"token":"`, 1<<17),
		"dashes":               strings.Repeat("-", 1<<20),
		"gk prefixes":          strings.Repeat("gk_abcdefghijklmnop_", 1<<16),
		"escaped pem begins":   strings.Repeat(`\u002d\u002d\u002d\u002d\u002dBEGIN PRIVATE KEY-----\nQUJD\n`, 1<<14),
		"escaped json secrets": strings.Repeat(`{"pass\u0077ord":"\u0061`, 1<<15),
		"escaped runs":         strings.Repeat(`\\\u0067k_\/\u00`, 1<<16),
	}
	for name, in := range inputs {
		b.Run(strings.ReplaceAll(name, " ", "_"), func(b *testing.B) { benchWriter(b, []byte(in)) })
	}
}

// BenchmarkSmallWrites feeds dense text 16 bytes at a time.
func BenchmarkSmallWrites(b *testing.B) {
	in := denseText(b, 1<<20)
	r := redact.New()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for range b.N {
		w := r.Writer(io.Discard)
		for i := 0; i < len(in); i += 16 {
			w.Write(in[i:min(i+16, len(in))])
		}
		w.Close()
	}
}

// BenchmarkHeldTailSmallWrites: a BEGIN line without END keeps a 64 KiB
// tail undecided while the input arrives 64 bytes at a time.
func BenchmarkHeldTailSmallWrites(b *testing.B) {
	in := []byte("-----BEGIN PRIVATE KEY-----\n" + strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\n", 1<<15))
	r := redact.New()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for range b.N {
		w := r.Writer(io.Discard)
		for i := 0; i < len(in); i += 64 {
			w.Write(in[i:min(i+64, len(in))])
		}
		w.Close()
	}
}

// escapedText is cleanText as PHP's json_encode and Go's HTML-safe
// encoding/json write it: every '/' as "\/", '<', '>' and '&' as \u
// escapes. It holds no secret but takes the escaped path throughout.
func escapedText(n int) []byte {
	s := strings.NewReplacer("/", `\/`, "(", `\u003c`, ")", `\u003e`, ";", `\u0026`).Replace(string(cleanText(n)))
	return []byte(s[:n])
}

func BenchmarkEscaped(b *testing.B)      { benchWriter(b, escapedText(1<<20)) }
func BenchmarkEscapedBytes(b *testing.B) { benchBytes(b, escapedText(1<<20)) }
