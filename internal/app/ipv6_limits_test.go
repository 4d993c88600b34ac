package app_test

import (
	"fmt"
	"io"
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
