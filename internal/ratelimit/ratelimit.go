// Package ratelimit decides whether a request may proceed under a
// sliding-window request quota, and describes that decision in the standard
// RateLimit response headers. Backends live in subpackages named for their
// dependency (memory, redis); package service builds the configured one.
package ratelimit

import (
	"context"
	"errors"
	"time"
)

// Granules is how many equal sub-windows (granules) one window is divided
// into. Both backends count requests per granule and sum the granules that
// overlap the window, so they share one algorithm and one error bound:
//
//   - never over-admits: at any instant t, at most Limit.Requests requests
//     admitted under a key lie in the window (t-Per, t];
//   - may under-admit by at most one granule: a request is refused only if at
//     least Limit.Requests admitted requests lie in (t-Per-Per/Granules, t].
//
// With Per = 1m a granule is 937.5ms. 64 divides 10^6, so a window given in
// whole seconds has a granule that is a whole number of microseconds.
const Granules = 64

// Slots is the number of counters kept per key: the Granules granules of
// the window plus the partly expired granule at its trailing edge.
const Slots = Granules + 1

// MaxRules caps how many rules one AllowAll call may carry.
const MaxRules = 8

// MaxRequests is the largest Limit.Requests accepted.
const MaxRequests = 1 << 30

// ErrInvalidLimit is returned for a Limit that does not validate.
var ErrInvalidLimit = errors.New("invalid rate limit")

// Limit is a quota: Requests requests per sliding window of length Per.
// Per must be a whole number of seconds (the RateLimit header fields cannot
// express sub-second windows).
type Limit struct {
	Requests int           `json:"requests" yaml:"requests"`
	Per      time.Duration `json:"per" yaml:"per"`
}

// Rule applies one Limit to one key. Keys are opaque; callers make them
// unique per policy (for example "tier:free|api_key:k_123"), because a key
// names one counter and one counter follows one window length.
type Rule struct {
	Key   string
	Limit Limit
}

// Decision is the outcome of one admission check.
type Decision struct {
	// Allowed reports whether the request was admitted (and counted).
	Allowed bool
	// Limit is the quota of the deciding rule (Limit.Requests).
	Limit int
	// Remaining is the quota left in the current window after this request.
	Remaining int
	// Window is the deciding rule's window (Limit.Per).
	Window time.Duration
	// Reset is how long until quota is next restored: until the oldest
	// request still counted slides out of the window. Within Reset the
	// client can use no more than Remaining.
	Reset time.Duration
	// RetryAfter is zero when Allowed; otherwise how long until a request
	// would be admitted, assuming no other traffic.
	RetryAfter time.Duration
	// Rule is the index, in the rules passed to AllowAll, of the rule this
	// decision describes: the refusing rule with the longest RetryAfter, or
	// when admitted, the rule with the least Remaining (ties: the longest
	// Reset). Zero for Allow.
	Rule int
}

// Limiter admits or refuses requests. Implementations are safe for
// concurrent use.
//
// A refused request consumes no quota anywhere: AllowAll checks every rule
// and counts the request against all of them only when all admit it, as one
// atomic step (one shard-ordered critical section in memory, one Lua script
// in Redis). A separate check-then-consume would let concurrent requests
// slip between the two steps.
//
// Errors mean the backend could not decide (for example Redis is
// unreachable); they never mean "refused". Invalid limits return an error
// wrapping ErrInvalidLimit.
type Limiter interface {
	// Allow checks one rule and consumes one unit if it admits the request.
	Allow(ctx context.Context, key string, limit Limit) (Decision, error)
	// AllowAll checks up to MaxRules rules and consumes one unit from each
	// only when every rule admits the request.
	AllowAll(ctx context.Context, rules []Rule) (Decision, error)
}

// Validate reports whether l can be enforced and advertised.
func (l Limit) Validate() error {
	switch {
	case l.Requests < 1:
		return errors.Join(ErrInvalidLimit, errors.New("requests must be at least 1"))
	case l.Requests > MaxRequests:
		return errors.Join(ErrInvalidLimit, errors.New("requests must be at most 1073741824"))
	case l.Per < time.Second:
		return errors.Join(ErrInvalidLimit, errors.New("per must be at least 1s"))
	case l.Per%time.Second != 0:
		return errors.Join(ErrInvalidLimit, errors.New("per must be a whole number of seconds"))
	case l.Per > 366*24*time.Hour:
		return errors.Join(ErrInvalidLimit, errors.New("per must be at most 8784h"))
	}
	return nil
}

// GranuleMicros returns the length of one granule of l's window in
// microseconds. l must be valid.
func (l Limit) GranuleMicros() int64 {
	return l.Per.Microseconds() / Granules
}

// Outcome turns the counter state a backend found for one rule into a
// Decision. nowUS is the decision time in microseconds since the Unix epoch,
// used is the count in the window after this request was (or was not)
// counted, oldest is the granule index of the oldest granule with a non-zero
// count (or -1 if none) and allowed whether the request was admitted. Both
// backends call it, so their headers agree to the microsecond.
func Outcome(l Limit, nowUS int64, used int64, oldest int64, allowed bool) Decision {
	g := l.GranuleMicros()
	d := Decision{
		Allowed:   allowed,
		Limit:     l.Requests,
		Remaining: max(l.Requests-int(used), 0),
		Window:    l.Per,
	}
	if oldest < 0 {
		// Nothing counted (only when refused with a zero quota, which
		// Validate forbids); quota is whole now.
		return d
	}
	// Granule j is counted while the current granule is at most
	// j+Granules, so it stops counting at (j+Granules+1)*g.
	d.Reset = time.Duration((oldest+Granules+1)*g-nowUS) * time.Microsecond
	if !allowed {
		d.RetryAfter = d.Reset
	}
	return d
}

// Combine merges per-rule decisions into the decision for the request, as
// documented on Decision.Rule. ds must not be empty.
func Combine(ds []Decision) Decision {
	best := -1
	for i := range ds {
		if !ds[i].Allowed && (best < 0 || ds[best].Allowed || ds[i].RetryAfter > ds[best].RetryAfter) {
			best = i
		}
	}
	if best < 0 {
		best = 0
		for i := range ds {
			if ds[i].Remaining < ds[best].Remaining ||
				ds[i].Remaining == ds[best].Remaining && ds[i].Reset > ds[best].Reset {
				best = i
			}
		}
	}
	d := ds[best]
	d.Rule = best
	return d
}
