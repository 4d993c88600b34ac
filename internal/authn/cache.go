package authn

import (
	"crypto/subtle"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
)

const cacheShards = 16

// credCache remembers credentials verified against the store, by the id
// part of their token, so that the next presentation costs one SHA-256 and
// a constant-time compare instead of a store read and an HMAC. It is safe
// for concurrent use.
type credCache struct {
	shards [cacheShards]credShard
	ttl    atomic.Int64 // nanoseconds; re-read from the store after this long
	// gen counts invalidations. A verification that read the store before
	// an invalidation must not be cached after it (it may have read the
	// state the invalidation announced as gone).
	gen atomic.Uint64
}

type credShard struct {
	mu sync.RWMutex
	m  map[string]*cachedCred
}

type cachedCred struct {
	digest    [32]byte // SHA-256 of the whole token
	principal *gatehouse.Principal
	expiresAt time.Time
	checkedAt time.Time
}

func newCredCache(ttl time.Duration) *credCache {
	c := &credCache{}
	c.ttl.Store(int64(ttl))
	for i := range c.shards {
		c.shards[i].m = make(map[string]*cachedCred)
	}
	return c
}

// setTTL changes how long entries are trusted; it applies to entries
// already cached too.
func (c *credCache) setTTL(d time.Duration) { c.ttl.Store(int64(d)) }

// shard picks the shard of an id part (random base32, so its last byte
// spreads evenly).
func (c *credCache) shard(part string) *credShard {
	return &c.shards[part[len(part)-1]%cacheShards]
}

// lookup returns the cached principal for token, or hit == false when the
// id is not cached (or is due for a re-read). A cached id with a different
// secret fails with ErrUnknown; an expired one with ErrExpired.
func (c *credCache) lookup(part, token string, now time.Time) (p *gatehouse.Principal, hit bool, err error) {
	s := c.shard(part)
	s.mu.RLock()
	e := s.m[part]
	s.mu.RUnlock()
	if e == nil || now.Sub(e.checkedAt) >= time.Duration(c.ttl.Load()) {
		return nil, false, nil
	}
	d := digest(token)
	if subtle.ConstantTimeCompare(d[:], e.digest[:]) != 1 {
		return nil, true, ErrUnknown
	}
	if !e.expiresAt.IsZero() && !now.Before(e.expiresAt) {
		return nil, true, ErrExpired
	}
	return e.principal, true, nil
}

// generation is read before a store read whose result is to be cached,
// and passed to store.
func (c *credCache) generation() uint64 { return c.gen.Load() }

// store caches a verification made from a store read that began at
// generation gen; if anything was invalidated since, it is not cached.
func (c *credCache) store(part, token string, p *gatehouse.Principal, expires, now time.Time, gen uint64) {
	e := &cachedCred{digest: digest(token), principal: p, expiresAt: expires, checkedAt: now}
	s := c.shard(part)
	s.mu.Lock()
	if c.gen.Load() == gen {
		s.m[part] = e
	}
	s.mu.Unlock()
}

func (c *credCache) invalidate(part string) {
	if part == "" {
		return
	}
	s := c.shard(part)
	s.mu.Lock()
	c.gen.Add(1)
	delete(s.m, part)
	s.mu.Unlock()
}

// flush drops every entry.
func (c *credCache) flush() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		c.gen.Add(1)
		clear(s.m)
		s.mu.Unlock()
	}
}
