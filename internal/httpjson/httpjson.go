// Package httpjson holds what every Gatehouse listener shares on the wire:
// the six security headers, request ids, and JSON replies and errors in the
// shape of DESIGN.md §7.
package httpjson

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/gatehouse/gatehouse"
)

// The security headers set on every response (DESIGN.md §1). Each value is
// a one-element slice with len == cap, so an Add by later code copies
// instead of writing into the shared array.
var securityHeaders = [...]struct {
	name  string
	value []string
}{
	{"Strict-Transport-Security", []string{"max-age=31536000; includeSubDomains"}},
	{"X-Content-Type-Options", []string{"nosniff"}},
	{"X-Frame-Options", []string{"DENY"}},
	{"X-Xss-Protection", []string{"1; mode=block"}},
	{"Content-Security-Policy", []string{"default-src 'self'"}},
	{"Referrer-Policy", []string{"strict-origin-when-cross-origin"}},
}

// SetSecurityHeaders sets the six security headers on h, replacing any
// value already there.
func SetSecurityHeaders(h http.Header) {
	for i := range securityHeaders {
		h[securityHeaders[i].name] = securityHeaders[i].value
	}
}

// DeleteSecurityHeaders removes the six headers from h (used on upstream
// responses, so that Gatehouse's values are the only ones sent).
func DeleteSecurityHeaders(h http.Header) {
	for i := range securityHeaders {
		delete(h, securityHeaders[i].name)
	}
}

// SecurityHeaderNames lists the six header names, canonical form.
func SecurityHeaderNames() []string {
	names := make([]string, len(securityHeaders))
	for i := range securityHeaders {
		names[i] = securityHeaders[i].name
	}
	return names
}

type requestIDKey struct{}

// NewContextWithRequestID returns ctx carrying the request id.
func NewContextWithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFromContext returns the request id carried by ctx, or "".
func RequestIDFromContext(ctx context.Context) string {
	switch v := ctx.Value(requestIDKey{}).(type) {
	case string:
		return v
	case RequestIDCarrier:
		return v.RequestID()
	}
	return ""
}

// RequestIDCarrier is what a context that keeps the request id itself
// (the gateway's per-request state, which is also the request's context)
// returns from Value for the key IsRequestIDKey recognises: one context
// for the request instead of a chain of context.WithValue.
type RequestIDCarrier interface {
	RequestID() string
}

// IsRequestIDKey tells whether key is the one RequestIDFromContext looks
// up.
func IsRequestIDKey(key any) bool {
	_, ok := key.(requestIDKey)
	return ok
}

// RequestID returns the inbound X-Request-Id when it is a valid ULID, or a
// new ULID.
func RequestID(r *http.Request) string {
	if v := r.Header["X-Request-Id"]; len(v) == 1 && len(v[0]) == ulid.EncodedSize {
		if _, err := ulid.ParseStrict(v[0]); err == nil {
			return v[0]
		}
	}
	return NewRequestID()
}

// NewRequestID returns a new ULID for a request, in one allocation (the
// string): the current millisecond and 80 random bits. Request ids need
// uniqueness, not secrecy or ordering within a millisecond, so they come
// from math/rand/v2 (ChaCha8, randomly seeded, no lock shared by
// concurrent requests) rather than ulid's locked monotonic reader.
func NewRequestID() string {
	var id ulid.ULID
	_ = id.SetTime(ulid.Now())             // fails only after the year 10889
	hi, lo := rand.Uint64(), rand.Uint64() // #nosec G404 -- request ids: uniqueness, not secrecy
	for i := 0; i < 2; i++ {
		id[6+i] = byte(hi >> (8 * i))
	}
	for i := 0; i < 8; i++ {
		id[8+i] = byte(lo >> (8 * i))
	}
	var text [ulid.EncodedSize]byte
	_ = id.MarshalTextTo(text[:]) // cannot fail: text has the encoded size
	return string(text[:])
}

// Write writes v as a JSON body with the given status.
func Write(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal","message":"internal error"}}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code       string   `json:"code"`
	Message    string   `json:"message"`
	RequestID  string   `json:"request_id,omitempty"`
	Reasons    []string `json:"reasons,omitempty"`
	DecisionID string   `json:"decision_id,omitempty"`
}

// WriteError writes err as a JSON error. Errors that are not
// *gatehouse.Error are logged in full under the request id and shown to the
// client only as "internal error".
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := gatehouse.ErrorCode(err)
	rid := RequestIDFromContext(r.Context())
	if code == gatehouse.EINTERNAL && log != nil {
		log.ErrorContext(r.Context(), "internal error", "request_id", rid, "err", err)
	}
	status := gatehouse.HTTPStatus(code)
	if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
	}
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", strconv.Itoa(max(int((ra.RetryAfter()+time.Second-1)/time.Second), 1)))
	}
	detail := ErrorDetail{Code: code, Message: gatehouse.ErrorMessage(err), RequestID: rid}
	var ge *gatehouse.Error
	if errors.As(err, &ge) {
		detail.Reasons, detail.DecisionID = ge.Reasons, ge.DecisionID
	}
	Write(w, status, ErrorBody{Error: detail})
}

// Decode reads a JSON request body of at most max bytes into v, strictly:
// a wrong Content-Type, unknown fields, wrong types and trailing data are
// EINVALID errors that name the problem.
func Decode(r *http.Request, v any, max int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return gatehouse.Errorf(gatehouse.EINVALID, "Content-Type must be application/json, not %q", ct)
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, max+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return gatehouse.Errorf(gatehouse.EINVALID, "request body is empty; send a JSON object")
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" { // the body itself, such as [] for an object
				return gatehouse.Errorf(gatehouse.EINVALID, "request body: must be %s, not %s", jsonKind(te.Type.Kind().String()), te.Value)
			}
			return gatehouse.Errorf(gatehouse.EINVALID, "%s: must be %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return gatehouse.Errorf(gatehouse.EINVALID, "invalid JSON body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return gatehouse.Errorf(gatehouse.EINVALID, "invalid JSON body: more than one JSON value")
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "slice":
		return "an array"
	case "string":
		return "a string"
	case "struct", "map":
		return "an object"
	case "bool":
		return "true or false"
	}
	return "a number"
}
