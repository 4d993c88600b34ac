// Package tracing exports OpenTelemetry traces of the request path to a
// collector over OTLP/HTTP, with a sampler no caller can steer, and reads
// the W3C trace context a request arrives with, within bounds. Wiring
// happens in internal/app; the gateway starts the spans (docs/tracing.md).
package tracing

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentationName names the tracer of the request path.
const InstrumentationName = "github.com/gatehouse/gatehouse/internal/gateway"

// Config configures a Provider.
type Config struct {
	// URL is where spans are posted (http://collector:4318/v1/traces).
	URL string
	// Headers are sent with every export. They may hold credentials: they
	// are never logged.
	Headers map[string]string
	// SampleRatio is the fraction of new traces recorded, 0 to 1.
	SampleRatio float64
	// TrustParentSampling follows the sampled flag of a traceparent that
	// came through a trusted hop (ContextWithTrustedHop); otherwise a
	// caller's flag is ignored and SampleRatio decides.
	TrustParentSampling bool
	ServiceName         string
	ServiceVersion      string
	// Timeout bounds one export (0: 10s); Gzip compresses exports.
	Timeout time.Duration
	Gzip    bool
	// TLS is the client TLS to the collector (nil: system roots).
	TLS *tls.Config
	// Logger is told when exports start and stop failing; nil: discarded.
	Logger *slog.Logger
	// QueueSize bounds the spans waiting for export (0: 2048); beyond,
	// spans are dropped. BatchTimeout is the longest a span waits
	// (0: 5s).
	QueueSize    int
	BatchTimeout time.Duration
}

// Provider is a running exporter and the tracer of the request path. It
// is safe for concurrent use.
type Provider struct {
	tp  *sdktrace.TracerProvider
	exp *exporter
}

// New starts a Provider. It does not contact the collector: a collector
// that is down makes exports fail (logged, spans dropped), not the start.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.URL == "" {
		return nil, errors.New("tracing: no collector URL")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = sdktrace.DefaultMaxQueueSize
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = sdktrace.DefaultScheduleDelay * time.Millisecond
	}
	// Our own client: no proxy from the environment, and the config's
	// TLS and timeout rather than OTEL_EXPORTER_OTLP_* variables.
	client := &http.Client{
		Timeout: cfg.Timeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     cfg.TLS,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		},
	}
	compression := otlptracehttp.NoCompression
	if cfg.Gzip {
		compression = otlptracehttp.GzipCompression
	}
	headers := cfg.Headers
	if headers == nil {
		headers = map[string]string{} // and not OTEL_EXPORTER_OTLP_HEADERS
	}
	inner, err := otlptracehttp.New(ctx,
		otlptracehttp.WithEndpointURL(cfg.URL),
		otlptracehttp.WithHeaders(headers),
		otlptracehttp.WithCompression(compression),
		otlptracehttp.WithTimeout(cfg.Timeout),
		otlptracehttp.WithHTTPClient(client),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: exporter: %w", err)
	}
	exp := &exporter{inner: inner, log: cfg.Logger.WithGroup("tracing"), url: cfg.URL}
	res := resource.NewSchemaless(
		semconv.ServiceName(cfg.ServiceName),
		semconv.ServiceVersion(cfg.ServiceVersion),
		semconv.TelemetrySDKLanguageGo,
		semconv.TelemetrySDKName("opentelemetry"),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(NewSampler(cfg.SampleRatio, cfg.TrustParentSampling)),
		sdktrace.WithBatcher(exp,
			sdktrace.WithMaxQueueSize(cfg.QueueSize),
			sdktrace.WithBatchTimeout(cfg.BatchTimeout),
			sdktrace.WithExportTimeout(cfg.Timeout+time.Second),
		),
	)
	return &Provider{tp: tp, exp: exp}, nil
}

// Tracer returns the tracer of the request path.
func (p *Provider) Tracer() trace.Tracer { return p.tp.Tracer(InstrumentationName) }

