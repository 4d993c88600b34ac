package authn

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// A stored credential hash (API key, client secret, personal access
// token, admin token) is the HMAC-SHA-256 of the credential under one
// version of the server's pepper, and says which:
//
//	version 1:  the 32-byte HMAC alone (the format from before versions)
//	version ≥2: hashMarker, the version as a uvarint, the 32-byte HMAC
//
// A bare 32-byte value can never be a marked one (those are at least 34
// bytes), so hashes made before pepper versions need no migration.
const (
	hashMarker = 0xf1
	macLen     = sha256.Size
	// MaxPepperVersion bounds the version a hash may name, far above any
	// real rotation count, so a corrupt or forged row cannot make the
	// decoder build an absurd number.
	MaxPepperVersion = 1 << 31
)

// Errors of DecodeHash and Pepper.Verify; none carries a hash or a
// credential.
var (
	// ErrHashFormat is a stored hash that is neither a bare 32-byte
	// HMAC nor a well-formed versioned one: truncated, garbage, an
	// overlong or overflowing varint, version 0 or 1 marked.
	ErrHashFormat = errors.New("stored credential hash is malformed")
	// ErrPepperVersion is a stored hash naming a pepper version this
	// process does not hold (even after a refresh).
	ErrPepperVersion = errors.New("stored credential hash names an unknown pepper version")
	// errHashMismatch is a well-formed hash of another credential.
	errHashMismatch = errors.New("credential does not match its stored hash")
)

// DecodeHash splits a stored credential hash into the pepper version
// that made it and the HMAC. It never panics, whatever stored holds.
func DecodeHash(stored []byte) (version uint64, mac []byte, err error) {
	if len(stored) == macLen {
		return 1, stored, nil
	}
	if len(stored) < 2+macLen || stored[0] != hashMarker {
		return 0, nil, ErrHashFormat
	}
	v, n := binary.Uvarint(stored[1:])
	switch {
	case n <= 0: // truncated (0) or more than 64 bits (<0)
		return 0, nil, ErrHashFormat
	case n != uvarintLen(v): // not the shortest encoding: one hash, one byte string
		return 0, nil, ErrHashFormat
	case v < 2 || v > MaxPepperVersion:
		return 0, nil, ErrHashFormat
	case len(stored)-1-n != macLen:
		return 0, nil, ErrHashFormat
	}
	return v, stored[1+n:], nil
}

// EncodeHash is the stored form of mac made under pepper version (≥1).
func EncodeHash(version uint64, mac []byte) []byte {
	if version <= 1 {
		return slices.Clone(mac)
	}
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(mac))
	b = append(b, hashMarker)
	b = binary.AppendUvarint(b, version)
	return append(b, mac...)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// PepperKey is one version of the pepper: the HMAC key of the
// credentials hashed under it.
type PepperKey struct {
	Version uint64
	Key     []byte
}

// pepperRing is one immutable set of pepper versions.
type pepperRing struct {
	newest uint64
	keys   map[uint64][]byte
	base   []byte // the oldest version's key
}

// Pepper holds every version of the server's pepper: credentials are
// hashed under the newest and verified under the version their stored
// hash names. Set replaces the versions atomically (a rotation read from
// the secrets provider); a hash naming a version newer than any held
// asks the refresh function first (another replica rotated and this one
// has not polled yet). A Pepper is safe for concurrent use.
type Pepper struct {
	ring atomic.Pointer[pepperRing]

	mu          sync.Mutex
	refresh     func(context.Context) error
	lastRefresh time.Time
}

// pepperRefreshEvery bounds how often a hash naming an unknown version
// makes Verify ask for a refresh.
const pepperRefreshEvery = time.Second

// NewPepper returns a Pepper holding keys (at least one; each key at
// least 32 bytes, versions distinct and ≥1).
func NewPepper(keys ...PepperKey) (*Pepper, error) {
	p := &Pepper{}
	if err := p.Set(keys...); err != nil {
		return nil, err
	}
	return p, nil
}

// StaticPepper is a Pepper with key as version 1 alone: a deployment
// that never rotated, and tests. It panics on a key under 32 bytes, a
// programming error.
func StaticPepper(key []byte) *Pepper {
	p, err := NewPepper(PepperKey{Version: 1, Key: key})
	if err != nil {
		panic(err)
	}
	return p
}

