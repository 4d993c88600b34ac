package authn

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Usage defaults.
const (
	// DefaultUsageInterval is how often a credential's last use is
	// recorded at most, and how often pending uses are written.
	DefaultUsageInterval = time.Minute
	// DefaultUsageMax bounds the credentials whose use is remembered
	// between writes; uses beyond it are dropped (and counted).
	DefaultUsageMax = 100_000
)

const usageShards = 16

// UsageConfig configures a Usage recorder.
type UsageConfig struct {
	Store    store.Store
	Clock    gatehouse.Clock
	Logger   *slog.Logger
	Interval time.Duration // 0: DefaultUsageInterval
	Max      int           // 0: DefaultUsageMax
}

// Usage records when keys, clients and personal access tokens were last
// used, off the request path: Touch notes a use in memory (at most once
// per Interval per credential), and Flush — run every Interval by Run —
// writes the pending uses to the store in one batch. It never writes to
// the store on the request path. It is safe for concurrent use; a nil
// *Usage records nothing.
type Usage struct {
	store    store.Store
	clock    gatehouse.Clock
	log      *slog.Logger
	interval time.Duration
	max      int64
	size     atomic.Int64 // entries across shards
	dropped  atomic.Int64
	shards   [usageShards]usageShard
}

type usageShard struct {
	mu sync.Mutex
	// noted is the last use noted per credential id (written or pending);
	// a use within interval of it is not noted again.
	noted   map[string]time.Time
	pending map[string]store.Use
}

// NewUsage returns a recorder.
func NewUsage(cfg UsageConfig) *Usage {
	if cfg.Clock == nil {
		cfg.Clock = gatehouse.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultUsageInterval
	}
	if cfg.Max <= 0 {
		cfg.Max = DefaultUsageMax
	}
	u := &Usage{store: cfg.Store, clock: cfg.Clock, log: cfg.Logger.WithGroup("usage"), interval: cfg.Interval, max: int64(cfg.Max)}
	for i := range u.shards {
		u.shards[i].noted = map[string]time.Time{}
		u.shards[i].pending = map[string]store.Use{}
	}
	return u
}

func (u *Usage) shard(id string) *usageShard {
	if id == "" {
		return &u.shards[0]
	}
	return &u.shards[id[len(id)-1]%usageShards]
}

// Touch notes that the credential id (of kind) was used at now. It costs a
// map lookup under a shard lock, and allocates only when it notes a use
// (once per interval per credential).
func (u *Usage) Touch(kind store.CredentialKind, id string, now time.Time) {
	if u == nil {
		return
	}
	s := u.shard(id)
	s.mu.Lock()
	last, ok := s.noted[id]
	if ok && now.Sub(last) < u.interval {
		s.mu.Unlock()
		return
	}
	if !ok && u.size.Load() >= u.max {
		s.mu.Unlock()
		u.dropped.Add(1)
		return
	}
	if !ok {
		u.size.Add(1)
	}
	s.noted[id] = now
	s.pending[id] = store.Use{Kind: kind, ID: id, At: now.UTC()}
	s.mu.Unlock()
}

// Last returns the latest use of id noted but perhaps not yet written
// (zero if none), for listings.
func (u *Usage) Last(id string) time.Time {
	if u == nil {
		return time.Time{}
	}
	s := u.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.noted[id].UTC()
}

// Dropped counts uses not noted because Max credentials were pending.
func (u *Usage) Dropped() int64 { return u.dropped.Load() }

// Flush writes every pending use in one batch, and forgets credentials
// whose last use is older than the interval (their next use is noted at
// once). A failed write keeps the uses pending for the next Flush.
func (u *Usage) Flush(ctx context.Context) error {
	if u == nil {
		return nil
	}
	now := u.clock.Now()
	var batch []store.Use
	for i := range u.shards {
		s := &u.shards[i]
		s.mu.Lock()
		for id, use := range s.pending {
			batch = append(batch, use)
			delete(s.pending, id)
		}
		for id, t := range s.noted {
			if now.Sub(t) >= u.interval {
				if _, waiting := s.pending[id]; !waiting {
					delete(s.noted, id)
					u.size.Add(-1)
				}
			}
		}
		s.mu.Unlock()
	}
	if len(batch) == 0 {
		return nil
	}
	if err := u.store.RecordUses(ctx, batch); err != nil {
		for _, use := range batch {
			s := u.shard(use.ID)
			s.mu.Lock()
			if _, newer := s.pending[use.ID]; !newer {
				s.pending[use.ID] = use
				if _, ok := s.noted[use.ID]; !ok {
					s.noted[use.ID] = use.At
					u.size.Add(1)
				}
			}
			s.mu.Unlock()
		}
		return fmt.Errorf("record last use of %d credentials: %w", len(batch), err)
	}
	return nil
}

// Run flushes every interval until ctx ends, then once more.
func (u *Usage) Run(ctx context.Context) {
	if u == nil {
		return
	}
	t := time.NewTicker(u.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := u.Flush(fctx); err != nil {
				u.log.Warn("final flush of last-use times failed", "err", err)
			}
			cancel()
			return
		case <-t.C:
			if err := u.Flush(ctx); err != nil {
				u.log.Warn("flush of last-use times failed; retrying at the next interval", "err", err)
			}
		}
	}
}
