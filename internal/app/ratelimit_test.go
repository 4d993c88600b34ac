package app_test

import (
	"strings"
	"testing"
	"time"
)

const rateConfig = `ratelimit:
  default: {requests: 5, per: 1m}
  tiers:
    free: {requests: 2, per: 1m}
`

func TestRateLimitTiersAndHeaders(t *testing.T) {
	h := MustStartWith(t, rateConfig)
	free := h.createKey(map[string]any{"name": "f", "scopes": []string{"read:signals"}, "tier": "free"})
	std := h.createKey(map[string]any{"name": "s", "scopes": []string{"read:signals"}})
	url := h.base + "/api/v1/signals/x"
	for i := 1; i <= 2; i++ {
		res := h.do("GET", url, nil, "X-API-Key: "+free.Key)
		if res.StatusCode != 200 {
			t.Fatalf("free request %d: %d", i, res.StatusCode)
		}
		want := map[string]string{
			"RateLimit-Policy":      `"free";q=2;w=60`,
			"X-Ratelimit-Limit":     "2",
			"X-Ratelimit-Remaining": []string{"", "1", "0"}[i],
		}
		for k, v := range want {
			if got := res.Header.Get(k); got != v {
				t.Errorf("request %d: %s = %q, want %q", i, k, got, v)
			}
		}
		if !strings.HasPrefix(res.Header.Get("RateLimit"), `"free";r=`) || res.Header.Get("X-Ratelimit-Reset") == "" {
			t.Errorf("RateLimit = %q, reset %q", res.Header.Get("RateLimit"), res.Header.Get("X-Ratelimit-Reset"))
		}
	}
	res := h.do("GET", url, nil, "X-API-Key: "+free.Key)
	if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("third free request: %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if e := decodeError(t, res); e.Error.Code != "rate_limited" {
		t.Errorf("code %q", e.Error.Code)
	}
	// Another principal has its own quota, under the default tier.
	for i := 0; i < 5; i++ {
		if res := h.do("GET", url, nil, "X-API-Key: "+std.Key); res.StatusCode != 200 {
			t.Fatalf("default-tier request %d: %d", i, res.StatusCode)
		}
	}
	if res := h.do("GET", url, nil, "X-API-Key: "+std.Key); res.StatusCode != 429 {
		t.Fatalf("sixth default-tier request: %d", res.StatusCode)
	}
	// The window slides.
	h.clock.Advance(61 * time.Second)
	if res := h.do("GET", url, nil, "X-API-Key: "+free.Key); res.StatusCode != 200 {
		t.Fatalf("after the window: %d", res.StatusCode)
	}
	// Health is never limited.
	for i := 0; i < 20; i++ {
		if res := h.do("GET", h.base+"/health", nil); res.StatusCode != 200 || res.Header.Get("RateLimit") != "" {
			t.Fatalf("health %d: %d", i, res.StatusCode)
		}
	}
}

func TestRouteLimitDoesNotConsumeTierQuota(t *testing.T) {
	h := MustStartWith(t, rateConfig)
	k := h.createKey(map[string]any{"name": "k", "scopes": []string{"demo:read"}, "tier": "free"})
	if res := h.do("GET", h.base+"/hot/x", nil, "X-API-Key: "+k.Key); res.StatusCode != 200 {
		t.Fatalf("first hot request: %d", res.StatusCode)
	}
	for i := 0; i < 3; i++ {
		res := h.do("GET", h.base+"/hot/x", nil, "X-API-Key: "+k.Key)
		if res.StatusCode != 429 || res.Header.Get("RateLimit-Policy") != `"route:hot";q=1;w=60` {
			t.Fatalf("hot request %d: %d policy %q", i, res.StatusCode, res.Header.Get("RateLimit-Policy"))
		}
	}
	// The tier (2/min) spent one on the admitted hot request, none on the
	// refused ones: exactly one more request passes elsewhere.
	if res := h.do("GET", h.base+"/slow/x", nil, "X-API-Key: "+k.Key); res.StatusCode != 200 {
		t.Fatalf("tier quota consumed by refused requests: %d", res.StatusCode)
	}
	if res := h.do("GET", h.base+"/slow/x", nil, "X-API-Key: "+k.Key); res.StatusCode != 429 {
		t.Fatalf("tier limit not applied: %d", res.StatusCode)
	}
}

func TestAnonymousLimitedPerIP(t *testing.T) {
	h := MustStartWith(t, rateConfig)
	for i := 0; i < 5; i++ {
		if res := h.do("GET", h.base+"/public/x", nil); res.StatusCode != 200 {
			t.Fatalf("anonymous %d: %d", i, res.StatusCode)
		}
	}
	if res := h.do("GET", h.base+"/public/x", nil); res.StatusCode != 429 {
		t.Fatalf("sixth anonymous request: %d", res.StatusCode)
	}
}

func TestDecisionAndForwardAuthLimited(t *testing.T) {
	h := MustStartWith(t, rateConfig+"forward_auth: {proxy: traefik}\n")
	k := h.createKey(map[string]any{"name": "k", "scopes": []string{"read:signals"}, "tier": "free"})
	verify := func() int {
		return h.do("GET", h.base+"/auth/verify", nil, "X-API-Key: "+k.Key, "X-Forwarded-Method: GET", "X-Forwarded-Uri: /api/v1/signals/x", "X-Forwarded-Host: app.example").StatusCode
	}
	decide := func() int {
		return h.do("POST", h.base+"/v1/authorize", strings.NewReader(`{"action":"tool.execute","resource":"tool:x"}`), "X-API-Key: "+k.Key).StatusCode
	}
	if a, b := verify(), decide(); a != 200 || b != 200 {
		t.Fatalf("first calls: verify %d, decide %d", a, b)
	}
	if a, b := verify(), decide(); a != 429 || b != 429 {
		t.Fatalf("over the limit: verify %d, decide %d; want 429", a, b)
	}
}
