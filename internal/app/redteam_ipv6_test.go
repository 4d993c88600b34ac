package app_test

import (
	"fmt"
	"io"
	"testing"
)

// Copied from branch w-red (redteam_holes_test.go), now closed: per-source
// limits key an IPv6 client by its network (limits.ipv6_prefix, /64).

// TestRedPreAuthPerIPv6Address: the pre-authentication limit (and the
// anonymous rate limit) key on the full client address. An IPv6 client
// holds at least a /64 (2^64 addresses; every home line gets one), so
// behind a trusted load balancer it spends a fresh address per request:
// a flood of random keys is never answered 429 and reaches the key store
// at full speed. One address from the same /64 is limited (control).
// Limits keyed by attacker-chosen addresses should group IPv6 by /64 (as
// nginx's limit_req users, Cloudflare and Envoy's descriptors commonly do).
func TestRedPreAuthPerIPv6Address(t *testing.T) {
	h := MustStartWith(t, "trusted_proxies: [127.0.0.1]\n")
	// A well-formed key of a made-up id: passes the checksum, fails lookup.
	real := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})
	bogus := flipLast(real.Key)
	send := func(xff string) int {
		res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+bogus, "X-Forwarded-For: "+xff)
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	const n = 60 // three times the default bucket
	limited := 0
	for i := 0; i < n; i++ {
		if send("2001:db8:1:2::1") == 429 {
			limited++
		}
	}
	if limited == 0 {
		t.Fatalf("control: %d failures from one address, none answered 429", n)
	}
	limited = 0
	for i := 0; i < n; i++ {
		if send(fmt.Sprintf("2001:db8:1:3::%x", i+1)) == 429 {
			limited++
		}
	}
	if limited == 0 {
		t.Errorf("%d failures from one IPv6 /64 (a new address each), none answered 429: the limit does not bound the attacker", n)
	}
}
