package gateway_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

// countingAuthn counts the credentials that reach the authenticator (each
// well-formed unknown key is one store read).
type countingAuthn struct {
	next  gateway.Authenticator
	calls atomic.Int64
}

func (c *countingAuthn) Authenticate(ctx context.Context, cred string) (*gatehouse.Principal, error) {
	c.calls.Add(1)
	return c.next.Authenticate(ctx, cred)
}

func (a *memAuditor) ofType(typ string) []gatehouse.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []gatehouse.Event
	for _, e := range a.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// clientFrom is an HTTP client whose connections come from the loopback
// address ip.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// TestPreAuthFlood: a flood of failures from one address — well-formed
// random keys, unknown routes, missing credentials, forward-auth checks
// with random keys — is answered 429 with Retry-After once the address has
// spent its failures, before any credential is looked up; the authenticator
// (the store) sees at most the threshold; the audit log holds the
// individual failures up to the threshold and one aggregated event with
// the count of the rest. Another address is unaffected, and the address
// recovers once its bucket refills.
func TestPreAuthFlood(t *testing.T) {
	const threshold, flood = 10, 60
	for _, tc := range []struct {
		name     string
		path     string
		key      func() string
		want     int // answer before the threshold
		wantType string
	}{
		{"random well-formed keys", "/api/x", randomKey, 401, "authn.failure"},
		{"unknown routes", "/nowhere/x", randomKey, 404, "http.request"},
		{"missing credential", "/api/x", func() string { return "" }, 401, "authn.failure"},
		{"forward-auth random keys", "/auth/verify", randomKey, 401, "authn.failure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
			defer up.Close()
			aud := &memAuditor{}
			clock := gatehouse.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			var counter *countingAuthn
			g, tok := MustOpenGatewayWith(t, up.URL, func(c *gateway.Config) {
				counter = &countingAuthn{next: c.Authenticator}
				c.Authenticator, c.Auditor, c.Clock = counter, aud, clock
				c.PreAuth = gateway.PreAuthConfig{Failures: threshold, Per: time.Minute}
				c.ForwardAuth = gateway.ForwardAuth{Proxy: "traefik"}
				// The flood comes through a trusted proxy at 127.0.0.1
				// naming the client 203.0.113.5.
				c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
			})
			front := httptest.NewServer(g)
			defer front.Close()
			attacker := clientFrom("127.0.0.1")
			send := func(c *http.Client, path, key string) *http.Response {
				req, _ := http.NewRequest("GET", front.URL+path, nil)
				if c == attacker {
					req.Header.Set("X-Forwarded-For", "203.0.113.5")
				}
				if key != "" {
					req.Header.Set("Authorization", "Bearer "+key)
				}
				if path == "/auth/verify" {
					req.Header.Set("X-Forwarded-Method", "GET")
					req.Header.Set("X-Forwarded-Uri", "/api/x")
					req.Header.Set("X-Forwarded-Host", "api.example")
				}
				res, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				return res
			}
			limited := 0
			for i := 0; i < flood; i++ {
				res := send(attacker, tc.path, tc.key())
				switch {
				case i < threshold && res.StatusCode != tc.want:
					t.Fatalf("failure %d: %d, want %d", i, res.StatusCode, tc.want)
				case i >= threshold && res.StatusCode != http.StatusTooManyRequests:
					t.Fatalf("failure %d (past the threshold of %d): %d, want 429", i, threshold, res.StatusCode)
				case i >= threshold:
					limited++
					if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || ra < 1 {
						t.Fatalf("429 with Retry-After %q", res.Header.Get("Retry-After"))
					}
				}
			}
			if n := counter.calls.Load(); n > threshold {
				t.Errorf("%d credentials reached the authenticator, want at most %d", n, threshold)
			}
			// A valid key from the limited address is refused too (nothing
			// is looked up); from another address it works.
			if res := send(attacker, "/api/x", tok); res.StatusCode != http.StatusTooManyRequests {
				t.Errorf("valid key from the limited address: %d, want 429", res.StatusCode)
			}
			if res := send(clientFrom("127.0.0.2"), "/api/x", tok); res.StatusCode != 200 {
				t.Errorf("valid key from another address: %d, want 200", res.StatusCode)
			}

			if n := len(aud.ofType(tc.wantType)); tc.wantType != "http.request" && n != threshold {
				t.Errorf("%d %s events, want the %d before the threshold", n, tc.wantType, threshold)
			}
			if n := len(aud.ofType("preauth.limited")); n != 0 {
				t.Errorf("%d aggregated events before the window ended", n)
			}
			if total := len(aud.events); total > threshold+2 {
				t.Errorf("%d audit events for %d failures: the flood is filling the log", total, flood)
			}
			// The window ends: the next refusal (or the sweep) records the
			// aggregate of the last one.
			clock.Advance(30 * time.Second) // half refilled: 5 tokens
			g.FlushPreAuth(context.Background())
			sums := aud.ofType("preauth.limited")
			if len(sums) != 1 {
				t.Fatalf("%d aggregated events, want 1", len(sums))
			}
			s := sums[0]
			if s.Details["count"] != flood-threshold+1 || s.Request.SourceIP != "203.0.113.5" || s.Outcome != gatehouse.OutcomeDenied {
				t.Errorf("aggregated event %+v %+v, want count %d from 203.0.113.5", s.Details, s.Request, flood-threshold+1)
			}
			// Refilled: the address is served again.
			if res := send(attacker, "/api/x", tok); res.StatusCode != 200 {
				t.Errorf("valid key after the refill: %d, want 200", res.StatusCode)
			}
		})
	}
}

