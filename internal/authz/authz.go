// Package authz is Gatehouse's authorization engine: it evaluates an
// embedded OPA (Rego) policy over a request's principal, route and action,
// denying unless the policy allows. Policies come from the embedded default
// (package policy), a directory or an OPA bundle (file or polled URL); a
// policy is compiled and tested before it replaces the one serving, and
// decisions are cached when the policy's input dependencies are known.
package authz

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
)

// Audit event types written for policy loads.
const (
	EventPolicyLoaded  = "policy.loaded"
	EventPolicyRefused = "policy.refused"
)

// ErrNotReady is returned by Decide while no policy has been loaded yet
// (a bundle URL that has not answered). The decision is a denial.
var ErrNotReady = errors.New("authz: no policy loaded")

// ErrEvaluation wraps every error from evaluating the policy. The decision
// returned with it is a denial.
var ErrEvaluation = errors.New("authz: policy evaluation failed")

// Decision is the outcome of one authorization.
type Decision struct {
	// Allow is true only when the policy's allow rule is true.
	Allow bool `json:"allow"`
	// Reasons are the policy's messages (data.gatehouse.authz.reasons),
	// sorted. The slice may be shared with other decisions: do not modify.
	Reasons []string `json:"reasons"`
	// Revision identifies the policy that decided: the bundle manifest's
	// revision, or "sha256:" and the first 16 hex digits of its content hash.
	Revision string `json:"revision"`
	// DecisionID is unique per call, for logs, audit and the 403 body.
	DecisionID ulid.ULID `json:"decision_id"`
	// Cached reports whether the answer came from the decision cache.
	Cached bool `json:"-"`
}

// Options are the engine's dependencies and tuning knobs. The zero value
// works: no audit, the default logger, the system clock.
type Options struct {
	// Auditor receives policy.loaded and policy.refused events. Nil means
	// loads are only logged.
	Auditor gatehouse.Auditor
	// Logger is used under the group "authz"; nil means slog.Default().
	Logger *slog.Logger
	// Clock stamps loads and status; nil means the system clock.
	Clock gatehouse.Clock
	// HTTPClient fetches bundle URLs; nil means a client with a 30s timeout.
	HTTPClient *http.Client
	// CacheSize bounds the decision cache (entries). Zero means
	// DefaultCacheSize; negative disables caching.
	CacheSize int
	// RetryMin is the first delay after a failed bundle fetch, doubled on
	// each further failure up to the poll interval. Zero means 1s.
	RetryMin time.Duration
	// TestTimeout bounds each policy test run at load. Zero means 5s.
	TestTimeout time.Duration
	// Default replaces the embedded default policy (for tests).
	Default fs.FS
}

// Engine decides authorization requests against the loaded policy. It is
// safe for concurrent use; Decide never blocks on a reload.
type Engine struct {
	cfg    Config
	opts   Options
	log    *slog.Logger
	clock  gatehouse.Clock
	client *http.Client
	ids    idGen

	state atomic.Pointer[loaded] // nil until the first successful load

	loadMu sync.Mutex // serializes loads; guards etag and refusedHash
	etag   string
	// refusedHash is the content last refused, so polling an unchanged bad
	// bundle does not audit it again.
	refusedHash string
	refusedErr  string

	statusMu sync.Mutex
	status   Status
}

// loaded is one published policy. It is immutable once published, except
// for its cache, which is safe for concurrent use.
type loaded struct {
	*compiled
	generation uint64
	source     string
	loadedAt   time.Time
	cache      *decisionCache // nil when decisions must not be cached
}

// Status is the engine's state for /health/ready and the admin API.
type Status struct {
	// Ready is true once a policy is serving.
	Ready  bool   `json:"ready"`
	Source string `json:"source"`
	// Revision and SHA256 identify the serving policy.
	Revision string    `json:"revision,omitempty"`
	SHA256   string    `json:"sha256,omitempty"`
	LoadedAt time.Time `json:"loaded_at,omitzero"`
	// Generation counts successful loads; the decision cache belongs to one
	// generation.
	Generation uint64 `json:"generation"`
	// Tests is how many Rego tests the serving policy passed at load.
	Tests int `json:"tests"`
	// Cache says whether decisions are cached, and on which input fields or
	// why not.
	Cache          bool     `json:"cache"`
	CacheKeyFields []string `json:"cache_key_fields,omitempty"`
	CacheDisabled  string   `json:"cache_disabled_reason,omitempty"`
	// CacheEntries is the number of cached decisions right now.
	CacheEntries int `json:"cache_entries"`
	// LastCheck is when the source was last read or polled.
	LastCheck time.Time `json:"last_check,omitzero"`
	// LastError is the last fetch or load failure, cleared by a success.
	LastError string `json:"last_error,omitempty"`
	// Failures counts consecutive failed fetches or loads.
	Failures  int       `json:"failures"`
	NextRetry time.Time `json:"next_retry,omitzero"`
}

// New returns an engine for cfg and loads its policy. A directory or bundle
// file that cannot be read, compiled or tested is an error. A bundle URL
// that cannot be fetched is not: the engine starts not ready (Decide denies
// with ErrNotReady) and Run keeps retrying.
func New(ctx context.Context, cfg Config, opts Options) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:    cfg,
		opts:   opts,
		log:    opts.Logger,
		clock:  opts.Clock,
		client: opts.HTTPClient,
		ids:    idGen{entropy: ulid.Monotonic(rand.Reader, 0)},
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	e.log = e.log.WithGroup("authz")
	if e.clock == nil {
		e.clock = gatehouse.SystemClock{}
	}
	if e.client == nil {
		e.client = &http.Client{Timeout: 30 * time.Second}
	}
	if e.opts.RetryMin <= 0 {
		e.opts.RetryMin = time.Second
	}
	if e.opts.TestTimeout <= 0 {
		e.opts.TestTimeout = 5 * time.Second
	}
	if e.opts.Default == nil {
		e.opts.Default = policy.FS()
	}
	e.status.Source = cfg.Source()
	err := e.Reload(ctx)
	if err != nil && !isURL(cfg.Bundle) {
		return nil, err
	}
	return e, nil
}

