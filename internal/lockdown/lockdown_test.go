package lockdown_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/lockdown"
	"github.com/gatehouse/gatehouse/internal/store/sqlite"
)

func MustOpen(tb testing.TB) (*lockdown.Lockdown, *sqlite.DB) {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "g.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	l := lockdown.New(st)
	if err := l.Reload(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return l, st
}

// TestCheck: who an allow list admits. A person's role, the admin role
// for credentials with the admin scope, a principal by kind and id, a
// token by its id or its owner; nobody else, anonymous callers included.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	key := gatehouse.NewPrincipal("key_a", gatehouse.KindAPIKey, "svc", []string{"read"}, "")
	if err := l.Check(key); err != nil || l.Check(nil) != nil {
		t.Fatalf("no lockdown: %v", err)
	}
	pat := func(owner, id, role string) *gatehouse.Principal {
		p := gatehouse.NewPrincipal(owner, gatehouse.KindPAT, id, nil, "")
		p.Role = role
		return p
	}
	user := func(name, role string) *gatehouse.Principal {
		p := gatehouse.NewPrincipal(name, gatehouse.KindUser, name, nil, "")
		p.Role = role
		return p
	}
	for _, tc := range []struct {
		name  string
		allow []string
		p     *gatehouse.Principal
		pass  bool
	}{
		{"named key", []string{"api_key:key_a"}, key, true},
		{"another key", []string{"api_key:key_b"}, key, false},
		{"same id, other kind", []string{"client:key_a"}, key, false},
		{"anonymous", []string{"admin", "security", "auditor"}, nil, false},
		{"admin scope under role admin", []string{"admin"}, gatehouse.NewPrincipal("key_z", gatehouse.KindAPIKey, "", []string{"admin"}, ""), true},
		{"admin scope under role security", []string{"security"}, gatehouse.NewPrincipal("key_z", gatehouse.KindAPIKey, "", []string{"admin"}, ""), false},
		{"role:security spelled out", []string{"role:security"}, user("sec", "security"), true},
		{"a person's role", []string{"security"}, user("sec", "security"), true},
		{"a lesser role", []string{"security"}, user("aud", "auditor"), false},
		{"a machine has no role", []string{"security"}, key, false},
		{"a user's token by its owner", []string{"user:alice"}, pat("alice", "pat_1", ""), true},
		{"a token by its id", []string{"pat:pat_1"}, pat("alice", "pat_1", ""), true},
		{"another token", []string{"pat:pat_2"}, pat("alice", "pat_1", ""), false},
		{"a client (and its JWTs)", []string{"client:c1"}, gatehouse.NewPrincipal("c1", gatehouse.KindClient, "", nil, ""), true},
		{"an external subject is never named", []string{"user:alice"}, gatehouse.NewPrincipal("alice", gatehouse.KindExternal, "alice", nil, ""), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.Set(ctx, lockdown.State{Incident: "inc_1", Allow: tc.allow, By: "t", Since: time.Now()}); err != nil {
				t.Fatal(err)
			}
			err := l.Check(tc.p)
			if (err == nil) != tc.pass {
				t.Fatalf("Check: %v, want pass %v", err, tc.pass)
			}
			if err != nil && (gatehouse.ErrorCode(err) != gatehouse.ELOCKDOWN || gatehouse.HTTPStatus(gatehouse.ErrorCode(err)) != 503) {
				t.Errorf("refusal %v: want ELOCKDOWN, 503", err)
			}
		})
	}
}

// TestSetLiftReload: the state is in the store (another Lockdown on it
// sees it after Reload, as a restarted or other replica does); a second
// incident cannot take over a lockdown; bad entries are EINVALID.
func TestSetLiftReload(t *testing.T) {
	ctx := context.Background()
	a, st := MustOpen(t)
	b := lockdown.New(st)
	if _, err := a.Set(ctx, lockdown.State{Incident: "inc_1", Allow: []string{"admin", "admin", "api_key:k"}}); err != nil {
		t.Fatal(err)
	}
	if got := a.Current().Allow; len(got) != 2 {
		t.Errorf("allow list %v: want duplicates dropped", got)
	}
	if err := b.Check(nil); err != nil {
		t.Fatalf("b before reload: %v", err)
	}
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Check(nil); gatehouse.ErrorCode(err) != gatehouse.ELOCKDOWN {
		t.Fatalf("b after reload: %v, want the lockdown", err)
	}
	for _, tc := range []struct {
		name string
		s    lockdown.State
		code string
	}{
		{"other incident", lockdown.State{Incident: "inc_2", Allow: []string{"admin"}}, gatehouse.ECONFLICT},
		{"empty allow", lockdown.State{Incident: "inc_1"}, gatehouse.EINVALID},
		{"bad role", lockdown.State{Incident: "inc_1", Allow: []string{"root"}}, gatehouse.EINVALID},
		{"empty id", lockdown.State{Incident: "inc_1", Allow: []string{"api_key:"}}, gatehouse.EINVALID},
		{"no incident", lockdown.State{Allow: []string{"admin"}}, gatehouse.EINVALID},
	} {
		if _, err := a.Set(ctx, tc.s); gatehouse.ErrorCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if _, err := b.Lift(ctx, "inc_2"); gatehouse.ErrorCode(err) != gatehouse.ECONFLICT {
		t.Errorf("lift by another incident: %v", err)
	}
	if _, err := b.Lift(ctx, "inc_1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(ctx); err != nil || a.Check(nil) != nil {
		t.Errorf("a after the lift elsewhere: %v %v", err, a.Check(nil))
	}
	if _, err := a.Lift(ctx, "inc_1"); gatehouse.ErrorCode(err) != gatehouse.ECONFLICT {
		t.Errorf("lift twice: %v", err)
	}
}

// TestCheckCostsNothingWhenOff: no lockdown, no allocation (Check is on
// every request).
func TestCheckCostsNothingWhenOff(t *testing.T) {
	l, _ := MustOpen(t)
	p := gatehouse.NewPrincipal("key_a", gatehouse.KindAPIKey, "svc", []string{"read"}, "")
	if n := testing.AllocsPerRun(1000, func() { _ = l.Check(p) }); n != 0 {
		t.Errorf("Check allocates %v times with no lockdown", n)
	}
	if _, err := l.Set(context.Background(), lockdown.State{Incident: "inc_1", Allow: []string{"admin"}}); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = l.Check(p) }); n != 0 {
		t.Errorf("Check allocates %v times refusing (the refusal is prebuilt)", n)
	}
}

func BenchmarkCheck(b *testing.B) {
	l, _ := MustOpen(b)
	p := gatehouse.NewPrincipal("key_a", gatehouse.KindAPIKey, "svc", []string{"read"}, "")
	b.Run("off", func(b *testing.B) {
		for b.Loop() {
			_ = l.Check(p)
		}
	})
	l.Set(context.Background(), lockdown.State{Incident: "inc_1", Allow: []string{"admin", "api_key:key_a"}})
	b.Run("on/admitted", func(b *testing.B) {
		for b.Loop() {
			_ = l.Check(p)
		}
	})
}
