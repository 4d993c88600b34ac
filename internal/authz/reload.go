package authz

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Log keys.
const (
	logKeySource   = "source"
	logKeyRevision = "revision"
	logKeySHA256   = "sha256"
	logKeyError    = "error"
)

// Reload reads the configured source again and, when its content changed,
// compiles and tests it and swaps it in atomically. Decisions in flight
// finish on the policy they started with; none fails. A policy that does
// not compile or fails its tests is refused (audited as policy.refused) and
// the serving policy stays. Reload returns nil when the content is
// unchanged. It is safe to call concurrently with Decide and with itself.
func (e *Engine) Reload(ctx context.Context) error {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()

	src := e.cfg.Source()
	f, err := e.fetch(ctx)
	now := e.clock.Now()
	if errors.Is(err, errNotModified) {
		e.setStatus(func(s *Status) {
			s.LastCheck, s.NextRetry = now, time.Time{}
			if e.refusedHash == "" {
				// Keep reporting a refused bundle until a new one replaces it.
				s.Failures, s.LastError = 0, ""
			}
		})
		return nil
	}
	if err != nil {
		// The source could not be read at all; a syntax error lands here too
		// (the bundle reader parses), with file:line in err.
		switch {
		case isFetchError(err):
			e.log.WarnContext(ctx, "policy source unreadable", logKeySource, src, logKeyError, err)
		case f.hash != "" && f.hash == e.refusedHash:
			// Refused before; already audited.
		default:
			e.refuse(ctx, src, f, err)
		}
		e.setStatus(func(s *Status) { s.LastCheck = now; s.LastError = err.Error(); s.Failures++ })
		return fmt.Errorf("load policy from %s: %w", src, err)
	}
	e.etag = f.etag
	if cur := e.state.Load(); cur != nil && cur.hash == f.hash {
		e.setStatus(func(s *Status) { s.LastCheck = now; s.Failures = 0; s.LastError = "" })
		return nil
	}
	if f.hash == e.refusedHash {
		e.setStatus(func(s *Status) { s.LastCheck = now })
		return fmt.Errorf("load policy from %s: unchanged since refused: %s", src, e.refusedErr)
	}

	c, err := compile(ctx, f, e.opts.TestTimeout)
	if err != nil {
		e.refuse(ctx, src, f, err)
		e.setStatus(func(s *Status) { s.LastCheck = now; s.LastError = err.Error(); s.Failures++ })
		return fmt.Errorf("load policy from %s: %w", src, err)
	}
	e.refusedHash, e.refusedErr = "", ""

	var gen uint64 = 1
	if cur := e.state.Load(); cur != nil {
		gen = cur.generation + 1
	}
	st := &loaded{compiled: c, generation: gen, source: src, loadedAt: now}
	if c.cacheOK && e.opts.CacheSize >= 0 {
		size := e.opts.CacheSize
		if size == 0 {
			size = DefaultCacheSize
		}
		st.cache = newDecisionCache(size)
	}
	e.state.Store(st)

	cacheWhy := c.cacheWhy
	if e.opts.CacheSize < 0 {
		cacheWhy = "disabled by configuration"
	}
	e.setStatus(func(s *Status) {
		s.Ready = true
		s.Revision, s.SHA256, s.LoadedAt, s.Generation, s.Tests = c.revision, c.hash, now, gen, c.tests
		s.Cache = st.cache != nil
		s.CacheKeyFields = nil
		if s.Cache {
			s.CacheKeyFields = c.cacheMask.names()
		}
		s.CacheDisabled = ""
		if !s.Cache {
			s.CacheDisabled = cacheWhy
		}
		s.LastCheck, s.LastError, s.Failures, s.NextRetry = now, "", 0, time.Time{}
	})
	e.log.InfoContext(ctx, "policy loaded", logKeySource, src, logKeyRevision, c.revision,
		logKeySHA256, c.hash, "generation", gen, "tests", c.tests, "cache", st.cache != nil,
		"cache_disabled_reason", cacheWhy)
	e.audit(ctx, gatehouse.Event{
		Type:     EventPolicyLoaded,
		Action:   "policy.load",
		Resource: src,
		Outcome:  gatehouse.OutcomeSuccess,
		Details: map[string]any{
			"revision":   c.revision,
			"sha256":     c.hash,
			"generation": gen,
			"tests":      c.tests,
			"cache":      st.cache != nil,
		},
	})
	return nil
}

