package authn_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/store/sqlite"
)

// wire is an Invalidator that delivers to another replica's Invalidations,
// or drops everything while cut.
type wire struct {
	to  *authn.Invalidations
	cut bool
	got []authn.Invalidation
}

func (w *wire) Publish(ctx context.Context, inv authn.Invalidation) error {
	w.got = append(w.got, inv)
	if w.cut {
		return nil
	}
	return w.to.Apply(ctx, inv)
}

// twoReplicas returns key services A and B on one store, each with its own
// clock and cache; A's changes reach B through w.
func twoReplicas(t *testing.T) (a, b *authn.Keys, bInv *authn.Invalidations, w *wire, clock *gatehouse.FakeClock) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock = gatehouse.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	w = &wire{}
	if a, err = authn.NewKeys(authn.KeysConfig{Store: st, Pepper: make([]byte, 32), Clock: clock, Invalidator: w}); err != nil {
		t.Fatal(err)
	}
	if b, err = authn.NewKeys(authn.KeysConfig{Store: st, Pepper: make([]byte, 32), Clock: clock}); err != nil {
		t.Fatal(err)
	}
	bInv = &authn.Invalidations{Keys: b}
	w.to = bInv
	return a, b, bInv, w, clock
}

func TestInvalidations(t *testing.T) {
	ctx := context.Background()

	t.Run("connected: a revocation on A is refused on B at once", func(t *testing.T) {
		a, b, _, w, _ := twoReplicas(t)
		key, tok, err := a.Create(ctx, authn.NewKey{Name: "k", Scopes: []string{"s"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Authenticate(ctx, tok); err != nil {
			t.Fatal(err) // cached on B
		}
		if _, err := a.Revoke(ctx, key.ID); err != nil {
			t.Fatal(err)
		}
		if len(w.got) != 1 || w.got[0] != (authn.Invalidation{Kind: authn.InvalidateKey, ID: key.ID}) {
			t.Fatalf("published %+v", w.got)
		}
		if _, err := b.Authenticate(ctx, tok); err != authn.ErrRevoked {
			t.Fatalf("B after the revocation on A: %v", err)
		}
	})

	t.Run("disconnected: B re-validates within 5 s", func(t *testing.T) {
		a, b, inv, w, clock := twoReplicas(t)
		key, tok, _ := a.Create(ctx, authn.NewKey{Name: "k", Scopes: []string{"s"}})
		if _, err := b.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
		inv.Disconnected()
		if got := inv.Revalidate(); got != 5*time.Second {
			t.Fatalf("bound while disconnected: %v", got)
		}
		w.cut = true
		if _, err := a.Revoke(ctx, key.ID); err != nil {
			t.Fatal(err)
		}
		clock.Advance(4 * time.Second)
		if _, err := b.Authenticate(ctx, tok); err != nil {
			t.Fatalf("B within the bound (still cached): %v", err)
		}
		clock.Advance(time.Second)
		if _, err := b.Authenticate(ctx, tok); err != authn.ErrRevoked {
			t.Fatalf("B at the 5 s bound: %v", err)
		}
	})

	t.Run("reconnected: caches flushed, 30 s bound restored", func(t *testing.T) {
		a, b, inv, w, _ := twoReplicas(t)
		key, tok, _ := a.Create(ctx, authn.NewKey{Name: "k", Scopes: []string{"s"}})
		inv.Disconnected()
		if _, err := b.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
		w.cut = true
		a.Revoke(ctx, key.ID) // missed by B
		if err := inv.Connected(ctx); err != nil {
			t.Fatal(err)
		}
		if got := inv.Revalidate(); got != authn.RevalidateConnected {
			t.Fatalf("bound after reconnecting: %v", got)
		}
		if _, err := b.Authenticate(ctx, tok); err != authn.ErrRevoked {
			t.Fatalf("B after reconnecting: %v", err)
		}
	})

	t.Run("unknown kind", func(t *testing.T) {
		_, _, inv, _, _ := twoReplicas(t)
		if err := inv.Apply(ctx, authn.Invalidation{Kind: "nope"}); gatehouse.ErrorCode(err) != gatehouse.EINVALID {
			t.Fatalf("unknown kind: %v", err)
		}
	})
}

// TestInvalidationKinds runs people and clients on two "replicas" sharing
// one store: a disabled user's PAT, a revoked client and a settings change
// made through A take effect on B as soon as B applies A's invalidations.
func TestInvalidationKinds(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := gatehouse.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	type replica struct {
		pats    *authn.PATs
		users   *authn.Users
		clients *authn.Clients
		inv     *authn.Invalidations
	}
	w := &wire{}
	mk := func(pub authn.Invalidator) replica {
		cfg := authn.KeysConfig{Store: st, Pepper: make([]byte, 32), Clock: clock, Invalidator: pub}
		var r replica
		r.pats = authn.NewPATs(cfg)
		if r.users, err = authn.NewUsers(ctx, authn.UsersConfig{Store: st, Pepper: cfg.Pepper, Clock: clock, PATs: r.pats, Invalidator: pub}); err != nil {
			t.Fatal(err)
		}
		if r.clients, err = authn.NewClients(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		r.inv = &authn.Invalidations{PATs: r.pats, Users: r.users, Clients: r.clients}
		return r
	}
	a, b := mk(w), mk(nil)
	w.to = b.inv

	t.Run("user disabled", func(t *testing.T) {
		u, err := a.users.Create(ctx, authn.NewUser{Username: "alice", Role: "security", Scopes: []string{"s"}, Password: "correct horse battery staple 42"})
		if err != nil {
			t.Fatal(err)
		}
		_, tok, err := a.pats.Create(ctx, u, authn.NewPAT{Name: "t", Scopes: []string{"s"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.pats.Authenticate(ctx, tok); err != nil {
			t.Fatal(err) // cached on B
		}
		if _, err := a.users.Disable(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.pats.Authenticate(ctx, tok); err != authn.ErrUserDisabled {
			t.Fatalf("B after alice was disabled on A: %v", err)
		}
	})

	t.Run("client revoked", func(t *testing.T) {
		cl, secret, err := a.clients.Create(ctx, authn.NewClient{Name: "svc", Scopes: []string{"s"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.clients.Authenticate(ctx, cl.ID, secret); err != nil || b.clients.Revoked(cl.ID) {
			t.Fatalf("B before revoking: %v", err)
		}
		if _, err := a.clients.Revoke(ctx, cl.ID); err != nil {
			t.Fatal(err)
		}
		if !b.clients.Revoked(cl.ID) {
			t.Fatal("B does not know the client was revoked on A")
		}
		if _, err := b.clients.Authenticate(ctx, cl.ID, secret); err != authn.ErrRevoked {
			t.Fatalf("B authenticating the revoked client: %v", err)
		}
	})

	t.Run("settings changed", func(t *testing.T) {
		s := a.users.Settings()
		s.Lockout.MaxFailures = 9
		if _, err := a.users.SetSettings(ctx, s); err != nil {
			t.Fatal(err)
		}
		if got := b.users.Settings().Lockout.MaxFailures; got != 9 {
			t.Fatalf("B's lockout.max_failures after the change on A: %d", got)
		}
	})
}
