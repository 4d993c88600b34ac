package postgres_test

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
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
	var dump string
	if err := conn.QueryRow(ctx, `SELECT string_agg(encode(ciphertext, 'escape') || encode(wrapped_key, 'escape') || key_id, '') FROM gatehouse_secrets`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(dump, "kid") || strings.Contains(dump, "k2") {
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