// Decide evaluates the policy for in. Deny unless the policy allows.
//
// The error is nil for every answer the policy gives, allow or deny. When
// it is not nil the decision is a denial with a generic reason, and the
// gateway should:
//   - errors.Is(err, ErrNotReady): answer 503 (EUNAVAILABLE) — no policy
//     has been loaded yet, as /health/ready also reports;
//   - otherwise (ErrEvaluation, e.g. a runtime error in the policy or a
//     cancelled ctx): answer 403 (EFORBIDDEN) with the decision's reasons
//     and ID, never 500, and log err under the decision ID.
//
// Either way the denial is audited with Decision.Revision.
func (e *Engine) Decide(ctx context.Context, in *Input) (Decision, error) {
	d := Decision{DecisionID: e.newID()}
	st := e.state.Load()
	if st == nil {
		d.Reasons = []string{"authorization policy not loaded"}
		return d, ErrNotReady
	}
	d.Revision = st.revision
	if in == nil {
		d.Reasons = []string{"no authorization input"}
		return d, fmt.Errorf("%w: nil input", ErrEvaluation)
	}
	if st.cache == nil {
		c, err := st.eval(ctx, in)
		d.Allow, d.Reasons = c.allow, c.reasons
		return d, err
	}
	var buf [256]byte
	key := appendKey(buf[:0], in, st.cacheMask)
	if c, ok := st.cache.get(key); ok {
		d.Allow, d.Reasons, d.Cached = c.allow, c.reasons, true
		return d, nil
	}
	c, err := st.eval(ctx, in)
	d.Allow, d.Reasons = c.allow, c.reasons
	if err == nil {
		st.cache.put(key, c)
	}
	return d, err
}

// DecideUncached is Decide without the cache: it always evaluates the
// policy. It exists for tests and diagnostics.
func (e *Engine) DecideUncached(ctx context.Context, in *Input) (Decision, error) {
	d := Decision{DecisionID: e.newID()}
	st := e.state.Load()
	if st == nil {
		d.Reasons = []string{"authorization policy not loaded"}
		return d, ErrNotReady
	}
	d.Revision = st.revision
	c, err := st.eval(ctx, in)
	d.Allow, d.Reasons = c.allow, c.reasons
	return d, err
}

func (e *Engine) newID() ulid.ULID { return e.ids.next(ulid.Timestamp(e.clock.Now())) }

// idGen makes monotonic ULIDs without allocating (ulid.New makes its
// result escape through an interface call).
type idGen struct {
	mu      sync.Mutex
	entropy *ulid.MonotonicEntropy
	buf     [10]byte
}

func (g *idGen) next(ms uint64) ulid.ULID {
	var id ulid.ULID
	if err := id.SetTime(ms); err != nil {
		return ulid.Make()
	}
	g.mu.Lock()
	err := g.entropy.MonotonicRead(ms, g.buf[:])
	copy(id[6:], g.buf[:])
	g.mu.Unlock()
	if err != nil {
		// Entropy overflowed within one millisecond: fall back to the
		// package's generator rather than fail a request.
		return ulid.Make()
	}
	return id
}

// eval runs the prepared query. Any error or unexpected result denies.
func (l *loaded) eval(ctx context.Context, in *Input) (cachedDecision, error) {
	rs, err := l.query.Eval(ctx, rego.EvalParsedInput(in.astValue()))
	if err != nil {
		return cachedDecision{reasons: []string{"policy evaluation failed"}},
			fmt.Errorf("%w: %w", ErrEvaluation, err)
	}
	if len(rs) == 0 {
		// allow undefined: default deny.
		return cachedDecision{reasons: []string{"policy did not decide"}}, nil
	}
	b := rs[0].Bindings
	allow, ok := b["allow"].(bool)
	if !ok {
		return cachedDecision{reasons: []string{"policy evaluation failed"}},
			fmt.Errorf("%w: %s is %T, want boolean", ErrEvaluation, allowRef, b["allow"])
	}
	var reasons []string
	if rv, ok := b["reasons"].([]any); ok {
		reasons = make([]string, 0, len(rv))
		for _, r := range rv {
			if s, ok := r.(string); ok {
				reasons = append(reasons, s)
			} else {
				reasons = append(reasons, fmt.Sprint(r))
			}
		}
		slices.Sort(reasons)
	}
	if reasons == nil {
		reasons = []string{}
	}
	return cachedDecision{allow: allow, reasons: reasons}, nil
}

// Status returns a snapshot of the engine's state.
func (e *Engine) Status() Status {
	e.statusMu.Lock()
	defer e.statusMu.Unlock()
	s := e.status
	s.CacheKeyFields = slices.Clone(s.CacheKeyFields)
	s.CacheEntries = e.CacheLen()
	return s
}

// Revision returns the serving policy's revision, or "" before the first
// load.
func (e *Engine) Revision() string {
	if st := e.state.Load(); st != nil {
		return st.revision
	}
	return ""
}

// CacheLen returns the number of cached decisions for the serving policy.
func (e *Engine) CacheLen() int {
	if st := e.state.Load(); st != nil && st.cache != nil {
		return st.cache.len()
	}
	return 0
}
