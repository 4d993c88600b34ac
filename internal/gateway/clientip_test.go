package gateway_test

import (
	"bufio"
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

// inputRecorder remembers the source_ip of the last policy input.
type inputRecorder struct {
	gateway.Authorizer
	mu       sync.Mutex
	sourceIP string
}

func (a *inputRecorder) Decide(ctx context.Context, in *authz.Input) (authz.Decision, error) {
	a.mu.Lock()
	a.sourceIP = in.Request.SourceIP
	a.mu.Unlock()
	return a.Authorizer.Decide(ctx, in)
}

func (a *inputRecorder) last() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sourceIP
}

// headerUpstream remembers the headers of the last request.
type headerUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	last http.Header
}

func newHeaderUpstream(t *testing.T) *headerUpstream {
	u := &headerUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.last = r.Header.Clone()
		u.mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *headerUpstream) take() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	h := u.last
	u.last = nil
	return h
}

// rawRequest writes a request with header lines exactly as given to addr
// and returns the status.
func rawRequest(t *testing.T, addr, path string, lines ...string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n"+strings.Join(lines, "\r\n")+"\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

// TestClientAddress runs requests with forged and chained forwarding
// headers through a real listener (raw sockets, header lines as written)
// and checks the address the policy and the audit saw and the forwarding
// headers the upstream got.
func TestClientAddress(t *testing.T) {
	trusted := prefixes("127.0.0.1/32", "10.0.0.0/8", "2001:db8:1::/48")
	forged := []string{
		"X-Forwarded-For: 203.0.113.7", "X-Real-IP: 203.0.113.8", "True-Client-IP: 203.0.113.9",
		"Forwarded: for=203.0.113.10;proto=https", "X-Forwarded-Host: evil.example", "X-Forwarded-Proto: https",
		"X-Forwarded-Port: 8443", "X-Forwarded-Prefix: /admin", "X-Original-URL: /admin/users", "X-Rewrite-URL: /admin/users",
		"X-Envoy-Original-Path: /admin", "CF-Connecting-IP: 203.0.113.11", "Fastly-Client-IP: 203.0.113.12",
		"X-Client-IP: 203.0.113.13", "X-Cluster-Client-IP: 203.0.113.14", "x_forwarded_for: 203.0.113.15",
		"x-real-ip: 203.0.113.16", "X-Original-Forwarded-For: 203.0.113.17",
	}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		lines   []string
		client  string // policy and audit source_ip
		xff     string // X-Forwarded-For the upstream sees
		proto   string
		host    string
	}{
		{"no trusted proxies: every forged header ignored", nil, forged, "127.0.0.1", "127.0.0.1", "http", "gw.example"},
		{"untrusted peer: every forged header ignored", prefixes("10.0.0.0/8"), forged, "127.0.0.1", "127.0.0.1", "http", "gw.example"},
		{"trusted peer, chain of hops", trusted, []string{"X-Forwarded-For: 198.51.100.1, 203.0.113.5, 10.1.1.1"}, "203.0.113.5", "203.0.113.5, 10.1.1.1, 127.0.0.1", "http", "gw.example"},
		{"trusted peer, many header lines in any case", trusted, []string{"X-Forwarded-For: 198.51.100.1", "x-forwarded-for: 203.0.113.5, 10.0.0.2", "X-FORWARDED-FOR: 10.0.0.3"}, "203.0.113.5", "203.0.113.5, 10.0.0.2, 10.0.0.3, 127.0.0.1", "http", "gw.example"},
		{"trusted peer, every hop trusted", trusted, []string{"X-Forwarded-For: 10.0.0.9, 10.0.0.2"}, "10.0.0.9", "10.0.0.9, 10.0.0.2, 127.0.0.1", "http", "gw.example"},
		{"malformed hop ends the walk", trusted, []string{"X-Forwarded-For: 203.0.113.5, not-an-ip, 10.0.0.2"}, "10.0.0.2", "10.0.0.2, 127.0.0.1", "http", "gw.example"},
		{"malformed rightmost", trusted, []string{"X-Forwarded-For: 203.0.113.5, unknown"}, "127.0.0.1", "127.0.0.1", "http", "gw.example"},
		{"empty entry", trusted, []string{"X-Forwarded-For: 203.0.113.5,,10.0.0.2"}, "10.0.0.2", "10.0.0.2, 127.0.0.1", "http", "gw.example"},
		{"zone", trusted, []string{"X-Forwarded-For: fe80::1%eth0"}, "127.0.0.1", "127.0.0.1", "http", "gw.example"},
		{"name instead of address", trusted, []string{"X-Forwarded-For: attacker.example"}, "127.0.0.1", "127.0.0.1", "http", "gw.example"},
		{"ports and brackets", trusted, []string{"X-Forwarded-For: [2001:db8::7]:4711, 10.0.0.2:80"}, "2001:db8::7", "2001:db8::7, 10.0.0.2, 127.0.0.1", "http", "gw.example"},
		{"bracketed v6 in a trusted network", trusted, []string{"X-Forwarded-For: 203.0.113.5,[2001:db8:1::9]"}, "203.0.113.5", "203.0.113.5, 2001:db8:1::9, 127.0.0.1", "http", "gw.example"},
		{"v4-mapped", trusted, []string{"X-Forwarded-For: ::ffff:203.0.113.5"}, "203.0.113.5", "203.0.113.5, 127.0.0.1", "http", "gw.example"},
		{"v4-mapped trusted hop", trusted, []string{"X-Forwarded-For: 203.0.113.5, ::ffff:10.0.0.2"}, "203.0.113.5", "203.0.113.5, 10.0.0.2, 127.0.0.1", "http", "gw.example"},
		{"long trusted chain is bounded", trusted, []string{"X-Forwarded-For: 203.0.113.5" + strings.Repeat(", 10.0.0.1", 100)}, "10.0.0.1", strings.TrimPrefix(strings.Repeat(", 10.0.0.1", 32), ", ") + ", 127.0.0.1", "http", "gw.example"},
		{"X-Real-IP is never read", trusted, []string{"X-Real-IP: 203.0.113.5", "True-Client-IP: 203.0.113.6", "Forwarded: for=203.0.113.7"}, "127.0.0.1", "127.0.0.1", "http", "gw.example"},
		{"trusted proxy's proto and host kept", trusted, []string{"X-Forwarded-For: 203.0.113.5", "X-Forwarded-Proto: https", "X-Forwarded-Host: api.example"}, "203.0.113.5", "203.0.113.5, 127.0.0.1", "https", "api.example"},
		{"trusted proxy's ambiguous proto and host dropped", trusted, []string{"X-Forwarded-Proto: https, http", "X-Forwarded-Host: a.example", "X-Forwarded-Host: b.example"}, "127.0.0.1", "127.0.0.1", "http", "gw.example"},
		{"trusted proxy's bad host dropped", trusted, []string{"X-Forwarded-Host: evil.example/x@y"}, "127.0.0.1", "127.0.0.1", "http", "gw.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newHeaderUpstream(t)
			aud := &memAuditor{}
			var rec *inputRecorder
			g, tok := MustOpenGatewayWith(t, up.URL, func(c *gateway.Config) {
				c.TrustedProxies, c.Auditor = tt.trusted, aud
				rec = &inputRecorder{Authorizer: c.Authorizer}
				c.Authorizer = rec
			})
			front := httptest.NewServer(g)
			defer front.Close()
			addr := strings.TrimPrefix(front.URL, "http://")
			if code := rawRequest(t, addr, "/api/x", append([]string{"Authorization: Bearer " + tok}, tt.lines...)...); code != 200 {
				t.Fatalf("status %d", code)
			}
			if got := rec.last(); got != tt.client {
				t.Errorf("policy source_ip %q, want %q", got, tt.client)
			}
			if got := aud.last().Request.SourceIP; got != tt.client {
				t.Errorf("audit source_ip %q, want %q", got, tt.client)
			}
			h := up.take()
			if got := h.Values("X-Forwarded-For"); len(got) != 1 || got[0] != tt.xff {
				t.Errorf("upstream X-Forwarded-For %q, want %q", got, tt.xff)
			}
			if got := h.Values("X-Real-Ip"); len(got) != 1 || got[0] != tt.client {
				t.Errorf("upstream X-Real-IP %q, want %q", got, tt.client)
			}
			if got := h.Values("X-Forwarded-Proto"); len(got) != 1 || got[0] != tt.proto {
				t.Errorf("upstream X-Forwarded-Proto %q, want %q", got, tt.proto)
			}
			if got := h.Values("X-Forwarded-Host"); len(got) != 1 || got[0] != tt.host {
				t.Errorf("upstream X-Forwarded-Host %q, want %q", got, tt.host)
			}
			for k, vs := range h {
				switch k {
				case "X-Forwarded-For", "X-Real-Ip", "X-Forwarded-Proto", "X-Forwarded-Host":
					continue
				}
				for _, v := range vs {
					if strings.Contains(v, "203.0.113.") || strings.Contains(v, "/admin") || strings.Contains(v, "evil") {
						t.Errorf("upstream saw %s: %q", k, v)
					}
				}
			}
		})
	}
}

