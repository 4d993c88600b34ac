package authz_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz"
)

func benchInput() *authz.Input {
	p := principal("read:signals", "agents", "tools:execute:web_search")
	p.ScopesFingerprint = authz.FingerprintScopes(p.Scopes)
	return routeInput(p, &authz.RouteInput{Name: "signals-read", Scopes: []string{"read:signals"}}, "prod")
}

// BenchmarkDecideCacheHit is the steady-state per-request cost.
func BenchmarkDecideCacheHit(b *testing.B) {
	e := MustNewEngine(b, authz.Config{}, authz.Options{})
	in := benchInput()
	ctx := context.Background()
	if _, err := e.Decide(ctx, in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		d, err := e.Decide(ctx, in)
		if err != nil || !d.Cached {
			b.Fatal("not a cache hit")
		}
	}
}

// BenchmarkDecideCacheHitParallel is the hit path under contention.
func BenchmarkDecideCacheHitParallel(b *testing.B) {
	e := MustNewEngine(b, authz.Config{}, authz.Options{})
	ctx := context.Background()
	if _, err := e.Decide(ctx, benchInput()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		in := benchInput()
		for pb.Next() {
			if d, err := e.Decide(ctx, in); err != nil || !d.Cached {
				b.Error("not a cache hit")
				return
			}
		}
	})
}

// BenchmarkDecideCacheHitNoFingerprint keys on the scope strings.
func BenchmarkDecideCacheHitNoFingerprint(b *testing.B) {
	e := MustNewEngine(b, authz.Config{}, authz.Options{})
	in := benchInput()
	in.Principal.ScopesFingerprint = authz.Fingerprint{}
	ctx := context.Background()
	if _, err := e.Decide(ctx, in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Decide(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecideColdEval is a full OPA evaluation (no cache).
func BenchmarkDecideColdEval(b *testing.B) {
	e := MustNewEngine(b, authz.Config{}, authz.Options{})
	in := benchInput()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, err := e.DecideUncached(ctx, in)
		if err != nil || !d.Allow {
			b.Fatal(d, err)
		}
	}
}

// BenchmarkDecideColdEvalDeny evaluates a denial, which builds messages.
func BenchmarkDecideColdEvalDeny(b *testing.B) {
	e := MustNewEngine(b, authz.Config{}, authz.Options{})
	in := benchInput()
	in.Route.Scopes = []string{"write:signals"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, err := e.DecideUncached(ctx, in)
		if err != nil || d.Allow {
			b.Fatal(d, err)
		}
	}
}

func BenchmarkFingerprintScopes(b *testing.B) {
	scopes := []string{"read:signals", "agents", "tools:execute:web_search"}
	b.ReportAllocs()
	for b.Loop() {
		_ = authz.FingerprintScopes(scopes)
	}
}

// BenchmarkDecideCacheHitLatency times each call to report the p50 and p99
// per-request cost of a cache hit.
func BenchmarkDecideCacheHitLatency(b *testing.B) {
	e := MustNewEngine(b, authz.Config{}, authz.Options{})
	in := benchInput()
	ctx := context.Background()
	if _, err := e.Decide(ctx, in); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, 1<<20)
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		_, _ = e.Decide(ctx, in)
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(t0))
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkDecideMixed cycles through 1,000 distinct generated inputs, all
// cached after the first pass: a realistic steady state with many keys.
func BenchmarkDecideMixed(b *testing.B) {
	e := MustNewEngine(b, authz.Config{}, authz.Options{})
	r := rand.New(rand.NewPCG(3, 4))
	ins := make([]*authz.Input, 1000)
	for i := range ins {
		ins[i] = genInput(r)
		ins[i].Principal.ScopesFingerprint = authz.FingerprintScopes(ins[i].Principal.Scopes)
	}
	ctx := context.Background()
	for _, in := range ins {
		_, _ = e.Decide(ctx, in)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := e.Decide(ctx, ins[i%len(ins)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
