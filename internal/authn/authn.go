// Package authn decides who is calling: it issues and verifies API keys
// (and, as they land, JWTs, personal access tokens and sessions) and turns a
// presented credential into a gatehouse.Principal.
package authn

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"unsafe"

	"github.com/gatehouse/gatehouse"
)

// Authentication failures. Each is an EUNAUTHORIZED *gatehouse.Error whose
// message is safe to show the caller and to put in the audit log.
var (
	ErrMissing   = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "no credential: send Authorization: Bearer <key> or X-API-Key")
	ErrMalformed = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "malformed credential")
	ErrUnknown   = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid credential")
	ErrRevoked   = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "credential revoked")
	ErrExpired   = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "credential expired")
)

// hmacSHA256 returns HMAC-SHA-256(key, msg).
func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// digest is the SHA-256 of s, without copying s.
func digest(s string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(s), len(s))) // #nosec G103 -- read-only view of a string's bytes for hashing, not retained
}

// Authenticator routes a presented credential to the verifier its shape
// names: API keys by prefix, JWTs by form. It implements the gateway's
// Authenticator.
type Authenticator struct {
	Keys   *Keys
	Tokens *Tokens // nil: JWTs are not accepted
	PATs   *PATs   // nil: personal access tokens are not accepted
}

// Authenticate verifies cred and returns its principal.
func (a *Authenticator) Authenticate(ctx context.Context, cred string) (*gatehouse.Principal, error) {
	switch {
	case strings.HasPrefix(cred, PrefixAPIKey):
		return a.Keys.Authenticate(ctx, cred)
	case a.PATs != nil && strings.HasPrefix(cred, PrefixPAT):
		return a.PATs.Authenticate(ctx, cred)
	case a.Tokens != nil && LooksLikeJWT(cred):
		return a.Tokens.Authenticate(ctx, cred)
	}
	return nil, ErrMalformed
}