// TestPreAuthSparesForwardAuthProxy: forward-auth checks from a peer in
// forward_auth.trusted_proxies whose address is the proxy's own (no
// trusted X-Forwarded-For) carry many clients' failures; they do not lock
// the proxy out.
func TestPreAuthSparesForwardAuthProxy(t *testing.T) {
	g, tok := MustOpenGatewayWith(t, "http://127.0.0.1:1", func(c *gateway.Config) {
		c.PreAuth = gateway.PreAuthConfig{Failures: 3, Per: time.Minute}
		c.ForwardAuth = gateway.ForwardAuth{Proxy: "traefik", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	})
	front := httptest.NewServer(g)
	defer front.Close()
	check := func(key string) int {
		req, _ := http.NewRequest("GET", front.URL+"/auth/verify", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Uri", "/api/x")
		req.Header.Set("X-Forwarded-Host", "api.example")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for i := 0; i < 10; i++ {
		if code := check(randomKey()); code != 401 {
			t.Fatalf("check %d with a random key: %d, want 401", i, code)
		}
	}
	if code := check(tok); code != 200 {
		t.Errorf("a valid key through the proxy after 10 failures: %d, want 200", code)
	}
}

func randomKey() string {
	k, _, err := authn.NewToken(authn.PrefixAPIKey)
	if err != nil {
		panic(err)
	}
	return k
}

// BenchmarkRequestPathPreAuth measures the allowed path (a valid key,
// proxied) with the pre-authentication limit off and on, the latter with
// a thousand other addresses in its table.
func BenchmarkRequestPathPreAuth(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer up.Close()
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) {
			g, tok := MustOpenGatewayWith(b, up.URL, func(c *gateway.Config) {
				if on {
					c.PreAuth = gateway.PreAuthConfig{Failures: 20, Per: time.Minute}
				}
			})
			for i := 0; i < 1000; i++ {
				r := httptest.NewRequest("GET", "/nowhere", nil)
				r.RemoteAddr = "10.0." + strconv.Itoa(i>>8) + "." + strconv.Itoa(i&255) + ":1"
				g.ServeHTTP(httptest.NewRecorder(), r)
			}
			req := httptest.NewRequest("GET", "/api/x", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				g.ServeHTTP(w, req)
			}
		})
	}
}

// TestPreAuthLimitsForwardAuthCallers: a forward-auth check is spared the
// limit only when its peer is in a non-empty forward_auth.trusted_proxies;
// with the list unset, or on a path that merely starts with /auth/verify,
// a flood of random keys is answered 429. (A peer outside the list is
// refused 403 before any credential is read.)
func TestPreAuthLimitsForwardAuthCallers(t *testing.T) {
	lo := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		path    string
		spared  bool
	}{
		{"no trusted proxies", nil, "127.0.0.1:1", "/auth/verify", false},
		{"trusted proxy", lo, "127.0.0.1:1", "/auth/verify", true},
		{"longer path from trusted proxy", lo, "127.0.0.1:1", "/auth/verifyX", false},
		{"envoy path from trusted proxy", lo, "127.0.0.1:1", "/auth/verify/api/x", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := MustOpenGatewayWith(t, "http://127.0.0.1:1", func(c *gateway.Config) {
				c.PreAuth = gateway.PreAuthConfig{Failures: 3, Per: time.Minute}
				c.ForwardAuth = gateway.ForwardAuth{Proxy: "traefik", TrustedProxies: tt.trusted}
			})
			limited := 0
			for i := 0; i < 10; i++ {
				r := httptest.NewRequest("GET", tt.path, nil)
				r.RemoteAddr = tt.peer
				r.Header.Set("Authorization", "Bearer "+randomKey())
				r.Header.Set("X-Forwarded-Method", "GET")
				r.Header.Set("X-Forwarded-Uri", "/api/x")
				r.Header.Set("X-Forwarded-Host", "api.example")
				w := httptest.NewRecorder()
				g.ServeHTTP(w, r)
				if w.Code == http.StatusTooManyRequests {
					limited++
				}
			}
			if tt.spared && limited > 0 {
				t.Errorf("%d of 10 checks from the trusted proxy answered 429", limited)
			}
			if !tt.spared && limited == 0 {
				t.Errorf("10 failures, none answered 429")
			}
		})
	}
}
