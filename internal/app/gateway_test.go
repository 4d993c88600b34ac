package app_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpjson"
)

func TestStatuses(t *testing.T) {
	h := MustStart(t)
	reader := h.createKey(map[string]any{"name": "reader", "scopes": []string{"read:signals", "demo:read"}})
	writer := h.createKey(map[string]any{"name": "writer", "scopes": []string{"write:signals"}})
	auth := func(k keyOut) string { return "Authorization: Bearer " + k.Key }
	big := strings.Repeat("x", 2048)

	tests := []struct {
		name    string
		method  string
		path    string
		body    string
		headers []string
		status  int
		code    string // error code, for errors
	}{
		{"proxied with bearer", "GET", "/api/v1/signals/x", "", []string{auth(reader)}, 200, ""},
		{"proxied with X-API-Key", "GET", "/api/v1/signals/x", "", []string{"X-API-Key: " + reader.Key}, 200, ""},
		{"HEAD allowed by GET", "HEAD", "/api/v1/signals/x", "", []string{auth(reader)}, 200, ""},
		{"public route, anonymous", "GET", "/public/x", "", nil, 200, ""},
		{"no credential", "GET", "/api/v1/signals/x", "", nil, 401, "unauthenticated"},
		{"malformed key", "GET", "/api/v1/signals/x", "", []string{"Authorization: Bearer gk_nope"}, 401, "unauthenticated"},
		{"checksum off by one char", "GET", "/api/v1/signals/x", "", []string{"Authorization: Bearer " + flipLast(reader.Key)}, 401, "unauthenticated"},
		{"bad credential on public route", "GET", "/public/x", "", []string{"Authorization: Bearer gk_nope"}, 401, "unauthenticated"},
		{"basic scheme", "GET", "/api/v1/signals/x", "", []string{"Authorization: Basic Zm9vOmJhcg=="}, 401, "unauthenticated"},
		{"conflicting credentials", "GET", "/api/v1/signals/x", "", []string{auth(reader), "X-API-Key: " + writer.Key}, 400, "invalid"},
		{"missing scope", "GET", "/api/v1/signals/x", "", []string{auth(writer)}, 403, "forbidden"},
		{"longest prefix owns subtree", "GET", "/api/v1/signals/admin/x", "", []string{auth(reader)}, 403, "forbidden"},
		{"no route", "GET", "/nowhere", "", []string{auth(reader)}, 404, "not_found"},
		{"prefix needs segment boundary", "GET", "/publicity", "", nil, 404, "not_found"},
		{"method not allowed", "DELETE", "/api/v1/signals/x", "", []string{auth(reader)}, 405, "method_not_allowed"},
		{"write within cap", "POST", "/api/v1/signals/x", "small", []string{auth(writer)}, 200, ""},
		{"body over cap", "POST", "/api/v1/signals/x", big, []string{auth(writer)}, 413, "too_large"},
		{"bad path", "GET", "/api/v1/signals/%2e%2e/admin", "", []string{auth(reader)}, 400, "invalid"},
		{"upstream down", "GET", "/down/x", "", []string{auth(reader)}, 502, "bad_gateway"},
		{"upstream too slow", "GET", "/slow/sleep", "", []string{auth(reader)}, 504, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			res := h.do(tt.method, h.base+tt.path, body, tt.headers...)
			if res.StatusCode != tt.status {
				b, _ := io.ReadAll(res.Body)
				t.Fatalf("status = %d, want %d; body %s", res.StatusCode, tt.status, b)
			}
			if tt.code != "" {
				if e := decodeError(t, res); e.Error.Code != tt.code {
					t.Errorf("error code = %q, want %q (%s)", e.Error.Code, tt.code, e.Error.Message)
				}
			}
			switch tt.status {
			case 401:
				if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer ") {
					t.Errorf("401 without WWW-Authenticate: %q", res.Header.Get("WWW-Authenticate"))
				}
			case 405:
				if got := res.Header.Get("Allow"); got != "GET, HEAD, POST, PUT" {
					t.Errorf("Allow = %q", got)
				}
			}
		})
	}
}

