package app_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// Per-source limits key IPv6 clients by their network
// (limits.ipv6_prefix, default /64): one subscriber's /64 cannot buy a
// fresh limit per address. Clients come through a trusted proxy
// (127.0.0.1, the test's own peer) that names them in X-Forwarded-For.

// TestAnonymousLimitPerIPv6Network: the anonymous rate limit (5 a minute)
// counts five addresses of one /64 as one caller; the next /64, an IPv4
// caller and, with ipv6_prefix 128, each address keep their own limit.
// Audit events keep each full address.
func TestAnonymousLimitPerIPv6Network(t *testing.T) {
	tests := []struct {
		name, extra string
		sixth       int // the sixth request from the /64, a new address
	}{
		{"default /64", "", 429},
		{"ipv6_prefix 48 groups wider", "limits: {ipv6_prefix: 48}\n", 429},
		{"ipv6_prefix 128 keys each address", "limits: {ipv6_prefix: 128}\n", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := MustStartWith(t, rateConfig+"trusted_proxies: [127.0.0.1]\n"+tc.extra)
			get := func(xff string) int {
				res := h.do("GET", h.base+"/public/x", nil, "X-Forwarded-For: "+xff)
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				return res.StatusCode
			}
			for i := 1; i <= 5; i++ {
				if code := get(fmt.Sprintf("2001:db8:5:6:%x::%x", i, i)); code != 200 {
					t.Fatalf("request %d: %d", i, code)
				}
			}
			if code := get("2001:db8:5:6:ffff:ffff:ffff:ffff"); code != tc.sixth {
				t.Errorf("sixth request from the /64, a new address: %d, want %d", code, tc.sixth)
			}
			if code := get("2001:db8:5:7::1"); code != 200 && tc.extra == "" {
				t.Errorf("the next /64: %d, want 200", code)
			}
			if code := get("203.0.113.9"); code != 200 {
				t.Errorf("an IPv4 caller: %d, want 200", code)
			}
			seen := map[string]bool{}
			for _, e := range append(h.auditEvents("http.request"), h.auditEvents("ratelimit.refused")...) {
				if req, _ := e["request"].(map[string]any); req != nil {
					seen[fmt.Sprint(req["source_ip"])] = true
				}
			}
			for _, ip := range []string{"2001:db8:5:6:1::1", "2001:db8:5:6:5::5", "2001:db8:5:6:ffff:ffff:ffff:ffff"} {
				if !seen[ip] {
					t.Errorf("no audit event names %s (seen %v)", ip, seen)
				}
			}
		})
	}
}

// TestPreAuthIPv6PrefixConfigurable: with ipv6_prefix 128 the
// pre-authentication limit is per address again (the setting is read),
// and with the default a neighbouring /64 is not shut out by a flood from
// another.
func TestPreAuthIPv6PrefixConfigurable(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
		limited     bool
	}{
		{"default /64", "", true},
		{"ipv6_prefix 128", "limits: {ipv6_prefix: 128}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := MustStartWith(t, "trusted_proxies: [127.0.0.1]\n"+tc.extra)
			real := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})
			bogus := flipLast(real.Key)
			send := func(xff, key string) int {
				res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+key, "X-Forwarded-For: "+xff)
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				return res.StatusCode
			}
			limited := 0
			for i := 0; i < 60; i++ {
				if send(fmt.Sprintf("2001:db8:9:9:%x::1", i+1), bogus) == 429 {
					limited++
				}
			}
			if (limited > 0) != tc.limited {
				t.Errorf("60 failures from one /64, a new address each: %d answered 429, want limited=%v", limited, tc.limited)
			}
			if code := send("2001:db8:9:a::1", real.Key); code != 200 {
				t.Errorf("the next /64 with a good key: %d, want 200", code)
			}
			if code := send("::ffff:203.0.113.5", real.Key); code != 200 {
				t.Errorf("an IPv4-mapped caller with a good key: %d, want 200", code)
			}
		})
	}
}

