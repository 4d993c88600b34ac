package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Audit event types emitted by Fallback on each transition.
const (
	EventDegraded  = "ratelimit.degraded"
	EventRecovered = "ratelimit.recovered"
)

// Log keys used by this package.
const (
	logKeyBackend  = "backend"
	logKeyMode     = "on_failure"
	logKeyError    = "error"
	logKeyDowntime = "downtime"
)

// Defaults for FallbackConfig.
const (
	DefaultProbeMin   = 250 * time.Millisecond
	DefaultProbeMax   = 5 * time.Second
	DefaultDenyRetry  = time.Second
	auditRecordBudget = 5 * time.Second
)

// FallbackConfig configures a Fallback.
type FallbackConfig struct {
	// Name of the primary backend in logs, events and health ("redis").
	Name string
	// Primary is the shared backend; Probe reports whether it is back.
	Primary Limiter
	Probe   func(ctx context.Context) error
	// Local serves decisions while Primary is down, when Mode is
	// OnFailureLocal. Its limits are per instance.
	Local Limiter
	// Mode is OnFailureLocal (default) or OnFailureDeny.
	Mode string
	// Clock stamps transitions; nil means the system clock.
	Clock gatehouse.Clock
	// Logger receives one line per transition; nil discards.
	Logger *slog.Logger
	// Auditor records one event per transition; nil records nothing.
	Auditor gatehouse.Auditor
	// ProbeMin and ProbeMax bound the exponential backoff between probes
	// while degraded; zero means DefaultProbeMin and DefaultProbeMax.
	ProbeMin, ProbeMax time.Duration
	// StartDegraded begins in the degraded state with this reason, for a
	// primary found unreachable at startup. Empty means healthy.
	StartDegraded string
}

// Fallback is a Limiter that uses a shared backend while it answers and
// degrades when it does not: it serves per-instance limits (Mode local) or
// refuses every request (Mode deny) until a background probe, backing off
// exponentially, finds the backend again. Requests never wait on the
// probe, and while degraded no request touches the primary. Each
// transition is logged once and recorded as an audit event. Fallback is
// safe for concurrent use; Close stops the probe.
type Fallback struct {
	cfg      FallbackConfig
	log      *slog.Logger
	degraded atomic.Bool
	stop     chan struct{}
	wg       sync.WaitGroup

	mu     sync.Mutex
	since  time.Time
	reason string
	closed bool
}

var _ Limiter = (*Fallback)(nil)