// versionOne is key as version 1 alone, unchecked: for constructors
// that cannot fail and were never given a short key.
func versionOne(key []byte) *Pepper {
	p := &Pepper{}
	k := slices.Clone(key)
	p.ring.Store(&pepperRing{newest: 1, keys: map[uint64][]byte{1: k}, base: k})
	return p
}

// Set replaces the versions held, atomically: a verification sees the
// old set or the new one, never a mix.
func (p *Pepper) Set(keys ...PepperKey) error {
	if len(keys) == 0 {
		return errors.New("pepper: no versions")
	}
	r := &pepperRing{keys: make(map[uint64][]byte, len(keys))}
	oldest := uint64(0)
	for _, k := range keys {
		if k.Version < 1 || k.Version > MaxPepperVersion {
			return fmt.Errorf("pepper: version %d out of range 1..%d", k.Version, uint64(MaxPepperVersion))
		}
		if len(k.Key) < 32 {
			return fmt.Errorf("pepper: version %d is %d bytes, want at least 32", k.Version, len(k.Key))
		}
		if _, dup := r.keys[k.Version]; dup {
			return fmt.Errorf("pepper: version %d given twice", k.Version)
		}
		r.keys[k.Version] = slices.Clone(k.Key)
		if k.Version > r.newest {
			r.newest = k.Version
		}
		if oldest == 0 || k.Version < oldest {
			oldest = k.Version
		}
	}
	r.base = r.keys[oldest]
	p.ring.Store(r)
	return nil
}

// SetRefresh sets the function Verify calls when a stored hash names a
// version newer than the newest held; it should read the versions from
// the secrets provider and Set them.
func (p *Pepper) SetRefresh(f func(context.Context) error) {
	p.mu.Lock()
	p.refresh = f
	p.mu.Unlock()
}

// Newest is the version new credentials are hashed under.
func (p *Pepper) Newest() uint64 { return p.ring.Load().newest }

// Versions are the versions held, oldest first.
func (p *Pepper) Versions() []uint64 {
	r := p.ring.Load()
	out := make([]uint64, 0, len(r.keys))
	for v := range r.keys {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// Base is the oldest version's key: the root of keys derived from the
// pepper that are neither credential hashes nor the TOTP seal (CSRF
// tokens, source-address pseudonyms), which stay under it across
// rotations.
func (p *Pepper) Base() []byte { return p.ring.Load().base }

// newestKey is the newest version and its key.
func (p *Pepper) newestKey() (uint64, []byte) {
	r := p.ring.Load()
	return r.newest, r.keys[r.newest]
}

// key is version v's key, read anew (the refresh) when v is newer than
// any held.
func (p *Pepper) key(ctx context.Context, v uint64) ([]byte, bool) {
	r := p.ring.Load()
	k, ok := r.keys[v]
	if !ok && v > r.newest {
		p.refreshNow(ctx)
		k, ok = p.ring.Load().keys[v]
	}
	return k, ok
}

// Hash is the stored hash of credential under the newest version.
func (p *Pepper) Hash(credential string) []byte {
	r := p.ring.Load()
	return EncodeHash(r.newest, hmacSHA256(r.keys[r.newest], credential))
}

// Verify checks credential against its stored hash, under the version
// the hash names, comparing in constant time. It returns nil on a match,
// errHashMismatch for another credential's hash, and an error wrapping
// ErrHashFormat or ErrPepperVersion for a hash it cannot check (which
// callers log and refuse like a mismatch).
func (p *Pepper) Verify(ctx context.Context, credential string, stored []byte) error {
	v, mac, err := DecodeHash(stored)
	if err != nil {
		return err
	}
	key, ok := p.key(ctx, v)
	if !ok {
		return fmt.Errorf("%w %d (held: %v)", ErrPepperVersion, v, p.Versions())
	}
	if !hmac.Equal(hmacSHA256(key, credential), mac) {
		return errHashMismatch
	}
	return nil
}

// refreshNow calls the refresh function unless it ran less than
// pepperRefreshEvery ago (callers waiting meanwhile then read what it
// read). A failed refresh is the caller's unknown version.
func (p *Pepper) refreshNow(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refresh == nil || time.Since(p.lastRefresh) < pepperRefreshEvery {
		return
	}
	p.lastRefresh = time.Now()
	_ = p.refresh(ctx) // #nosec G104 -- the refresh logs its own failure; the hash stays unknown
}