// TestClientAddressAllocations: configuring trusted proxies costs an
// untrusted peer's request no allocation.
func TestClientAddressAllocations(t *testing.T) {
	allocs := func(trusted []netip.Prefix) float64 {
		g, _ := MustOpenGatewayWith(t, "http://127.0.0.1:1", func(c *gateway.Config) { c.TrustedProxies = trusted })
		req := httptest.NewRequest("GET", "/api/x", nil)
		req.RemoteAddr = "192.0.2.1:1234"
		req.Header.Set("X-API-Key", "gk_aaaaaaaaaaaaaaaa_bad")
		req.Header.Set("X-Forwarded-For", "203.0.113.5, 10.0.0.1")
		w := &discardWriter{h: http.Header{}}
		// AllocsPerRun reads process-wide counters, so a background
		// goroutine (the audit writer, a timer) can add one to a run;
		// the least of a few runs is the request's own count.
		least := math.Inf(1)
		for range 5 {
			least = math.Min(least, testing.AllocsPerRun(200, func() {
				clear(w.h)
				g.ServeHTTP(w, req)
			}))
		}
		return least
	}
	without, with := allocs(nil), allocs(prefixes("10.0.0.0/8", "127.0.0.1/32", "2001:db8::/32"))
	if with > without {
		t.Errorf("untrusted peer with trusted_proxies set: %.0f allocs, without: %.0f", with, without)
	}
}
