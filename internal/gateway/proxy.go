package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/codes"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/httpjson"
	"github.com/gatehouse/gatehouse/internal/redact"
)

// NewTransport returns a Transport tuned for a gateway: many idle
// connections kept per upstream, bounded dial and TLS handshake times, and
// no environment proxy (an upstream is reached directly or not at all).
func NewTransport() *http.Transport {
	return &http.Transport{
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		ForceAttemptHTTP2:     true,
		// Pass Accept-Encoding through as the client sent it; never
		// decompress on the client's behalf.
		DisableCompression: true,
	}
}

// copyBufferSize is the size of the buffers the proxy copies bodies with.
const copyBufferSize = 32 << 10

// bufferPool lends the proxies their copy buffers. It keeps pointers to
// the arrays, so that neither Get nor Put allocates.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}
}

func (b *bufferPool) Get() []byte { return b.p.Get().(*[copyBufferSize]byte)[:] }

func (b *bufferPool) Put(s []byte) {
	if cap(s) >= copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(s[:copyBufferSize]))
	}
}

// upstreamHeaders is how many headers the proxy may add to the client's
// (X-Forwarded-For, -Host, -Proto, X-Real-Ip, X-Request-Id, Traceparent,
// X-Gatehouse-Principal, -Scopes; User-Agent and Te by ReverseProxy).
const upstreamHeaders = 10

// newProxy returns the reverse proxy of one route.
// traced: the gateway traces requests (the upstream's status is noted for
// its span, the tracestate passed on is the span's).
func newProxy(rt *route, target *url.URL, t http.RoundTripper, bufs *bufferPool, log *slog.Logger, red *redact.Redactor, traced bool) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			ex := exchangeFrom(pr.In.Context())
			// Forward exactly the path that was checked and authorized, in
			// its canonical encoding.
			path := pr.In.URL.Path
			if rt.StripPrefix {
				path = stripPrefix(rt.PathPrefix, path)
			}
			pr.Out.URL.Path, pr.Out.URL.RawPath = path, ""
			pr.SetURL(target)
			// Client-claimed addresses and targets go; Gatehouse says
			// who the client is (clientip.go).
			pr.Out.Header = scrubbedHeaders(pr.Out.Header, upstreamHeaders)
			h := pr.Out.Header
			// One array for the values, not a slice each; capacity 1 so
			// that an Add copies rather than writes into the next.
			v := &ex.headerValues
			setXForwarded(h, pr.In, v)
			setForwarded(h, pr.In, ex)
			v[1], v[2] = ex.requestID, ex.trace.header
			h["X-Request-Id"] = v[1:2:2]
			h["Traceparent"] = v[2:3:3]
			switch {
			case traced && ex.traceState != "":
				// The span's: the caller's, cut to tracing.MaxTraceState.
				h["Tracestate"] = []string{ex.traceState}
			case traced, !ex.trace.continued:
				// A tracestate belongs to the traceparent it came with.
				delete(h, "Tracestate")
			}
			if p := ex.principal; p != nil {
				v[3], v[4] = p.ID, p.ScopesHeader
				h["X-Gatehouse-Principal"] = v[3:4:4]
				h["X-Gatehouse-Scopes"] = v[4:5:5]
			}
			if rt.Redact {
				// Only encodings the redactor can read, and whole bodies.
				if strings.Contains(pr.In.Header.Get("Accept-Encoding"), "gzip") {
					h["Accept-Encoding"] = []string{"gzip"}
				} else {
					delete(h, "Accept-Encoding")
				}
				delete(h, "Range")
				delete(h, "If-Range")
			}
		},
		Transport:  t,
		BufferPool: bufs,
		ModifyResponse: func(res *http.Response) error {
			if traced {
				exchangeFrom(res.Request.Context()).upstreamStatus = res.StatusCode
			}
			// Gatehouse's security headers and request id are the only ones.
			httpjson.DeleteSecurityHeaders(res.Header)
			delete(res.Header, "X-Request-Id")
			if !rt.KeepServerHeaders {
				for _, name := range upstreamFingerprintHeaders {
					delete(res.Header, name)
				}
			}
			if rt.Redact {
				return redact.RedactResponse(res, red)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			ex := exchangeFrom(r.Context())
			var e error
			var ne net.Error
			switch {
			case ex.tooLarge.Load():
				e = tooLarge(rt.MaxBody)
			case ex.slowBody.Load():
				e = bodyTooSlow() // the client's slowness, not the upstream's
			case ex.bodyErr.Load():
				// Also when the client then went away: the body it sent
				// was broken, whether or not anyone reads the answer.
				e = gatehouse.Errorf(gatehouse.EINVALID, "the request body could not be read to its end")
			case r.Context().Err() == context.Canceled:
				// The client went away; there is no one to answer, but the
				// request may have reached the upstream: its event is
				// recorded all the same.
				ex.err, ex.outcome = errClientClosed, gatehouse.OutcomeFailure
				if rec, ok := w.(*recorder); ok {
					rec.abandon(StatusClientClosedRequest)
				}
				return
			case errors.Is(err, errBreakerOpen):
				w.Header().Set("Retry-After", strconv.Itoa(int(rt.breaker.retryAfter().Seconds()+0.999)))
				e = gatehouse.Errorf(gatehouse.EUNAVAILABLE, "upstream of route %s is failing; circuit breaker open", rt.Name)
			case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
				e = gatehouse.Errorf(gatehouse.ETIMEOUT, "upstream of route %s did not answer in time", rt.Name)
			default:
				e = gatehouse.Errorf(gatehouse.EBADGATEWAY, "upstream of route %s is unavailable", rt.Name)
			}
			// The request body's faults (413, 408, 400) are the client's:
			// answered and audited, but no upstream error to warn of.
			switch gatehouse.ErrorCode(e) {
			case gatehouse.EUNAVAILABLE, gatehouse.ETIMEOUT, gatehouse.EBADGATEWAY:
				log.WarnContext(r.Context(), "upstream error", "request_id", ex.requestID, "route", rt.Name, "err", err)
			}
			ex.err = e
			httpjson.WriteError(w, r, log, e)
		},
	}
}

