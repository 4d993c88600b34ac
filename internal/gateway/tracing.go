package gateway

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/netip"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/tracing"
)

// Span names of the request path (docs/tracing.md). The server span is
// named "{method} {route}" as OpenTelemetry's HTTP conventions say.
const (
	spanAuthn     = "gatehouse.authn"
	spanRateLimit = "gatehouse.ratelimit"
	spanAuthz     = "gatehouse.authz"
	spanUpstream  = "gatehouse.upstream"
	spanAudit     = "gatehouse.audit.append"
)

// The tracing of a request runs only when Config.Tracer is set: every
// hook below is reached through a nil check of g.tracer or a test of
// ex.recording, so that a gateway without tracing does no more than that.

// startServerSpan starts the request's server span, continuing the
// caller's traceparent when it is valid, and makes ex.trace (what the
// upstream, the access log and the audit event see) the span's. Health
// probes get no span, as they get no audit event.
func (g *Gateway) startServerSpan(ctx context.Context, r *http.Request, ex *exchange) context.Context {
	if isHealthPath(r.URL.Path) {
		ex.trace = newTraceParent(r.Header.Get("Traceparent"))
		return ctx
	}
	parent := tracing.Extract(r.Header)
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
		if g.trusted.peerTrusted(r) {
			ctx = tracing.ContextWithTrustedHop(ctx)
		}
	}
	method := spanMethod(r.Method)
	name := method
	if method == "_OTHER" {
		name = "HTTP"
	}
	ctx, sp := g.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(semconv.HTTPRequestMethodKey.String(method)))
	ex.span, ex.recording = sp, sp.IsRecording()
	ex.trace = traceParentOf(sp.SpanContext(), parent.IsValid())
	ex.traceState = sp.SpanContext().TraceState().String()
	return ctx
}

// endServerSpan names the server span after the route the request took
// and ends it with the response's status.
func (g *Gateway) endServerSpan(r *http.Request, ex *exchange, rec *recorder) {
	sp := ex.span
	if ex.recording {
		method := spanMethod(r.Method)
		attrs := make([]attribute.KeyValue, 0, 6)
		attrs = append(attrs, semconv.HTTPResponseStatusCode(rec.status))
		if at := spanRoute(r.URL.Path, ex, g); at != "" {
			if method == "_OTHER" {
				sp.SetName("HTTP " + at)
			} else {
				sp.SetName(method + " " + at)
			}
			attrs = append(attrs, semconv.HTTPRoute(at))
		}
		if ex.route != nil {
			attrs = append(attrs, tracing.AttrRoute.String(ex.route.Name))
		}
		kind := string(gatehouse.KindAnonymous)
		if ex.principal != nil {
			kind = string(ex.principal.Kind)
		}
		outcome := gatehouse.OutcomeSuccess
		if rec.status >= 400 {
			outcome = ex.outcome
			if outcome == "" {
				outcome = gatehouse.OutcomeFailure
			}
		}
		attrs = append(attrs, tracing.AttrPrincipalKind.String(kind), tracing.AttrOutcome.String(outcome))
		if ex.err != nil {
			attrs = append(attrs, semconv.ErrorTypeKey.String(gatehouse.ErrorCode(ex.err)))
		}
		sp.SetAttributes(attrs...)
		if rec.status >= 500 {
			sp.SetStatus(codes.Error, http.StatusText(rec.status))
		}
	}
	sp.End()
}

// spanRoute is the low-cardinality route of a request: the prefix of the
// configured route it matched, or Gatehouse's own fixed path; "" for
// anything else (a 404's path is the caller's choice).
func spanRoute(path string, ex *exchange, g *Gateway) string {
	switch {
	case isVerifyPath(path):
		return "/auth/verify"
	case path == "/v1/authorize":
		return path
	case ex.route != nil:
		return ex.route.PathPrefix
	case g.cfg.Endpoints[path] != nil:
		return path
	}
	return ""
}

// spanMethod is the method as the HTTP conventions record it: one of the
// standard methods, or _OTHER (a caller may send any token).
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// startStep starts the span of one step, a child of the server span that
// ctx carries. Call it only when ex.recording.
func (g *Gateway) startStep(ctx context.Context, name string, kind trace.SpanKind) trace.Span {
	_, sp := g.tracer.Start(ctx, name, trace.WithSpanKind(kind))
	return sp
}

