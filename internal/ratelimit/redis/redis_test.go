package redis_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/ratelimit/ratelimittest"
	"github.com/gatehouse/gatehouse/internal/ratelimit/redis"
)

func TestContract(t *testing.T) {
	client := ratelimittest.MustRedis(t)
	ratelimittest.Run(t, func(tb testing.TB, c gatehouse.Clock) ratelimit.Limiter {
		return redis.New(client, redis.Config{Prefix: ratelimittest.UniqueKey(tb, "prefix") + ":", Clock: c})
	})
}

// TestServerTime runs a decision on the Redis server's clock.
func TestServerTime(t *testing.T) {
	client := ratelimittest.MustRedis(t)
	l := redis.New(client, redis.Config{Prefix: ratelimittest.UniqueKey(t, "prefix") + ":"})
	if err := l.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	lim := ratelimit.Limit{Requests: 2, Per: time.Minute}
	for i := range 2 {
		if d := ratelimittest.MustAllow(t, l, "k", lim); !d.Allowed || d.Reset <= time.Minute || d.Reset > time.Minute+time.Minute/ratelimit.Granules {
			t.Fatalf("request %d: got %+v", i, d)
		}
	}
	if d := ratelimittest.MustAllow(t, l, "k", lim); d.Allowed || d.RetryAfter <= 59*time.Second {
		t.Fatalf("3rd: got %+v", d)
	}
}

// TestAccuracyAcrossReplicas hammers one key with limit 600/min through
// three independent limiters (each with its own connection pool, as three
// gateway replicas would have) sharing one Redis and using its clock. All
// traffic falls inside one window, so the admitted count must be 600; the
// issue's tolerance is [594, 606].
func TestAccuracyAcrossReplicas(t *testing.T) {
	const replicas, workers, attempts = 3, 16, 60
	key := ratelimittest.UniqueKey(t, "k")
	prefix := ratelimittest.UniqueKey(t, "prefix") + ":"
	lim := ratelimit.Limit{Requests: 600, Per: time.Minute}
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range replicas {
		l := redis.New(ratelimittest.MustRedis(t), redis.Config{Prefix: prefix})
		for range workers {
			wg.Go(func() {
				for range attempts {
					d, err := l.Allow(context.Background(), key, lim)
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						admitted.Add(1)
					} else {
						refused.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	if el := time.Since(start); el > 50*time.Second {
		t.Fatalf("hammering took %v, longer than the window; result meaningless", el)
	}
	got := admitted.Load()
	t.Logf("admitted %d, refused %d of %d attempts through %d replicas", got, refused.Load(), replicas*workers*attempts, replicas)
	if got < 594 || got > 606 {
		t.Fatalf("admitted %d in one window, want within [594, 606] (exactly 600 expected)", got)
	}
}

// TestKeyExpires: a key's hash expires once every granule in it is stale,
// so idle keys cost Redis nothing.
func TestKeyExpires(t *testing.T) {
	client := ratelimittest.MustRedis(t)
	prefix := ratelimittest.UniqueKey(t, "prefix") + ":"
	l := redis.New(client, redis.Config{Prefix: prefix})
	ratelimittest.MustAllow(t, l, "k", ratelimit.Limit{Requests: 5, Per: 10 * time.Second})
	ttl, err := client.PTTL(context.Background(), prefix+"k").Result()
	if err != nil {
		t.Fatal(err)
	}
	if hi := 10*time.Second + 10*time.Second/ratelimit.Granules + 2*time.Millisecond; ttl <= 10*time.Second || ttl > hi {
		t.Fatalf("PTTL = %v, want in (10s, %v]", ttl, hi)
	}
}
