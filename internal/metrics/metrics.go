// Package metrics holds Gatehouse's Prometheus metrics: one registry per
// server, the handles the request path and the background services report
// into, and the /metrics exposition. It is the only package that imports
// the Prometheus client; the others see plain Go types.
package metrics

import (
	"context"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse/gatehouse"
)

const namespace = "gatehouse"

// Route labels of requests that matched no configured route: Gatehouse's
// own paths and the unmatched ones. Parentheses keep them apart from
// configured route names.
const (
	RouteNone        = "(none)"         // no route matched (404, 405, bad path)
	RouteHealth      = "(health)"       // /health, /health/live, /health/ready
	RouteForwardAuth = "(forward_auth)" // GET /auth/verify
	RouteAuthorize   = "(authorize)"    // POST /v1/authorize
	RouteEndpoint    = "(endpoint)"     // /oauth/token, JWKS, discovery
)

// AuthnReason is why an authentication failed, the reason label of
// gatehouse_authn_failures_total. The set is fixed: the label never holds
// client input.
type AuthnReason int

// The reasons an authentication fails.
const (
	AuthnMissing     AuthnReason = iota // no credential on a route that needs one
	AuthnMalformed                      // unreadable header, wrong scheme, two credentials
	AuthnInvalid                        // unknown key or token, bad signature, wrong issuer
	AuthnExpired                        // expired key or token
	AuthnRevoked                        // revoked key, token or client
	AuthnDisabled                       // the owning user is disabled
	AuthnCertificate                    // a client certificate mapped to no principal
	AuthnEndpoint                       // an endpoint's own check (client credentials at /oauth/token)
	AuthnError                          // the check could not run (store down)
	numAuthnReasons
)

var authnReasonNames = [numAuthnReasons]string{"missing", "malformed", "invalid", "expired", "revoked", "disabled", "certificate", "endpoint", "error"}

// String returns the label value.
func (r AuthnReason) String() string {
	if r < 0 || r >= numAuthnReasons {
		return "error"
	}
	return authnReasonNames[r]
}

// Breaker states, the values of gatehouse_breaker_state.
const (
	BreakerClosed   = 0
	BreakerHalfOpen = 1
	BreakerOpen     = 2
)

// Options configure New.
type Options struct {
	Version string          // gatehouse_build_info's version label
	Clock   gatehouse.Clock // for ages; nil: the system clock
	// ScrapeTimeout bounds each source read at scrape time (a store ping,
	// a backup listing); 0: 2s.
	ScrapeTimeout time.Duration
}

// Metrics is one server's metrics and their registry. Its methods are
// safe for concurrent use; a nil *Metrics records nothing, so components
// can take one optionally.
type Metrics struct {
	reg   *prometheus.Registry
	clock gatehouse.Clock

	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	upstream    *prometheus.HistogramVec
	authn       [numAuthnReasons]prometheus.Counter
	authzAllow  prometheus.Counter
	authzDeny   prometheus.Counter
	authzEval   prometheus.Histogram
	rateLimited *prometheus.CounterVec
	tiers       sync.Map // tier name → prometheus.Counter
	breaker     *prometheus.GaugeVec
	auditAppend prometheus.Histogram
	auditErrors prometheus.Counter
	revocation  prometheus.Histogram
	cspReports  prometheus.Counter

	sources *sources

	// sampler keeps the last hour of traffic for Summary (summary.go).
	samplerOnce sync.Once
	sampler     *Sampler
}

// durationBuckets are the classic buckets of the request and upstream
// histograms, 1 ms to 30 s; native histograms are exposed beside them to
// scrapers that ask for them.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// fastBuckets are for steps that take micro- to milliseconds: a policy
// evaluation, an audit append.
var fastBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}

func nativeHistogram(name, help string, buckets []float64) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{
		Namespace: namespace, Name: name, Help: help, Buckets: buckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	}
}

