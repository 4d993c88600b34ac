// Package redis is the ratelimit backend shared by every gateway replica:
// the same granule counters as package memory, kept in Redis hashes and
// updated by one atomic Lua script per decision.
package redis

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"syscall"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

// DefaultPrefix is prepended to every key unless Config.Prefix is set.
const DefaultPrefix = "gatehouse:rl:"

//go:embed allow.lua
var allowSrc string

// allowScript is compiled once; go-redis runs it with EVALSHA and falls back
// to EVAL when the server's script cache does not have it.
var allowScript = goredis.NewScript(allowSrc)

// Config configures a Redis Limiter.
type Config struct {
	// Prefix is prepended to every key; "" means DefaultPrefix.
	Prefix string
	// Clock, when set, supplies decision time instead of the Redis server's
	// TIME. Leave it nil in production: with many replicas the server's
	// clock is the one clock they all share, so replica clock skew cannot
	// widen or narrow the window. Tests inject a fake clock here.
	Clock gatehouse.Clock
}

// Limiter is the Redis backend. It is safe for concurrent use; each decision
// is one round trip (EVALSHA) and atomic on the server.
//
// All keys of one AllowAll call go to one script, so on Redis Cluster they
// must hash to one slot: wrap the shared part of the keys in {braces}.
type Limiter struct {
	client goredis.UniversalClient
	prefix string
	clock  gatehouse.Clock
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a Limiter using client, which the caller keeps and closes.
func New(client goredis.UniversalClient, cfg Config) *Limiter {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	return &Limiter{client: client, prefix: cfg.Prefix, clock: cfg.Clock}
}

// Ping checks that Redis answers and loads the script into its cache. The
// degradation wrapper uses it as its recovery probe.
func (l *Limiter) Ping(ctx context.Context) error {
	if err := l.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	if err := allowScript.Load(ctx, l.client).Err(); err != nil {
		return fmt.Errorf("redis script load: %w", err)
	}
	return nil
}

// Allow implements ratelimit.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string, limit ratelimit.Limit) (ratelimit.Decision, error) {
	rules := [1]ratelimit.Rule{{Key: key, Limit: limit}}
	return l.AllowAll(ctx, rules[:])
}

// AllowAll implements ratelimit.Limiter in one script call.
func (l *Limiter) AllowAll(ctx context.Context, rules []ratelimit.Rule) (ratelimit.Decision, error) {
	n := len(rules)
	if n == 0 || n > ratelimit.MaxRules {
		return ratelimit.Decision{}, fmt.Errorf("redis ratelimit: %d rules, want 1 to %d", n, ratelimit.MaxRules)
	}
	keys := make([]string, n)
	args := make([]any, 1+2*n)
	args[0] = ""
	if l.clock != nil {
		args[0] = l.clock.Now().UnixMicro()
	}
	for i, r := range rules {
		if err := r.Limit.Validate(); err != nil {
			return ratelimit.Decision{}, fmt.Errorf("redis ratelimit: rule %d: %w", i, err)
		}
		keys[i] = l.prefix + r.Key
		args[1+2*i] = r.Limit.Requests
		args[2+2*i] = r.Limit.GranuleMicros()
	}
	res, err := allowScript.Run(ctx, l.client, keys, args...).Int64Slice()
	if err != nil && serverClosed(err) && ctx.Err() == nil {
		// A pooled connection the server had closed (CLIENT KILL after
		// a password rotation, a restart): once more, on a new one. A
		// Redis that is down fails the retry's dial at once and degrades
		// as before; a script whose reply was lost counts the request
		// twice, which errs on the side of the limit.
		res, err = allowScript.Run(ctx, l.client, keys, args...).Int64Slice()
	}
	if err != nil {
		return ratelimit.Decision{}, fmt.Errorf("redis ratelimit: %w", err)
	}
	if len(res) != 1+3*n {
		return ratelimit.Decision{}, fmt.Errorf("redis ratelimit: script returned %d values, want %d", len(res), 1+3*n)
	}
	now := res[0]
	var ds [ratelimit.MaxRules]ratelimit.Decision
	for i, r := range rules {
		v := res[1+3*i:]
		ds[i] = ratelimit.Outcome(r.Limit, now, v[1], v[2], v[0] == 1)
	}
	return ratelimit.Combine(ds[:n]), nil
}

// serverClosed reports whether err says the server closed the connection
// under the command (EOF, reset, broken pipe) rather than refused it.
func serverClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
