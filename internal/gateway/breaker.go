package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/metrics"
)

// upstreamBreaker is the circuit breaker of one upstream, shared by every
// route to it.
type upstreamBreaker struct {
	cb       *gobreaker.CircuitBreaker[*http.Response]
	timeout  time.Duration
	openedAt atomic.Int64 // unix nanos the breaker last opened
}

// breakerTransport sends one route's requests through its own transport
// and its upstream's breaker. Only the upstream's failures count:
// transport errors, timeouts (the route's timeout and total_timeout) and
// 502/503/504 answers. A caller's doing is left out of the counts — the
// client hung up (its context is canceled) or its request body failed
// (cut off, the 413 cap of limitedBody included) — and any other answer,
// 4xx included, is a success. The gateway's own refusals never reach the
// breaker. While it is open, requests fail at once with errBreakerOpen.
type breakerTransport struct {
	rt http.RoundTripper
	*upstreamBreaker
	m *metrics.Route // the route's upstream durations; nil: none
}

// upstreamFailure carries a 5xx answer out of the breaker (which counts it
// as a failure) so it can still reach the client.
type upstreamFailure struct{ res *http.Response }

func (upstreamFailure) Error() string { return "upstream answered 5xx" }

// callerFailure carries an error the caller caused out of the breaker,
// which excludes it from the counts.
type callerFailure struct{ err error }

func (e callerFailure) Error() string { return e.err.Error() }

// isCallerFailure is the breaker's IsExcluded. It runs on every request,
// so it asserts the type (the breaker hands back the error as returned)
// rather than calling errors.As, which would allocate.
func isCallerFailure(err error) bool {
	_, ok := err.(callerFailure)
	return ok
}

var errBreakerOpen = errors.New("circuit breaker open")

// callerCaused tells whether a failed round trip was the caller's doing.
// A canceled context is the client's (total_timeout ends it with
// DeadlineExceeded instead, which is the upstream's).
func callerCaused(req *http.Request) bool {
	ctx := req.Context()
	if ctx.Err() == context.Canceled {
		return true
	}
	ex := exchangeFrom(ctx)
	return ex != nil && (ex.bodyErr.Load() || ex.tooLarge.Load() || ex.slowBody.Load())
}

func (b *breakerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := b.cb.Execute(func() (*http.Response, error) {
		var start time.Time
		if b.m != nil {
			start = time.Now()
		}
		res, err := b.rt.RoundTrip(req)
		if b.m != nil {
			b.m.Upstream(time.Since(start))
		}
		if err != nil {
			if callerCaused(req) {
				return nil, callerFailure{err}
			}
			return nil, err
		}
		switch res.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return nil, upstreamFailure{res}
		}
		return res, nil
	})
	if err == nil {
		return res, nil
	}
	var uf upstreamFailure
	switch cf, isCaller := err.(callerFailure); {
	case isCaller:
		return nil, cf.err
	case errors.As(err, &uf):
		return uf.res, nil
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return nil, errBreakerOpen
	}
	return res, err
}

// retryAfter is how long until the open breaker lets a probe through.
func (b *upstreamBreaker) retryAfter() time.Duration {
	left := b.timeout - time.Since(time.Unix(0, b.openedAt.Load()))
	if left < time.Second {
		left = time.Second
	}
	return left
}

// breakers holds one breaker per upstream.
type breakers struct {
	mu sync.Mutex
	m  map[string]*upstreamBreaker
}

// get returns a transport that sends through rt and the breaker of
// upstream, creating the breaker with s for the first route to it.
func (bs *breakers) get(upstream string, rt http.RoundTripper, s gatehouse.Breaker, g *Gateway) *breakerTransport {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.m == nil {
		bs.m = map[string]*upstreamBreaker{}
	}
	if b := bs.m[upstream]; b != nil {
		return &breakerTransport{rt: rt, upstreamBreaker: b}
	}
	b := &upstreamBreaker{timeout: s.OpenTimeout}
	b.cb = gobreaker.NewCircuitBreaker[*http.Response](gobreaker.Settings{
		Name:        upstream,
		MaxRequests: uint32(s.HalfOpenRequests),
		Interval:    time.Minute,
		Timeout:     s.OpenTimeout,
		IsExcluded:  isCallerFailure,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= uint32(s.ConsecutiveFailures) ||
				(c.Requests >= uint32(s.MinRequests) && float64(c.TotalFailures)/float64(c.Requests) >= s.FailureRatio)
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				b.openedAt.Store(time.Now().UnixNano())
			}
			g.breakerChanged(name, from.String(), to.String())
		},
	})
	bs.m[upstream] = b
	g.cfg.Metrics.BreakerState(upstreamLabel(upstream), metrics.BreakerClosed)
	return &breakerTransport{rt: rt, upstreamBreaker: b}
}

// states returns each upstream's breaker state.
func (bs *breakers) states() map[string]string {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	out := make(map[string]string, len(bs.m))
	for u, b := range bs.m {
		out[u] = b.cb.State().String()
	}
	return out
}

// check is a readiness check: not ready only in the sense of a warning
// (it is not critical): an open breaker is listed.
func (bs *breakers) check(ctx context.Context) error {
	var open []string
	for u, st := range bs.states() {
		if st != gobreaker.StateClosed.String() {
			open = append(open, u+" "+st)
		}
	}
	if len(open) == 0 {
		return nil
	}
	sort.Strings(open)
	return errors.New("circuit breakers not closed: " + strings.Join(open, ", "))
}

// breakerChanged logs and audits a breaker transition.
func (g *Gateway) breakerChanged(upstream, from, to string) {
	level := slog.LevelInfo
	if to == gobreaker.StateOpen.String() {
		level = slog.LevelWarn
	}
	g.log.Log(context.Background(), level, "circuit breaker state changed", "upstream", upstream, "from", from, "to", to)
	state := metrics.BreakerClosed
	switch to {
	case gobreaker.StateOpen.String():
		state = metrics.BreakerOpen
	case gobreaker.StateHalfOpen.String():
		state = metrics.BreakerHalfOpen
	}
	g.cfg.Metrics.BreakerState(upstreamLabel(upstream), state)
	if g.cfg.Auditor != nil {
		g.cfg.Auditor.Record(context.Background(), gatehouse.Event{
			Time: g.clock.Now().UTC(), Type: "breaker.state_changed", Actor: gatehouse.Actor{Kind: "system"},
			Action: "transition", Resource: "upstream:" + upstream, Outcome: gatehouse.OutcomeSuccess,
			Details: map[string]any{"from": from, "to": to},
		})
	}
}

// upstreamLabel is an upstream's scheme and host, its breaker's metrics
// label: no user info, path or query, which could carry a secret.
func upstreamLabel(upstream string) string {
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" {
		return "invalid"
	}
	return u.Scheme + "://" + u.Host
}
