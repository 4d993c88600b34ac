// Package gateway is the public listener's request path: trace ids,
// security headers, input limits, routing, authentication, authorization
// and the reverse proxy to upstreams, plus the health endpoints. See
// DESIGN.md §1; each step is one middleware, composed once at start.
package gateway

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/certs"
	"github.com/gatehouse/gatehouse/internal/httpjson"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/redact"
	"github.com/gatehouse/gatehouse/internal/tracing"
)

// Handler is a step of the request path. Returning an error hands the
// response to the one place that turns errors into JSON replies.
type Handler interface {
	ServeHTTP(w http.ResponseWriter, r *http.Request) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP calls f.
func (f HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

// Middleware wraps a Handler.
type Middleware func(Handler) Handler

// Authenticator turns a presented credential into a principal. Failures
// are EUNAUTHORIZED *gatehouse.Error values.
type Authenticator interface {
	Authenticate(ctx context.Context, credential string) (*gatehouse.Principal, error)
}

// Authorizer decides whether a request may proceed. The policy engine
// (authz.Engine) implements it.
type Authorizer interface {
	Decide(ctx context.Context, in *authz.Input) (authz.Decision, error)
}

// Gate refuses callers before the policy is asked, whatever it would
// decide (incident lockdown: lockdown.Lockdown). Check returns a
// client-safe error to refuse p (nil: anonymous); it is called on every
// authorized request, so it must be cheap when it admits everyone.
type Gate interface {
	Check(p *gatehouse.Principal) error
}

// RateLimiter admits or refuses requests per principal; the rate-limit
// service implements it.
type RateLimiter interface {
	ratelimit.Limiter
	// Policy returns the named limit for a tier ("" or unknown: default).
	Policy(tier string) *ratelimit.Policy
}

// ReadinessCheck reports whether one dependency is ready. A failing check
// that is not Critical is shown in /health/ready but does not make the
// instance unready (a degraded dependency it can serve without).
type ReadinessCheck struct {
	Name     string
	Check    func(ctx context.Context) error
	Critical bool
	// Detail, if set, adds a line of state to the check's result (which
	// replica leads, say), whether or not it passed.
	Detail func() string
}

// CertAuthenticator maps a verified client certificate to a principal.
type CertAuthenticator interface {
	AuthenticateCert(cert *x509.Certificate) (*gatehouse.Principal, error)
}

// Config configures a Gateway.
type Config struct {
	Routes        []gatehouse.Route
	Authenticator Authenticator
	Certs         CertAuthenticator // nil: client certificates authenticate no one
	Authorizer    Authorizer
	Gate          Gate        // nil: none; asked before Authorizer on routes, forward-auth and the decision API
	RateLimiter   RateLimiter // nil: no rate limits
	Mode          string      // "prod" or "dev", passed to the policy
	PolicyHeaders []string    // request headers the policy may read
	// Endpoints are Gatehouse's own public paths (OAuth, JWKS…), served by
	// exact path before routing and without authentication.
	Endpoints map[string]http.Handler
	Auditor   gatehouse.Auditor // optional; records one event per request
	// SourceIP is how client addresses appear in audit events: "full"
	// (default), "truncate" (IPv4 /24, IPv6 /48) or "hash" (HMAC-SHA-256
	// under SourceIPKey, hex).
	SourceIP    string
	SourceIPKey []byte
	Logger      *slog.Logger
	Clock       gatehouse.Clock
	AccessLog   bool
	// AccessLogWriter, when set, takes the access lines directly, one
	// Write per line, in exactly the JSON slog.NewJSONHandler(w, nil) would
	// write for Logger under the group "gateway"; Logger still decides
	// whether a line's level is enabled. Set it only when Logger is that
	// JSON handler on that writer (serve's default); nil: lines go through
	// Logger.
	AccessLogWriter io.Writer
	MaxHeaders      int // most header fields a request may carry; 0: unlimited
	MaxHeaderBytes  int // most bytes of header fields; 0: unlimited
	Ready           []ReadinessCheck
	Version         string
	// Redactor redacts response bodies of routes with Redact set; nil: a
	// default one.
	Redactor *redact.Redactor
	// Transport is the base transport to upstreams; nil: a gateway-tuned one.
	Transport *http.Transport
	// TrustedProxies are the networks whose X-Forwarded-For the gateway
	// believes (read right to left up to the first untrusted hop); empty:
	// the client is always the TCP peer. See clientip.go.
	TrustedProxies []netip.Prefix
	// ForwardAuth configures GET /auth/verify; its zero value refuses
	// every forward-auth call.
	ForwardAuth ForwardAuth
	// PreAuth limits failed authentications and unknown routes per source
	// address; the zero value sets no limit.
	PreAuth PreAuthConfig
	// IPv6Prefix is how many leading bits of an IPv6 client address the
	// per-source limits (PreAuth, anonymous rate limits) key on; 0: 64
	// (ratelimit.SourcePrefix). IPv4 clients are keyed by address.
	IPv6Prefix int
	// ReadTimeout and MinRate bound request bodies until the route is
	// known (which then applies its own); 0: no bound.
	ReadTimeout time.Duration
	MinRate     int64
	// Metrics is where the request path counts requests, refusals and
	// durations; nil: nowhere.
	Metrics *metrics.Metrics
	// Tracer, when set, traces each request: a server span continuing
	// the caller's traceparent, with a child for each step (tracing.go,
	// docs/tracing.md). nil: no tracing, and no cost but a nil check.
	Tracer trace.Tracer
}

// Gateway serves the public listener. It is safe for concurrent use.
type Gateway struct {
	cfg      Config
	log      *slog.Logger
	clock    gatehouse.Clock
	router   *router
	handler  Handler // the request path for configured routes
	verify   Handler // forward-auth: GET /auth/verify
	decide   Handler // decision API: POST /v1/authorize
	health   *health
	breakers breakers
	trusted  trustedProxies
	fwd      forwardAuth
	fwdOff   sync.Once // warns once that forward-auth is called but not configured
	// revision is the policy revision last put in an audit event's
	// details, boxed once (boxedRevision) rather than per event.
	revision atomic.Pointer[boxedString]
	pre      *preAuth     // nil: no pre-authentication limit
	tracer   trace.Tracer // nil: no tracing
	lines    sync.Pool    // *[]byte buffers for access lines
	// m is the metrics (nil: none) and the handles of the requests that
	// match no configured route, resolved once.
	m                                        *metrics.Metrics
	mNone, mHealth, mVerify, mDecide, mOwnEP *metrics.Route
}

// New compiles the request path for cfg.
func New(cfg Config) (*Gateway, error) {
	if cfg.Authenticator == nil || cfg.Authorizer == nil {
		return nil, errors.New("gateway: an authenticator and an authorizer are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = gatehouse.SystemClock{}
	}
	if cfg.Redactor == nil {
		cfg.Redactor = redact.New()
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger.WithGroup("gateway"), clock: cfg.Clock, pre: newPreAuth(cfg.PreAuth, cfg.IPv6Prefix), tracer: cfg.Tracer}
	g.lines.New = func() any { b := make([]byte, 0, 512); return &b }
	if m := cfg.Metrics; m != nil {
		g.m = m
		g.mNone, g.mHealth, g.mVerify = m.Route(metrics.RouteNone), m.Route(metrics.RouteHealth), m.Route(metrics.RouteForwardAuth)
		g.mDecide, g.mOwnEP = m.Route(metrics.RouteAuthorize), m.Route(metrics.RouteEndpoint)
	}
	g.trusted = newTrustedProxies(cfg.TrustedProxies)
	var err error
	if g.fwd, err = newForwardAuth(cfg.ForwardAuth); err != nil {
		return nil, err
	}
	g.health = &health{checks: append(cfg.Ready, ReadinessCheck{Name: "circuit_breakers", Check: g.breakers.check}), version: cfg.Version}

	base := cfg.Transport
	if base == nil {
		base = NewTransport()
	}
	transports := map[time.Duration]*http.Transport{}
	bufs := newBufferPool()
	routes := make([]*route, 0, len(cfg.Routes))
	for _, rc := range cfg.Routes {
		target, err := url.Parse(rc.Upstream)
		if err != nil {
			return nil, fmt.Errorf("route %s: upstream: %w", rc.Name, err)
		}
		var t *http.Transport
		if rc.UpstreamTLS != nil || rc.ConnectTimeout > 0 {
			// Its own transport: a client certificate or dial timeout of
			// its own.
			if t, err = routeTransport(base, rc); err != nil {
				return nil, fmt.Errorf("route %s: %w", rc.Name, err)
			}
		} else if t = transports[rc.Timeout]; t == nil {
			t = base.Clone()
			t.ResponseHeaderTimeout = rc.Timeout
			transports[rc.Timeout] = t
		}
		r := &route{Route: rc, resource: "route:" + rc.Name, metrics: cfg.Metrics.Route(rc.Name), upstreamHost: target.Host}
		if rc.JSONSchema != "" {
			if r.schema, err = compileSchema(rc.JSONSchema); err != nil {
				return nil, fmt.Errorf("route %s: %w", rc.Name, err)
			}
		}
		r.breaker = g.breakers.get(rc.Upstream, t, rc.Breaker, g)
		r.breaker.m = r.metrics
		r.input = authz.NewRouteInput(&r.Route)
		if rc.RateLimit.Requests > 0 {
			r.limit = ratelimit.NewPolicy("route:"+rc.Name, ratelimit.Limit{Requests: rc.RateLimit.Requests, Per: rc.RateLimit.Per})
			r.limitPrefix = r.resource + "|"
		}
		r.proxy = newProxy(r, target, r.breaker, bufs, g.log, cfg.Redactor, g.tracer != nil)
		routes = append(routes, r)
	}
	if g.router, err = newRouter(routes); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.warnForwardAuthBody(routes)

	// The request path of DESIGN.md §1 after trace and headers (which
	// ServeHTTP does itself): limits → route → authn → authz → proxy.
	// Forward-auth and the decision API reuse the same steps.
	g.handler = chain(HandlerFunc(g.proxyStep), g.limits, g.routeStep, g.upgradeStep, g.methodOverride, g.authenticate, g.rateLimit, g.authorize, g.limitBody, g.readLimits, g.validateBody)
	g.verify = chain(HandlerFunc(verifyOK), g.forwardedTarget, g.routeStep, g.verifyBody, g.authenticate, g.rateLimit, g.authorize)
	g.decide = chain(HandlerFunc(g.decisionAPI), g.authenticate, g.rateLimit)
	return g, nil
}

// routeTransport builds the transport of a route with upstream TLS or a
// connect timeout of its own.
func routeTransport(base *http.Transport, rc gatehouse.Route) (*http.Transport, error) {
	t := base.Clone()
	t.ResponseHeaderTimeout = rc.Timeout
	if rc.ConnectTimeout > 0 {
		t.DialContext = (&net.Dialer{Timeout: rc.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	if u := rc.UpstreamTLS; u != nil {
		tc, err := certs.NewUpstreamConfig(certs.UpstreamConfig{CAFile: u.CAFile, CertFile: u.CertFile, KeyFile: u.KeyFile, ServerName: u.ServerName})
		if err != nil {
			return nil, fmt.Errorf("upstream tls: %w", err)
		}
		t.TLSClientConfig = tc
	}
	return t, nil
}

// chain wraps h in the middlewares, the first outermost.
func chain(h Handler, mw ...Middleware) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// SetDraining marks the gateway as shutting down: /health/ready answers 503
// so load balancers stop sending new requests.
func (g *Gateway) SetDraining() { g.health.draining.Store(true) }

// ServeHTTP runs the request path.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := g.clock.Now()
	ex := &exchange{start: start}
	ex.sourceIP, ex.forwardedFor = g.trusted.resolve(r)
	ex.requestID = httpjson.RequestID(r)
	if g.tracer == nil {
		ex.trace = newTraceParent(r.Header.Get("Traceparent"))
	}

	h := w.Header()
	httpjson.SetSecurityHeaders(h)
	ex.headerValues[0] = ex.requestID
	h["X-Request-Id"] = ex.headerValues[0:1:1]

	ex.Context = r.Context()
	var ctx context.Context = ex
	if g.tracer != nil {
		ctx = g.startServerSpan(ctx, r, ex)
	}
	r = r.WithContext(ctx)
	rec := &ex.rec
	*rec = recorder{ResponseWriter: w, g: g, ex: ex, r: r}
	if r.Body != nil && r.Body != http.NoBody && (g.cfg.ReadTimeout > 0 || g.cfg.MinRate > 0) {
		ex.body = newDeadlineBody(w, r, g.cfg.ReadTimeout, g.cfg.MinRate, func() { ex.slowBody.Store(true) })
		r.Body = ex.body
	}
	defer func() {
		if v := recover(); v != nil {
			g.recovered(rec, r, ex, v)
		}
	}()

	var err error
	mr := g.mNone // the metrics of requests that reach no route
	pre := g.pre != nil && g.preAuthApplies(r, ex)
	if pre {
		// Before anything is looked up: an address that spent its
		// failures costs one map read.
		err = g.preAuthCheck(ctx, ex, rec)
	}
	switch path := r.URL.Path; {
	case err != nil:
	case isHealthPath(path):
		// Probes are not security events; auditing each would bury the
		// trail (and cost an fsync per probe).
		rec.noAudit = true
		mr = g.mHealth
		err = g.health.serve(rec, r, false)
	case isVerifyPath(path):
		mr = g.mVerify
		err = g.serveVerify(rec, r)
	case path == "/v1/authorize":
		mr = g.mDecide
		err = g.decide.ServeHTTP(rec, r)
	case g.cfg.Endpoints[path] != nil:
		mr = g.mOwnEP
		g.cfg.Endpoints[path].ServeHTTP(rec, r)
	default:
		err = g.handler.ServeHTTP(rec, r)
	}
	if err != nil {
		ex.err = err
		if ex.outcome == "" {
			ex.outcome = outcomeFor(err)
		}
		if !rec.wroteHeader {
			httpjson.WriteError(rec, r, g.log, err)
		}
	}
	if ex.authFailed {
		g.m.AuthnFailure(metrics.AuthnEndpoint)
	}
	if pre && (ex.authFailed || (err != nil && preAuthFailure(ex, err))) {
		if sum, ok := g.pre.fail(ex.sourceIP, start); ok {
			g.recordSummary(ctx, sum)
		}
	}
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	if g.m != nil {
		g.observe(mr, r, ex, rec)
	}
	if g.cfg.AccessLog {
		g.logAccess(ctx, r, ex, rec)
	}
	if ex.span != nil {
		g.endServerSpan(r, ex, rec)
	}
}

// observe counts the request and its duration under its route's name
// (mr for requests that reached no configured route).
func (g *Gateway) observe(mr *metrics.Route, r *http.Request, ex *exchange, rec *recorder) {
	if ex.route != nil && ex.target == nil {
		mr = ex.route.metrics
	}
	mr.Done(r.Method, rec.status, g.clock.Now().Sub(ex.start))
}

// recovered ends a request whose handler panicked, with its one audit
// event. http.ErrAbortHandler (the reverse proxy's way of cutting a
// response short when the client or the upstream goes away mid-body) is
// passed on so the server drops the connection; any other panic is logged
// and answered 500 if nothing was sent yet, otherwise the connection is
// dropped too, since the response is incomplete.
func (g *Gateway) recovered(rec *recorder, r *http.Request, ex *exchange, v any) {
	if v == http.ErrAbortHandler {
		if !rec.wroteHeader {
			ex.err, ex.outcome = errClientClosed, gatehouse.OutcomeFailure
			rec.abandon(StatusClientClosedRequest)
		}
		if g.m != nil {
			g.observe(g.mNone, r, ex, rec)
		}
		if g.cfg.AccessLog {
			g.logAccess(r.Context(), r, ex, rec)
		}
		if ex.span != nil {
			ex.span.SetStatus(codes.Error, "connection aborted")
			g.endServerSpan(r, ex, rec)
		}
		panic(v)
	}
	g.log.ErrorContext(r.Context(), "handler panicked", "request_id", ex.requestID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	started := rec.wroteHeader
	if !started {
		ex.err, ex.outcome = errPanic, gatehouse.OutcomeFailure
		h := rec.Header()
		for k := range h {
			if k != "X-Request-Id" {
				delete(h, k)
			}
		}
		httpjson.SetSecurityHeaders(h)
		httpjson.WriteError(rec, r, nil, errPanic)
	}
	if g.m != nil {
		g.observe(g.mNone, r, ex, rec)
	}
	if g.cfg.AccessLog {
		g.logAccess(r.Context(), r, ex, rec)
	}
	if ex.span != nil {
		ex.span.SetStatus(codes.Error, "handler panicked")
		g.endServerSpan(r, ex, rec)
	}
	if started {
		panic(http.ErrAbortHandler)
	}
}

var errPanic = gatehouse.Errorf(gatehouse.EINTERNAL, "internal error")

// limits refuses malformed paths and oversized header sets.
func (g *Gateway) limits(next Handler) Handler {
	return HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if err := CheckPath(r.URL.EscapedPath()); err != nil {
			return err
		}
		if g.cfg.MaxHeaders > 0 || g.cfg.MaxHeaderBytes > 0 {
			// net/http enforces MaxHeaderBytes only on a connection's
			// first read window, so keep-alive requests are checked here.
			fields, size := 0, 0
			for k, vs := range r.Header {
				fields += len(vs)
				for _, v := range vs {
					size += len(k) + len(v) + 4 // ": " and CRLF
				}
			}
			if g.cfg.MaxHeaders > 0 && fields > g.cfg.MaxHeaders {
				return gatehouse.Errorf(gatehouse.EINVALID, "too many header fields: %d, at most %d", fields, g.cfg.MaxHeaders)
			}
			if g.cfg.MaxHeaderBytes > 0 && size > g.cfg.MaxHeaderBytes {
				return gatehouse.Errorf(gatehouse.EHEADERSTOOLARGE, "request headers larger than %d bytes", g.cfg.MaxHeaderBytes)
			}
		}
		return next.ServeHTTP(w, r)
	})
}

// routeStep finds the route; 404 for none, 405 with Allow for a method the
// owning prefix does not take.
func (g *Gateway) routeStep(next Handler) Handler {
	return HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		rt, grp := g.router.match(r.URL.Path, r.Method)
		if rt == nil {
			if grp != nil {
				w.Header().Set("Allow", grp.allow)
				return gatehouse.Errorf(gatehouse.EMETHOD, "method %s is not allowed on %s; allowed: %s", r.Method, grp.prefix, grp.allow)
			}
			return gatehouse.Errorf(gatehouse.ENOTFOUND, "no route for %s", r.URL.Path)
		}
		if err := g.router.ambiguous(grp, rt, r.URL.Path); err != nil {
			return err
		}
		exchangeFrom(r.Context()).route = rt
		return next.ServeHTTP(w, r)
	})
}

// authenticate reads the credential and sets the principal. Public routes
// admit anonymous callers but still refuse a bad credential.
func (g *Gateway) authenticate(next Handler) Handler {
	return HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ex := exchangeFrom(r.Context())
		var sp trace.Span
		if ex.recording {
			sp = g.startStep(r.Context(), spanAuthn, trace.SpanKindInternal)
		}
		err := g.authn(w, r, ex)
		if sp != nil {
			kind := string(gatehouse.KindAnonymous)
			if ex.principal != nil {
				kind = string(ex.principal.Kind)
			}
			endStep(sp, err, tracing.AttrAuthnResult.String(authnResult(ex, err)), tracing.AttrPrincipalKind.String(kind))
		}
		if err != nil {
			return err
		}
		return next.ServeHTTP(w, r)
	})
}

