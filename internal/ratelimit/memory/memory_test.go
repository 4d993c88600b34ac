package memory_test

import (
	"strconv"
	"time"

	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/ratelimit/memory"
	"github.com/gatehouse/gatehouse/internal/ratelimit/ratelimittest"
)

func TestContract(t *testing.T) {
	ratelimittest.Run(t, func(tb testing.TB, c gatehouse.Clock) ratelimit.Limiter {
		return memory.New(memory.Config{Clock: c})
	})
}

func TestIdleKeysDropped(t *testing.T) {
	c := gatehouse.NewFakeClock(ratelimittest.Start)
	l := memory.New(memory.Config{Clock: c, Shards: 4})
	lim := ratelimit.Limit{Requests: 10, Per: time.Minute}
	for i := range 1000 {
		ratelimittest.MustAllow(t, l, "idle-"+strconv.Itoa(i), lim)
	}
	if n := l.Len(); n != 1000 {
		t.Fatalf("Len = %d, want 1000", n)
	}
	// After a window and a granule nothing is counted; new keys arriving
	// after the sweep interval sweep the idle ones out of each shard.
	c.Advance(2 * time.Minute)
	for i := range 100 {
		ratelimittest.MustAllow(t, l, "new-"+strconv.Itoa(i), lim)
	}
	if n := l.Len(); n != 100 {
		t.Fatalf("Len = %d after the idle keys expired, want 100", n)
	}
	if e := l.Evictions(); e != 0 {
		t.Fatalf("Evictions = %d, want 0 (idle drops are not evictions)", e)
	}
}

func TestMaxKeysBound(t *testing.T) {
	c := gatehouse.NewFakeClock(ratelimittest.Start)
	l := memory.New(memory.Config{Clock: c, Shards: 8, MaxKeys: 800})
	lim := ratelimit.Limit{Requests: 10, Per: time.Minute}
	for i := range 10_000 {
		ratelimittest.MustAllow(t, l, "k-"+strconv.Itoa(i), lim)
		if i%1000 == 0 {
			c.Advance(time.Second) // all keys stay live
		}
	}
	if n := l.Len(); n > 800 {
		t.Fatalf("Len = %d, want at most MaxKeys=800", n)
	}
	if e := l.Evictions(); e < 9000 {
		t.Fatalf("Evictions = %d, want about 9200", e)
	}
	// A key in use keeps its count despite churn around it only if it is
	// recently used; the most recent keys are still limited.
	for range 9 {
		ratelimittest.MustAllow(t, l, "k-9999", lim)
	}
	if d := ratelimittest.MustAllow(t, l, "k-9999", lim); d.Allowed {
		t.Fatalf("recent key lost its count: %+v", d)
	}
}

// TestAllowAllUnderEviction: with a shard full of live keys, the keys of
// one AllowAll call never end up sharing a counter.
func TestAllowAllUnderEviction(t *testing.T) {
	c := gatehouse.NewFakeClock(ratelimittest.Start)
	l := memory.New(memory.Config{Clock: c, Shards: 1, MaxKeys: 2})
	lim := ratelimit.Limit{Requests: 100, Per: time.Minute}
	for i := range 500 {
		rules := []ratelimit.Rule{{Key: "a-" + strconv.Itoa(i), Limit: lim}, {Key: "b-" + strconv.Itoa(i), Limit: lim}}
		d := ratelimittest.MustAllowAll(t, l, rules)
		if !d.Allowed || d.Remaining != 99 {
			t.Fatalf("call %d: got %+v, want two fresh counters", i, d)
		}
	}
}

// TestFloodOfNewKeysIntoFullShard: per-IP state under a flood of new
// addresses (IPv6 makes them free) stays within MaxKeys, and a shard full
// of live keys is not scanned whole for every new key: at most once per
// second, however many keys arrive.
func TestFloodOfNewKeysIntoFullShard(t *testing.T) {
	c := gatehouse.NewFakeClock(ratelimittest.Start)
	l := memory.New(memory.Config{Clock: c, Shards: 1, MaxKeys: 1000})
	lim := ratelimit.Limit{Requests: 10, Per: time.Minute}
	for i := range 1000 {
		ratelimittest.MustAllow(t, l, "ip:2001:db8::"+strconv.Itoa(i), lim)
	}
	before := l.Sweeps()
	for i := range 50_000 {
		ratelimittest.MustAllow(t, l, "ip:2001:db8:1::"+strconv.Itoa(i), lim)
		if i%10_000 == 0 {
			c.Advance(time.Second)
		}
		if n := l.Len(); n > 1000 {
			t.Fatalf("after %d new keys Len = %d, want at most 1000", i+1, n)
		}
	}
	if n := l.Sweeps() - before; n > 6 {
		t.Errorf("%d whole-shard sweeps for 50,000 new keys over 5 seconds, want at most one a second", n)
	}
}
