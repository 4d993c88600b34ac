package redis_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/ratelimit/ratelimittest"
	"github.com/gatehouse/gatehouse/internal/ratelimit/redis"
)

// BenchmarkAllowParallel measures decisions per second from one process
// against the test Redis: 64 goroutines per CPU, plain round trips (one
// EVALSHA each, no batching), 10k distinct keys on the server's clock.
func BenchmarkAllowParallel(b *testing.B) {
	const nkeys = 10_000
	client := ratelimittest.MustRedis(b)
	l := redis.New(client, redis.Config{Prefix: ratelimittest.UniqueKey(b, "prefix") + ":"})
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = "api_key:k_" + strconv.Itoa(i)
	}
	lim := ratelimit.Limit{Requests: 600, Per: time.Minute}
	ctx := context.Background()
	if err := l.Ping(ctx); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Uint64
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(7919) % nkeys)
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