func flipLast(s string) string {
	b := []byte(s)
	if b[len(b)-1] == 'A' {
		b[len(b)-1] = 'B'
	} else {
		b[len(b)-1] = 'A'
	}
	return string(b)
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	h := MustStart(t)
	k := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})
	cases := []struct {
		name string
		url  string
		hdr  []string
	}{
		{"proxied", h.base + "/api/v1/signals/x", []string{"X-API-Key: " + k.Key}},
		{"error", h.base + "/nowhere", nil},
		{"unauthenticated", h.base + "/api/v1/signals/x", nil},
		{"health", h.base + "/health", nil},
		{"ready", h.base + "/health/ready", nil},
		{"admin", h.admin + "/v1/keys", []string{"Authorization: Bearer " + adminToken}},
		{"admin error", h.admin + "/v1/keys", nil},
	}
	want := map[string]string{
		"Strict-Transport-Security": "max-age=31536000; includeSubDomains",
		"X-Content-Type-Options":    "nosniff",
		"X-Frame-Options":           "DENY",
		"X-Xss-Protection":          "1; mode=block",
		"Content-Security-Policy":   "default-src 'self'",
		"Referrer-Policy":           "strict-origin-when-cross-origin",
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := h.do("GET", c.url, nil, c.hdr...)
			for name, v := range want {
				if got := res.Header.Values(name); len(got) != 1 || got[0] != v {
					t.Errorf("%s = %q, want exactly %q", name, got, v)
				}
			}
			if res.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
		})
	}
	if len(want) != len(httpjson.SecurityHeaderNames()) {
		t.Fatalf("test checks %d headers, gateway sets %d", len(want), len(httpjson.SecurityHeaderNames()))
	}
}

func TestRevokeTakesEffectOnNextRequest(t *testing.T) {
	h := MustStart(t)
	k := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})
	url := h.base + "/api/v1/signals/x"
	for i := 0; i < 3; i++ { // warm the verification cache
		if res := h.do("GET", url, nil, "X-API-Key: "+k.Key); res.StatusCode != 200 {
			t.Fatalf("before revoke: %d", res.StatusCode)
		}
	}
	if code := h.adminCall("POST", "/v1/keys/"+k.ID+"/revoke", nil, nil); code != 200 {
		t.Fatalf("revoke: HTTP %d", code)
	}
	res := h.do("GET", url, nil, "X-API-Key: "+k.Key)
	if res.StatusCode != 401 {
		t.Fatalf("after revoke: %d, want 401", res.StatusCode)
	}
	if e := decodeError(t, res); e.Error.Message != "credential revoked" {
		t.Errorf("message = %q", e.Error.Message)
	}
	var got keyOut
	h.adminCall("GET", "/v1/keys/"+k.ID, nil, &got)
	if got.Status != "revoked" {
		t.Errorf("status = %q, want revoked", got.Status)
	}
}

func TestRotationGraceThenFails(t *testing.T) {
	h := MustStart(t)
	old := h.createKey(map[string]any{"name": "svc", "scopes": []string{"read:signals"}, "tier": "free"})
	url := h.base + "/api/v1/signals/x"
	h.do("GET", url, nil, "X-API-Key: "+old.Key) // cache it

	var next keyOut
	if code := h.adminCall("POST", "/v1/keys/"+old.ID+"/rotate", map[string]any{"grace": "1h"}, &next); code != 201 {
		t.Fatalf("rotate: HTTP %d", code)
	}
	if next.Key == "" || next.ID == old.ID || next.Previous == nil || next.Previous.ID != old.ID {
		t.Fatalf("rotate answer: %+v", next)
	}
	if strings.Join(next.Scopes, ",") != "read:signals" {
		t.Errorf("new key scopes = %v", next.Scopes)
	}
	for _, k := range []string{old.Key, next.Key} {
		if res := h.do("GET", url, nil, "X-API-Key: "+k); res.StatusCode != 200 {
			t.Fatalf("within grace: %d", res.StatusCode)
		}
	}
	h.clock.Advance(time.Hour + time.Second)
	if res := h.do("GET", url, nil, "X-API-Key: "+old.Key); res.StatusCode != 401 {
		t.Fatalf("old key after grace: %d, want 401", res.StatusCode)
	}
	if res := h.do("GET", url, nil, "X-API-Key: "+next.Key); res.StatusCode != 200 {
		t.Fatalf("new key after grace: %d", res.StatusCode)
	}
	// A rotated key cannot be rotated again.
	if code := h.adminCall("POST", "/v1/keys/"+old.ID+"/rotate", nil, nil); code != 409 {
		t.Errorf("second rotate of old key: HTTP %d, want 409", code)
	}
}