// Shutdown exports the spans still queued, until ctx ends, and stops.
func (p *Provider) Shutdown(ctx context.Context) error {
	if err := p.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// Failures is how many exports have failed since the start.
func (p *Provider) Failures() int64 { return p.exp.failures.Load() }

// exporter wraps the OTLP exporter to tell the operator, once, that
// exports fail and, once, that they work again, instead of leaving it to
// OpenTelemetry's global error handler (which writes to stderr for every
// batch).
type exporter struct {
	inner    sdktrace.SpanExporter
	log      *slog.Logger
	url      string
	failing  atomic.Bool
	failures atomic.Int64
}

func (e *exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.inner.ExportSpans(ctx, spans)
	if err != nil {
		e.failures.Add(1)
		if !e.failing.Swap(true) {
			e.log.WarnContext(ctx, "trace export failing; spans are dropped until the collector accepts them", "url", e.url, "spans", len(spans), "err", err)
		}
		return nil
	}
	if e.failing.Swap(false) {
		e.log.InfoContext(ctx, "trace export works again", "url", e.url)
	}
	return nil
}

func (e *exporter) Shutdown(ctx context.Context) error { return e.inner.Shutdown(ctx) }

// NewSampler returns the sampler of the request path. A span whose parent
// is local follows it. A new trace is recorded with probability ratio. A
// span continuing a caller's trace is too: its sampled flag is followed
// only when trustParent is set and the request came through a trusted hop
// (ContextWithTrustedHop). The draw never depends on the trace id, which
// the caller chooses, so no caller can pick ids that are always recorded.
func NewSampler(ratio float64, trustParent bool) sdktrace.Sampler {
	root := ratioSampler{ratio: ratio}
	remote := remoteSampler{ratio: root, trust: trustParent}
	return sdktrace.ParentBased(root, sdktrace.WithRemoteParentSampled(remote), sdktrace.WithRemoteParentNotSampled(remote))
}

// ratioSampler records with probability ratio, drawn afresh for each
// trace.
type ratioSampler struct{ ratio float64 }

func (s ratioSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	d := sdktrace.Drop
	if s.ratio >= 1 || s.ratio > 0 && rand.Float64() < s.ratio { // #nosec G404 -- a sampling draw: math/rand/v2's runtime-seeded ChaCha8 source is unpredictable enough, and nothing secret comes of it
		d = sdktrace.RecordAndSample
	}
	return sdktrace.SamplingResult{Decision: d, Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState()}
}

func (s ratioSampler) Description() string {
	return "RandomRatio{" + strconv.FormatFloat(s.ratio, 'g', -1, 64) + "}"
}

// remoteSampler decides for a span whose parent is a caller's.
type remoteSampler struct {
	ratio ratioSampler
	trust bool
}

func (s remoteSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if s.trust && trustedHop(p.ParentContext) {
		psc := trace.SpanContextFromContext(p.ParentContext)
		d := sdktrace.Drop
		if psc.IsSampled() {
			d = sdktrace.RecordAndSample
		}
		return sdktrace.SamplingResult{Decision: d, Tracestate: psc.TraceState()}
	}
	return s.ratio.ShouldSample(p)
}

func (s remoteSampler) Description() string {
	if s.trust {
		return "TrustedParentOr" + s.ratio.Description()
	}
	return s.ratio.Description()
}

type trustedHopKey struct{}

// ContextWithTrustedHop marks ctx as the context of a request whose TCP
// peer is a trusted proxy, whose trace context a sampler that trusts
// parents may follow.
func ContextWithTrustedHop(ctx context.Context) context.Context {
	return context.WithValue(ctx, trustedHopKey{}, true)
}

func trustedHop(ctx context.Context) bool {
	v, _ := ctx.Value(trustedHopKey{}).(bool)
	return v
}

// MaxTraceState is the most bytes of a caller's tracestate kept: the 512
// every participant must propagate (W3C Trace Context §3.3.1.5).
const MaxTraceState = 512

// maxTraceStateMember is the size above which a member is dropped first.
const maxTraceStateMember = 128

// Extract returns the remote span context of a request's traceparent and
// tracestate headers, or an invalid one when the traceparent is missing
// or malformed (a new trace starts). A tracestate is then ignored too,
// and one longer than MaxTraceState is cut as the W3C recommends:
// members longer than 128 bytes go first, then members from the end.
func Extract(h http.Header) trace.SpanContext {
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(h)))
	if !sc.IsValid() {
		return trace.SpanContext{}
	}
	if raw := h.Get("Tracestate"); len(raw) > MaxTraceState {
		sc = sc.WithTraceState(boundTraceState(sc.TraceState()))
	}
	return sc
}

// boundTraceState cuts ts to at most MaxTraceState bytes.
func boundTraceState(ts trace.TraceState) trace.TraceState {
	if len(ts.String()) <= MaxTraceState {
		return ts
	}
	var b strings.Builder
	ts.Walk(func(k, v string) bool {
		m := len(k) + 1 + len(v)
		if m > maxTraceStateMember {
			return true
		}
		sep := 0
		if b.Len() > 0 {
			sep = 1
		}
		if b.Len()+sep+m > MaxTraceState {
			return false
		}
		if sep == 1 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
		return true
	})
	out, err := trace.ParseTraceState(b.String())
	if err != nil { // members of a parsed state parse again; never here
		return trace.TraceState{}
	}
	return out
}

// Attribute keys of the request path's spans that semconv does not name.
const (
	AttrRoute         = attribute.Key("gatehouse.route")
	AttrOutcome       = attribute.Key("gatehouse.outcome")
	AttrPrincipalKind = attribute.Key("gatehouse.principal.kind")
	AttrAuthnResult   = attribute.Key("gatehouse.authn.result")
	AttrRateLimit     = attribute.Key("gatehouse.ratelimit.policy")
	AttrAllowed       = attribute.Key("gatehouse.allowed")
	AttrEventType     = attribute.Key("gatehouse.audit.event_type")
)
