package postgres_test

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/secrets"
	"github.com/gatehouse/gatehouse/internal/secrets/postgres"
	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
)

func masterKey(t *testing.T) *secrets.MasterKey {
	b := make([]byte, 32)
	rand.Read(b)
	k, err := secrets.ParseMasterKey(base64.StdEncoding.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func MustOpen(t *testing.T, dsn string, k *secrets.MasterKey) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn, k)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestSealedStore(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.MustCreateDatabase(t)
	k := masterKey(t)
	a, b := MustOpen(t, dsn, k), MustOpen(t, dsn, k)

	// Two replicas generating the pepper at once end with one value.
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := a
			if i%2 == 1 {
				st = b
			}
			s, err := secrets.Ensure(ctx, st, "pepper", nil, func() ([]byte, error) { return []byte{byte(i), 'p'}, nil })
			if err != nil {
				t.Error(err)
			}
			got[i] = s.Value
		}()
	}
	wg.Wait()
	for _, g := range got {
		if string(g) != string(got[0]) {
			t.Fatalf("replicas disagree: %q", got)
		}
	}

	// Check-and-set: a stale version is refused.
	s1, err := a.Put(ctx, "signing-keys", []byte(`[{"kid":"k1"}]`), 0)
	if err != nil || s1.Version != 1 {
		t.Fatalf("put: %+v %v", s1, err)
	}
	if _, err := b.Put(ctx, "signing-keys", []byte(`[{"kid":"kb"}]`), 0); !errors.Is(err, secrets.ErrConflict) {
		t.Fatalf("stale create: %v", err)
	}
	if _, err := b.Put(ctx, "signing-keys", []byte(`[]`), 5); !errors.Is(err, secrets.ErrConflict) {
		t.Fatalf("version from the future: %v", err)
	}
	if s2, err := b.Put(ctx, "signing-keys", []byte(`[{"kid":"k2"}]`), 1); err != nil || s2.Version != 2 {
		t.Fatalf("next version: %+v %v", s2, err)
	}
	if s, err := a.Get(ctx, "signing-keys"); err != nil || string(s.Value) != `[{"kid":"k2"}]` || s.Version != 2 {
		t.Fatalf("get: %+v %v", s, err)
	}

	// Never plaintext in the database.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The markers are long enough that random ciphertext does not hold
	// them by chance (the two bytes "k2" did, now and then, and the key
	// id, which is not secret, may too).
	var dump string
	if err := conn.QueryRow(ctx, `SELECT string_agg(encode(ciphertext, 'escape') || encode(wrapped_key, 'escape'), '') FROM gatehouse_secrets`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(dump, `"kid"`) {
		t.Fatal("a sealed row holds plaintext")
	}

	// Another master key: a clear error naming both key ids, no value.
	wrong := MustOpen(t, dsn, masterKey(t))
	_, err = wrong.Get(ctx, "signing-keys")
	if !errors.Is(err, secrets.ErrMasterKeyMismatch) || !strings.Contains(err.Error(), k.ID()) || !strings.Contains(err.Error(), "same master key") {
		t.Fatalf("wrong master key: %v", err)
	}

	// A tampered row is refused, not decrypted into garbage.
	if _, err := conn.Exec(ctx, `UPDATE gatehouse_secrets SET ciphertext = overlay(ciphertext placing '\x00'::bytea from 14 for 1) WHERE name = 'signing-keys' AND version = 2`); err != nil {
		t.Fatal(err)
	}
	if s, err := a.Get(ctx, "signing-keys"); !errors.Is(err, secrets.ErrTampered) || s.Value != nil {
		t.Fatalf("tampered row: %q %v", s.Value, err)
	}
	// A row copied onto another name does not open either.
	if _, err := conn.Exec(ctx, `INSERT INTO gatehouse_secrets (name, version, key_id, wrapped_key, ciphertext)
		SELECT 'audit-key', 1, key_id, wrapped_key, ciphertext FROM gatehouse_secrets WHERE name = 'pepper' AND version = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, "audit-key"); !errors.Is(err, secrets.ErrTampered) {
		t.Fatalf("row moved to another name: %v", err)
	}
}

// TestCurrentVersion: the newest version without opening it (what
// replicas poll), 0 for none, and it works even under another master key
// (nothing is decrypted).
func TestCurrentVersion(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.MustCreateDatabase(t)
	a := MustOpen(t, dsn, masterKey(t))
	if v, err := a.CurrentVersion(ctx, "signing-keys"); err != nil || v != 0 {
		t.Fatalf("none: %d %v", v, err)
	}
	for cas := range 3 {
		if _, err := a.Put(ctx, "signing-keys", []byte{byte(cas)}, cas); err != nil {
			t.Fatal(err)
		}
	}
	other := MustOpen(t, dsn, masterKey(t))
	for _, st := range []*postgres.Store{a, other} {
		if v, err := st.CurrentVersion(ctx, "signing-keys"); err != nil || v != 3 {
			t.Errorf("after three versions: %d %v", v, err)
		}
	}
	if _, err := a.CurrentVersion(ctx, "../x"); !errors.Is(err, secrets.ErrInvalidName) {
		t.Errorf("bad name: %v", err)
	}
}

func parseKeys(t *testing.T, current, previous string) *secrets.MasterKey {
	t.Helper()
	k, err := secrets.ParseMasterKeys(current, previous)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newKeyText() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// TestReseal: rows sealed under K1 (several secrets, several versions)
// open with K2 and K1 as previous; K2 alone refuses them naming K1's id
// and what to do; Reseal moves every row to K2 in one go, a second run
// does nothing, and then K2 alone opens everything while K1 alone no
// longer does.
func TestReseal(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.MustCreateDatabase(t)
	t1, t2 := newKeyText(), newKeyText()
	k1 := parseKeys(t, t1, "")
	old := MustOpen(t, dsn, k1)
	want := map[string]string{}
	for _, name := range []string{"pepper", "audit-key", "signing-keys"} {
		for v := range 3 {
			val := fmt.Sprintf("%s v%d", name, v+1)
			if _, err := old.Put(ctx, name, []byte(val), v); err != nil {
				t.Fatal(err)
			}
			want[name] = val
		}
	}

	only2 := MustOpen(t, dsn, parseKeys(t, t2, ""))
	err := only2.CheckKeys(ctx)
	if !errors.Is(err, secrets.ErrMasterKeyMismatch) || !strings.Contains(err.Error(), k1.ID()) ||
		!strings.Contains(err.Error(), "GATEHOUSE_SECRET_MASTER_KEY_PREVIOUS") || !strings.Contains(err.Error(), "9 sealed secret row(s)") {
		t.Fatalf("K2 alone before the reseal: %v", err)
	}
	if _, err := only2.Reseal(ctx); !errors.Is(err, secrets.ErrMasterKeyMismatch) {
		t.Fatalf("reseal without the old key: %v", err)
	}

	both := MustOpen(t, dsn, parseKeys(t, t2, t1))
	if err := both.CheckKeys(ctx); err != nil {
		t.Fatalf("K2 with K1 previous: %v", err)
	}
	for name, val := range want {
		if s, err := both.Get(ctx, name); err != nil || string(s.Value) != val {
			t.Fatalf("%s before the reseal: %q %v", name, s.Value, err)
		}
	}
	// A write meanwhile is sealed under the current key.
	if _, err := both.Put(ctx, "signing-keys", []byte("signing-keys v4"), 3); err != nil {
		t.Fatal(err)
	}
	want["signing-keys"] = "signing-keys v4"
	counts, err := both.KeyCounts(ctx)
	if err != nil || counts[k1.ID()] != 9 || counts[both.KeyID()] != 1 {
		t.Fatalf("counts before: %v %v", counts, err)
	}

	res, err := both.Reseal(ctx)
	if err != nil || res.Resealed != 9 || res.From[k1.ID()] != 9 || res.Total != 10 || res.KeyID != both.KeyID() {
		t.Fatalf("reseal: %+v %v", res, err)
	}
	if res, err := both.Reseal(ctx); err != nil || res.Resealed != 0 || res.Total != 10 {
		t.Fatalf("second reseal: %+v %v", res, err)
	}
	if err := only2.CheckKeys(ctx); err != nil {
		t.Fatalf("K2 alone after the reseal: %v", err)
	}
	for name, val := range want {
		if s, err := only2.Get(ctx, name); err != nil || string(s.Value) != val {
			t.Fatalf("%s after the reseal under K2 alone: %q %v", name, s.Value, err)
		}
	}
	// Every version, not only the newest, was re-sealed: the versions
	// and their creation times are unchanged.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM gatehouse_secrets WHERE key_id <> $1`, both.KeyID()).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows left under another key: %d %v", n, err)
	}
	if err := old.CheckKeys(ctx); !errors.Is(err, secrets.ErrMasterKeyMismatch) || !strings.Contains(err.Error(), both.KeyID()) {
		t.Fatalf("K1 alone after the reseal: %v", err)
	}
}