func TestExpiry(t *testing.T) {
	h := MustStart(t)
	k := h.createKey(map[string]any{"name": "temp", "scopes": []string{"read:signals"}, "expires_in": "2d"})
	url := h.base + "/api/v1/signals/x"
	if res := h.do("GET", url, nil, "X-API-Key: "+k.Key); res.StatusCode != 200 {
		t.Fatalf("before expiry: %d", res.StatusCode)
	}
	h.clock.Advance(48 * time.Hour)
	res := h.do("GET", url, nil, "X-API-Key: "+k.Key)
	if res.StatusCode != 401 {
		t.Fatalf("after expiry: %d, want 401", res.StatusCode)
	}
	if e := decodeError(t, res); e.Error.Message != "credential expired" {
		t.Errorf("message = %q", e.Error.Message)
	}
}

func TestUpstreamSeesPrincipalNotCredential(t *testing.T) {
	h := MustStart(t)
	k := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals", "extra"}})
	const inboundID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
	const inboundTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	res := h.do("GET", h.base+"/api/v1/signals/x?q=1", nil,
		"Authorization: Bearer "+k.Key,
		"X-Gatehouse-Principal: forged-admin",
		"X-Gatehouse-Scopes: admin",
		"X-Gatehouse_Principal: underscore-forged",
		"X-Gatehouse-Anything: x",
		"X-Request-Id: "+inboundID,
		"Traceparent: "+inboundTrace,
		"Connection: X-Hop",
		"X-Hop: secret-hop",
	)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	got, _ := h.up.lastRequest()
	if v := got.Header.Values("X-Gatehouse-Principal"); len(v) != 1 || v[0] != k.ID {
		t.Errorf("X-Gatehouse-Principal = %q, want [%s]", v, k.ID)
	}
	if v := got.Header.Values("X-Gatehouse-Scopes"); len(v) != 1 || v[0] != "read:signals extra" {
		t.Errorf("X-Gatehouse-Scopes = %q", v)
	}
	for name := range got.Header {
		if strings.Contains(strings.ToLower(name), "gatehouse_") || name == "X-Gatehouse-Anything" {
			t.Errorf("forged header %s reached upstream", name)
		}
	}
	for name, vs := range got.Header {
		for _, v := range vs {
			if strings.Contains(v, k.Key) || strings.Contains(v, k.Key[:20]) {
				t.Errorf("credential reached upstream in %s", name)
			}
		}
	}
	if got.Header.Get("Authorization") != "" || got.Header.Get("X-Hop") != "" {
		t.Errorf("Authorization or hop-by-hop header forwarded: %v", got.Header)
	}
	if got.Header.Get("X-Request-Id") != inboundID || res.Header.Get("X-Request-Id") != inboundID {
		t.Errorf("valid inbound request id not kept: upstream %q, response %q", got.Header.Get("X-Request-Id"), res.Header.Get("X-Request-Id"))
	}
	tp := got.Header.Get("Traceparent")
	if !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || tp == inboundTrace || len(tp) != 55 {
		t.Errorf("traceparent upstream = %q: want same trace id, new span", tp)
	}
	if got.URL.RawQuery != "q=1" {
		t.Errorf("query = %q", got.URL.RawQuery)
	}
	if !strings.Contains(h.logs.String(), `"path":"/api/v1/signals/x"`) {
		t.Error("no access log line")
	}
	if strings.Contains(h.logs.String(), k.Key) {
		t.Error("API key appears in the logs")
	}

	// An invalid inbound request id is replaced.
	res = h.do("GET", h.base+"/public/x", nil, "X-Request-Id: not-a-ulid")
	if rid := res.Header.Get("X-Request-Id"); rid == "not-a-ulid" || len(rid) != 26 {
		t.Errorf("invalid request id kept or bad: %q", rid)
	}
}

func TestStripPrefix(t *testing.T) {
	h := MustStart(t)
	k := h.createKey(map[string]any{"name": "r", "scopes": []string{"demo:read"}})
	for path, want := range map[string]string{"/strip/a/b": "/base/a/b", "/strip": "/base/", "/strip/": "/base/"} {
		if res := h.do("GET", h.base+path, nil, "X-API-Key: "+k.Key); res.StatusCode != 200 {
			t.Fatalf("%s: %d", path, res.StatusCode)
		}
		got, _ := h.up.lastRequest()
		if got.URL.Path != want {
			t.Errorf("%s reached upstream as %q, want %q", path, got.URL.Path, want)
		}
	}
}

