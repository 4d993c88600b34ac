package ui

import (
	"sync"
	"time"
)

// ttlCache keeps at most size values, each for ttl after it was put; a
// full cache drops its oldest value. It is safe for concurrent use.
type ttlCache[T any] struct {
	ttl  time.Duration
	size int
	mu   sync.Mutex
	m    map[string]cached[T]
}

type cached[T any] struct {
	v  T
	at time.Time
}

func newTTLCache[T any](ttl time.Duration, size int) *ttlCache[T] {
	return &ttlCache[T]{ttl: ttl, size: size, m: map[string]cached[T]{}}
}

// get returns key's value if it was put less than ttl before now (and not
// after now: a clock set back does not keep a value forever).
func (c *ttlCache[T]) get(key string, now time.Time) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || now.Sub(e.at) >= c.ttl || now.Before(e.at) {
		var zero T
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[T]) put(key string, v T, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.size {
		var oldest string
		for k, e := range c.m {
			if oldest == "" || e.at.Before(c.m[oldest].at) {
				oldest = k
			}
		}
		delete(c.m, oldest)
	}
	c.m[key] = cached[T]{v, now}
}
