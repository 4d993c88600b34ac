package gateway

import (
	"context"
	"hash/maphash"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

// SourceIPFromContext returns the client address the gateway uses for the
// request carrying ctx (for rate limits, lockouts and audit), or "".
func SourceIPFromContext(ctx context.Context) string {
	if ex := exchangeFrom(ctx); ex != nil {
		return ex.sourceIP
	}
	return ""
}

// CountAuthFailure tells the gateway that the request carrying ctx failed
// to authenticate in one of its Endpoints (a wrong client secret at
// /oauth/token), so it counts toward the address's pre-authentication
// limit like a failed credential on a route.
func CountAuthFailure(ctx context.Context) {
	if ex := exchangeFrom(ctx); ex != nil {
		ex.authFailed = true
	}
}

// PreAuthConfig limits failures per source address, before credentials are
// looked up: each address has a bucket of Failures tokens refilling over
// Per; a failed authentication or an unknown route takes one, and an
// address with an empty bucket is answered 429 at once, whatever it sends.
// Failures while the bucket holds tokens are audited one by one; the
// refusals of an empty bucket are audited as one event per address per
// Per, with their count. At most Sources addresses are tracked (memory,
// per process: with N replicas an address gets N buckets). An IPv6
// address counts as its network (Config.IPv6Prefix, ratelimit.SourcePrefix):
// every address of one /64 shares one bucket.
type PreAuthConfig struct {
	Failures int // 0: no pre-authentication limit
	Per      time.Duration
	Sources  int // 0: 100,000
}

const preAuthShards = 32

// preAuth is the per-source failure state. Only addresses that failed are
// in it, so an allowed request costs one shard read-lock and a map miss.
type preAuth struct {
	burst  float64
	rate   float64 // tokens per nanosecond
	per    time.Duration
	seed   maphash.Seed
	v6bits int // the IPv6 prefix length sources are keyed by
	max    int // entries per shard
	shards [preAuthShards]preAuthShard
}

type preAuthShard struct {
	mu sync.RWMutex
	m  map[string]*preAuthEntry // by ratelimit.AppendSourceKey
	_  [40]byte                 // no false sharing between shards
}

type preAuthEntry struct {
	tokens float64
	at     time.Time // when tokens was computed
	// The aggregation window: refusals since since, not audited one by one.
	since   time.Time
	refused int
	ip      string // the last address that failed or was refused, for audit
}

// summary is one aggregated audit event to record.
type summary struct {
	ip          string
	from, until time.Time
	refused     int
}

func newPreAuth(cfg PreAuthConfig, ipv6Prefix int) *preAuth {
	if cfg.Failures <= 0 || cfg.Per <= 0 {
		return nil
	}
	if cfg.Sources <= 0 {
		cfg.Sources = 100_000
	}
	p := &preAuth{
		burst: float64(cfg.Failures), rate: float64(cfg.Failures) / float64(cfg.Per),
		per: cfg.Per, seed: maphash.MakeSeed(), v6bits: ipv6Prefix, max: max(cfg.Sources/preAuthShards, 1),
	}
	for i := range p.shards {
		p.shards[i].m = map[string]*preAuthEntry{}
	}
	return p
}

// key appends to buf the key ip is counted under (its address, or an
// IPv6 address's network: ratelimit.AppendSourceKey) and returns its
// shard. Lookups by string(k) do not allocate.
func (p *preAuth) key(buf []byte, ip string) ([]byte, *preAuthShard) {
	k := ratelimit.AppendSourceKey(buf, ip, p.v6bits)
	return k, &p.shards[maphash.Bytes(p.seed, k)%preAuthShards]
}

// level is e's token count at now.
func (p *preAuth) level(e *preAuthEntry, now time.Time) float64 {
	return min(p.burst, e.tokens+float64(now.Sub(e.at))*p.rate)
}

// blocked reports whether ip has spent its failures, and when it may come
// back. It is the only cost on the allowed path.
func (p *preAuth) blocked(ip string, now time.Time) (bool, time.Duration) {
	var buf [64]byte
	k, s := p.key(buf[:0], ip)
	s.mu.RLock()
	e := s.m[string(k)]
	var lv float64
	if e != nil {
		lv = p.level(e, now)
	}
	s.mu.RUnlock()
	if e == nil || lv >= 1 {
		return false, 0
	}
	return true, time.Duration(math.Ceil((1 - lv) / p.rate))
}

// refuse counts a refusal of ip for its aggregated event. It returns the
// event of a window that has ended, if any.
func (p *preAuth) refuse(ip string, now time.Time) (summary, bool) {
	var buf [64]byte
	k, s := p.key(buf[:0], ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[string(k)]
	if e == nil {
		// Evicted between blocked and refuse: track it again, empty.
		e = p.insert(s, string(k), now)
		e.tokens = 0
	}
	sum, ok := p.roll(e, now)
	e.ip = ip
	e.refused++
	return sum, ok
}

// fail takes a token from ip's bucket. It returns the event of a window
// that has ended, if any.
func (p *preAuth) fail(ip string, now time.Time) (summary, bool) {
	var buf [64]byte
	k, s := p.key(buf[:0], ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[string(k)]
	if e == nil {
		e = p.insert(s, string(k), now)
	}
	e.tokens, e.at = max(p.level(e, now)-1, 0), now
	sum, ok := p.roll(e, now)
	e.ip = ip
	return sum, ok
}

// roll starts a new window when e's has ended, returning the ended
// window's summary if it counted refusals. s.mu is held.
func (p *preAuth) roll(e *preAuthEntry, now time.Time) (summary, bool) {
	if e.since.IsZero() {
		e.since = now
		return summary{}, false
	}
	if now.Sub(e.since) < p.per {
		return summary{}, false
	}
	sum := summary{ip: e.ip, from: e.since, until: now, refused: e.refused}
	e.since, e.refused = now, 0
	return sum, sum.refused > 0
}

// insert adds a full-bucket entry for k, evicting to stay within the
// shard's bound. s.mu is held.
func (p *preAuth) insert(s *preAuthShard, k string, now time.Time) *preAuthEntry {
	if len(s.m) >= p.max {
		p.evict(s, now)
	}
	e := &preAuthEntry{tokens: p.burst, at: now}
	s.m[k] = e
	return e
}

// evict drops entries of a full shard: refilled ones with no pending
// refusals first, then ones not limited, then any (their pending counts
// are lost: a flood of addresses large enough to fill the table is itself
// in the log through the addresses that remain). s.mu is held.
func (p *preAuth) evict(s *preAuthShard, now time.Time) {
	target := p.max - max(p.max/8, 1)
	keep := [3]func(*preAuthEntry) bool{
		func(e *preAuthEntry) bool { return e.refused > 0 || p.level(e, now) < p.burst },
		func(e *preAuthEntry) bool { return e.refused > 0 || p.level(e, now) < 1 },
		func(*preAuthEntry) bool { return false },
	}
	for _, kept := range keep {
		for k, e := range s.m {
			if len(s.m) <= target {
				return
			}
			if !kept(e) {
				delete(s.m, k)
			}
		}
	}
}

// sweep returns the summaries of every window that has ended (all of them
// when final) and drops entries with nothing left to remember.
func (p *preAuth) sweep(now time.Time, final bool) []summary {
	var out []summary
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if e.refused > 0 && (final || now.Sub(e.since) >= p.per) {
				out = append(out, summary{ip: e.ip, from: e.since, until: now, refused: e.refused})
				e.since, e.refused = now, 0
			}
			if e.refused == 0 && p.level(e, now) >= p.burst {
				delete(s.m, k)
			}
		}
		s.mu.Unlock()
	}
	return out
}

// len is how many addresses are tracked.
func (p *preAuth) len() int {
	n := 0
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// errPreAuthLimited refuses an address that spent its failures.
func errPreAuthLimited(retry time.Duration) error {
	return &retryError{
		err:   gatehouse.Errorf(gatehouse.ERATELIMITED, "too many failed requests from this address; retry after %d seconds", max(ratelimit.CeilSeconds(retry), 1)),
		after: retry,
	}
}

// retryError is a client-safe error with a Retry-After.
type retryError struct {
	err   *gatehouse.Error
	after time.Duration
}

func (e *retryError) Error() string             { return e.err.Error() }
func (e *retryError) Unwrap() error             { return e.err }
func (e *retryError) RetryAfter() time.Duration { return e.after }

// preAuthFailure reports whether a request that failed with err counts
// against its address: a failed authentication, or no such route.
func preAuthFailure(ex *exchange, err error) bool {
	return ex.eventType == "authn.failure" || (ex.route == nil && gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND)
}

// recordSummary audits the refusals of one address over one window.
func (g *Gateway) recordSummary(ctx context.Context, s summary) {
	if g.cfg.Auditor == nil {
		return
	}
	e := gatehouse.Event{
		Time:    s.until.UTC(),
		Type:    "preauth.limited",
		Action:  "refuse",
		Outcome: gatehouse.OutcomeDenied,
		Actor:   gatehouse.Actor{Kind: string(gatehouse.KindAnonymous)},
		Reason:  "too many failed authentications or unknown routes from this address",
		Request: &gatehouse.RequestInfo{SourceIP: g.auditIP(s.ip), Status: 429},
		Details: map[string]any{"count": s.refused, "from": s.from.UTC().Format(time.RFC3339Nano), "until": s.until.UTC().Format(time.RFC3339Nano)},
	}
	if a, err := netip.ParseAddr(s.ip); err == nil && a.Unmap().Is6() {
		// The count is of the address's network; the address is the last one seen.
		if p, ok := ratelimit.SourcePrefix(s.ip, g.pre.v6bits); ok {
			e.Details["ipv6_prefix"] = p.Bits()
		}
	}
	if err := g.cfg.Auditor.Record(ctx, e); err != nil {
		g.log.ErrorContext(ctx, "audit record failed", "event", e.Type, "err", err)
	}
}

// Run records the aggregated pre-authentication events of ended windows
// every interval until ctx ends; FlushPreAuth records the rest.
func (g *Gateway) Run(ctx context.Context) {
	if g.pre == nil {
		return
	}
	t := time.NewTicker(min(g.pre.per, 10*time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, s := range g.pre.sweep(g.clock.Now(), false) {
				g.recordSummary(ctx, s)
			}
		}
	}
}

// preAuthApplies reports whether the request counts toward, and is held
// to, its address's limit. Health probes do not; nor does a forward-auth
// check from a peer in forward_auth.trusted_proxies whose address is the
// proxy's own (no trusted X-Forwarded-For named the client): its failures
// are many clients', and limiting the proxy would shut every one of them
// out. With forward_auth.trusted_proxies unset no caller is known to be the
// proxy, so every check is limited by its address like any request.
func (g *Gateway) preAuthApplies(r *http.Request, ex *exchange) bool {
	path := r.URL.Path
	if isHealthPath(path) {
		return false
	}
	if len(g.fwd.trusted) > 0 && isVerifyPath(path) {
		peer := sourceIP(r)
		if ex.sourceIP != peer {
			return true
		}
		a, err := netip.ParseAddr(peer)
		return err != nil || !g.fwd.trusted.contains(a)
	}
	return true
}

// isVerifyPath reports whether path is forward-auth's: /auth/verify, or
// below /auth/verify/ (Envoy appends the checked path).
func isVerifyPath(path string) bool {
	return path == "/auth/verify" || strings.HasPrefix(path, "/auth/verify/")
}

// preAuthCheck refuses a request from an address that has spent its
// failures, counting the refusal toward the address's aggregated event
// instead of auditing it alone.
func (g *Gateway) preAuthCheck(ctx context.Context, ex *exchange, rec *recorder) error {
	blocked, retry := g.pre.blocked(ex.sourceIP, ex.start)
	if !blocked {
		return nil
	}
	rec.noAudit = true
	if sum, ok := g.pre.refuse(ex.sourceIP, ex.start); ok {
		g.recordSummary(ctx, sum)
	}
	ex.outcome, ex.eventType = gatehouse.OutcomeDenied, "preauth.limited"
	return errPreAuthLimited(retry)
}

// FlushPreAuth records the aggregated events of every open window (at
// shutdown, so no count is lost).
func (g *Gateway) FlushPreAuth(ctx context.Context) {
	if g.pre == nil {
		return
	}
	for _, s := range g.pre.sweep(g.clock.Now(), true) {
		g.recordSummary(ctx, s)
	}
}