// NewFallback returns a Fallback; cfg.Primary, cfg.Probe and (for mode
// local) cfg.Local are required.
func NewFallback(cfg FallbackConfig) (*Fallback, error) {
	if cfg.Mode == "" {
		cfg.Mode = OnFailureLocal
	}
	switch {
	case cfg.Primary == nil || cfg.Probe == nil:
		return nil, errors.New("ratelimit fallback: primary and probe are required")
	case cfg.Mode != OnFailureLocal && cfg.Mode != OnFailureDeny:
		return nil, fmt.Errorf("ratelimit fallback: mode %q, want %q or %q", cfg.Mode, OnFailureLocal, OnFailureDeny)
	case cfg.Mode == OnFailureLocal && cfg.Local == nil:
		return nil, errors.New("ratelimit fallback: mode local needs a local limiter")
	}
	if cfg.Name == "" {
		cfg.Name = "primary"
	}
	if cfg.Clock == nil {
		cfg.Clock = gatehouse.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ProbeMin <= 0 {
		cfg.ProbeMin = DefaultProbeMin
	}
	if cfg.ProbeMax < cfg.ProbeMin {
		cfg.ProbeMax = max(DefaultProbeMax, cfg.ProbeMin)
	}
	f := &Fallback{cfg: cfg, log: cfg.Logger.With(logKeyBackend, cfg.Name), stop: make(chan struct{})}
	if cfg.StartDegraded != "" {
		f.degrade(cfg.StartDegraded)
	}
	return f, nil
}

// Allow implements Limiter.
func (f *Fallback) Allow(ctx context.Context, key string, limit Limit) (Decision, error) {
	if !f.degraded.Load() {
		d, err := f.cfg.Primary.Allow(ctx, key, limit)
		if !f.failed(ctx, err) {
			return d, err
		}
	}
	if f.cfg.Mode == OnFailureDeny {
		if err := limit.Validate(); err != nil {
			return Decision{}, fmt.Errorf("ratelimit: %w", err)
		}
		return deny(limit), nil
	}
	return f.cfg.Local.Allow(ctx, key, limit)
}

// AllowAll implements Limiter.
func (f *Fallback) AllowAll(ctx context.Context, rules []Rule) (Decision, error) {
	if !f.degraded.Load() {
		d, err := f.cfg.Primary.AllowAll(ctx, rules)
		if !f.failed(ctx, err) {
			return d, err
		}
	}
	if f.cfg.Mode == OnFailureDeny {
		if len(rules) == 0 || len(rules) > MaxRules {
			return Decision{}, fmt.Errorf("ratelimit: %d rules, want 1 to %d", len(rules), MaxRules)
		}
		for i := range rules {
			if err := rules[i].Limit.Validate(); err != nil {
				return Decision{}, fmt.Errorf("ratelimit: rule %d: %w", i, err)
			}
		}
		return deny(rules[0].Limit), nil
	}
	return f.cfg.Local.AllowAll(ctx, rules)
}

// Healthy reports whether the primary backend is in use, with a one-line
// detail for /health/ready. While degraded under mode local the gateway
// still serves (with per-instance limits), so callers may report it as a
// warning rather than as not ready; under mode deny every request is
// refused.
func (f *Fallback) Healthy() (bool, string) {
	if !f.degraded.Load() {
		return true, f.cfg.Name + ": ok"
	}
	f.mu.Lock()
	since, reason := f.since, f.reason
	f.mu.Unlock()
	what := "serving per-instance limits"
	if f.cfg.Mode == OnFailureDeny {
		what = "refusing all requests (on_redis_failure: deny)"
	}
	return false, fmt.Sprintf("%s: unreachable since %s (%s); %s",
		f.cfg.Name, since.UTC().Format(time.RFC3339), reason, what)
}

// Close stops the recovery probe and waits for it. It does not close the
// primary or local limiters.
func (f *Fallback) Close() error {
	f.mu.Lock()
	if !f.closed {
		f.closed = true
		close(f.stop)
	}
	f.mu.Unlock()
	f.wg.Wait()
	return nil
}

// failed reports whether err means the primary is down (and degrades if
// so). Cancellations by the caller and invalid limits are the caller's
// problem, not the backend's.
func (f *Fallback) failed(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil || errors.Is(err, ErrInvalidLimit) {
		return false
	}
	f.degrade(err.Error())
	return true
}

func (f *Fallback) degrade(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || f.degraded.Load() {
		return
	}
	f.since, f.reason = f.cfg.Clock.Now(), reason
	f.degraded.Store(true)
	f.log.Warn("rate-limit backend unreachable; degraded", logKeyMode, f.cfg.Mode, logKeyError, reason)
	f.wg.Add(1)
	go f.recover(f.since, reason)
}

// recover records the degradation, then probes with exponential backoff
// until the primary answers or Close is called.
func (f *Fallback) recover(since time.Time, reason string) {
	defer f.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-f.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	f.record(ctx, EventDegraded, gatehouse.OutcomeFailure, reason)

	wait := f.cfg.ProbeMin
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, pcancel := context.WithTimeout(ctx, max(f.cfg.ProbeMin, time.Second))
		err := f.cfg.Probe(pctx)
		pcancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		wait = min(wait*2, f.cfg.ProbeMax)
		t.Reset(wait)
	}
	f.mu.Lock()
	f.degraded.Store(false)
	down := f.cfg.Clock.Now().Sub(since)
	f.mu.Unlock()
	f.log.Info("rate-limit backend reachable again; recovered", logKeyDowntime, down.String())
	f.record(ctx, EventRecovered, gatehouse.OutcomeSuccess, "reachable again after "+down.Round(time.Millisecond).String())
}

func (f *Fallback) record(ctx context.Context, typ, outcome, reason string) {
	if f.cfg.Auditor == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, auditRecordBudget)
	defer cancel()
	e := gatehouse.Event{
		Time:     f.cfg.Clock.Now().UTC(),
		Type:     typ,
		Actor:    gatehouse.Actor{Kind: "system", ID: "ratelimit"},
		Action:   "ratelimit.backend",
		Resource: f.cfg.Name,
		Outcome:  outcome,
		Reason:   reason,
		Details:  map[string]any{"on_failure": f.cfg.Mode},
	}
	if err := f.cfg.Auditor.Record(ctx, e); err != nil {
		f.log.Error("record rate-limit transition", "type", typ, logKeyError, err.Error())
	}
}

// deny is the decision under mode deny while degraded.
func deny(l Limit) Decision {
	return Decision{Limit: l.Requests, Window: l.Per, Reset: DefaultDenyRetry, RetryAfter: DefaultDenyRetry}
}