// authn authenticates the request's credential into ex.principal (nil,
// and no error, for an anonymous caller of a public route).
func (g *Gateway) authn(w http.ResponseWriter, r *http.Request, ex *exchange) error {
	cred, err := credential(r)
	if err != nil {
		g.m.AuthnFailure(metrics.AuthnMalformed)
		return err
	}
	if cred == "" && g.cfg.Certs != nil && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		p, err := g.cfg.Certs.AuthenticateCert(r.TLS.VerifiedChains[0][0])
		if err != nil {
			ex.eventType = "authn.failure"
			g.m.AuthnFailure(metrics.AuthnCertificate)
			return err
		}
		ex.principal = p
		return nil
	}
	if cred == "" {
		if ex.route != nil && ex.route.Public {
			return nil
		}
		ex.eventType = "authn.failure"
		g.m.AuthnFailure(metrics.AuthnMissing)
		return errMissingCredential
	}
	p, err := g.cfg.Authenticator.Authenticate(r.Context(), cred)
	if err != nil {
		ex.eventType = "authn.failure"
		code := gatehouse.ErrorCode(err)
		if g.m != nil {
			g.m.AuthnFailure(authnReason(err, code))
		}
		if code == gatehouse.EUNAUTHORIZED {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token", error_description="`+gatehouse.ErrorMessage(err)+`"`)
		}
		return err
	}
	ex.principal = p
	return nil
}