// fetchError marks failures to reach a source, as opposed to bad content.
type fetchError struct{ err error }

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

func isFetchError(err error) bool {
	var fe *fetchError
	return errors.As(err, &fe)
}

func (e *Engine) fetch(ctx context.Context) (fetched, error) {
	switch {
	case e.cfg.Dir != "":
		return readDir(e.cfg.Dir)
	case e.cfg.Bundle != "" && isURL(e.cfg.Bundle):
		return fetchBundle(ctx, e.client, e.cfg.Bundle, e.currentETag())
	case e.cfg.Bundle != "":
		return readBundleFile(e.cfg.Bundle)
	}
	return readFS(e.opts.Default)
}

// currentETag is the ETag to send: only while a policy serves, so that a
// refused or lost policy is fetched whole again.
func (e *Engine) currentETag() string {
	if e.state.Load() == nil {
		return ""
	}
	return e.etag
}

// refuse audits and logs a policy that was read but not accepted.
func (e *Engine) refuse(ctx context.Context, src string, f fetched, err error) {
	if f.hash != "" {
		e.refusedHash, e.refusedErr = f.hash, err.Error()
	}
	e.etag = f.etag
	revision := f.bundle.Manifest.Revision
	e.log.ErrorContext(ctx, "policy refused; the serving policy stays", logKeySource, src,
		logKeyRevision, revision, logKeySHA256, f.hash, logKeyError, err)
	e.audit(ctx, gatehouse.Event{
		Type:     EventPolicyRefused,
		Action:   "policy.load",
		Resource: src,
		Outcome:  gatehouse.OutcomeFailure,
		Reason:   err.Error(),
		Details: map[string]any{
			"revision": revision,
			"sha256":   f.hash,
			"serving":  e.Revision(),
		},
	})
}

func (e *Engine) audit(ctx context.Context, ev gatehouse.Event) {
	if e.opts.Auditor == nil {
		return
	}
	ev.Time = e.clock.Now().UTC()
	ev.ID = e.newID().String()
	ev.Actor = gatehouse.Actor{Kind: "system", ID: "authz"}
	if err := e.opts.Auditor.Record(ctx, ev); err != nil {
		e.log.ErrorContext(ctx, "audit policy event", "type", ev.Type, logKeyError, err)
	}
}

func (e *Engine) setStatus(f func(*Status)) {
	e.statusMu.Lock()
	f(&e.status)
	e.statusMu.Unlock()
}

// Run polls the policy source until ctx is done and returns ctx.Err(). A
// bundle URL is polled every Config.PollInterval (default
// DefaultPollInterval); a directory or bundle file only when PollInterval
// is set. Failures are retried with exponential backoff and jitter, from
// Options.RetryMin up to the poll interval, and reported in Status; Run
// never gives up. With nothing to poll Run returns nil at once.
func (e *Engine) Run(ctx context.Context) error {
	interval := e.cfg.pollInterval()
	if interval == 0 {
		return nil
	}
	failures := 0
	delay := interval
	if e.state.Load() == nil {
		delay = e.opts.RetryMin
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		err := e.Reload(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			failures++
			delay = backoff(e.opts.RetryMin, interval, failures)
			next := e.clock.Now().Add(delay)
			e.setStatus(func(s *Status) { s.NextRetry = next })
			e.log.WarnContext(ctx, "policy reload failed; retrying", logKeySource, e.cfg.Source(),
				"attempt", failures, "retry_in", delay.String(), logKeyError, err)
		} else {
			failures = 0
			delay = interval
		}
		t.Reset(delay)
	}
}

// backoff is min*2^(n-1), capped at maxDelay, with ±20% jitter.
func backoff(minDelay, maxDelay time.Duration, n int) time.Duration {
	d := minDelay
	for i := 1; i < n && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10 // #nosec G404 -- poll jitter, not a secret
	return max(d+jitter, time.Millisecond)
}
