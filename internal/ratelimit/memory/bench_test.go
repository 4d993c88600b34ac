package memory_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/ratelimit/memory"
)

// BenchmarkAllowParallel measures decisions per second across GOMAXPROCS
// goroutines over 100k distinct keys (600/min each, so most are admitted and
// some refused). Run with -cpu 2 for the 2-core figure.
func BenchmarkAllowParallel(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run("keys="+strconv.Itoa(n), func(b *testing.B) { benchAllow(b, n) })
	}
}

func benchAllow(b *testing.B, nkeys int) {
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = "api_key:k_" + strconv.Itoa(i)
	}
	l := memory.New(memory.Config{})
	lim := ratelimit.Limit{Requests: 600, Per: time.Minute}
	ctx := context.Background()
	var seq atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(7919) % uint64(nkeys))
		for pb.Next() {
			if _, err := l.Allow(ctx, keys[i], lim); err != nil {
				b.Error(err)
				return
			}
			if i += 13; i >= nkeys {
				i -= nkeys
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

// BenchmarkAllowAllParallel is BenchmarkAllowParallel with two rules per
// decision (principal and per-route), the gateway's common case.
func BenchmarkAllowAllParallel(b *testing.B) {
	const nkeys = 100_000
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = "api_key:k_" + strconv.Itoa(i)
	}
	l := memory.New(memory.Config{})
	ctx := context.Background()
	var seq atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(7919) % uint64(nkeys))
		rules := make([]ratelimit.Rule, 2)
		for pb.Next() {
			rules[0] = ratelimit.Rule{Key: keys[i], Limit: ratelimit.Limit{Requests: 600, Per: time.Minute}}
			rules[1] = ratelimit.Rule{Key: keys[(i+1)%nkeys], Limit: ratelimit.Limit{Requests: 60, Per: time.Second}}
			if _, err := l.AllowAll(ctx, rules); err != nil {
				b.Error(err)
				return
			}
			if i += 13; i >= nkeys {
				i -= nkeys
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

func TestAllowDoesNotAllocate(t *testing.T) {
	l := memory.New(memory.Config{Clock: gatehouse.NewFakeClock(time.Unix(1_800_000_000, 0))})
	lim := ratelimit.Limit{Requests: 1 << 20, Per: time.Minute}
	ctx := context.Background()
	l.Allow(ctx, "k", lim)
	rules := []ratelimit.Rule{{Key: "k", Limit: lim}, {Key: "j", Limit: lim}}
	if n := testing.AllocsPerRun(1000, func() { l.Allow(ctx, "k", lim) }); n != 0 {
		t.Errorf("Allow: %v allocs per decision, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { l.AllowAll(ctx, rules) }); n != 0 {
		t.Errorf("AllowAll: %v allocs per decision, want 0", n)
	}
}
