package ratelimit

import (
	"net/http"
	"strconv"
	"time"
	"unsafe"

	"github.com/gatehouse/gatehouse"
)

// Response header names, in Go's canonical form (http.Header keys). The
// RateLimit and RateLimit-Policy fields follow
// draft-ietf-httpapi-ratelimit-headers-11 (May 2026): Structured Field
// lists whose items are the quoted policy name with parameters q (quota)
// and w (window, seconds) in RateLimit-Policy, and r (remaining) and t
// (seconds until quota is next restored) in RateLimit.
const (
	HeaderPolicy     = "Ratelimit-Policy"
	HeaderRateLimit  = "Ratelimit"
	HeaderLimit      = "X-Ratelimit-Limit"
	HeaderRemaining  = "X-Ratelimit-Remaining"
	HeaderReset      = "X-Ratelimit-Reset"
	HeaderRetryAfter = "Retry-After"
)

// Policy is a named limit with its header values computed once. Build one
// per configured tier when config loads and reuse it for every response.
// A Policy is immutable and safe for concurrent use.
type Policy struct {
	Name  string
	Limit Limit

	policy string // RateLimit-Policy value
	prefix string // `"name";r=`
	limit  string // X-RateLimit-Limit value
}

// NewPolicy returns the Policy for limit under name. Characters of name
// that a Structured Field string cannot hold are replaced by '_'.
func NewPolicy(name string, limit Limit) *Policy {
	q := quote(nil, name)
	p := &Policy{Name: name, Limit: limit, limit: strconv.Itoa(limit.Requests)}
	b := append([]byte(nil), q...)
	b = append(b, ";q="...)
	b = strconv.AppendInt(b, int64(limit.Requests), 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, int64(CeilSeconds(limit.Per)), 10)
	p.policy = string(b)
	p.prefix = string(append(q, ";r="...))
	return p
}

// SetHeaders writes the rate-limit response headers for d under policy
// name: RateLimit-Policy, RateLimit, X-RateLimit-Limit,
// X-RateLimit-Remaining, X-RateLimit-Reset (seconds from now) and, when d
// refused the request, Retry-After (seconds, rounded up, at least 1). It
// derives the policy from d; use (*Policy).SetHeaders on the hot path.
func SetHeaders(h http.Header, d Decision, name string) {
	p := Policy{Name: name, Limit: Limit{Requests: d.Limit, Per: d.Window}}
	var a [128]byte
	q := quote(a[:0], name)
	b := append(q, ";q="...)
	b = strconv.AppendInt(b, int64(d.Limit), 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, int64(CeilSeconds(d.Window)), 10)
	p.policy = string(b)
	p.prefix = string(append(q, ";r="...))
	p.limit = strconv.Itoa(d.Limit)
	p.SetHeaders(h, d)
}

// HeaderValues is room for the values of the headers SetHeadersIn
// writes, for a caller that keeps per-request state of its own (the
// gateway's exchange) and so gives them a place without an allocation.
// The headers point into it: use a HeaderValues for one response and do
// not write it again while those headers are in use. The zero value is
// ready to use.
type HeaderValues struct {
	vs  [6]string
	buf [96]byte
}

// SetHeaders writes the headers described on the package-level SetHeaders
// for d, which must come from a rule using p's limit. It costs one
// allocation per response (its HeaderValues); SetHeadersIn none.
func (p *Policy) SetHeaders(h http.Header, d Decision) {
	p.SetHeadersIn(h, d, new(HeaderValues))
}

// SetHeadersIn is SetHeaders with the values in hv: every value is a
// slice of hv's one array of strings and every string built for d (the
// RateLimit value, and X-RateLimit-Remaining, X-RateLimit-Reset and
// Retry-After within it) is hv's bytes, so it allocates nothing unless
// the RateLimit value outgrows hv (a policy name of more than about 60
// bytes).
func (p *Policy) SetHeadersIn(h http.Header, d Decision, hv *HeaderValues) {
	reset := CeilSeconds(d.Reset)
	if !d.Allowed {
		// Retry-After must not point before the end of the effective
		// window, so both carry the same value.
		reset = max(CeilSeconds(d.RetryAfter), 1)
	}
	b := append(hv.buf[:0], p.prefix...)
	b = strconv.AppendInt(b, int64(max(d.Remaining, 0)), 10)
	remainingEnd := len(b)
	b = append(b, ";t="...)
	resetStart := len(b)
	b = strconv.AppendInt(b, int64(reset), 10)
	// The bytes are not written again (see HeaderValues), so the string
	// can share them; X-RateLimit-Remaining and -Reset are its
	// substrings.
	rateLimit := unsafe.String(unsafe.SliceData(b), len(b)) // #nosec G103 -- b is hv's own buffer (or a fresh one if it grew), written once per response and never after (the gateway keeps one HeaderValues per exchange, one call per request)
	resetStr := rateLimit[resetStart:]

	vs := &hv.vs
	vs[0], vs[1], vs[2] = p.policy, rateLimit, p.limit
	vs[3], vs[4] = rateLimit[len(p.prefix):remainingEnd], resetStr
	h[HeaderPolicy] = vs[0:1:1]
	h[HeaderRateLimit] = vs[1:2:2]
	h[HeaderLimit] = vs[2:3:3]
	h[HeaderRemaining] = vs[3:4:4]
	h[HeaderReset] = vs[4:5:5]
	if !d.Allowed {
		vs[5] = resetStr
		h[HeaderRetryAfter] = vs[5:6:6]
	}
}

// Error returns the client-safe error for a refused decision, which the
// gateway maps to 429 with a JSON body.
func Error(d Decision) *gatehouse.Error {
	return gatehouse.Errorf(gatehouse.ERATELIMITED, "rate limit exceeded; retry after %d seconds", max(CeilSeconds(d.RetryAfter), 1))
}

// CeilSeconds is d in whole seconds, rounded up (0 for d <= 0), as the
// RateLimit and Retry-After headers count.
func CeilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// quote appends s as a Structured Field string (RFC 9651 §3.3.3).
func quote(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c > 0x7e:
			b = append(b, '_')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