// TestPathTricks sends raw request lines, so that no client library cleans
// the path first. Nothing may reach the signals-admin route (or upstream)
// with a key that only reads signals.
func TestPathTricks(t *testing.T) {
	h := MustStart(t)
	k := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})
	addr := strings.TrimPrefix(h.base, "http://")
	tests := []struct {
		name, path string
		status     int
	}{
		{"plain", "/api/v1/signals/a", 200},
		{"encoded unreserved letter is fine", "/api/v1/sign%61ls/a", 200},
		{"dot-dot", "/api/v1/signals/../signals/admin/x", 400},
		{"dot", "/api/v1/signals/./admin/x", 400},
		{"trailing dot-dot", "/api/v1/signals/admin/..", 400},
		{"encoded dot-dot", "/api/v1/signals/%2e%2e/admin", 400},
		{"mixed encoded dot", "/api/v1/signals/.%2E/admin", 400},
		{"encoded slash", "/api/v1/signals%2fadmin/x", 400},
		{"encoded slash lower", "/api/v1/signals/admin%2fx", 400},
		{"double encoding", "/api/v1/signals/%252e%252e/admin", 400},
		{"backslash", "/api/v1/signals\\admin\\x", 400},
		{"encoded backslash", "/api/v1/signals%5cadmin", 400},
		{"NUL", "/api/v1/signals/%00/admin", 400},
		{"double slash", "/api/v1/signals//admin/x", 400},
		{"matrix dot-dot", "/api/v1/signals/..;/admin/x", 400},
		{"bad escape", "/api/v1/signals/%zz", 400},
		{"admin subtree directly", "/api/v1/signals/admin/x", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := rawGet(t, addr, tt.path, k.Key)
			// Go's server itself refuses a few of these (e.g. bad escapes)
			// with a plain 400 before any handler runs; either way, 400.
			if status != tt.status {
				t.Fatalf("%s: status %d, want %d", tt.path, status, tt.status)
			}
			if got, _ := h.up.lastRequest(); got != nil && strings.Contains(got.URL.Path, "admin") {
				t.Fatalf("%s reached upstream as %s", tt.path, got.URL.Path)
			}
		})
	}
}

func rawGet(t *testing.T, addr, path, key string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\nX-API-Key: "+key+"\r\nConnection: close\r\n\r\n")
	res, err := http.ReadResponse(bufioReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestChunkedBodyOverCap(t *testing.T) {
	h := MustStart(t)
	k := h.createKey(map[string]any{"name": "w", "scopes": []string{"write:signals"}})
	// An io.Reader of unknown length makes the client send chunked.
	pr, pw := io.Pipe()
	go func() {
		chunk := strings.Repeat("y", 300)
		for i := 0; i < 10; i++ {
			if _, err := io.WriteString(pw, chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", h.base+"/api/v1/signals/x", pr)
	req.Header.Set("X-API-Key", k.Key)
	req.ContentLength = -1 // unknown length: the client sends chunked
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 413 {
		t.Fatalf("status = %d, want 413", res.StatusCode)
	}
	decodeError(t, res)
	if _, body := h.up.lastRequest(); len(body) > 1024 {
		t.Errorf("upstream received %d bytes, more than the cap", len(body))
	}
	// The client's fault, not the upstream's.
	if logs := h.logs.String(); strings.Contains(logs, "upstream error") {
		t.Errorf("a 413 is logged as an upstream error:\n%s", logs)
	}
}

func TestHeaderLimits(t *testing.T) {
	h := MustStart(t)
	var hdrs []string
	for i := 0; i < 101; i++ {
		hdrs = append(hdrs, "X-Many: v")
	}
	res := h.do("GET", h.base+"/public/x", nil, hdrs...)
	if res.StatusCode != 400 {
		t.Fatalf("101 header fields: %d, want 400", res.StatusCode)
	}
	decodeError(t, res)
	res = h.do("GET", h.base+"/public/x", nil, "X-Big: "+strings.Repeat("a", 70<<10))
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("70 KiB header: %d, want 431", res.StatusCode)
	}
	// The same on a fresh connection, which net/http itself guards.
	req, _ := http.NewRequest("GET", h.base+"/public/x", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 70<<10))
	req.Close = true
	res2, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res2.Body.Close()
	if res2.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("70 KiB header on a new connection: %d, want 431", res2.StatusCode)
	}
	if e := decodeError(t, res2); e.Error.Code != "headers_too_large" || e.Error.RequestID == "" {
		t.Errorf("70 KiB header: error %+v", e.Error)
	}
}

// TestNetHTTPErrorsAreJSON sends, on raw sockets, what net/http refuses
// before any handler runs — a request head far over the cap, a malformed
// request line or header, an unknown Transfer-Encoding — on both
// listeners: each answer is the same JSON error as any other, with the
// security headers and a request id.
func TestNetHTTPErrorsAreJSON(t *testing.T) {
	h := MustStart(t)
	huge := "GET /public/x HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\n\r\n"
	cases := []struct {
		name, req string
		status    int
		code      string
	}{
		{"1 MiB header", huge, 431, "headers_too_large"},
		{"no Host", "GET /public/x HTTP/1.1\r\n\r\n", 400, "invalid"},
		{"bad header name", "GET /public/x HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400, "invalid"},
		{"bad request line", "GARBAGE\r\n\r\n", 400, "invalid"},
		{"unknown transfer-encoding", "POST /public/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "not_implemented"},
	}
	for _, addr := range []string{h.base, h.admin} {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://"))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				go io.WriteString(c, tc.req) // net/http may answer before reading it all
				res, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				if res.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
				}
				if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Strict-Transport-Security") == "" || res.Header.Get("X-Request-Id") == "" {
					t.Errorf("headers %v", res.Header)
				}
				e := decodeError(t, res)
				if e.Error.Code != tc.code || e.Error.RequestID != res.Header.Get("X-Request-Id") {
					t.Errorf("error %+v", e.Error)
				}
			})
		}
	}
}

