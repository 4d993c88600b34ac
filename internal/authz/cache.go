package authz

import (
	"hash/maphash"
	"sync"
)

// DefaultCacheSize bounds the decision cache when Options.CacheSize is zero.
const DefaultCacheSize = 1 << 16

const cacheShards = 32

// cachedDecision is what the cache keeps: the policy's answer, without the
// per-call decision ID.
type cachedDecision struct {
	allow   bool
	reasons []string
}

// decisionCache is a bounded, sharded map from input keys to decisions.
// One cache belongs to one loaded policy, so a reload starts from empty.
// When a shard is full, an arbitrary entry (Go's map order) is evicted.
type decisionCache struct {
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]cachedDecision
	_  [32]byte // keep shards on separate cache lines
}

func newDecisionCache(size int) *decisionCache {
	per := max(size/cacheShards, 1)
	c := &decisionCache{seed: maphash.MakeSeed(), perShard: per}
	for i := range c.shards {
		c.shards[i].m = make(map[string]cachedDecision)
	}
	return c
}

func (c *decisionCache) shard(key []byte) *cacheShard {
	return &c.shards[maphash.Bytes(c.seed, key)%cacheShards]
}

func (c *decisionCache) get(key []byte) (cachedDecision, bool) {
	s := c.shard(key)
	s.mu.RLock()
	v, ok := s.m[string(key)]
	s.mu.RUnlock()
	return v, ok
}

func (c *decisionCache) put(key []byte, v cachedDecision) {
	s := c.shard(key)
	s.mu.Lock()
	if _, ok := s.m[string(key)]; !ok && len(s.m) >= c.perShard {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[string(key)] = v
	s.mu.Unlock()
}

func (c *decisionCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
