// Package gatehouse holds the small domain vocabulary shared by every part of
// the gateway: principals, routes, audit events, error codes and the clock.
// It imports nothing else from this module, so any package may depend on it.
package gatehouse

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// PrincipalKind names how a caller authenticated.
type PrincipalKind string

// The kinds of principal the gateway knows.
const (
	KindAnonymous PrincipalKind = "anonymous"
	KindAPIKey    PrincipalKind = "api_key"
	KindAdmin     PrincipalKind = "admin_token"
	KindClient    PrincipalKind = "client"
	KindUser      PrincipalKind = "user"
	KindPAT       PrincipalKind = "pat"
	KindExternal  PrincipalKind = "external"
	KindCert      PrincipalKind = "certificate"
)

// ScopeAdmin grants every permission.
const ScopeAdmin = "admin"

// Principal is the authenticated caller of a request. It never holds a
// credential. A nil *Principal means anonymous.
type Principal struct {
	ID     string        `json:"id"`
	Kind   PrincipalKind `json:"kind"`
	Name   string        `json:"name,omitempty"`
	Scopes []string      `json:"scopes"`
	Tier   string        `json:"tier,omitempty"`
	// Role is the admin-API role of a person's credential (admin,
	// security, auditor), "" for machines.
	Role string `json:"role,omitempty"`
	// ScopesHeader is Scopes joined with spaces, and Fingerprint is
	// FingerprintScopes(Scopes); both are computed once when the principal
	// is built (see NewPrincipal) so the hot path does neither per request.
	ScopesHeader string   `json:"-"`
	Fingerprint  [32]byte `json:"-"`
}

// NewPrincipal returns a principal with its derived fields computed.
func NewPrincipal(id string, kind PrincipalKind, name string, scopes []string, tier string) *Principal {
	if scopes == nil {
		scopes = []string{}
	}
	p := &Principal{ID: id, Kind: kind, Name: name, Scopes: scopes, Tier: tier, Fingerprint: FingerprintScopes(scopes)}
	for i, s := range scopes {
		if i > 0 {
			p.ScopesHeader += " "
		}
		p.ScopesHeader += s
	}
	return p
}

// FingerprintScopes identifies an ordered list of scopes: the SHA-256 of
// the length-prefixed list. It never returns the zero value.
func FingerprintScopes(scopes []string) [32]byte {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(scopes)))])
	for _, s := range scopes {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	var fp [32]byte
	h.Sum(fp[:0])
	return fp
}

// HasScope reports whether p holds scope s or the admin scope.
func (p *Principal) HasScope(s string) bool {
	if p == nil {
		return false
	}
	for _, have := range p.Scopes {
		if have == s || have == ScopeAdmin {
			return true
		}
	}
	return false
}

// Route is one configured gateway route after validation.
type Route struct {
	Name        string
	PathPrefix  string
	Methods     []string // empty means every method
	Upstream    string
	Scopes      []string
	Tool        string // the tool this route executes, if any
	StripPrefix bool
	MaxBody     int64
	Timeout     time.Duration
	Redact      bool
	Public      bool // no authentication required
	// RateLimit, when Requests > 0, is a route-specific limit applied on
	// top of the principal's tier limit.
	RateLimit RateLimit

	ConnectTimeout time.Duration // 0: the transport's default (5s)
	TotalTimeout   time.Duration // 0: none beyond Timeout (response headers)
	UpstreamTLS    *UpstreamTLS  // nil: system roots, no client certificate
	Breaker        Breaker
	JSONSchema     string   // file of a JSON Schema request bodies must match
	ContentTypes   []string // allowed request media types; empty: any
	// MethodOverride applies X-HTTP-Method-Override (and its kin) on POST
	// in Gatehouse itself; otherwise those headers are removed.
	MethodOverride bool
	// WebSocket lets a request upgrade to a WebSocket (GET with Upgrade:
	// websocket) on this route; the upgrade request is routed, authorized
	// and audited like any other, the tunnel after it is not. Otherwise
	// (and for any other protocol, such as h2c) a request carrying
	// Upgrade is refused with 400.
	WebSocket bool
	// KeepServerHeaders passes the upstream's Server and X-Powered-By
	// response headers on; by default they are dropped.
	KeepServerHeaders bool
	// ReadTimeout bounds the time to read the request body in all, and
	// MinRate (bytes per second after the first second) its slowest pace;
	// 0: no bound.
	ReadTimeout time.Duration
	MinRate     int64
	// BufferRequest reads the whole body (at most MaxBody) before the
	// request is sent upstream.
	BufferRequest bool
	// AllowPathParams lets paths carry ';' path parameters (which Tomcat
	// and Spring drop before routing); off, such paths are refused.
	AllowPathParams bool
}

// UpstreamTLS is TLS (and mTLS) to an upstream. The upstream's certificate
// is always verified.
type UpstreamTLS struct {
	CAFile, CertFile, KeyFile, ServerName string
}

// Breaker configures an upstream's circuit breaker. It opens after
// ConsecutiveFailures failures in a row, or when at least MinRequests
// requests in the current interval failed at FailureRatio or more; while
// open it fails fast for OpenTimeout, then lets HalfOpenRequests probes
// through.
type Breaker struct {
	ConsecutiveFailures int
	FailureRatio        float64
	MinRequests         int
	OpenTimeout         time.Duration
	HalfOpenRequests    int
}

// RateLimit is a number of requests per window.
type RateLimit struct {
	Requests int
	Per      time.Duration
}
