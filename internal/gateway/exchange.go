package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/httpjson"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

// exchange is the per-request state the steps of the request path share.
// It is also the request's context (its Context is the server's): the
// steps find it, and httpjson the request id, without a chain of
// context.WithValue.
type exchange struct {
	context.Context
	start     time.Time
	requestID string
	sourceIP  string // the client's address (see clientip.go), without port
	trace     traceParent
	route     *route
	principal *gatehouse.Principal
	decision  authz.Decision
	decided   bool
	// forwardedFor is the verified X-Forwarded-For chain when the TCP peer
	// is a trusted proxy (the proxy step passes it on), "" otherwise.
	forwardedFor string
	// action and resource name what a decision request asked about; target
	// is the forwarded request of a forward-auth check.
	action, resource string
	target           *http.Request
	outcome          string
	eventType        string // set by the step that refused the request
	err              error
	tooLarge         atomic.Bool // set by limitedBody when the body passed the cap
	slowBody         atomic.Bool // set by deadlineBody when the body was too slow
	authFailed       bool        // an endpoint's authentication failed (CountAuthFailure)
	body             *deadlineBody
	bodyErr          atomic.Bool // set by watchedBody when reading the client's body failed
	// headerValues back the headers the gateway sets, one array instead
	// of a slice each: [0] the response's X-Request-Id (ServeHTTP), [1:8]
	// what the proxy adds to the outbound request (newProxy,
	// setXForwarded).
	headerValues [8]string
	// rateLimitValues back the rate-limit response headers (rateLimit).
	rateLimitValues ratelimit.HeaderValues
	// rec is the request's recorder (ServeHTTP), here so that it costs
	// no allocation of its own.
	rec recorder
	// detached is the exchange without its cancellation, the audit
	// event's context (recorder.record), here for the same reason.
	detached detachedContext
	// input is the policy input of the request's decision (decideFor).
	input authz.Input
	// requestInfo is the audit event's request part (event).
	requestInfo gatehouse.RequestInfo
	// With tracing (tracing.go): the server span, whether it records,
	// the tracestate passed upstream, the upstream's status.
	span           trace.Span
	recording      bool
	traceState     string
	upstreamStatus int
}

type exchangeKey struct{}

// Value answers for the exchange and the request id; any other key is the
// server context's.
func (ex *exchange) Value(key any) any {
	if _, ok := key.(exchangeKey); ok || httpjson.IsRequestIDKey(key) {
		return ex
	}
	return ex.Context.Value(key)
}

// RequestID makes the exchange the request id httpjson.RequestIDFromContext
// finds.
func (ex *exchange) RequestID() string { return ex.requestID }

// detachedContext is what context.WithoutCancel(ex) returns, without an
// allocation: ex's values, never done. (context.Cause of it directly, not
// of a context derived from it, reports the server context's cause once
// that is canceled, where WithoutCancel's reports none; Err stays nil.)
type detachedContext struct{ ex *exchange }