// TestClientLockoutPerIPv6Network: /oauth/token's lockout of a client
// from one address (5 failures) and of an address (20 failures of any
// clients) count one /64 as one address: failures spread over fresh
// addresses lock the network, while the real client in the next /64 and
// on IPv4 is not locked out. The pre-authentication limit is off so that
// only the lockout answers.
func TestClientLockoutPerIPv6Network(t *testing.T) {
	h := MustStartWith(t, "trusted_proxies: [127.0.0.1]\nlimits: {preauth: {failures: -1}}\n")
	c := h.createClient("read:signals")
	cc := url.Values{"grant_type": {"client_credentials"}}
	wrong := c.ClientSecret[:len(c.ClientSecret)-8] + "AAAAAAAA"
	from := func(ip string) string { return "X-Forwarded-For: " + ip }

	// Per (client, source): five wrong secrets, a new address each.
	for i := 1; i <= 5; i++ {
		if a := h.token(cc, c.ClientID, wrong, from(fmt.Sprintf("2001:db8:c:1:%x::1", i))); a.status != 401 {
			t.Fatalf("failure %d: %d", i, a.status)
		}
	}
	if a := h.token(cc, c.ClientID, c.ClientSecret, from("2001:db8:c:1:ffff::1")); a.status != 429 || a.header.Get("Retry-After") == "" {
		t.Errorf("the client from a sixth address of the failing /64: %d (Retry-After %q), want 429", a.status, a.header.Get("Retry-After"))
	}
	for _, ip := range []string{"2001:db8:c:2::1", "203.0.113.8", "::ffff:203.0.113.9"} {
		if a := h.token(cc, c.ClientID, c.ClientSecret, from(ip)); a.status != 200 {
			t.Errorf("the client from %s: %d %s, want 200", ip, a.status, a.Desc)
		}
	}

	// Per source: twenty failures of made-up clients, a new address each.
	other := h.createClient("read:signals")
	for i := 1; i <= 20; i++ {
		id := fmt.Sprintf("cl_made_up_%d", i)
		if a := h.token(cc, id, wrong, from(fmt.Sprintf("2001:db8:c:3::%x", i))); a.status != 401 {
			t.Fatalf("source failure %d: %d", i, a.status)
		}
	}
	if a := h.token(cc, other.ClientID, other.ClientSecret, from("2001:db8:c:3::ffff")); a.status != 429 {
		t.Errorf("another client from the flooding /64: %d, want 429", a.status)
	}
	if a := h.token(cc, other.ClientID, other.ClientSecret, from("2001:db8:c:4::1")); a.status != 200 {
		t.Errorf("another client from the next /64: %d %s, want 200", a.status, a.Desc)
	}
}

// TestSignInLimitPerIPv6Network: the admin sign-in limit per source
// counts one /64 as one source: three attempts (the per_source limit set
// here) from three addresses of the /64, each with its own username, and
// a fourth address is refused 429; the next /64 is not. The admin
// listener reads no forwarding header, so the addresses are the peers of
// requests given to its handler (this host cannot connect from them).
func TestSignInLimitPerIPv6Network(t *testing.T) {
	h := MustStart(t)
	var s map[string]any
	h.adminCall("GET", "/v1/settings/authentication", nil, &s)
	lim := s["sign_in_limits"].(map[string]any)
	lim["per_source"] = map[string]any{"requests": 3, "per": "1m"}
	var e errorOut
	if code := h.adminCall("PUT", "/v1/settings/authentication", s, &e); code != 200 {
		t.Fatalf("set per_source: %d %q", code, e.Error.Message)
	}
	admin := h.app.AdminHandler()
	login := func(peer, user string) int {
		req := httptest.NewRequest("POST", "/v1/session", strings.NewReader(`{"username":"`+user+`","password":"wrong password 1234"}`))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = peer
		w := httptest.NewRecorder()
		admin.ServeHTTP(w, req)
		return w.Code
	}
	for i := 1; i <= 3; i++ {
		if code := login(fmt.Sprintf("[2001:db8:a:1::%x]:4000", i), fmt.Sprintf("user%d", i)); code != 401 {
			t.Fatalf("attempt %d: %d, want 401", i, code)
		}
	}
	if code := login("[2001:db8:a:1:ffff:ffff:ffff:ffff]:4000", "user4"); code != 429 {
		t.Errorf("a fourth address of the /64: %d, want 429", code)
	}
	if code := login("[2001:db8:a:2::1]:4000", "user5"); code != 401 {
		t.Errorf("the next /64: %d, want 401", code)
	}
	if code := login("[::ffff:198.51.100.4]:4000", "user6"); code != 401 {
		t.Errorf("an IPv4-mapped peer: %d, want 401", code)
	}
	// Audit events keep the full address.
	seen := map[string]bool{}
	for _, ev := range h.auditEvents("") {
		if req, _ := ev["request"].(map[string]any); req != nil {
			seen[fmt.Sprint(req["source_ip"])] = true
		}
	}
	if !seen["2001:db8:a:1::2"] {
		t.Errorf("no audit event names 2001:db8:a:1::2 (seen %v)", seen)
	}
}
