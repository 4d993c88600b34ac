package app_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
)

func TestResponseRedaction(t *testing.T) {
	const aws = "AKIAIOSFODNN7EXAMPLE"
	const jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	card := "4111 1111 1111 1111"
	body := fmt.Sprintf(`{"user":"a","password":"hunter2-very-secret","aws":"%s","token":"%s","card":"%s","note":"ok"}`, aws, jwt, card)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		if r.Header.Get("Accept-Encoding") == "gzip" && strings.HasSuffix(r.URL.Path, "/gz") {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			io.WriteString(zw, body)
			zw.Close()
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("Content-Length", fmt.Sprint(b.Len()))
			w.Write(b.Bytes())
			return
		}
		// Split every secret across writes that reach the client separately.
		for i := 0; i < len(body); i += 7 {
			w.Write([]byte(body[i:min(i+7, len(body))]))
			w.(http.Flusher).Flush()
		}
	}))
	defer up.Close()
	h := MustStartFull(t, "", fmt.Sprintf(`  - name: redacted
    path: /redacted/
    upstream: %[1]s
    scopes: [demo:read]
    redact: true
  - name: plain
    path: /plain/
    upstream: %[1]s
    scopes: [demo:read]
`, up.URL))
	k := h.createKey(map[string]any{"name": "k", "scopes": []string{"demo:read"}})
	get := func(path string, hdr ...string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", h.base+path, nil)
		req.Header.Set("X-API-Key", k.Key)
		for _, kv := range hdr {
			a, b, _ := strings.Cut(kv, ": ")
			req.Header.Set(a, b)
		}
		tr := &http.Transport{DisableCompression: true}
		res, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	res, got := get("/redacted/x")
	for _, secret := range []string{"hunter2-very-secret", aws, jwt, card} {
		if strings.Contains(got, secret) {
			t.Errorf("secret %q reached the client: %s", secret, got)
		}
	}
	for _, marker := range []string{"[REDACTED:json_secret]", "[REDACTED:aws_access_key]", "[REDACTED:card_number]"} {
		if !strings.Contains(got, marker) {
			t.Errorf("no %s in %s", marker, got)
		}
	}
	if !strings.Contains(got, `"note":"ok"`) {
		t.Errorf("clean content damaged: %s", got)
	}
	if cl := res.Header.Get("Content-Length"); cl != "" && cl != fmt.Sprint(len(got)) {
		t.Errorf("Content-Length %s for a %d-byte body", cl, len(got))
	}
	// gzip: decoded, redacted, re-encoded.
	res, gz := get("/redacted/gz", "Accept-Encoding: gzip")
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("gzip response lost its encoding: %v", res.Header)
	}
	zr, err := gzip.NewReader(strings.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if strings.Contains(string(plain), aws) || !strings.Contains(string(plain), "[REDACTED:aws_access_key]") {
		t.Errorf("gzip body not redacted: %s", plain)
	}
	// A route without redact passes the body through untouched.
	if _, got := get("/plain/x"); got != body {
		t.Errorf("plain route changed the body: %s", got)
	}
}

func TestLogsAreRedacted(t *testing.T) {
	var buf bytes.Buffer
	cfg := config.Default()
	log := app.NewLogger(cfg, &buf)
	// A real key (the redactor checks the checksum).
	h := MustStart(t)
	key := h.createKey(map[string]any{"name": "k", "scopes": []string{"x"}}).Key
	log.Info("something echoed a credential", "value", "Bearer "+key, "aws", "AKIAIOSFODNN7EXAMPLE")
	if strings.Contains(buf.String(), key) || strings.Contains(buf.String(), "AKIAIOSFODNN7EXAMPLE") || !strings.Contains(buf.String(), "[REDACTED:") {
		t.Errorf("log line not redacted: %s", buf.String())
	}
}