func (detachedContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (detachedContext) Done() <-chan struct{}       { return nil }
func (detachedContext) Err() error                  { return nil }
func (c *detachedContext) Value(key any) any        { return c.ex.Value(key) }

// withoutCancel is context.WithoutCancel(ctx), from the exchange when ctx
// is the exchange itself.
func (ex *exchange) withoutCancel(ctx context.Context) context.Context {
	if c, ok := ctx.(*exchange); ok && c == ex {
		ex.detached.ex = ex
		return &ex.detached
	}
	return context.WithoutCancel(ctx)
}

func exchangeFrom(ctx context.Context) *exchange {
	if ex, ok := ctx.(*exchange); ok {
		return ex
	}
	ex, _ := ctx.Value(exchangeKey{}).(*exchange)
	return ex
}

// PrincipalFromContext returns the principal the gateway authenticated for
// the request carrying ctx, or nil.
func PrincipalFromContext(ctx context.Context) *gatehouse.Principal {
	if ex := exchangeFrom(ctx); ex != nil {
		return ex.principal
	}
	return nil
}

// traceParent is the W3C trace context of a request: the trace id it
// continues (or starts) and the header value passed upstream, which names a
// new span for Gatehouse's hop.
type traceParent struct {
	header string // "00-<trace>-<span>-<flags>"
	// continued: the trace is the caller's, not a new one.
	continued bool
}

// traceID returns the 32-hex-digit trace id.
func (t traceParent) traceID() string { return t.header[3:35] }

// newTraceParent continues a valid inbound traceparent or starts a new
// trace.
func newTraceParent(in string) traceParent {
	var b [55]byte
	copy(b[:], "00-")
	continued := validTraceParent(in)
	if continued {
		copy(b[3:35], in[3:35])
		copy(b[52:55], in[52:55])
	} else {
		var id [16]byte
		putUint64(id[:8], rand.Uint64()) // #nosec G404 -- trace ids: uniqueness, not secrecy
		putUint64(id[8:], rand.Uint64()) // #nosec G404 -- trace ids: uniqueness, not secrecy
		hex.Encode(b[3:35], id[:])
		copy(b[52:55], "-01")
	}
	b[35] = '-'
	var span [8]byte
	putUint64(span[:], rand.Uint64()|1) // #nosec G404 -- trace and span ids need uniqueness, not secrecy (W3C Trace Context); math/rand/v2 is ChaCha8, randomly seeded
	hex.Encode(b[36:52], span[:])
	return traceParent{header: string(b[:]), continued: continued}
}

func putUint64(b []byte, v uint64) {
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// validTraceParent accepts version 00 traceparents with non-zero ids.
func validTraceParent(s string) bool {
	if len(s) != 55 || s[0:3] != "00-" || s[35] != '-' || s[52] != '-' {
		return false
	}
	zeroTrace, zeroSpan := true, true
	for i := 3; i < 55; i++ {
		if i == 35 || i == 52 {
			continue
		}
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
		if c != '0' {
			if i < 35 {
				zeroTrace = false
			} else if i < 52 {
				zeroSpan = false
			}
		}
	}
	return !zeroTrace && !zeroSpan
}

// recorder wraps the client's ResponseWriter: it learns the status and
// size, and records the audit event before the response is sent.
type recorder struct {
	http.ResponseWriter
	g           *Gateway
	ex          *exchange
	r           *http.Request
	status      int
	bytes       int64
	wroteHeader bool
	auditFailed bool
	noAudit     bool
}

func (w *recorder) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code) // informational: more to come
		return
	}
	w.wroteHeader = true
	w.status = code
	if err := w.record(code); err != nil {
		// Fail closed: a response whose audit event is not recorded is
		// not sent. Whatever the handler writes next is discarded.
		w.g.log.ErrorContext(w.r.Context(), "audit record failed; answering 503", "request_id", w.ex.requestID, "err", err)
		w.auditFailed = true
		h := w.ResponseWriter.Header()
		clear(h)
		httpjson.SetSecurityHeaders(h)
		h["X-Request-Id"] = []string{w.ex.requestID}
		w.status = http.StatusServiceUnavailable
		httpjson.WriteError(w.ResponseWriter, w.r, nil, gatehouse.Errorf(gatehouse.EUNAVAILABLE, "audit log unavailable: the response was withheld; a proxied request may have reached the upstream, retry only if it is idempotent"))
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

// record records the request's one audit event with status. The event
// outlives the client: a caller that hangs up does not cancel it.
func (w *recorder) record(status int) error {
	if w.g.cfg.Auditor == nil || w.noAudit {
		return nil
	}
	if w.ex.recording {
		return w.recordTraced(w.ex.withoutCancel(w.r.Context()), w.g.event(w.r, w.ex, status))
	}
	return w.g.cfg.Auditor.Record(w.ex.withoutCancel(w.r.Context()), w.g.event(w.r, w.ex, status))
}

// abandon ends a response no one is likely to read (the client went
// away): it records the event with status, unless a response was already
// started (and so recorded), and sends the bare status, so that a client
// that only half-closed its side does not get the server's implicit 200.
func (w *recorder) abandon(status int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader, w.status = true, status
	if err := w.record(status); err != nil {
		w.g.log.ErrorContext(w.r.Context(), "audit record failed", "request_id", w.ex.requestID, "status", status, "err", err)
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *recorder) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.auditFailed {
		return len(b), nil
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush flushes the underlying writer.
func (w *recorder) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (g *Gateway) event(r *http.Request, ex *exchange, status int) gatehouse.Event {
	e := gatehouse.Event{
		Time:    ex.start.UTC(),
		Type:    "http.request",
		Action:  r.Method,
		Outcome: gatehouse.OutcomeSuccess,
		TraceID: ex.trace.traceID(),
		Actor:   gatehouse.Actor{Kind: string(gatehouse.KindAnonymous)},
		Request: &ex.requestInfo, // in the exchange: no allocation of its own
	}
	*e.Request = gatehouse.RequestInfo{
		Method:     r.Method,
		Path:       r.URL.Path,
		Status:     status,
		DurationMS: float64(g.clock.Now().Sub(ex.start).Microseconds()) / 1000,
		SourceIP:   g.auditIP(ex.sourceIP),
		RequestID:  ex.requestID,
	}
	if ex.target != nil {
		e.Type, e.Action = "forward_auth", ex.target.Method
		e.Request.Method, e.Request.Path = ex.target.Method, ex.target.URL.Path
	}
	if ex.route != nil {
		e.Resource = ex.route.resource
	}
	if ex.eventType != "" {
		e.Type = ex.eventType
	}
	if ex.action != "" {
		e.Action, e.Resource = ex.action, ex.resource
		if ex.eventType == "" { // a lockdown refusal keeps its type
			e.Type = "authz.decision"
		}
	}
	if ex.decided {
		e.Details = map[string]any{
			"decision_id":     ex.decision.DecisionID.String(),
			"policy_revision": g.boxedRevision(ex.decision.Revision),
			"allow":           ex.decision.Allow,
		}
		if !ex.decision.Allow {
			e.Details["reasons"] = ex.decision.Reasons
		}
	}
	if p := ex.principal; p != nil {
		e.Actor = gatehouse.Actor{Kind: string(p.Kind), ID: p.ID}
	}
	if status >= 400 {
		e.Outcome = ex.outcome
		if e.Outcome == "" {
			e.Outcome = gatehouse.OutcomeFailure
		}
		if ex.err != nil {
			e.Reason = gatehouse.ErrorMessage(ex.err)
		}
	}
	return e
}

// boxedString is a string and the same string as an interface value.
type boxedString struct {
	s string
	v any
}

// boxedRevision returns rev as an interface value, the one made for the
// previous event while the policy's revision stays the same: boxing a
// string allocates, and every decided request's event carries the
// revision.
func (g *Gateway) boxedRevision(rev string) any {
	if b := g.revision.Load(); b != nil && b.s == rev {
		return b.v
	}
	b := &boxedString{s: rev, v: rev}
	g.revision.Store(b)
	return b.v
}

// limitedBody is a request body that fails once more than left bytes have
// been read, and tells the exchange so the error becomes a 413.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	ex   *exchange
}

var errBodyTooLarge = errors.New("request body too large")

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		b.ex.tooLarge.Store(true)
		return n + int(b.left), errBodyTooLarge
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// watchedBody is the request body as the proxy reads it: a read error
// (the client hung up mid-body, a broken chunked encoding, the cap of
// limitedBody) is the client's doing, and the exchange learns of it so
// that neither the answer nor the upstream's circuit breaker blames the
// upstream.
type watchedBody struct {
	rc io.ReadCloser
	ex *exchange
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		b.ex.bodyErr.Store(true)
	}
	return n, err
}

func (b *watchedBody) Close() error { return b.rc.Close() }

// auditIP applies the source-IP privacy setting.
// AuditIP is how a client address appears in audit events (config
// audit.source_ip: full, truncate or hash), for the admin API's events.
func (g *Gateway) AuditIP(ip string) string { return g.auditIP(ip) }

func (g *Gateway) auditIP(ip string) string {
	switch g.cfg.SourceIP {
	case "truncate":
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return ""
		}
		bits := 24
		if a.Is6() && !a.Is4In6() {
			bits = 48
		}
		p, _ := a.Unmap().Prefix(bits)
		return p.String()
	case "hash":
		m := hmac.New(sha256.New, g.cfg.SourceIPKey)
		m.Write([]byte(ip))
		return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))[:32]
	}
	return ip
}
