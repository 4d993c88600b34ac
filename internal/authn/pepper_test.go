package authn_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlite"
)

func pepperKey(v uint64, b byte) authn.PepperKey {
	return authn.PepperKey{Version: v, Key: bytes.Repeat([]byte{b}, 32)}
}

func mustPepper(t testing.TB, keys ...authn.PepperKey) *authn.Pepper {
	t.Helper()
	p, err := authn.NewPepper(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestDecodeHash(t *testing.T) {
	mac := bytes.Repeat([]byte{7}, 32)
	marked := func(prefix ...byte) []byte { return append(append([]byte{0xf1}, prefix...), mac...) }
	tests := []struct {
		name    string
		stored  []byte
		version uint64
		err     error
	}{
		{"bare 32 bytes is version 1", mac, 1, nil},
		{"version 2", marked(2), 2, nil},
		{"version 300 (two varint bytes)", marked(0xac, 0x02), 300, nil},
		{"empty", nil, 0, authn.ErrHashFormat},
		{"truncated bare", mac[:31], 0, authn.ErrHashFormat},
		{"truncated marked", marked(2)[:33], 0, authn.ErrHashFormat},
		{"marked with a byte too many", append(marked(2), 0), 0, authn.ErrHashFormat},
		{"wrong marker", append([]byte{0xf0, 2}, mac...), 0, authn.ErrHashFormat},
		{"marked version 0", marked(0), 0, authn.ErrHashFormat},
		{"marked version 1 (stored bare)", marked(1), 0, authn.ErrHashFormat},
		{"non-minimal varint", marked(0x82, 0x00), 0, authn.ErrHashFormat},
		{"varint overflow", marked(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), 0, authn.ErrHashFormat},
		{"varint without end", append([]byte{0xf1}, bytes.Repeat([]byte{0xff}, 40)...), 0, authn.ErrHashFormat},
		{"version above the bound", marked(binary.AppendUvarint(nil, authn.MaxPepperVersion+1)...), 0, authn.ErrHashFormat},
		{"admin token disabled marker", []byte("disabled"), 0, authn.ErrHashFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, m, err := authn.DecodeHash(tt.stored)
			if !errors.Is(err, tt.err) || v != tt.version {
				t.Fatalf("DecodeHash = %d, %v; want %d, %v", v, err, tt.version, tt.err)
			}
			if err == nil && !bytes.Equal(m, mac) {
				t.Fatalf("mac = %x", m)
			}
			if err == nil && !bytes.Equal(authn.EncodeHash(v, m), tt.stored) {
				t.Fatalf("EncodeHash(%d) does not give back the stored hash", v)
			}
		})
	}
}

// FuzzDecodeHash: decoding never panics, and whatever decodes encodes
// back to the same bytes (one stored form per hash).
func FuzzDecodeHash(f *testing.F) {
	mac := bytes.Repeat([]byte{1}, 32)
	f.Add(mac)
	f.Add(authn.EncodeHash(2, mac))
	f.Add(authn.EncodeHash(1<<20, mac))
	f.Add([]byte{0xf1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Add([]byte("disabled"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, m, err := authn.DecodeHash(b)
		if err != nil {
			if !errors.Is(err, authn.ErrHashFormat) {
				t.Fatalf("error %v is not ErrHashFormat", err)
			}
			return
		}
		if v < 1 || v > authn.MaxPepperVersion || len(m) != 32 {
			t.Fatalf("decoded version %d, mac of %d bytes", v, len(m))
		}
		if !bytes.Equal(authn.EncodeHash(v, m), b) {
			t.Fatalf("%x decodes to version %d but encodes to %x", b, v, authn.EncodeHash(v, m))
		}
		keys := []authn.PepperKey{pepperKey(1, 1)}
		if v > 1 {
			keys = append(keys, pepperKey(v, 2))
		}
		if err := mustPepper(t, keys...).Verify(context.Background(), "gh_anything", b); err == nil {
			t.Fatal("a fuzzed hash matched a credential")
		}
	})
}

func TestPepperSetRefused(t *testing.T) {
	tests := []struct {
		name string
		keys []authn.PepperKey
	}{
		{"none", nil},
		{"short key", []authn.PepperKey{{Version: 1, Key: make([]byte, 16)}}},
		{"version 0", []authn.PepperKey{pepperKey(0, 1)}},
		{"duplicate", []authn.PepperKey{pepperKey(1, 1), pepperKey(1, 2)}},
		{"too high", []authn.PepperKey{pepperKey(authn.MaxPepperVersion+1, 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := authn.NewPepper(tt.keys...); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestPepperRotationUnit: a key made before the rotation verifies after
// it; one made after is hashed under the new version; a second service
// on the same store that has not seen the rotation verifies the new key
// through its refresh, once.
func TestPepperRotationUnit(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clock := gatehouse.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	pa := mustPepper(t, pepperKey(1, 1))
	a, err := authn.NewKeys(authn.KeysConfig{Store: st, Peppers: pa, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	pb := mustPepper(t, pepperKey(1, 1))
	var refreshes atomic.Int32
	pb.SetRefresh(func(context.Context) error {
		refreshes.Add(1)
		return pb.Set(pepperKey(1, 1), pepperKey(2, 2))
	})
	b, err := authn.NewKeys(authn.KeysConfig{Store: st, Peppers: pb, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	before, oldTok, err := a.Create(ctx, authn.NewKey{Name: "old", Scopes: []string{"s"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(before.Hash) != 32 {
		t.Fatalf("a hash under version 1 is %d bytes, want the bare 32", len(before.Hash))
	}
	if err := pa.Set(pepperKey(1, 1), pepperKey(2, 2)); err != nil {
		t.Fatal(err)
	}
	after, newTok, err := a.Create(ctx, authn.NewKey{Name: "new", Scopes: []string{"s"}})
	if err != nil {
		t.Fatal(err)
	}
	if v, _, err := authn.DecodeHash(after.Hash); err != nil || v != 2 {
		t.Fatalf("new key's hash version = %d, %v; want 2", v, err)
	}
	for _, k := range []*authn.Keys{a, b} {
		for _, tok := range []string{oldTok, newTok} {
			if _, err := k.Authenticate(ctx, tok); err != nil {
				t.Fatalf("Authenticate after rotation: %v", err)
			}
		}
	}
	if n := refreshes.Load(); n != 1 {
		t.Fatalf("stale service refreshed %d times, want 1", n)
	}
	// Rotating the old key re-hashes it under the newest version.
	_, next, _, err := a.Rotate(ctx, before.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := authn.DecodeHash(next.Hash); v != 2 {
		t.Fatalf("rotated key's hash version = %d, want 2", v)
	}
}

// TestPepperHashAbuse: a stored hash naming a version not held, a
// truncated or garbage one, or one with an overflowing varint is refused
// as an unknown key, never a panic or a 5xx-class error; an unknown
// newer version asks the refresh at most once a second.
func TestPepperHashAbuse(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	p := mustPepper(t, pepperKey(1, 1), pepperKey(2, 2))
	var refreshes atomic.Int32
	p.SetRefresh(func(context.Context) error { refreshes.Add(1); return nil })
	keys, err := authn.NewKeys(authn.KeysConfig{Store: st, Peppers: p})
	if err != nil {
		t.Fatal(err)
	}
	mac := bytes.Repeat([]byte{9}, 32)
	tests := []struct {
		name string
		hash []byte
		err  error
	}{
		{"unknown newer version", authn.EncodeHash(7, mac), authn.ErrPepperVersion},
		{"unknown newer version again", authn.EncodeHash(8, mac), authn.ErrPepperVersion},
		{"truncated", authn.EncodeHash(2, mac)[:20], authn.ErrHashFormat},
		{"garbage", []byte("not a hash at all, but long enough to look like one"), authn.ErrHashFormat},
		{"varint overflow", append([]byte{0xf1}, bytes.Repeat([]byte{0x80}, 33)...), authn.ErrHashFormat},
		{"one byte", []byte{0xf1}, authn.ErrHashFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, id, err := authn.NewToken(authn.PrefixAPIKey)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.CreateKey(ctx, &store.Key{ID: authn.KeyIDPrefix + id, Name: tt.name, Hash: tt.hash, Scopes: []string{"s"}, CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			if _, err := keys.Authenticate(ctx, tok); !errors.Is(err, authn.ErrUnknown) {
				t.Fatalf("Authenticate = %v, want ErrUnknown", err)
			}
			if err := p.Verify(ctx, tok, tt.hash); !errors.Is(err, tt.err) {
				t.Fatalf("Verify = %v, want %v", err, tt.err)
			}
		})
	}
	if n := refreshes.Load(); n != 1 {
		t.Fatalf("refreshed %d times for unknown versions within a second, want 1", n)
	}
}
