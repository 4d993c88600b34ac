package service_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/ratelimit/service"
)

// Example shows what the gateway's rate-limit middleware does per request.
func Example() {
	cfg := ratelimit.Config{
		Default: ratelimit.Limit{Requests: 600, Per: time.Minute},
		Tiers:   map[string]ratelimit.Limit{"free": {Requests: 2, Per: time.Minute}},
	}
	clock := gatehouse.NewFakeClock(time.Unix(1_800_000_000, 0))
	svc, err := service.New(context.Background(), cfg, service.Options{Clock: clock})
	if err != nil {
		panic(err)
	}
	defer svc.Close()

	p := &gatehouse.Principal{ID: "k_123", Kind: gatehouse.KindAPIKey, Tier: "free"}
	policy := svc.Policy(p.Tier)
	for range 3 {
		d, err := svc.Allow(context.Background(), ratelimit.Key(p, "203.0.113.7", ratelimit.DefaultIPv6Prefix), policy.Limit)
		if err != nil {
			panic(err) // the gateway logs it and serves an internal error
		}
		h := http.Header{}
		policy.SetHeaders(h, d)
		if !d.Allowed {
			fmt.Println(gatehouse.HTTPStatus(ratelimit.Error(d).Code), "Retry-After:", h.Get("Retry-After"))
			continue
		}
		fmt.Println("200", h.Get("RateLimit-Policy"), h.Get("RateLimit"))
	}
	// Output:
	// 200 "free";q=2;w=60 "free";r=1;t=61
	// 200 "free";q=2;w=60 "free";r=0;t=61
	// 429 Retry-After: 61
}
