package app_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestClientAddressRateLimitAndAudit: anonymous callers are limited per
// client address. A caller that is not a trusted proxy (127.0.0.1) cannot
// buy fresh limits or another audit address with forged forwarding
// headers, and the upstream sees only the headers Gatehouse set; a
// trusted proxy (127.0.0.2) passes its callers' addresses on.
func TestClientAddressRateLimitAndAudit(t *testing.T) {
	h := MustStartWith(t, rateConfig+"trusted_proxies: [127.0.0.2]\n")
	proxy := loopbackClient(t, "127.0.0.2")
	get := func(c *http.Client, headers ...string) int {
		req, _ := http.NewRequest("GET", h.base+"/public/x", nil)
		for _, kv := range headers {
			k, v, _ := strings.Cut(kv, ": ")
			req.Header[k] = append(req.Header[k], v)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}

	for i := 0; i < 5; i++ {
		if code := get(http.DefaultClient, fmt.Sprintf("X-Forwarded-For: 198.51.100.%d", i), fmt.Sprintf("x-real-ip: 198.51.100.%d", i),
			"True-Client-IP: 198.51.100.99", "Forwarded: for=198.51.100.98", "X-Forwarded-Host: evil.example", "X-Original-URL: /api/v1/signals/admin/x"); code != 200 {
			t.Fatalf("untrusted request %d: %d", i, code)
		}
		got, _ := h.up.lastRequest()
		if xff := got.Header.Values("X-Forwarded-For"); len(xff) != 1 || xff[0] != "127.0.0.1" || got.Header.Get("X-Real-Ip") != "127.0.0.1" {
			t.Fatalf("upstream saw X-Forwarded-For %q X-Real-IP %q", xff, got.Header.Get("X-Real-Ip"))
		}
		for _, k := range []string{"True-Client-Ip", "Forwarded", "X-Original-Url"} {
			if v := got.Header.Get(k); v != "" {
				t.Errorf("upstream saw %s: %q", k, v)
			}
		}
		if v := got.Header.Get("X-Forwarded-Host"); v == "evil.example" {
			t.Errorf("upstream saw the forged X-Forwarded-Host")
		}
	}
	if code := get(http.DefaultClient, "X-Forwarded-For: 198.51.100.200"); code != 429 {
		t.Fatalf("sixth untrusted request with a new forged address: %d, want 429", code)
	}

	// Through the trusted proxy: each caller has its own limit, whatever
	// it forged to the left of what the proxy appended.
	for i := 0; i < 5; i++ {
		if code := get(proxy, fmt.Sprintf("X-Forwarded-For: 10.9.9.%d, 203.0.113.1", i)); code != 200 {
			t.Fatalf("trusted request %d for 203.0.113.1: %d", i, code)
		}
	}
	if code := get(proxy, "X-Forwarded-For: 203.0.113.1"); code != 429 {
		t.Fatalf("sixth request for 203.0.113.1: %d, want 429", code)
	}
	if code := get(proxy, "X-Forwarded-For: 203.0.113.2", "X-Forwarded-For: 127.0.0.2"); code != 200 {
		t.Fatalf("another caller behind the proxy: %d, want 200", code)
	}
	got, _ := h.up.lastRequest()
	if xff := got.Header.Get("X-Forwarded-For"); xff != "203.0.113.2, 127.0.0.2, 127.0.0.2" {
		t.Errorf("upstream X-Forwarded-For %q", xff)
	}

	seen := map[string]int{}
	for _, e := range h.auditEvents("http.request") {
		if req, _ := e["request"].(map[string]any); req != nil {
			seen[fmt.Sprint(req["source_ip"])]++
		}
	}
	for _, e := range h.auditEvents("ratelimit.refused") {
		if req, _ := e["request"].(map[string]any); req != nil {
			seen[fmt.Sprint(req["source_ip"])]++
		}
	}
	if seen["127.0.0.1"] != 6 || seen["203.0.113.1"] != 6 || seen["203.0.113.2"] != 1 {
		t.Errorf("audit source addresses %v; want 127.0.0.1×6, 203.0.113.1×6, 203.0.113.2×1", seen)
	}
	for ip := range seen {
		if strings.HasPrefix(ip, "198.51.100.") || strings.HasPrefix(ip, "10.9.9.") {
			t.Errorf("audit took a forged address %s", ip)
		}
	}
}
