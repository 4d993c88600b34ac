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

// MustOpenKeys returns a key service on a fresh SQLite store.
func MustOpenKeys(tb testing.TB) (*authn.Keys, *gatehouse.FakeClock) {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "g.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	clock := gatehouse.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	k, err := authn.NewKeys(authn.KeysConfig{Store: st, Pepper: make([]byte, 32), Clock: clock})
	if err != nil {
		tb.Fatal(err)
	}
	return k, clock
}

func TestKeyLifecycle(t *testing.T) {
	ctx := context.Background()
	keys, clock := MustOpenKeys(t)
	key, tok, err := keys.Create(ctx, authn.NewKey{Name: "svc", Scopes: []string{"a", "b"}, Tier: "free", ExpiresAt: clock.Now().Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := keys.Authenticate(ctx, tok)
	if err != nil || p.ID != key.ID || p.Tier != "free" || p.ScopesHeader != "a b" || p.Kind != gatehouse.KindAPIKey {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	if string(key.Hash) == tok || len(key.Hash) != 32 {
		t.Fatal("stored hash is not an HMAC")
	}
	other, _, _ := authn.NewToken(authn.PrefixAPIKey)
	if _, err := keys.Authenticate(ctx, other); err != authn.ErrUnknown {
		t.Errorf("unknown key: %v", err)
	}
	// Same id, different secret: refused even though the id is cached.
	forged := tok[:20] + other[20:]
	if _, ok := authn.ParseToken(authn.PrefixAPIKey, forged); ok {
		if _, err := keys.Authenticate(ctx, forged); err == nil {
			t.Error("forged secret with cached id accepted")
		}
	}
	clock.Advance(48 * time.Hour)
	if _, err := keys.Authenticate(ctx, tok); err != authn.ErrExpired {
		t.Errorf("after expiry: %v", err)
	}
}

func TestCreateValidation(t *testing.T) {
	keys, _ := MustOpenKeys(t)
	for name, n := range map[string]authn.NewKey{
		"no name":      {Scopes: []string{"a"}},
		"no scopes":    {Name: "x"},
		"bad scope":    {Name: "x", Scopes: []string{"a b"}},
		"bad tier":     {Name: "x", Scopes: []string{"a"}, Tier: "no spaces"},
		"expired":      {Name: "x", Scopes: []string{"a"}, ExpiresAt: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)},
		"comma scope":  {Name: "x", Scopes: []string{"a,b"}},
		"empty scope":  {Name: "x", Scopes: []string{""}},
		"quoted scope": {Name: "x", Scopes: []string{`a"b`}},
	} {
		if _, _, err := keys.Create(context.Background(), n); gatehouse.ErrorCode(err) != gatehouse.EINVALID {
			t.Errorf("%s: err = %v, want EINVALID", name, err)
		}
	}
}

// TestCacheHitAllocs holds the allocation budget of a cache hit: at most
// two (the limit); today it is zero.
func TestCacheHitAllocs(t *testing.T) {
	ctx := context.Background()
	keys, _ := MustOpenKeys(t)
	_, tok, err := keys.Create(ctx, authn.NewKey{Name: "svc", Scopes: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	keys.Authenticate(ctx, tok)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := keys.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Errorf("cache hit allocates %.1f times, budget 2", allocs)
	}
}

func BenchmarkAuthenticateCacheHit(b *testing.B) {
	ctx := context.Background()
	keys, _ := MustOpenKeys(b)
	_, tok, err := keys.Create(ctx, authn.NewKey{Name: "svc", Scopes: []string{"a"}})
	if err != nil {
		b.Fatal(err)
	}
	keys.Authenticate(ctx, tok)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := keys.Authenticate(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAuthenticateCacheMiss(b *testing.B) {
	ctx := context.Background()
	keys, _ := MustOpenKeys(b)
	key, tok, err := keys.Create(ctx, authn.NewKey{Name: "svc", Scopes: []string{"a"}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		keys.Invalidate(key.ID)
		if _, err := keys.Authenticate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