func TestHealth(t *testing.T) {
	h := MustStart(t)
	for _, p := range []string{"/health", "/health/live", "/health/ready"} {
		res := h.do("GET", h.base+p, nil)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s", p, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	// The public listener says whether, never what: no version, no
	// dependency names or errors. The admin listener has the details.
	for _, p := range []string{"/health", "/health/ready"} {
		res := h.do("GET", h.base+p, nil)
		body, _ := io.ReadAll(res.Body)
		if s := string(body); strings.Contains(s, "version") || strings.Contains(s, "checks") || strings.Contains(s, "sqlite") {
			t.Errorf("public %s shows details: %s", p, s)
		}
	}
	res := h.do("GET", h.admin+"/health/ready", nil)
	body, _ := io.ReadAll(res.Body)
	if !strings.Contains(string(body), `"store":{"ok":true,"detail":"sqlite"}`) {
		t.Errorf("admin ready body %s", body)
	}
	// The file audit log shows its write counters: every event so far
	// (the admin key's creation at least) was fsynced.
	_, checks := readiness(t, h)
	var events, fsyncs, batches, bytes int
	if c := checks["audit"]; !c.OK {
		t.Errorf("audit check %+v", c)
	} else if _, err := fmt.Sscanf(c.Detail, "file (sync): %d events in %d fsyncs, %d commit batches, %d bytes", &events, &fsyncs, &batches, &bytes); err != nil || events == 0 || fsyncs == 0 || batches > events || bytes == 0 {
		t.Errorf("audit detail %q: %v", c.Detail, err)
	}
	res = h.do("GET", h.admin+"/health", nil)
	body, _ = io.ReadAll(res.Body)
	if !strings.Contains(string(body), `"version"`) {
		t.Errorf("admin /health body %s", body)
	}
}

func TestShutdownDrainsInFlight(t *testing.T) {
	h := MustStart(t)
	k := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", h.base+"/api/v1/signals/wait", nil)
		req.Header.Set("X-API-Key", k.Key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- -1
			return
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		done <- res.StatusCode
	}()
	waitFor(t, func() bool { r, _ := h.up.lastRequest(); return r != nil })
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- h.app.Shutdown(ctx)
	}()
	time.Sleep(100 * time.Millisecond)
	// New connections are refused while draining.
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(h.base, "http://"), time.Second); err == nil {
		c.Close()
		t.Error("new connection accepted during shutdown")
	}
	close(h.up.release)
	if code := <-done; code != 200 {
		t.Fatalf("in-flight request got %d, want 200", code)
	}
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSecretFileMode(t *testing.T) {
	h := MustStart(t)
	fi, err := os.Stat(filepath.Join(h.dataDir, "server.secret"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("server.secret mode %v, want 0600", fi.Mode().Perm())
	}
}
