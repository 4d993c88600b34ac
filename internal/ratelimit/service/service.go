// Package service builds the rate limiter the config asks for — memory, or
// Redis behind the degradation wrapper — with one Policy per tier, ready
// for the gateway middleware.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/ratelimit/memory"
	"github.com/gatehouse/gatehouse/internal/ratelimit/redis"
)

// Redis client timeouts. They are short on purpose: a decision that waits
// on a slow Redis holds a request, and failing fast lets the degradation
// wrapper take over.
const (
	redisDialTimeout = 500 * time.Millisecond
	redisIOTimeout   = 250 * time.Millisecond
	redisPoolTimeout = 500 * time.Millisecond
	redisPoolSize    = 128
)

// Options carries the dependencies of a Service. Every field is optional.
type Options struct {
	// Clock reads time for the memory backend and stamps transitions; nil
	// means the system clock. The Redis backend always uses the Redis
	// server's clock, the one clock all replicas share.
	Clock gatehouse.Clock
	// Logger is given the group "ratelimit"; nil discards.
	Logger *slog.Logger
	// Auditor records degradation and recovery events; nil records none.
	Auditor gatehouse.Auditor
	// RedisPrefix is prepended to Redis keys; "" means redis.DefaultPrefix.
	RedisPrefix string
	// RedisPassword, when set, gives every new Redis connection its
	// password (go-redis's CredentialsProviderContext, with the user of
	// the URL) in place of the URL's: a secret reference, so that a
	// rotated password reaches new connections while the open ones live
	// on. Errors name the secret, never a value.
	RedisPassword func(ctx context.Context) (string, error)
	// ProbeMin and ProbeMax bound the recovery probe backoff; zero means
	// the ratelimit package defaults.
	ProbeMin, ProbeMax time.Duration
}

// Service is the configured Limiter plus its policies. It is safe for
// concurrent use.
type Service struct {
	ratelimit.Limiter
	cfg      ratelimit.Config
	def      *ratelimit.Policy
	policies map[string]*ratelimit.Policy
	fallback *ratelimit.Fallback // nil for the memory backend
	client   *goredis.Client     // nil for the memory backend
}

var _ ratelimit.Limiter = (*Service)(nil)

// New validates cfg and builds its backend. For backend redis an
// unreachable Redis at startup is not an error: the Service starts
// degraded (per on_redis_failure) and recovers when Redis answers. ctx
// bounds only the startup probe. Call Close when done.
func New(ctx context.Context, cfg ratelimit.Config, opts Options) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ratelimit config: %w", err)
	}
	cfg = cfg.WithDefaults()
	if opts.Clock == nil {
		opts.Clock = gatehouse.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	log := opts.Logger.WithGroup("ratelimit")
	s := &Service{
		cfg:      cfg,
		def:      ratelimit.NewPolicy(ratelimit.DefaultPolicyName, cfg.Default),
		policies: make(map[string]*ratelimit.Policy, len(cfg.Tiers)),
	}
	for name, l := range cfg.Tiers {
		s.policies[name] = ratelimit.NewPolicy(name, l)
	}
	local := memory.New(memory.Config{Clock: opts.Clock, MaxKeys: cfg.MaxKeys})
	if cfg.Backend == ratelimit.BackendMemory {
		s.Limiter = local
		log.Info("rate limiting in memory", "default", cfg.Default.String(), "tiers", len(cfg.Tiers))
		return s, nil
	}

	ro, err := goredis.ParseURL(cfg.RedisURL)
	if err != nil {
		var ue *url.Error // its message holds the URL, and so the password
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("ratelimit.redis_url: %w", err)
	}
	ro.DialTimeout = redisDialTimeout
	ro.ReadTimeout = redisIOTimeout
	ro.WriteTimeout = redisIOTimeout
	ro.PoolTimeout = redisPoolTimeout
	ro.PoolSize = max(ro.PoolSize, redisPoolSize)
	ro.MaxRetries = -1 // no retries: a failure degrades at once
	if pw := opts.RedisPassword; pw != nil {
		user := ro.Username
		ro.Password = ""
		ro.CredentialsProviderContext = func(ctx context.Context) (string, string, error) {
			p, err := pw(ctx)
			return user, p, err
		}
	}
	client := goredis.NewClient(ro)
	rl := redis.New(client, redis.Config{Prefix: opts.RedisPrefix})

	var startReason string
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if err := rl.Ping(pctx); err != nil {
		startReason = err.Error()
	}
	cancel()
	fcfg := ratelimit.FallbackConfig{
		Name:          ratelimit.BackendRedis,
		Primary:       rl,
		Probe:         rl.Ping,
		Mode:          cfg.OnRedisFailure,
		Clock:         opts.Clock,
		Logger:        log,
		Auditor:       opts.Auditor,
		ProbeMin:      opts.ProbeMin,
		ProbeMax:      opts.ProbeMax,
		StartDegraded: startReason,
	}
	if cfg.OnRedisFailure == ratelimit.OnFailureLocal {
		fcfg.Local = local
	}
	fb, err := ratelimit.NewFallback(fcfg)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("ratelimit: %w", err)
	}
	s.Limiter, s.fallback, s.client = fb, fb, client
	log.Info("rate limiting in redis", "addr", ro.Addr, "db", ro.DB, "on_redis_failure", cfg.OnRedisFailure,
		"default", cfg.Default.String(), "tiers", len(cfg.Tiers), "reachable", startReason == "")
	return s, nil
}

// Policy returns the policy for a principal's tier: the tier's own when
// configured, otherwise the default. The result is shared; do not modify.
func (s *Service) Policy(tier string) *ratelimit.Policy {
	if p, ok := s.policies[tier]; ok {
		return p
	}
	return s.def
}

// Config returns the validated config with defaults applied.
func (s *Service) Config() ratelimit.Config { return s.cfg }

// Healthy reports the backend state for /health/ready details; see
// ratelimit.Fallback.Healthy. The memory backend is always healthy.
func (s *Service) Healthy() (bool, string) {
	if s.fallback == nil {
		return true, ratelimit.BackendMemory + ": ok"
	}
	return s.fallback.Healthy()
}

// Ping checks that Redis answers now (for /health/ready); it returns nil
// for the memory backend, which has no server.
func (s *Service) Ping(ctx context.Context) error {
	if s.client == nil {
		return nil
	}
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis unreachable: %w", err)
	}
	return nil
}

// Close stops the recovery probe and closes the Redis client.
func (s *Service) Close() error {
	var errs []error
	if s.fallback != nil {
		errs = append(errs, s.fallback.Close())
	}
	if s.client != nil {
		if err := s.client.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close redis client: %w", err))
		}
	}
	return errors.Join(errs...)
}