// endStep ends a step's span: a refusal is recorded as error.type (the
// code), a step that could not run (503, 500) as an error.
func endStep(sp trace.Span, err error, attrs ...attribute.KeyValue) {
	if err != nil {
		code := gatehouse.ErrorCode(err)
		attrs = append(attrs, semconv.ErrorTypeKey.String(code))
		switch code {
		case gatehouse.EINTERNAL, gatehouse.EUNAVAILABLE:
			sp.SetStatus(codes.Error, gatehouse.ErrorMessage(err))
		}
	}
	sp.SetAttributes(attrs...)
	sp.End()
}

// authnResult is what the authn span says of the outcome.
func authnResult(ex *exchange, err error) string {
	switch {
	case err == nil && ex.principal != nil:
		return "authenticated"
	case err == nil:
		return "anonymous"
	case err == errMissingCredential:
		return "missing"
	case gatehouse.ErrorCode(err) == gatehouse.EINVALID:
		return "malformed"
	}
	return authnReason(err, gatehouse.ErrorCode(err)).String()
}

// startUpstream starts the upstream span and makes the traceparent the
// upstream receives name it.
func (g *Gateway) startUpstream(r *http.Request, ex *exchange) trace.Span {
	rt := ex.route
	_, sp := g.tracer.Start(r.Context(), spanUpstream, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(semconv.HTTPRequestMethodKey.String(spanMethod(r.Method)), tracing.AttrRoute.String(rt.Name), semconv.ServerAddress(rt.upstreamHost)))
	ex.trace = traceParentOf(sp.SpanContext(), ex.trace.continued)
	return sp
}

// endUpstream ends the upstream span with the upstream's status, or the
// error that stood for it.
func endUpstream(sp trace.Span, ex *exchange) {
	if ex.upstreamStatus > 0 {
		sp.SetAttributes(semconv.HTTPResponseStatusCode(ex.upstreamStatus))
		if ex.upstreamStatus >= 500 {
			sp.SetStatus(codes.Error, http.StatusText(ex.upstreamStatus))
		}
	}
	if ex.err != nil {
		code := gatehouse.ErrorCode(ex.err)
		sp.SetAttributes(semconv.ErrorTypeKey.String(code))
		switch code {
		case gatehouse.EUNAVAILABLE, gatehouse.ETIMEOUT, gatehouse.EBADGATEWAY:
			sp.SetStatus(codes.Error, gatehouse.ErrorMessage(ex.err))
		}
	}
	sp.End()
}

// recordTraced records the request's audit event inside its span.
func (w *recorder) recordTraced(ctx context.Context, e gatehouse.Event) error {
	_, sp := w.g.tracer.Start(ctx, spanAudit, trace.WithAttributes(tracing.AttrEventType.String(e.Type), tracing.AttrOutcome.String(e.Outcome)))
	err := w.g.cfg.Auditor.Record(ctx, e)
	if err != nil {
		sp.SetAttributes(semconv.ErrorTypeKey.String("audit_failed"))
		sp.SetStatus(codes.Error, "audit record failed")
	}
	sp.End()
	return err
}

// traceParentOf is the traceparent header naming sc.
func traceParentOf(sc trace.SpanContext, continued bool) traceParent {
	var b [55]byte
	copy(b[:], "00-")
	tid, sid := sc.TraceID(), sc.SpanID()
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	copy(b[52:], "-00")
	if sc.IsSampled() {
		b[54] = '1'
	}
	return traceParent{header: string(b[:]), continued: continued}
}

// peerTrusted reports whether the request's TCP peer is a trusted proxy.
func (t trustedProxies) peerTrusted(r *http.Request) bool {
	if len(t) == 0 {
		return false
	}
	a, err := netip.ParseAddr(sourceIP(r))
	return err == nil && t.contains(a)
}

// endRateLimit ends the ratelimit span: the policy that decided (a tier's
// name or route:NAME, from the config) and whether it admitted.
func endRateLimit(sp trace.Span, policy string, allowed bool, err error) {
	if err != nil {
		err = gatehouse.Errorf(gatehouse.EUNAVAILABLE, "rate limiter unavailable")
	}
	endStep(sp, err, tracing.AttrRateLimit.String(policy), tracing.AttrAllowed.Bool(err == nil && allowed))
}

// endAuthz ends the authz span with the decision (never its reasons or
// id: one per request).
func endAuthz(sp trace.Span, d authz.Decision, err error) {
	if err != nil {
		sp.SetStatus(codes.Error, "policy evaluation failed")
	}
	endStep(sp, nil, tracing.AttrAllowed.Bool(d.Allow))
}