// authnReason is the metrics reason of a failed authentication.
// code is err's gatehouse.ErrorCode.
func authnReason(err error, code string) metrics.AuthnReason {
	switch {
	case code != gatehouse.EUNAUTHORIZED:
		return metrics.AuthnError
	case errors.Is(err, authn.ErrExpired):
		return metrics.AuthnExpired
	case errors.Is(err, authn.ErrRevoked):
		return metrics.AuthnRevoked
	case errors.Is(err, authn.ErrMalformed):
		return metrics.AuthnMalformed
	case errors.Is(err, authn.ErrUserDisabled):
		return metrics.AuthnDisabled
	}
	return metrics.AuthnInvalid
}

var errMissingCredential = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "authentication required: send Authorization: Bearer <key> or X-API-Key: <key>")

// credential extracts the bearer credential from Authorization or
// X-API-Key. Two different credentials in one request are refused.
func credential(r *http.Request) (string, error) {
	var bearer string
	if v := r.Header["Authorization"]; len(v) > 0 {
		if len(v) > 1 {
			return "", gatehouse.Errorf(gatehouse.EINVALID, "more than one Authorization header")
		}
		const prefix = "Bearer "
		if len(v[0]) <= len(prefix) || !equalFoldASCII(v[0][:len(prefix)], prefix) {
			return "", gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "unsupported Authorization scheme: use Bearer")
		}
		bearer = v[0][len(prefix):]
	}
	if v := r.Header["X-Api-Key"]; len(v) > 0 {
		if len(v) > 1 || (bearer != "" && bearer != v[0]) {
			return "", gatehouse.Errorf(gatehouse.EINVALID, "conflicting credentials in Authorization and X-API-Key")
		}
		return v[0], nil
	}
	return bearer, nil
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// rateLimit admits the request under the principal's tier limit (per
// client IP for anonymous callers) and the route's own limit, if it has
// one. A request refused by either consumes neither. Every limited
// response carries the RateLimit headers; a refusal is 429 with
// Retry-After.
func (g *Gateway) rateLimit(next Handler) Handler {
	if g.cfg.RateLimiter == nil {
		return next
	}
	return HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ex := exchangeFrom(r.Context())
		tier := ""
		if ex.principal != nil {
			tier = ex.principal.Tier
		}
		var sp trace.Span
		if ex.recording {
			sp = g.startStep(r.Context(), spanRateLimit, trace.SpanKindInternal)
		}
		policy := g.cfg.RateLimiter.Policy(tier)
		key := ratelimit.Key(ex.principal, ex.sourceIP, g.cfg.IPv6Prefix)
		var d ratelimit.Decision
		var err error
		if rt := ex.route; rt != nil && rt.limit != nil {
			rules := [2]ratelimit.Rule{{Key: key, Limit: policy.Limit}, {Key: rt.limitPrefix + key, Limit: rt.limit.Limit}}
			d, err = g.cfg.RateLimiter.AllowAll(r.Context(), rules[:])
			if d.Rule == 1 {
				policy = rt.limit
			}
		} else {
			d, err = g.cfg.RateLimiter.Allow(r.Context(), key, policy.Limit)
		}
		if sp != nil {
			endRateLimit(sp, policy.Name, d.Allowed, err)
		}
		if err != nil {
			g.log.ErrorContext(r.Context(), "rate limiter failed", "request_id", ex.requestID, "err", err)
			return gatehouse.Errorf(gatehouse.EUNAVAILABLE, "rate limiter unavailable; retry shortly")
		}
		policy.SetHeadersIn(w.Header(), d, &ex.rateLimitValues)
		if !d.Allowed {
			g.m.RateLimited(policy.Name)
			ex.outcome, ex.eventType = gatehouse.OutcomeDenied, "ratelimit.refused"
			return ratelimit.Error(d)
		}
		return next.ServeHTTP(w, r)
	})
}

