// Package ratelimittest is the contract every ratelimit backend must meet:
// a table of behaviours run against each implementation with a fake clock.
package ratelimittest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

// Start is the fake clock's start: a whole minute, so one-minute windows
// start on a granule boundary.
var Start = time.Unix(1_800_000_000, 0).UTC()

// Factory returns a fresh Limiter reading time from clock.
type Factory func(tb testing.TB, clock gatehouse.Clock) ratelimit.Limiter

// UniqueKey returns a key no other test run uses, so shared backends such
// as Redis never see leftovers.
func UniqueKey(tb testing.TB, name string) string {
	tb.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	return tb.Name() + "/" + name + "/" + hex.EncodeToString(b[:])
}

var (
	perMinute5  = ratelimit.Limit{Requests: 5, Per: time.Minute}
	perMinute2  = ratelimit.Limit{Requests: 2, Per: time.Minute}
	perMinute10 = ratelimit.Limit{Requests: 10, Per: time.Minute}
	granule     = time.Minute / ratelimit.Granules
)

// Run runs the contract suite against the backend newLimiter builds.
func Run(t *testing.T, newLimiter Factory) {
	ctx := context.Background()
	cases := []struct {
		name string
		fn   func(t *testing.T, l ratelimit.Limiter, c *gatehouse.FakeClock)
	}{
		{"LimitReached", func(t *testing.T, l ratelimit.Limiter, c *gatehouse.FakeClock) {
			k := UniqueKey(t, "k")
			for i := range 5 {
				d := MustAllow(t, l, k, perMinute5)
				if !d.Allowed || d.Remaining != 4-i || d.Limit != 5 || d.Window != time.Minute || d.RetryAfter != 0 {
					t.Fatalf("request %d: got %+v", i, d)
				}
			}
			d := MustAllow(t, l, k, perMinute5)
			if d.Allowed || d.Remaining != 0 {
				t.Fatalf("6th request: got %+v, want refused with 0 remaining", d)
			}
			// Everything was counted at Start, so the quota returns when
			// that granule leaves the window: one window and one granule.
			if want := time.Minute + granule; d.RetryAfter != want || d.Reset != want {
				t.Fatalf("RetryAfter=%v Reset=%v, want both %v", d.RetryAfter, d.Reset, want)
			}
		}},
		{"WindowSlides", func(t *testing.T, l ratelimit.Limiter, c *gatehouse.FakeClock) {
			k := UniqueKey(t, "k")
			for range 3 {
				MustAllow(t, l, k, perMinute5)
			}
			c.Advance(30 * time.Second)
			for range 2 {
				if d := MustAllow(t, l, k, perMinute5); !d.Allowed {
					t.Fatalf("at +30s: refused %+v", d)
				}
			}
			if d := MustAllow(t, l, k, perMinute5); d.Allowed {
				t.Fatalf("at +30s: 6th admitted %+v", d)
			}
			// Exact window (t-60s, t] still holds the first three until
			// +60s; the granule scheme holds them one granule longer.
			c.Advance(30*time.Second - time.Microsecond)
			if d := MustAllow(t, l, k, perMinute5); d.Allowed {
				t.Fatalf("at +60s-1µs: admitted %+v", d)
			}
			c.Advance(time.Microsecond)
			d := MustAllow(t, l, k, perMinute5)
			if d.Allowed || d.RetryAfter != granule {
				t.Fatalf("at +60s: got %+v, want refused for one granule (%v)", d, granule)
			}
			c.Advance(d.RetryAfter)
			for i := range 3 {
				if d := MustAllow(t, l, k, perMinute5); !d.Allowed {
					t.Fatalf("after slide, request %d refused: %+v", i, d)
				}
			}
			if d := MustAllow(t, l, k, perMinute5); d.Allowed {
				t.Fatalf("after slide, 4th admitted: %+v", d)
			}
		}},
		{"KeysIndependent", func(t *testing.T, l ratelimit.Limiter, c *gatehouse.FakeClock) {
			a, b := UniqueKey(t, "a"), UniqueKey(t, "b")
			for range 2 {
				MustAllow(t, l, a, perMinute2)
			}
			if d := MustAllow(t, l, a, perMinute2); d.Allowed {
				t.Fatalf("a: 3rd admitted %+v", d)
			}
			if d := MustAllow(t, l, b, perMinute2); !d.Allowed || d.Remaining != 1 {
				t.Fatalf("b: got %+v, want admitted with 1 remaining", d)
			}
		}},
		{"RefusedConsumesNothing", func(t *testing.T, l ratelimit.Limiter, c *gatehouse.FakeClock) {
			small, big := UniqueKey(t, "small"), UniqueKey(t, "big")
			rules := []ratelimit.Rule{{Key: big, Limit: perMinute10}, {Key: small, Limit: perMinute2}}
			for i := range 2 {
				d := MustAllowAll(t, l, rules)
				if !d.Allowed || d.Rule != 1 || d.Remaining != 1-i {
					t.Fatalf("request %d: got %+v, want admitted, decided by rule 1", i, d)
				}
			}
			for range 3 {
				d := MustAllowAll(t, l, rules)
				if d.Allowed || d.Rule != 1 || d.Limit != 2 {
					t.Fatalf("got %+v, want refused by rule 1", d)
				}
			}
			// big saw two admitted requests, not five.
			if d := MustAllow(t, l, big, perMinute10); !d.Allowed || d.Remaining != 7 {
				t.Fatalf("big: got %+v, want 7 remaining", d)
			}
		}},
		{"AllowAllMixedWindows", func(t *testing.T, l ratelimit.Limiter, c *gatehouse.FakeClock) {
			sec, hour := UniqueKey(t, "sec"), UniqueKey(t, "hour")
			rules := []ratelimit.Rule{
				{Key: sec, Limit: ratelimit.Limit{Requests: 1, Per: time.Second}},
				{Key: hour, Limit: ratelimit.Limit{Requests: 4, Per: time.Hour}},
			}
			for i := range 3 {
				if d := MustAllowAll(t, l, rules); !d.Allowed {
					t.Fatalf("request %d refused: %+v", i, d)
				}
				if d := MustAllowAll(t, l, rules); d.Allowed || d.Rule != 0 || d.RetryAfter <= 0 || d.RetryAfter > time.Second+time.Second/ratelimit.Granules {
					t.Fatalf("request %d bis: got %+v, want refused by the per-second rule", i, d)
				}
				c.Advance(2 * time.Second)
			}
			if d := MustAllowAll(t, l, rules); !d.Allowed || d.Rule != 1 || d.Remaining != 0 {
				t.Fatalf("4th: got %+v, want admitted, hourly rule exhausted", d)
			}
			c.Advance(2 * time.Second)
			d := MustAllowAll(t, l, rules)
			if d.Allowed || d.Rule != 1 || d.RetryAfter < 59*time.Minute {
				t.Fatalf("got %+v, want refused by the hourly rule for about an hour", d)
			}
		}},
		{"ResetAndRetryAfter", func(t *testing.T, l ratelimit.Limiter, c *gatehouse.FakeClock) {
			k := UniqueKey(t, "k")
			c.Advance(123456 * time.Microsecond) // not on a granule boundary
			d := MustAllow(t, l, k, perMinute2)
			if d.Reset <= time.Minute || d.Reset > time.Minute+granule || d.RetryAfter != 0 {
				t.Fatalf("fresh key: got %+v, want Reset in (1m, 1m+granule]", d)
			}
			c.Advance(10 * time.Second)
			MustAllow(t, l, k, perMinute2)
			d = MustAllow(t, l, k, perMinute2)
			if d.Allowed || d.RetryAfter <= 50*time.Second || d.RetryAfter > 50*time.Second+granule {
				t.Fatalf("refused: got %+v, want RetryAfter in (50s, 50s+granule]", d)
			}
			c.Advance(d.RetryAfter - time.Microsecond)
			if d2 := MustAllow(t, l, k, perMinute2); d2.Allowed {
				t.Fatalf("1µs before RetryAfter: admitted %+v", d2)
			}
			c.Advance(time.Microsecond)
			if d2 := MustAllow(t, l, k, perMinute2); !d2.Allowed {
				t.Fatalf("at RetryAfter: refused %+v", d2)
			}
		}},
		{"InvalidLimit", func(t *testing.T, l ratelimit.Limiter, c *gatehouse.FakeClock) {
			for _, lim := range []ratelimit.Limit{{}, {Requests: 1, Per: 1500 * time.Millisecond}, {Requests: -1, Per: time.Minute}} {
				if _, err := l.Allow(ctx, UniqueKey(t, "k"), lim); !errors.Is(err, ratelimit.ErrInvalidLimit) {
					t.Errorf("limit %+v: err = %v, want ErrInvalidLimit", lim, err)
				}
			}
			if _, err := l.AllowAll(ctx, nil); err == nil {
				t.Error("AllowAll with no rules: no error")
			}
		}},
		{"ConcurrentExact", func(t *testing.T, l ratelimit.Limiter, c *gatehouse.FakeClock) {
			k := UniqueKey(t, "k")
			lim := ratelimit.Limit{Requests: 100, Per: time.Minute}
			var admitted atomic.Int64
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					for range 20 {
						d, err := l.Allow(ctx, k, lim)
						if err != nil {
							t.Error(err)
							return
						}
						if d.Allowed {
							admitted.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if got := admitted.Load(); got != 100 {
				t.Fatalf("admitted %d of 320 concurrent requests, want exactly 100", got)
			}
		}},
		{"WindowChangeResets", func(t *testing.T, l ratelimit.Limiter, c *gatehouse.FakeClock) {
			// A key reused with another window length starts over rather
			// than mixing granules of two sizes.
			k := UniqueKey(t, "k")
			for range 3 {
				MustAllow(t, l, k, ratelimit.Limit{Requests: 3, Per: time.Minute})
			}
			if d := MustAllow(t, l, k, ratelimit.Limit{Requests: 3, Per: time.Hour}); !d.Allowed || d.Remaining != 2 {
				t.Fatalf("got %+v, want a fresh hourly window", d)
			}
		}},
		{"ErrorBound", func(t *testing.T, l ratelimit.Limiter, c *gatehouse.FakeClock) {
			CheckErrorBound(t, l, c, UniqueKey(t, "k"), 1500)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := gatehouse.NewFakeClock(Start)
			tc.fn(t, newLimiter(t, c), c)
		})
	}
}

// CheckErrorBound drives n requests with random gaps through one key and
// checks every decision against the documented bound: an admitted request
// leaves at most Requests admitted in (t-Per, t]; a refused one sees at
// least Requests admitted in (t-Per-granule, t].
func CheckErrorBound(t *testing.T, l ratelimit.Limiter, c *gatehouse.FakeClock, key string, n int) {
	t.Helper()
	lim := ratelimit.Limit{Requests: 20, Per: 10 * time.Second}
	g := lim.Per / ratelimit.Granules
	rng := mrand.New(mrand.NewPCG(1, 2)) // #nosec G404 -- a seeded test sequence, repeatable on purpose
	var admitted []time.Time
	countSince := func(from, now time.Time) int { // admitted in (from, now]
		k := 0
		for _, a := range admitted {
			if a.After(from) && !a.After(now) {
				k++
			}
		}
		return k
	}
	refused := 0
	for i := range n {
		// Bursts and lulls: mostly short gaps, sometimes long ones.
		gap := time.Duration(rng.Int64N(int64(200 * time.Millisecond)))
		if rng.IntN(20) == 0 {
			gap = time.Duration(rng.Int64N(int64(8 * time.Second)))
		}
		c.Advance(gap.Truncate(time.Microsecond))
		now := c.Now()
		d := MustAllow(t, l, key, lim)
		if d.Allowed {
			admitted = append(admitted, now)
			if k := countSince(now.Add(-lim.Per), now); k > lim.Requests {
				t.Fatalf("request %d at %v: %d admitted in the last window, limit %d", i, now.Sub(Start), k, lim.Requests)
			}
			// The counted span starts at the granule boundary at or
			// before now-Per.
			from := time.UnixMicro(now.Add(-lim.Per).UnixMicro() / g.Microseconds() * g.Microseconds())
			if want := lim.Requests - countSince(from.Add(-time.Microsecond), now); d.Remaining != want {
				t.Fatalf("request %d: Remaining=%d, want %d", i, d.Remaining, want)
			}
		} else {
			refused++
			if k := countSince(now.Add(-lim.Per-g), now); k < lim.Requests {
				t.Fatalf("request %d at %v refused with only %d admitted in window+granule", i, now.Sub(Start), k)
			}
		}
	}
	if refused == 0 || len(admitted) == 0 {
		t.Fatalf("traffic did not exercise the limit: %d admitted, %d refused", len(admitted), refused)
	}
}

// MustAllow calls l.Allow and fails the test on error.
func MustAllow(tb testing.TB, l ratelimit.Limiter, key string, lim ratelimit.Limit) ratelimit.Decision {
	tb.Helper()
	d, err := l.Allow(context.Background(), key, lim)
	if err != nil {
		tb.Fatalf("Allow(%q): %v", key, err)
	}
	return d
}

// MustAllowAll calls l.AllowAll and fails the test on error.
func MustAllowAll(tb testing.TB, l ratelimit.Limiter, rules []ratelimit.Rule) ratelimit.Decision {
	tb.Helper()
	d, err := l.AllowAll(context.Background(), rules)
	if err != nil {
		tb.Fatalf("AllowAll: %v", err)
	}
	return d
}
