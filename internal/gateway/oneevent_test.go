package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

// trickyUpstream serves the behaviours the one-event tests need, by path:
// /wait blocks until the request's context ends (the gateway gave up) and
// tells arrived; /cut sends headers and half a body, then drops the
// connection; /drip sends headers and then a byte at a time until the
// client is gone; /status/N answers N; anything else answers 200. A
// request whose body breaks off is dropped unanswered.
type trickyUpstream struct {
	*httptest.Server
	arrived chan string // path of each request that reached the upstream
}

func newTrickyUpstream(t *testing.T) *trickyUpstream {
	u := &trickyUpstream{arrived: make(chan string, 100)}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			// A broken request body: drop the connection unanswered.
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		}
		u.arrived <- r.URL.Path
		switch p := r.URL.Path; {
		case strings.HasSuffix(p, "/wait"):
			<-r.Context().Done()
		case strings.HasSuffix(p, "/cut"):
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			io.WriteString(w, "half")
			w.(http.Flusher).Flush()
			c, _, _ := http.NewResponseController(w).Hijack()
			c.Close()
		case strings.HasSuffix(p, "/drip"):
			w.WriteHeader(200)
			for r.Context().Err() == nil {
				if _, err := io.WriteString(w, strings.Repeat("x", 4096)); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				time.Sleep(5 * time.Millisecond)
			}
		case strings.Contains(p, "/status/"):
			n, _ := strconv.Atoi(p[strings.LastIndex(p, "/")+1:])
			w.WriteHeader(n)
		default:
			io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(u.Close)
	return u
}

// served wraps the gateway so a test learns when ServeHTTP returned (a
// panic passed on by the gateway counts too): by then every event of the
// request is recorded.
func served(g http.Handler, done chan<- struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		g.ServeHTTP(w, r)
	})
}

// await receives from ch, failing the test if nothing comes within 10 s
// (a guard against hanging, not a timing assertion).
func await[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting")
	}
	var zero T
	return zero
}

func (a *memAuditor) byRequestID(id string) []gatehouse.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []gatehouse.Event
	for _, e := range a.events {
		if e.Request != nil && e.Request.RequestID == id {
			out = append(out, e)
		}
	}
	return out
}

// panicAuth panics on the credential "panic" (a bug) and passes every
// other one on.
type panicAuth struct{ next gateway.Authenticator }

func (p panicAuth) Authenticate(ctx context.Context, cred string) (*gatehouse.Principal, error) {
	if cred == "panic" {
		panic("authenticator bug")
	}
	return p.next.Authenticate(ctx, cred)
}

