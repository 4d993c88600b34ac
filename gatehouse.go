// Package gatehouse holds the small domain vocabulary shared by every part of
// the gateway: principals, routes, audit events, error codes and the clock.
// It imports nothing else from this module, so any package may depend on it.
package gatehouse

import "time"

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
	// ScopesHeader is Scopes joined with spaces, computed once when the
	// principal is built so the hot path does not join on every request.
	ScopesHeader string `json:"-"`
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
	Tool        string
	StripPrefix bool
	MaxBody     int64
	Timeout     time.Duration
	Redact      bool
	Public      bool // no authentication required
}
