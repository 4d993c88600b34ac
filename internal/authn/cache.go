package authn

import (
	"crypto/subtle"
	"sync"
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
	ttl    time.Duration // re-read from the store after this long
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
	c := &credCache{ttl: ttl}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*cachedCred)
	}
	return c
}

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
	if e == nil || now.Sub(e.checkedAt) >= c.ttl {
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

func (c *credCache) store(part, token string, p *gatehouse.Principal, expires, now time.Time) {
	e := &cachedCred{digest: digest(token), principal: p, expiresAt: expires, checkedAt: now}
	s := c.shard(part)
	s.mu.Lock()
	s.m[part] = e
	s.mu.Unlock()
}

func (c *credCache) invalidate(part string) {
	if part == "" {
		return
	}
	s := c.shard(part)
	s.mu.Lock()
	delete(s.m, part)
	s.mu.Unlock()
}