// TestOneAuditEventWhateverTheClientDoes: every request that reached the
// upstream (or a handler) has exactly one audit event, also when the
// client hangs up while the upstream works, the route's timeout or
// total_timeout fires, the upstream is down or drops the connection
// mid-body, the client leaves mid-response, or a handler panics.
func TestOneAuditEventWhateverTheClientDoes(t *testing.T) {
	up := newTrickyUpstream(t)
	aud := &memAuditor{}
	done := make(chan struct{}, 10)
	br := gatehouse.Breaker{ConsecutiveFailures: 1000, FailureRatio: 1, MinRequests: 1000, OpenTimeout: time.Minute, HalfOpenRequests: 1}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	g, tok := MustOpenGatewayWith(t, up.URL, func(c *gateway.Config) {
		c.Auditor = aud
		c.Authenticator = panicAuth{c.Authenticator}
		c.Routes = []gatehouse.Route{
			{Name: "api", PathPrefix: "/api/", Upstream: up.URL, Scopes: []string{"bench"}, Breaker: br, Timeout: time.Minute},
			{Name: "slow", PathPrefix: "/slow/", Upstream: up.URL, Scopes: []string{"bench"}, Breaker: br, Timeout: 50 * time.Millisecond},
			{Name: "total", PathPrefix: "/total/", Upstream: up.URL, Scopes: []string{"bench"}, Breaker: br, Timeout: time.Minute, TotalTimeout: 50 * time.Millisecond},
			{Name: "dead", PathPrefix: "/dead/", Upstream: dead.URL, Scopes: []string{"bench"}, Breaker: br},
		}
		c.Endpoints = map[string]http.Handler{"/oauth/boom": http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("endpoint bug") })}
	})
	front := httptest.NewServer(served(g, done))
	defer front.Close()
	addr := strings.TrimPrefix(front.URL, "http://")

	// send writes a raw request and returns the connection, its reader and
	// the request id it carries.
	send := func(t *testing.T, path, cred string) (net.Conn, *bufio.Reader, string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		id := ulid.Make().String()
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\nX-Request-Id: "+id+"\r\nX-API-Key: "+cred+"\r\n\r\n")
		return c, bufio.NewReader(c), id
	}
	readStatus := func(t *testing.T, br *bufio.Reader) (int, string) {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}

	tests := []struct {
		name, path, cred string
		// act drives the client side once the request is sent and returns
		// the status the client saw (0: none).
		act      func(t *testing.T, c net.Conn, br *bufio.Reader) int
		status   int    // the status in the event
		outcome  string // the outcome in the event
		upstream bool   // the request reached the upstream
	}{
		{"hang-up while the upstream works", "/api/wait", tok, func(t *testing.T, c net.Conn, br *bufio.Reader) int {
			await(t, up.arrived)
			c.Close()
			return 0
		}, 499, gatehouse.OutcomeFailure, false},
		{"half-close while the upstream works: 499, not an implicit 200", "/api/wait", tok, func(t *testing.T, c net.Conn, br *bufio.Reader) int {
			await(t, up.arrived)
			c.(*net.TCPConn).CloseWrite()
			s, _ := readStatus(t, br)
			return s
		}, 499, gatehouse.OutcomeFailure, false},
		{"route timeout", "/slow/wait", tok, func(t *testing.T, c net.Conn, br *bufio.Reader) int {
			s, _ := readStatus(t, br)
			return s
		}, 504, gatehouse.OutcomeFailure, true},
		{"total timeout", "/total/wait", tok, func(t *testing.T, c net.Conn, br *bufio.Reader) int {
			s, _ := readStatus(t, br)
			return s
		}, 504, gatehouse.OutcomeFailure, true},
		{"upstream down", "/dead/x", tok, func(t *testing.T, c net.Conn, br *bufio.Reader) int {
			s, _ := readStatus(t, br)
			return s
		}, 502, gatehouse.OutcomeFailure, false},
		{"upstream 500", "/api/status/500", tok, func(t *testing.T, c net.Conn, br *bufio.Reader) int {
			s, _ := readStatus(t, br)
			return s
		}, 500, gatehouse.OutcomeFailure, true},
		{"upstream drops the connection mid-body", "/api/cut", tok, func(t *testing.T, c net.Conn, br *bufio.Reader) int {
			// The gateway drops the connection: the client sees a cut
			// body, or nothing if the headers were still buffered. The
			// event (written with the headers) says what the upstream
			// answered.
			if res, err := http.ReadResponse(br, nil); err == nil {
				if _, err := io.ReadAll(res.Body); err == nil {
					t.Error("the cut body read to its end")
				}
			}
			return 0
		}, 200, gatehouse.OutcomeSuccess, true},
		{"client leaves mid-response", "/api/drip", tok, func(t *testing.T, c net.Conn, br *bufio.Reader) int {
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.ReadFull(res.Body, make([]byte, 1000))
			c.Close()
			return res.StatusCode
		}, 200, gatehouse.OutcomeSuccess, true},
		{"authenticator panics", "/api/x", "panic", func(t *testing.T, c net.Conn, br *bufio.Reader) int {
			s, body := readStatus(t, br)
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code != gatehouse.EINTERNAL || strings.Contains(body, "bug") {
				t.Errorf("panic answer %q", body)
			}
			return s
		}, 500, gatehouse.OutcomeFailure, false},
		{"endpoint panics", "/oauth/boom", tok, func(t *testing.T, c net.Conn, br *bufio.Reader) int {
			s, _ := readStatus(t, br)
			return s
		}, 500, gatehouse.OutcomeFailure, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, br, id := send(t, tt.path, tt.cred)
			defer c.Close()
			got := tt.act(t, c, br)
			await(t, done)
			if tt.upstream {
				await(t, up.arrived)
			}
			if got != 0 && got != tt.status {
				t.Errorf("client saw %d, want %d", got, tt.status)
			}
			evs := aud.byRequestID(id)
			if len(evs) != 1 {
				t.Fatalf("%d audit events, want exactly 1: %+v", len(evs), evs)
			}
			if e := evs[0]; e.Request.Status != tt.status || e.Outcome != tt.outcome || e.Resource == "" && !strings.HasPrefix(tt.path, "/oauth") {
				t.Errorf("event status %d outcome %q resource %q reason %q, want %d %q", e.Request.Status, e.Outcome, e.Resource, e.Reason, tt.status, tt.outcome)
			}
		})
	}
	// A panic must not take the gateway down with it.
	res, err := http.Get(front.URL + "/api/x?k=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	await(t, done)
}

// TestAuditCanceledContextStillRecords: the event of a request whose
// client went away is recorded with a context that is not canceled, so an
// auditor that honours cancellation (the PostgreSQL backend, a sync
// fsync wait) does not drop it.
func TestAuditCanceledContextStillRecords(t *testing.T) {
	up := newTrickyUpstream(t)
	aud := &ctxAuditor{}
	done := make(chan struct{}, 1)
	g, tok := MustOpenGatewayWith(t, up.URL, func(c *gateway.Config) { c.Auditor = aud })
	front := httptest.NewServer(served(g, done))
	defer front.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", front.URL+"/api/wait", nil)
	req.Header.Set("X-API-Key", tok)
	go func() { <-up.arrived; cancel() }()
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
	}
	await(t, done)
	if aud.ok != 1 || aud.canceled != 0 {
		t.Fatalf("%d events recorded, %d with a canceled context", aud.ok, aud.canceled)
	}
}

// ctxAuditor refuses events whose context has ended, as a real store does.
type ctxAuditor struct {
	memAuditor
	ok, canceled int
}

func (a *ctxAuditor) Record(ctx context.Context, e gatehouse.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := ctx.Err(); err != nil {
		a.canceled++
		return err
	}
	a.ok++
	return nil
}
