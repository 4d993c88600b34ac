// Package memory is the in-process ratelimit backend: exact granule counters
// per key in a sharded map, for a single gateway instance or as the local
// fallback when Redis is unreachable.
package memory

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

// Defaults for Config.
const (
	DefaultShards  = 256
	DefaultMaxKeys = 1 << 20
	// sweepEvery is how often, at most, a shard looks for idle keys when a
	// new key arrives.
	sweepEvery = 30 * time.Second
	// fullSweepEvery is how often, at most, a full shard is swept before
	// evicting: a flood of new keys into a shard full of live ones must not
	// cost a scan of the whole shard per key.
	fullSweepEvery = time.Second
	// evictSamples is how many entries are sampled to pick an eviction
	// victim when a shard is full of live keys.
	evictSamples = 8
)

// Config tunes a memory Limiter. The zero value is usable.
type Config struct {
	// Clock reads the time; nil means the system clock.
	Clock gatehouse.Clock
	// Shards is the number of independently locked shards, rounded up to a
	// power of two; 0 means DefaultShards.
	Shards int
	// MaxKeys bounds how many keys are tracked (about 300 bytes each);
	// 0 means DefaultMaxKeys. Keys idle for a whole window are dropped
	// first; beyond that the least recently used of a small sample is
	// evicted, which forgets its count (fail-open for that key).
	MaxKeys int
}

// Limiter is the memory backend. It is safe for concurrent use. Keys are
// identified by a 64-bit seeded hash (maphash, random per process): two keys
// share a counter only on a hash collision, about 1 in 10^7 for a million
// live keys, and an outsider cannot aim for one.
type Limiter struct {
	clock  gatehouse.Clock
	seed   maphash.Seed
	mask   uint64
	shards []shard
}

var _ ratelimit.Limiter = (*Limiter)(nil)

type shard struct {
	mu        sync.Mutex
	m         map[uint64]*window
	free      []*window
	max       int
	nextSweep int64 // µs
	lastSweep int64 // µs
	evictions uint64
	sweeps    uint64
	_         [48]byte // 128 bytes per shard: no false sharing between shards
}

// window holds the granule counters of one key.
type window struct {
	gran  int64 // granule length in µs; the counters are reset when it changes
	head  int64 // index of the newest granule the ring holds
	total int64 // sum of slots
	first int64 // index of the oldest non-zero granule; valid when total > 0
	slots [ratelimit.Slots]uint32
}

// New returns a memory Limiter.
func New(cfg Config) *Limiter {
	if cfg.Clock == nil {
		cfg.Clock = gatehouse.SystemClock{}
	}
	n := cfg.Shards
	if n <= 0 {
		n = DefaultShards
	}
	p := 1
	for p < n {
		p <<= 1
	}
	maxKeys := cfg.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	per := max(maxKeys/p, 1)
	l := &Limiter{clock: cfg.Clock, seed: maphash.MakeSeed(), mask: uint64(p - 1), shards: make([]shard, p)}
	for i := range l.shards {
		l.shards[i].m = make(map[uint64]*window)
		l.shards[i].max = per
	}
	return l
}

// Allow implements ratelimit.Limiter.
func (l *Limiter) Allow(_ context.Context, key string, limit ratelimit.Limit) (ratelimit.Decision, error) {
	if err := limit.Validate(); err != nil {
		return ratelimit.Decision{}, fmt.Errorf("memory ratelimit: %w", err)
	}
	now := l.clock.Now().UnixMicro()
	h := maphash.String(l.seed, key)
	s := &l.shards[h&l.mask]
	g := limit.GranuleMicros()
	b := now / g
	s.mu.Lock()
	w := s.get(h, now)
	used := w.advance(g, b)
	ok := used < int64(limit.Requests)
	if ok {
		w.add() // counts in granule b, or head if the clock stepped back
		used++
	}
	oldest := w.oldest()
	s.mu.Unlock()
	return ratelimit.Outcome(limit, now, used, oldest, ok), nil
}