// authorize asks the policy whether the principal may make this request
// on this route. Deny unless the policy allows.
func (g *Gateway) authorize(next Handler) Handler {
	return HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ex := exchangeFrom(r.Context())
		d, err := g.decideFor(r, ex, authz.ActionHTTPRequest, "")
		if err != nil {
			return err
		}
		if !d.Allow {
			ex.eventType = "authz.denied"
			return denial(d)
		}
		return next.ServeHTTP(w, r)
	})
}

// decideFor evaluates the policy for the request and records the decision
// in the exchange. The Gate refuses first (lockdown: ELOCKDOWN, 503). A
// policy that has not loaded yet is EUNAVAILABLE; an
// evaluation error is logged under the decision id and denies.
func (g *Gateway) decideFor(r *http.Request, ex *exchange, action, resource string) (authz.Decision, error) {
	if g.cfg.Gate != nil {
		if err := g.cfg.Gate.Check(ex.principal); err != nil {
			ex.outcome, ex.eventType = gatehouse.OutcomeDenied, "lockdown.refused"
			return authz.Decision{}, err
		}
	}
	in := &ex.input // in the exchange: no allocation of its own
	*in = authz.Input{
		Request: authz.RequestInput{
			Method:   r.Method,
			Path:     r.URL.Path,
			Host:     r.Host,
			SourceIP: ex.sourceIP,
		},
		Action:   action,
		Resource: resource,
		Mode:     g.cfg.Mode,
	}
	if p := ex.principal; p != nil {
		in.Principal = authz.NewPrincipalInput(p, authz.Fingerprint(p.Fingerprint))
	} else {
		in.Principal = authz.NewPrincipalInput(nil, authz.Fingerprint{})
	}
	if ex.route != nil {
		in.Route = ex.route.input
	}
	if len(g.cfg.PolicyHeaders) > 0 {
		in.Request.Headers = authz.FilterHeaders(r.Header, g.cfg.PolicyHeaders)
	}
	var t0 time.Time
	if g.m != nil {
		t0 = time.Now()
	}
	var sp trace.Span
	if ex.recording {
		sp = g.startStep(r.Context(), spanAuthz, trace.SpanKindInternal)
	}
	d, err := g.cfg.Authorizer.Decide(r.Context(), in)
	if sp != nil {
		endAuthz(sp, d, err)
	}
	ex.decision, ex.decided = d, true
	if errors.Is(err, authz.ErrNotReady) {
		return d, gatehouse.Errorf(gatehouse.EUNAVAILABLE, "authorization policy is not loaded yet; see /health/ready")
	}
	if g.m != nil {
		g.m.AuthzDecision(d.Allow, time.Since(t0))
	}
	if err != nil {
		g.log.ErrorContext(r.Context(), "policy evaluation failed", "request_id", ex.requestID, "decision_id", d.DecisionID.String(), "err", err)
	}
	if !d.Allow {
		ex.outcome = gatehouse.OutcomeDenied
	}
	return d, nil
}

