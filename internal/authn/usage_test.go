package authn_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlite"
)

// countingStore counts every write of last-use times, per credential, and
// can be made to fail them.
type countingStore struct {
	store.Store
	mu      sync.Mutex
	batches int
	writes  map[string][]time.Time // id → the times written
	fail    bool
}

func (c *countingStore) RecordUses(ctx context.Context, uses []store.Use) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail {
		return errors.New("database away")
	}
	c.batches++
	for _, u := range uses {
		c.writes[u.ID] = append(c.writes[u.ID], u.At)
	}
	return c.Store.RecordUses(ctx, uses)
}

func (c *countingStore) written(id string) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.writes[id]...)
}

func mustUsageStack(t *testing.T, max int) (*countingStore, *authn.Usage, *authn.Keys, *authn.PATs, *gatehouse.FakeClock) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cs := &countingStore{Store: st, writes: map[string][]time.Time{}}
	clock := gatehouse.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	u := authn.NewUsage(authn.UsageConfig{Store: cs, Clock: clock, Max: max})
	keys, err := authn.NewKeys(authn.KeysConfig{Store: cs, Pepper: make([]byte, 32), Clock: clock, Usage: u})
	if err != nil {
		t.Fatal(err)
	}
	pats := authn.NewPATs(authn.KeysConfig{Store: cs, Pepper: make([]byte, 32), Clock: clock, Usage: u})
	return cs, u, keys, pats, clock
}

// TestUsageWritesAtMostOncePerMinute: 300 requests by each of two keys and
// a token, one second apart on a fake clock, flushed after every request
// (the worst case for writes), write each credential's last use once per
// minute: five times in five minutes, never twice within a minute, and
// never on the request path (Authenticate alone writes nothing).
func TestUsageWritesAtMostOncePerMinute(t *testing.T) {
	ctx := t.Context()
	cs, u, keys, pats, clock := mustUsageStack(t, 0)
	start := clock.Now()
	k1, t1, err := keys.Create(ctx, authn.NewKey{Name: "a", Scopes: []string{"s"}})
	if err != nil {
		t.Fatal(err)
	}
	k2, t2, err := keys.Create(ctx, authn.NewKey{Name: "b", Scopes: []string{"s"}})
	if err != nil {
		t.Fatal(err)
	}
	owner := &store.User{Username: "alice", Role: authn.RoleSecurity, Scopes: []string{"s"}, PasswordHash: "x", CreatedAt: start, PasswordChangedAt: start}
	if err := cs.CreateUser(ctx, owner); err != nil {
		t.Fatal(err)
	}
	pat, t3, err := pats.Create(ctx, owner, authn.NewPAT{Name: "p", Scopes: []string{"s"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		for _, tok := range []string{t1, t2} {
			if _, err := keys.Authenticate(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := pats.Authenticate(ctx, t3); err != nil {
			t.Fatal(err)
		}
		if i == 0 && cs.batches != 0 {
			t.Fatalf("Authenticate wrote to the store on the request path (%d batches)", cs.batches)
		}
		if err := u.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
	}
	for _, id := range []string{k1.ID, k2.ID, pat.ID} {
		w := cs.written(id)
		if len(w) != 5 {
			t.Errorf("%s: %d writes in 300 s of use, want 5 (one a minute): %v", id, len(w), w)
		}
		for i := 1; i < len(w); i++ {
			if d := w[i].Sub(w[i-1]); d < time.Minute {
				t.Errorf("%s: two writes %s apart", id, d)
			}
		}
	}
	if cs.batches > 5 {
		t.Errorf("%d batches, want one per minute at most (5)", cs.batches)
	}
	// The store holds the last noted use: the first of the last minute.
	got, err := cs.GetKey(ctx, k1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(240 * time.Second); !got.LastUsedAt.Equal(want) {
		t.Errorf("key last_used_at = %v, want %v", got.LastUsedAt, want)
	}
	gp, _ := cs.GetPAT(ctx, pat.ID)
	if want := start.Add(240 * time.Second); !gp.LastUsedAt.Equal(want) {
		t.Errorf("token last_used_at = %v, want %v", gp.LastUsedAt, want)
	}
}

// TestUsageBoundedAndRetried: the in-memory map holds at most Max
// credentials (a flood of valid credentials drops uses, counted, instead
// of growing), and a failed write keeps the uses for the next flush.
func TestUsageBoundedAndRetried(t *testing.T) {
	ctx := t.Context()
	cs, u, keys, _, clock := mustUsageStack(t, 2)
	var toks []string
	var ids []string
	for _, n := range []string{"a", "b", "c"} {
		k, tok, err := keys.Create(ctx, authn.NewKey{Name: n, Scopes: []string{"s"}})
		if err != nil {
			t.Fatal(err)
		}
		toks, ids = append(toks, tok), append(ids, k.ID)
	}
	for _, tok := range toks {
		if _, err := keys.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if u.Dropped() != 1 {
		t.Errorf("Dropped = %d, want 1 (Max 2, three credentials)", u.Dropped())
	}
	cs.fail = true
	if err := u.Flush(ctx); err == nil {
		t.Fatal("Flush with the store failing: no error")
	}
	cs.fail = false
	clock.Advance(2 * time.Minute)
	if err := u.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids[:2] {
		if w := cs.written(id); len(w) != 1 {
			t.Errorf("key %d: %d writes after a failed and a good flush, want 1", i, len(w))
		}
	}
	// Forgotten after a quiet minute: room again for the third.
	if _, err := keys.Authenticate(ctx, toks[2]); err != nil {
		t.Fatal(err)
	}
	if err := u.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if w := cs.written(ids[2]); len(w) != 1 {
		t.Errorf("third key after the map emptied: %d writes, want 1", len(w))
	}
}

// TestUsageTouchAllocs: noting a use already noted this minute (every
// request but one a minute) does not allocate.
func TestUsageTouchAllocs(t *testing.T) {
	u := authn.NewUsage(authn.UsageConfig{})
	now := time.Now()
	u.Touch(store.CredentialKey, "key_abc", now)
	if n := testing.AllocsPerRun(1000, func() { u.Touch(store.CredentialKey, "key_abc", now) }); n != 0 {
		t.Errorf("Touch allocates %.1f times per call", n)
	}
}

func BenchmarkUsageTouch(b *testing.B) {
	u := authn.NewUsage(authn.UsageConfig{})
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u.Touch(store.CredentialKey, "key_abc", now)
		}
	})
}