// New returns the metrics of one server in a registry of their own, with
// the Go runtime and process collectors and gatehouse_build_info.
func New(opts Options) *Metrics {
	if opts.Clock == nil {
		opts.Clock = gatehouse.SystemClock{}
	}
	if opts.ScrapeTimeout <= 0 {
		opts.ScrapeTimeout = 2 * time.Second
	}
	m := &Metrics{reg: prometheus.NewRegistry(), clock: opts.Clock}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "requests_total",
		Help: "Requests answered on the public listener, by route name, method and status code."}, []string{"route", "method", "code"})
	m.duration = prometheus.NewHistogramVec(nativeHistogram("request_duration_seconds",
		"Time from a request's arrival to the end of its response, by route name.", durationBuckets), []string{"route"})
	m.upstream = prometheus.NewHistogramVec(nativeHistogram("upstream_duration_seconds",
		"Time from sending a request upstream to the upstream's response headers, by route name.", durationBuckets), []string{"route"})
	authn := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "authn_failures_total",
		Help: "Failed authentications at the gateway, by reason."}, []string{"reason"})
	for r := range numAuthnReasons {
		m.authn[r] = authn.WithLabelValues(r.String())
	}
	authz := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "authz_decisions_total",
		Help: "Policy decisions, by whether they allowed the request."}, []string{"allow"})
	m.authzAllow, m.authzDeny = authz.WithLabelValues("true"), authz.WithLabelValues("false")
	m.authzEval = prometheus.NewHistogram(nativeHistogram("authz_eval_seconds", "Time to evaluate the policy for one decision.", fastBuckets))
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "ratelimit_rejections_total",
		Help: "Requests refused with 429 by a rate limit, by the limit's name (its tier, default, or route:NAME)."}, []string{"tier"})
	m.breaker = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "breaker_state",
		Help: "State of each upstream's circuit breaker: 0 closed, 1 half-open, 2 open."}, []string{"upstream"})
	m.auditAppend = prometheus.NewHistogram(nativeHistogram("audit_append_seconds",
		"Time to append one audit event, until it is committed (group commit and fsync included).", fastBuckets))
	m.auditErrors = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "audit_append_errors_total",
		Help: "Audit appends that failed (the request was answered 503, or the event was lost)."})
	m.revocation = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "revocation_propagation_seconds",
		Help:    "Time from a revocation or change on one replica to its application on this one (clocks of both replicas).",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}})
	m.cspReports = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "ui_csp_reports_total",
		Help: "Content-Security-Policy violation reports the admin console received (report-uri and Reporting API alike; one per violation)."})
	build := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "build_info",
		Help: "Always 1; the labels say which build runs.", ConstLabels: prometheus.Labels{"version": opts.Version, "goversion": runtime.Version(), "revision": revision()}})
	build.Set(1)
	m.sources = newSources(opts.Clock, opts.ScrapeTimeout)
	m.reg.MustRegister(m.requests, m.duration, m.upstream, authn, authz, m.authzEval, m.rateLimited, m.breaker,
		m.auditAppend, m.auditErrors, m.revocation, m.cspReports, build, m.sources,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// revision is the VCS revision the binary was built from, or "unknown".
func revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// Handler serves the exposition of m's registry (text, or protobuf to
// scrapers that ask for it, which native histograms need).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError})
}

// Route is the metrics of one configured route, resolved once when the
// gateway is built so that a request costs no label lookup. A nil *Route
// records nothing.
type Route struct {
	m        *Metrics
	name     string
	duration prometheus.Observer
	upstream prometheus.Observer
	// codes holds the requests_total child of each method and status, made
	// on first use: [method][code-minCode].
	codes [numMethods]atomic.Pointer[codeTable]
}

const (
	minCode = 100
	maxCode = 599
)

type codeTable [maxCode - minCode + 1]atomic.Pointer[counter]

type counter struct{ prometheus.Counter }

// The methods with a label of their own; any other is "other", so that a
// client cannot mint label values.
var methodNames = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "other"}

const numMethods = len(methodNames)

func methodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodPatch:
		return 4
	case http.MethodDelete:
		return 5
	case http.MethodOptions:
		return 6
	case http.MethodConnect:
		return 7
	case http.MethodTrace:
		return 8
	}
	return numMethods - 1
}