// AllowAll implements ratelimit.Limiter. It locks the shards of all rules in
// ascending order, so it is atomic with respect to every other call.
func (l *Limiter) AllowAll(_ context.Context, rules []ratelimit.Rule) (ratelimit.Decision, error) {
	n := len(rules)
	if n == 0 || n > ratelimit.MaxRules {
		return ratelimit.Decision{}, fmt.Errorf("memory ratelimit: %d rules, want 1 to %d", n, ratelimit.MaxRules)
	}
	var (
		hs    [ratelimit.MaxRules]uint64
		order [ratelimit.MaxRules]uint64 // distinct shard indexes, sorted
		ws    [ratelimit.MaxRules]*window
		used  [ratelimit.MaxRules]int64
		ds    [ratelimit.MaxRules]ratelimit.Decision
		nsh   int
	)
	for i := range rules {
		if err := rules[i].Limit.Validate(); err != nil {
			return ratelimit.Decision{}, fmt.Errorf("memory ratelimit: rule %d: %w", i, err)
		}
		hs[i] = maphash.String(l.seed, rules[i].Key)
		idx := hs[i] & l.mask
		j := 0
		for j < nsh && order[j] < idx {
			j++
		}
		if j < nsh && order[j] == idx {
			continue
		}
		copy(order[j+1:nsh+1], order[j:nsh])
		order[j] = idx
		nsh++
	}
	now := l.clock.Now().UnixMicro()
	for i := 0; i < nsh; i++ {
		l.shards[order[i]].mu.Lock()
	}
	all := true
	for i := range rules {
		s := &l.shards[hs[i]&l.mask]
		w := s.get(hs[i], now)
		g := rules[i].Limit.GranuleMicros()
		used[i] = w.advance(g, now/g)
		ws[i] = w
		if used[i] >= int64(rules[i].Limit.Requests) {
			all = false
		}
	}
	for i := range rules {
		ok := used[i] < int64(rules[i].Limit.Requests)
		if all {
			// The same key may appear twice; each occurrence counts, as
			// two Allow calls would.
			ws[i].add()
			used[i] = ws[i].total
		}
		ds[i] = ratelimit.Outcome(rules[i].Limit, now, used[i], ws[i].oldest(), ok)
	}
	for i := nsh - 1; i >= 0; i-- {
		l.shards[order[i]].mu.Unlock()
	}
	return ratelimit.Combine(ds[:n]), nil
}

// Len returns the number of keys currently tracked.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Evictions returns how many live keys were evicted because the limiter was
// full. Idle keys dropped by the sweep are not counted.
func (l *Limiter) Evictions() uint64 {
	var n uint64
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += s.evictions
		s.mu.Unlock()
	}
	return n
}

// Sweeps returns how many times a shard was scanned for idle keys.
func (l *Limiter) Sweeps() uint64 {
	var n uint64
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += s.sweeps
		s.mu.Unlock()
	}
	return n
}

// get returns the window for h, creating it if needed. s.mu must be held.
func (s *shard) get(h uint64, now int64) *window {
	if w := s.m[h]; w != nil {
		return w
	}
	if now >= s.nextSweep || (len(s.m) >= s.max && now-s.lastSweep >= fullSweepEvery.Microseconds()) {
		s.sweep(now)
	}
	if len(s.m) >= s.max {
		s.evict()
	}
	var w *window
	if k := len(s.free); k > 0 {
		w = s.free[k-1]
		s.free = s.free[:k-1]
		*w = window{}
	} else {
		w = new(window)
	}
	s.m[h] = w
	return w
}

// sweep drops windows with nothing left in them. s.mu must be held.
func (s *shard) sweep(now int64) {
	s.nextSweep, s.lastSweep = now+sweepEvery.Microseconds(), now
	s.sweeps++
	for h, w := range s.m {
		if w.gran == 0 || now/w.gran-w.head > ratelimit.Granules {
			delete(s.m, h)
			s.recycle(w)
		}
	}
}

// evict drops the least recently used of a few entries. s.mu must be held.
func (s *shard) evict() {
	var (
		victim uint64
		vw     *window
		n      int
	)
	for h, w := range s.m { // map iteration order is randomised
		if vw == nil || w.head*w.gran < vw.head*vw.gran {
			victim, vw = h, w
		}
		if n++; n == evictSamples {
			break
		}
	}
	if vw != nil {
		// Not recycled: an AllowAll call may still hold the victim for an
		// earlier rule, and must not find it reused for a later one.
		delete(s.m, victim)
		s.evictions++
	}
}

func (s *shard) recycle(w *window) {
	if len(s.free) < 64 {
		s.free = append(s.free, w)
	}
}

// advance moves the ring to granule b of length g and returns the count in
// the window, which is the granules b-Granules..b.
func (w *window) advance(g, b int64) int64 {
	if w.gran != g {
		*w = window{gran: g, head: b}
		return 0
	}
	if b <= w.head {
		// Same granule, or the clock stepped back: count in the newest.
		return w.total
	}
	if b-w.head >= ratelimit.Slots {
		w.slots = [ratelimit.Slots]uint32{}
		w.total = 0
	} else {
		for j := w.head + 1; j <= b; j++ {
			i := j % ratelimit.Slots
			w.total -= int64(w.slots[i])
			w.slots[i] = 0
		}
	}
	w.head = b
	if w.total > 0 && w.first < b-ratelimit.Granules {
		// The oldest counted granule expired: find the next one. This
		// runs once per expiry of the oldest granule, not per decision.
		for j := b - ratelimit.Granules; j <= b; j++ {
			if w.slots[j%ratelimit.Slots] != 0 {
				w.first = j
				break
			}
		}
	}
	return w.total
}

// add counts one request in the newest granule.
func (w *window) add() {
	if w.total == 0 {
		w.first = w.head
	}
	w.slots[w.head%ratelimit.Slots]++
	w.total++
}

// oldest returns the index of the oldest granule with a non-zero count, or
// -1 when the window is empty.
func (w *window) oldest() int64 {
	if w.total == 0 {
		return -1
	}
	return w.first
}