func denial(d authz.Decision) error {
	return &gatehouse.Error{
		Code:       gatehouse.EFORBIDDEN,
		Message:    "access denied by policy",
		Reasons:    d.Reasons,
		DecisionID: d.DecisionID.String(),
	}
}

// limitBody caps the request body at the route's max_body: a declared
// Content-Length over it is refused at once, and a chunked body is cut off
// and answered 413 once it passes the cap.
func (g *Gateway) limitBody(next Handler) Handler {
	return HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ex := exchangeFrom(r.Context())
		max := ex.route.MaxBody
		if max > 0 && r.Body != nil && r.Body != http.NoBody {
			if r.ContentLength > max {
				return tooLarge(max)
			}
			r.Body = &limitedBody{rc: r.Body, left: max, ex: ex}
		}
		return next.ServeHTTP(w, r)
	})
}

func tooLarge(max int64) error {
	return gatehouse.Errorf(gatehouse.ETOOLARGE, "request body larger than %d bytes", max)
}

func outcomeFor(err error) string {
	switch gatehouse.ErrorCode(err) {
	case gatehouse.EFORBIDDEN, gatehouse.EUNAUTHORIZED, gatehouse.ERATELIMITED:
		return gatehouse.OutcomeDenied
	}
	return gatehouse.OutcomeFailure
}