// TestResealRefusesTampered: one altered row under the previous key
// aborts the whole reseal (GCM authentication), and nothing is changed.
func TestResealRefusesTampered(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.MustCreateDatabase(t)
	t1, t2 := newKeyText(), newKeyText()
	old := MustOpen(t, dsn, parseKeys(t, t1, ""))
	for _, name := range []string{"audit-key", "pepper", "signing-keys"} {
		if _, err := old.Put(ctx, name, []byte(name+" value"), 0); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, c := range []struct{ name, column string }{{"pepper", "ciphertext"}, {"signing-keys", "wrapped_key"}} {
		t.Run(c.column, func(t *testing.T) {
			if _, err := conn.Exec(ctx, `UPDATE gatehouse_secrets SET `+c.column+` = overlay(`+c.column+` placing '\x00'::bytea from 14 for 1) WHERE name = $1`, c.name); err != nil {
				t.Fatal(err)
			}
			both := MustOpen(t, dsn, parseKeys(t, t2, t1))
			res, err := both.Reseal(ctx)
			if !errors.Is(err, secrets.ErrTampered) || !strings.Contains(err.Error(), "nothing re-sealed") || res.Resealed > 0 && err == nil {
				t.Fatalf("tampered %s: %+v %v", c.column, res, err)
			}
			counts, err := both.KeyCounts(ctx)
			if err != nil || counts[both.KeyID()] != 0 {
				t.Fatalf("a row was re-sealed despite the abort: %v %v", counts, err)
			}
		})
	}
	// The untouched row still opens under the old key.
	if s, err := old.Get(ctx, "audit-key"); err != nil || string(s.Value) != "audit-key value" {
		t.Fatalf("untouched row: %q %v", s.Value, err)
	}
}

// TestResealWhileServing: replicas holding both keys keep reading every
// secret while another re-seals (and a second reseal runs at once): no
// read fails, each sees the value, and the versions do not move (so no
// poller reloads).
func TestResealWhileServing(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.MustCreateDatabase(t)
	t1, t2 := newKeyText(), newKeyText()
	old := MustOpen(t, dsn, parseKeys(t, t1, ""))
	names := make([]string, 40)
	for i := range names {
		names[i] = fmt.Sprintf("s%02d", i)
		for v := range 3 {
			if _, err := old.Put(ctx, names[i], []byte(names[i]), v); err != nil {
				t.Fatal(err)
			}
		}
	}
	readers := []*postgres.Store{MustOpen(t, dsn, parseKeys(t, t2, t1)), MustOpen(t, dsn, parseKeys(t, t1, t2))}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, failures atomic.Int64
	for _, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := names[i%len(names)]
				s, err := r.Get(ctx, name)
				reads.Add(1)
				if err != nil || string(s.Value) != name || s.Version != 3 {
					failures.Add(1)
					t.Errorf("read %s during the reseal: %q v%d %v", name, s.Value, s.Version, err)
				}
			}
		}()
	}
	resealers := []*postgres.Store{MustOpen(t, dsn, parseKeys(t, t2, t1)), MustOpen(t, dsn, parseKeys(t, t2, t1))}
	results := make([]postgres.ResealResult, len(resealers))
	var rw sync.WaitGroup
	for i, r := range resealers {
		rw.Add(1)
		go func() {
			defer rw.Done()
			res, err := r.Reseal(ctx)
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		}()
	}
	rw.Wait()
	// Keep reading a moment after the reseal too.
	for reads.Load() < 200 {
		runtime.Gosched()
	}
	close(stop)
	wg.Wait()
	if got := results[0].Resealed + results[1].Resealed; got != 120 {
		t.Errorf("two reseals at once re-sealed %d rows together, want 120 (each once): %+v", got, results)
	}
	t.Logf("%d reads during and after the reseal, %d failed", reads.Load(), failures.Load())
	only2 := MustOpen(t, dsn, parseKeys(t, t2, ""))
	if err := only2.CheckKeys(ctx); err != nil {
		t.Fatal(err)
	}
}