// Route returns the handle of the route named name (a configured name or
// one of the Route* labels). Call it when building, not per request.
func (m *Metrics) Route(name string) *Route {
	if m == nil {
		return nil
	}
	return &Route{m: m, name: name, duration: m.duration.WithLabelValues(name), upstream: m.upstream.WithLabelValues(name)}
}

// Done records a request answered with code after d.
func (r *Route) Done(method string, code int, d time.Duration) {
	if r == nil {
		return
	}
	if code < minCode || code > maxCode {
		code = 599 // not an HTTP status: keep the label set bounded
	}
	mi := methodIndex(method)
	t := r.codes[mi].Load()
	if t == nil {
		r.codes[mi].CompareAndSwap(nil, new(codeTable))
		t = r.codes[mi].Load()
	}
	c := t[code-minCode].Load()
	if c == nil {
		c = &counter{r.m.requests.WithLabelValues(r.name, methodNames[mi], strconv.Itoa(code))}
		t[code-minCode].Store(c)
	}
	c.Inc()
	r.duration.Observe(d.Seconds())
}

// Upstream records an upstream round trip of d (to the response headers).
func (r *Route) Upstream(d time.Duration) {
	if r == nil {
		return
	}
	r.upstream.Observe(d.Seconds())
}

// AuthnFailure counts one failed authentication.
func (m *Metrics) AuthnFailure(reason AuthnReason) {
	if m == nil {
		return
	}
	if reason < 0 || reason >= numAuthnReasons {
		reason = AuthnError
	}
	m.authn[reason].Inc()
}

// AuthzDecision counts one policy decision that took d to evaluate.
func (m *Metrics) AuthzDecision(allow bool, d time.Duration) {
	if m == nil {
		return
	}
	if allow {
		m.authzAllow.Inc()
	} else {
		m.authzDeny.Inc()
	}
	m.authzEval.Observe(d.Seconds())
}

// RateLimited counts one request refused by the rate limit named tier.
// Tier names come from the config (tiers, default, route:NAME), never
// from a request.
func (m *Metrics) RateLimited(tier string) {
	if m == nil {
		return
	}
	c, ok := m.tiers.Load(tier)
	if !ok {
		c, _ = m.tiers.LoadOrStore(tier, m.rateLimited.WithLabelValues(tier))
	}
	c.(prometheus.Counter).Inc()
}

// BreakerState sets the state (BreakerClosed, BreakerHalfOpen,
// BreakerOpen) of the breaker of upstream, a configured upstream's
// scheme and host.
func (m *Metrics) BreakerState(upstream string, state int) {
	if m == nil {
		return
	}
	m.breaker.WithLabelValues(upstream).Set(float64(state))
}

// AuditAppend records one audit append that took d and failed if err is
// not nil.
func (m *Metrics) AuditAppend(d time.Duration, err error) {
	if m == nil {
		return
	}
	m.auditAppend.Observe(d.Seconds())
	if err != nil {
		m.auditErrors.Inc()
	}
}

// Revocation records a change published at sent by another replica and
// applied here now.
func (m *Metrics) Revocation(sent time.Time) {
	if m == nil || sent.IsZero() {
		return
	}
	d := time.Since(sent) // the wall clock, as the sender's
	if d < 0 {
		d = 0 // the other replica's clock is ahead
	}
	m.revocation.Observe(d.Seconds())
}

// CSPReport counts one Content-Security-Policy violation report received
// by the admin console (gatehouse_ui_csp_reports_total).
func (m *Metrics) CSPReport() {
	if m == nil {
		return
	}
	m.cspReports.Inc()
}

// Auditor returns next with every Record timed into
// gatehouse_audit_append_seconds and its failures counted.
func (m *Metrics) Auditor(next gatehouse.Auditor) gatehouse.Auditor {
	if m == nil {
		return next
	}
	return &timedAuditor{next: next, m: m}
}

type timedAuditor struct {
	next gatehouse.Auditor
	m    *Metrics
}

func (a *timedAuditor) Record(ctx context.Context, e gatehouse.Event) error {
	start := time.Now()
	err := a.next.Record(ctx, e)
	a.m.AuditAppend(time.Since(start), err)
	return err
}
