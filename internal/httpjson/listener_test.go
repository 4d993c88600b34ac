package httpjson_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpjson"
)

// TestListenerAnswersJSON: what net/http itself refuses is answered in
// JSON; a handler's answers, whatever their status and body, are passed
// on as written.
func TestListenerAnswersJSON(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// A body that looks like net/http's own error text.
			status := http.StatusOK
			if r.URL.Path == "/teapot" {
				status = http.StatusTeapot
			}
			w.WriteHeader(status)
			io.WriteString(w, "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nnot an error")
		}),
		MaxHeaderBytes:    1 << 10,
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(httpjson.NewListener(ln, 1<<10))
	t.Cleanup(func() { srv.Close() })
	for _, c := range []struct {
		name, req  string
		status     string
		body, json bool
	}{
		{"handler 200", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "200", true, false},
		{"handler 418", "GET /teapot HTTP/1.1\r\nHost: x\r\n\r\n", "418", true, false},
		{"malformed header", "GET / HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n", "400", false, true},
		{"headers too large", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n", "431", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(conn, c.req)
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			if got := res.Status[:3]; got != c.status {
				t.Fatalf("status %s, want %s (%q)", res.Status, c.status, b)
			}
			if c.body && !strings.HasSuffix(string(b), "not an error") {
				t.Errorf("the handler's body was changed: %q", b)
			}
			if c.json && (res.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(b), `"error"`)) {
				t.Errorf("net/http's refusal is not JSON: %s %q", res.Header.Get("Content-Type"), b)
			}
		})
	}
}
