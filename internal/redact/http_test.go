package redact_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/redact"
)

func TestShouldRedact(t *testing.T) {
	cases := []struct {
		ct, ce string
		want   bool
	}{
		{"application/json", "", true},
		{"application/json; charset=utf-8", "identity", true},
		{"Application/JSON", "", true},
		{"application/problem+json", "", true},
		{"application/vnd.api+json", "", true},
		{"application/x-ndjson", "", true},
		{"text/plain", "", true},
		{"text/html; charset=utf-8", "", true},
		{"text/event-stream", "", true},
		{"application/xml", "", true},
		{"application/atom+xml", "", true},
		{"application/x-www-form-urlencoded", "", true},
		{"application/javascript", "", true},
		{"text/javascript", "", true},
		{"", "", true},
		{"application/json", "gzip", true},
		{"application/json", "x-gzip", true},
		{"application/json", "gzip, br", false},
		{"application/json", "zstd", false},
		{"application/json", "br", false},
		{"text/plain", "deflate", false},
		{"application/octet-stream", "", false},
		{"image/png", "", false},
		{"application/pdf", "", false},
		{"application/zip", "", false},
		{"application/grpc", "", false},
		{"multipart/form-data; boundary=x", "", false},
		{"video/mp4", "", false},
	}
	for _, c := range cases {
		t.Run(c.ct+"|"+c.ce, func(t *testing.T) {
			if got := redact.ShouldRedact(c.ct, c.ce); got != c.want {
				t.Errorf("ShouldRedact(%q, %q) = %v", c.ct, c.ce, got)
			}
		})
	}
}

// TestRedactResponseProxy runs RedactResponse as ModifyResponse of a real
// httputil.ReverseProxy and checks bodies and framing end to end.
func TestRedactResponseProxy(t *testing.T) {
	key := mustToken(t, "gk_")
	secretBody := `{"user":"bob","api_key":"` + key + `","note":"` + strings.Repeat("padding ", 5000) + `","jwt":"` + jwtHS256 + `"}`
	binary := string([]byte{0x89, 'P', 'N', 'G', 0, 1, 2}) + visa
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/json":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(secretBody)))
			w.Header().Set("ETag", `"abc"`)
			// Write in small pieces so secrets straddle reads.
			for i := 0; i < len(secretBody); i += 7 {
				io.WriteString(w, secretBody[i:min(i+7, len(secretBody))])
				w.(http.Flusher).Flush()
			}
		case "/png":
			w.Header().Set("Content-Type", "image/png")
			w.Header().Set("Content-Length", strconv.Itoa(len(binary)))
			io.WriteString(w, binary)
		case "/br":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "br")
			io.WriteString(w, "not really brotli "+visa)
		case "/gzip":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			for i := 0; i < len(secretBody); i += 1000 {
				io.WriteString(zw, secretBody[i:min(i+1000, len(secretBody))])
				zw.Flush()
				w.(http.Flusher).Flush()
			}
			zw.Close()
		case "/badgzip":
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Encoding", "gzip")
			io.WriteString(w, "plain text claiming gzip "+visa)
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer upstream.Close()
	u, _ := url.Parse(upstream.URL)
	r := redact.New()
	proxy := &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		ModifyResponse: func(res *http.Response) error { return redact.RedactResponse(res, r) },
		ErrorLog:       log.New(io.Discard, "", 0),
	}
	front := httptest.NewServer(proxy)
	defer front.Close()

	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := http.Get(front.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, string(b)
	}

	t.Run("json is redacted and sent chunked", func(t *testing.T) {
		res, body := get("/json")
		want := r.String(secretBody)
		if body != want {
			t.Fatalf("body differs from one-shot redaction (len %d vs %d)", len(body), len(want))
		}
		if strings.Contains(body, key) || strings.Contains(body, jwtHS256) {
			t.Fatal("secret in body")
		}
		if res.ContentLength != -1 || res.Header.Get("Content-Length") != "" {
			t.Errorf("ContentLength %d, header %q", res.ContentLength, res.Header.Get("Content-Length"))
		}
		if len(res.TransferEncoding) == 0 || res.TransferEncoding[0] != "chunked" {
			t.Errorf("TransferEncoding = %v", res.TransferEncoding)
		}
		if got := res.Header.Get("Etag"); got != `W/"abc"` {
			t.Errorf("ETag = %q", got)
		}
	})
	t.Run("binary untouched with Content-Length", func(t *testing.T) {
		res, body := get("/png")
		if body != binary {
			t.Errorf("binary body changed")
		}
		if res.ContentLength != int64(len(binary)) {
			t.Errorf("ContentLength = %d", res.ContentLength)
		}
	})
	// raw fetches path without transparent decompression. A broken body
	// may show up as an error from RoundTrip or from reading the body.
	raw := func(path string) (*http.Response, []byte, error) {
		req, _ := http.NewRequest("GET", front.URL+path, nil)
		req.Header.Set("Accept-Encoding", "gzip, br")
		tr := &http.Transport{DisableCompression: true}
		defer tr.CloseIdleConnections()
		res, err := tr.RoundTrip(req)
		if err != nil {
			return nil, nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res, b, err
	}
	t.Run("other encodings untouched", func(t *testing.T) {
		_, b, err := raw("/br")
		if err != nil || string(b) != "not really brotli "+visa {
			t.Errorf("body %q, err %v", b, err)
		}
	})
	t.Run("gzip decoded, redacted, re-encoded", func(t *testing.T) {
		res, b, err := raw("/gzip")
		if err != nil {
			t.Fatal(err)
		}
		if res.Header.Get("Content-Encoding") != "gzip" || res.ContentLength != -1 {
			t.Errorf("Content-Encoding %q, ContentLength %d", res.Header.Get("Content-Encoding"), res.ContentLength)
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if string(plain) != r.String(secretBody) {
			t.Errorf("decoded body differs from one-shot redaction")
		}
	})
	t.Run("bad gzip is not passed on", func(t *testing.T) {
		_, b, err := raw("/badgzip")
		if err == nil {
			t.Errorf("want a broken body, got %q", b)
		}
		if strings.Contains(string(b), visa) {
			t.Errorf("card number leaked: %q", b)
		}
	})
	t.Run("no content", func(t *testing.T) {
		res, body := get("/empty")
		if res.StatusCode != http.StatusNoContent || body != "" {
			t.Errorf("status %d body %q", res.StatusCode, body)
		}
	})
}

func TestRedactResponseDirect(t *testing.T) {
	r := redact.New()
	body := "card " + visa
	res := &http.Response{
		StatusCode:    200,
		Header:        http.Header{"Content-Type": {"text/plain"}, "Content-Length": {fmt.Sprint(len(body))}, "Accept-Ranges": {"bytes"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       httptest.NewRequest("GET", "/", nil),
	}
	if err := redact.RedactResponse(res, r); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	if string(b) != "card [REDACTED:card_number]" {
		t.Errorf("body %q", b)
	}
	if res.ContentLength != -1 || res.Header.Get("Content-Length") != "" || res.Header.Get("Accept-Ranges") != "" {
		t.Errorf("headers %v, ContentLength %d", res.Header, res.ContentLength)
	}
	if err := res.Body.Close(); err != nil {
		t.Error(err)
	}
}
