package gateway_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

// memAuditor keeps events in memory, or fails every Record.
type memAuditor struct {
	mu     sync.Mutex
	events []gatehouse.Event
	fail   bool
}

func (a *memAuditor) Record(ctx context.Context, e gatehouse.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail {
		return errors.New("disk full")
	}
	a.events = append(a.events, e)
	return nil
}

func (a *memAuditor) last() gatehouse.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.events[len(a.events)-1]
}

func TestAuditEventPerRequest(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	aud := &memAuditor{}
	g, tok := MustOpenGatewayWith(t, up.URL, func(c *gateway.Config) { c.Auditor = aud })
	tests := []struct {
		name, cred   string
		status       int
		typ, outcome string
	}{
		{"allowed", tok, 200, "http.request", gatehouse.OutcomeSuccess},
		{"no credential", "", 401, "authn.failure", gatehouse.OutcomeDenied},
		{"bad credential", "gk_aaaaaaaaaaaaaaaa_bad", 401, "authn.failure", gatehouse.OutcomeDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/api/x", nil)
			req.RemoteAddr = "203.0.113.9:5555"
			if tt.cred != "" {
				req.Header.Set("Authorization", "Bearer "+tt.cred)
			}
			w := httptest.NewRecorder()
			g.ServeHTTP(w, req)
			if w.Code != tt.status {
				t.Fatalf("status %d", w.Code)
			}
			e := aud.last()
			if e.Type != tt.typ || e.Outcome != tt.outcome || e.Request.Status != tt.status || e.Request.RequestID != w.Header().Get("X-Request-Id") || e.Request.SourceIP != "203.0.113.9" {
				t.Errorf("event %+v %+v", e, e.Request)
			}
			for _, v := range []string{e.Actor.ID, e.Reason, e.Resource} {
				if tt.cred != "" && strings.Contains(v, tt.cred) {
					t.Errorf("credential in the audit event: %q", v)
				}
			}
		})
	}
}

func TestAuditSourceIPModes(t *testing.T) {
	for mode, want := range map[string]string{"truncate": "203.0.113.0/24", "full": "203.0.113.9"} {
		aud := &memAuditor{}
		g, _ := MustOpenGatewayWith(t, "http://127.0.0.1:1", func(c *gateway.Config) { c.Auditor, c.SourceIP = aud, mode })
		req := httptest.NewRequest("GET", "/api/x", nil)
		req.RemoteAddr = "203.0.113.9:1"
		g.ServeHTTP(httptest.NewRecorder(), req)
		if got := aud.last().Request.SourceIP; got != want {
			t.Errorf("%s: %q, want %q", mode, got, want)
		}
	}
	aud := &memAuditor{}
	g, _ := MustOpenGatewayWith(t, "http://127.0.0.1:1", func(c *gateway.Config) { c.Auditor, c.SourceIP, c.SourceIPKey = aud, "hash", []byte("k") })
	req := httptest.NewRequest("GET", "/api/x", nil)
	req.RemoteAddr = "203.0.113.9:1"
	g.ServeHTTP(httptest.NewRecorder(), req)
	if got := aud.last().Request.SourceIP; !strings.HasPrefix(got, "hmac-sha256:") || strings.Contains(got, "203.0.113") {
		t.Errorf("hash: %q", got)
	}
}

func TestAuditFailureFailsClosed(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secret upstream data") }))
	defer up.Close()
	aud := &memAuditor{fail: true}
	g, tok := MustOpenGatewayWith(t, up.URL, func(c *gateway.Config) { c.Auditor = aud })
	req := httptest.NewRequest("GET", "/api/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	g.ServeHTTP(w, req)
	if w.Code != 503 || strings.Contains(w.Body.String(), "secret upstream data") || w.Header().Get("X-Frame-Options") != "DENY" {
		t.Fatalf("audit failure: %d %q", w.Code, w.Body.String())
	}
}

func TestHealthProbesAreNotAudited(t *testing.T) {
	aud := &memAuditor{}
	g, _ := MustOpenGatewayWith(t, "http://127.0.0.1:1", func(c *gateway.Config) { c.Auditor = aud })
	for _, p := range []string{"/health", "/health/live", "/health/ready"} {
		g.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	g.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/x", nil))
	if n := len(aud.events); n != 1 {
		t.Fatalf("%d events for three probes and one request, want 1", n)
	}
}
