package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

// TestBreakerCountsOnlyUpstreamFailures: what the caller does (hang up,
// send a broken or oversized body) and 4xx answers leave an upstream's
// circuit breaker closed, however often; transport errors, timeouts and
// 503s open it.
func TestBreakerCountsOnlyUpstreamFailures(t *testing.T) {
	const failures = 5
	type env struct {
		up   *trickyUpstream
		addr string
		tok  string
		done chan struct{}
	}
	start := func(t *testing.T, upstream string) *env {
		e := &env{up: newTrickyUpstream(t), done: make(chan struct{}, 100)}
		if upstream == "" {
			upstream = e.up.URL
		}
		br := gatehouse.Breaker{ConsecutiveFailures: failures, FailureRatio: 0.5, MinRequests: 20, OpenTimeout: time.Minute, HalfOpenRequests: 1}
		g, tok := MustOpenGatewayWith(t, upstream, func(c *gateway.Config) {
			c.Routes = []gatehouse.Route{
				{Name: "api", PathPrefix: "/api/", Upstream: upstream, Scopes: []string{"bench"}, Breaker: br, Timeout: time.Minute, MaxBody: 100},
				{Name: "slow", PathPrefix: "/slow/", Upstream: upstream, Scopes: []string{"bench"}, Breaker: br, Timeout: 50 * time.Millisecond},
			}
		})
		front := httptest.NewServer(served(g, e.done))
		t.Cleanup(front.Close)
		e.addr, e.tok = strings.TrimPrefix(front.URL, "http://"), tok
		return e
	}
	// raw sends head (request line and headers after Host) and body, and
	// returns the connection.
	raw := func(t *testing.T, e *env, head, body string) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, head+"Host: x\r\nX-API-Key: "+e.tok+"\r\n\r\n"+body)
		return c, bufio.NewReader(c)
	}
	status := func(t *testing.T, br *bufio.Reader) (int, string, http.Header) {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode, string(b), res.Header
	}
	get := func(t *testing.T, e *env, path string) (int, string, http.Header) {
		_, br := raw(t, e, "GET "+path+" HTTP/1.1\r\nConnection: close\r\n", "")
		s, b, h := status(t, br)
		await(t, e.done)
		return s, b, h
	}

	callers := []struct {
		name string
		do   func(t *testing.T, e *env)
	}{
		{"client hangs up while the upstream works", func(t *testing.T, e *env) {
			c, _ := raw(t, e, "GET /api/wait HTTP/1.1\r\n", "")
			await(t, e.up.arrived)
			c.Close()
			await(t, e.done)
		}},
		{"client body ends early", func(t *testing.T, e *env) {
			c, br := raw(t, e, "POST /api/x HTTP/1.1\r\nContent-Length: 90\r\n", "short")
			c.(*net.TCPConn).CloseWrite()
			if s, _, _ := status(t, br); s != 400 {
				t.Errorf("cut body: %d, want 400", s)
			}
			await(t, e.done)
		}},
		{"client hangs up mid-body", func(t *testing.T, e *env) {
			c, _ := raw(t, e, "POST /api/x HTTP/1.1\r\nContent-Length: 90\r\n", "short")
			c.Close()
			await(t, e.done)
		}},
		{"chunked body over max_body (413)", func(t *testing.T, e *env) {
			_, br := raw(t, e, "POST /api/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n", "c8\r\n"+strings.Repeat("y", 200)+"\r\n0\r\n\r\n")
			if s, _, _ := status(t, br); s != 413 {
				t.Errorf("over cap: %d, want 413", s)
			}
			await(t, e.done)
		}},
		{"upstream answers 404", func(t *testing.T, e *env) {
			if s, _, _ := get(t, e, "/api/status/404"); s != 404 {
				t.Errorf("got %d", s)
			}
		}},
	}
	for _, tt := range callers {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, "")
			for range 4 * failures {
				tt.do(t, e)
			}
			if s, b, _ := get(t, e, "/api/x"); s != 200 {
				t.Fatalf("after %d caller failures a normal request got %d %s: the breaker opened", 4*failures, s, b)
			}
		})
	}

	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	upstreams := []struct {
		name, upstream, path string
		status               int
	}{
		{"closed listener", dead.URL, "/api/x", 502},
		{"upstream answers 503", "", "/api/status/503", 503},
		{"upstream answers 502", "", "/api/status/502", 502},
		{"upstream slower than the route timeout", "", "/slow/wait", 504},
	}
	for _, tt := range upstreams {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, tt.upstream)
			for range failures {
				if s, _, _ := get(t, e, tt.path); s != tt.status {
					t.Fatalf("got %d, want %d", s, tt.status)
				}
			}
			arrived := len(e.up.arrived)
			s, b, h := get(t, e, "/api/x")
			if s != 503 || !strings.Contains(b, "circuit breaker open") || h.Get("Retry-After") == "" {
				t.Fatalf("after %d upstream failures: %d %s (Retry-After %q), want the breaker's 503", failures, s, b, h.Get("Retry-After"))
			}
			if len(e.up.arrived) != arrived {
				t.Fatal("the open breaker let a request through")
			}
		})
	}
}