// setXForwarded is httputil.ProxyRequest.SetXForwarded on headers that
// scrubbedHeaders left without X-Forwarded-* (so there is no prior
// X-Forwarded-For to extend), with the values in v[5:8] rather than a
// slice each: X-Forwarded-For the TCP peer (none if RemoteAddr has no
// port), X-Forwarded-Host the request's Host, X-Forwarded-Proto http or
// https.
func setXForwarded(h http.Header, in *http.Request, v *[len(exchange{}.headerValues)]string) {
	if peer, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		v[5] = peer
		h["X-Forwarded-For"] = v[5:6:6]
	}
	v[6] = in.Host
	h["X-Forwarded-Host"] = v[6:7:7]
	v[7] = "http"
	if in.TLS != nil {
		v[7] = "https"
	}
	h["X-Forwarded-Proto"] = v[7:8:8]
}

// StatusClientClosedRequest is the status recorded for a request whose
// client went away before the upstream answered (nginx's 499).
const StatusClientClosedRequest = 499

var errClientClosed = gatehouse.Errorf(gatehouse.EINVALID, "the client closed the connection before the upstream answered")

func (g *Gateway) proxyStep(w http.ResponseWriter, r *http.Request) error {
	ex := exchangeFrom(r.Context())
	rt := ex.route
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &watchedBody{rc: r.Body, ex: ex}
	}
	if rt.TotalTimeout > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), rt.TotalTimeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	if ex.recording {
		sp := g.startUpstream(r, ex)
		ended := false
		defer func() {
			if !ended { // the proxy cut the response short (http.ErrAbortHandler)
				sp.SetStatus(codes.Error, "response cut short")
				sp.End()
			}
		}()
		rt.proxy.ServeHTTP(w, r)
		ended = true
		endUpstream(sp, ex)
		return nil
	}
	rt.proxy.ServeHTTP(w, r)
	return nil
}

// stripPrefix removes the route prefix from path, keeping a leading slash.
func stripPrefix(prefix, path string) string {
	p := strings.TrimSuffix(prefix, "/")
	rest := strings.TrimPrefix(path, p)
	if rest == "" || rest[0] != '/' {
		rest = "/" + rest
	}
	return rest
}

func foldByte(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c + 'a' - 'A'
	case c == '_':
		return '-'
	}
	return c
}

func hasFoldPrefix(s, lowerPrefix string) bool {
	if len(s) < len(lowerPrefix) {
		return false
	}
	for i := 0; i < len(lowerPrefix); i++ {
		if foldByte(s[i]) != lowerPrefix[i] {
			return false
		}
	}
	return true
}

func foldEqual(s, lower string) bool { return len(s) == len(lower) && hasFoldPrefix(s, lower) }
