package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse"
)

// ExternalIssuer is an identity provider whose tokens the gateway trusts.
//
// Its scopes are mapped, never trusted as they are: a scope of its tokens
// reaches a principal only through ScopeMap (to the Gatehouse scopes the
// operator wrote) or AllowedScopes (the same name, with ScopePrefix in
// front). `admin` only ever comes from an explicit ScopeMap entry.
type ExternalIssuer struct {
	Issuer string `yaml:"issuer"`
	// JWKSURL is the key set's URL; "" discovers it from Issuer's
	// /.well-known/openid-configuration (jwks_uri).
	JWKSURL      string   `yaml:"jwks_url"`
	Audiences    []string `yaml:"audiences"`
	ScopeClaim   string   `yaml:"scope_claim"`   // default "scope"
	SubjectClaim string   `yaml:"subject_claim"` // default "sub"
	// ScopeMap maps an external scope to the Gatehouse scopes it grants.
	ScopeMap map[string][]string `yaml:"scope_map"`
	// AllowedScopes pass under their own name, with ScopePrefix added.
	AllowedScopes []string `yaml:"allowed_scopes"`
	// ScopePrefix is added to every scope that passes through
	// AllowedScopes (not to ScopeMap's targets, which are written out).
	ScopePrefix string `yaml:"scope_prefix"`
	// AllowedAlgs restricts the signature algorithms; default: the alg of
	// each JWKS key, or RS256 for an RSA key without one.
	AllowedAlgs []string `yaml:"allowed_algs"`
}

// ExternalAlgs are the signature algorithms accepted from external
// issuers. Never "none", never HMAC: a public key is never a secret.
var ExternalAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}

// MinRSABits is the smallest RSA modulus an external key may have.
const MinRSABits = 2048

// FieldError is an invalid config field (relative to the issuer entry).
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Validate checks an external issuer's config, naming the field
// (a *FieldError). allowPlainHTTP (dev mode) allows http:// URLs to hosts
// other than loopback.
func (e ExternalIssuer) Validate(allowPlainHTTP bool) error {
	if e.Issuer == "" {
		return fieldErr("issuer", "is required")
	}
	if e.JWKSURL == "" {
		if err := CheckFetchURL(e.Issuer, allowPlainHTTP); err != nil {
			return fieldErr("issuer", "with no jwks_url the key set is discovered from the issuer: %v", err)
		}
	} else if err := CheckFetchURL(e.JWKSURL, allowPlainHTTP); err != nil {
		return fieldErr("jwks_url", "%v", err)
	}
	if len(e.Audiences) == 0 {
		return fieldErr("audiences", "at least one audience is required")
	}
	for i, a := range e.Audiences {
		if a == "" {
			return fieldErr(fmt.Sprintf("audiences[%d]", i), "must not be empty")
		}
	}
	for i, a := range e.AllowedAlgs {
		if !slices.Contains(ExternalAlgs, a) {
			return fieldErr(fmt.Sprintf("allowed_algs[%d]", i), "must be one of %s, not %q (never none or HMAC)", strings.Join(ExternalAlgs, ", "), a)
		}
	}
	if e.ScopeMap == nil && e.AllowedScopes == nil {
		return fieldErr("scope_map", "an external issuer's scopes are not trusted as they are: map them with scope_map, or list those that pass with allowed_scopes (allowed_scopes: [] for none)")
	}
	if e.ScopePrefix != "" && badScopeValue(e.ScopePrefix) {
		return fieldErr("scope_prefix", "must contain no whitespace, commas or control characters")
	}
	for ext, to := range e.ScopeMap {
		if ext == "" || badScopeValue(ext) {
			return fieldErr("scope_map", "external scope %q must be non-empty with no whitespace, commas or control characters", ext)
		}
		for _, s := range to {
			if err := ValidateScope(s); err != nil {
				return fieldErr("scope_map."+ext, "%s", strings.TrimPrefix(err.Error(), "scopes: "))
			}
		}
	}
	for i, s := range e.AllowedScopes {
		at := fmt.Sprintf("allowed_scopes[%d]", i)
		if s == "" || badScopeValue(s) {
			return fieldErr(at, "%q must be non-empty with no whitespace, commas or control characters", s)
		}
		if err := ValidateScope(e.ScopePrefix + s); err != nil {
			return fieldErr(at, "%s", strings.TrimPrefix(err.Error(), "scopes: "))
		}
		if e.ScopePrefix+s == gatehouse.ScopeAdmin {
			return fieldErr(at, "admin passes only through an explicit scope_map entry (scope_map: {%s: [admin]})", s)
		}
	}
	return nil
}

// CheckFetchURL checks a URL Gatehouse fetches keys or discovery from:
// https, or plain http only on loopback unless allowPlainHTTP (dev mode);
// never with credentials in it.
func CheckFetchURL(raw string, allowPlainHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("must be an http(s) URL, not %q", raw)
	}
	if u.User != nil {
		return errors.New("must not contain credentials")
	}
	if u.Scheme == "http" && !allowPlainHTTP && !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("plain http:// is refused in prod mode except on loopback (anyone on the path could swap the keys): use https://, not %q", raw)
	}
	return nil
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// badScopeValue reports a scope value that could be read as more than
// one scope, or as anything but one header token: whitespace, a comma, a
// control character or invalid UTF-8.
func badScopeValue(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if r == ',' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// Key-set refresh timing: a periodic refresh, and an unknown kid triggers
// one at most this often. The request path never fetches.
const (
	jwksRefreshEvery   = 10 * time.Minute
	jwksUnknownKIDWait = 30 * time.Second
	jwksMaxKeys        = 100
	fetchMaxBytes      = 1 << 20
)

// extKey is one usable verification key of an external issuer.
type extKey struct {
	kid   string
	key   crypto.PublicKey
	algs  []string // the algorithms it verifies
	thumb string   // RFC 7638 thumbprint, to notice removed keys
}

// extKeySet is an immutable snapshot of an issuer's usable keys.
type extKeySet struct {
	keys []extKey
}

type externalIssuer struct {
	cfg       ExternalIssuer
	log       *slog.Logger
	clock     gatehouse.Clock
	client    *http.Client
	allowHTTP bool
	scopes    map[string][]string // external scope → granted scopes
	onRemoved func()              // a key left the set: forget verified tokens
	keys      atomic.Pointer[extKeySet]
	kick      chan struct{}
	fetched   atomic.Int64 // unix nanos of the last fetch attempt

	mu       sync.Mutex // guards the status below
	lastErr  error
	loadedAt time.Time
	jwksURL  string // last used (discovered or configured)
}

// ExternalIssuerStatus is the state of one external issuer's key set,
// for /health/ready.
type ExternalIssuerStatus struct {
	Issuer   string
	JWKSURL  string    // configured or discovered; "" before discovery
	Keys     int       // usable keys held
	LoadedAt time.Time // last successful fetch; zero if none yet
	Err      error     // the last fetch's failure; nil after a success
}

func newExternalIssuer(cfg ExternalIssuer, allowHTTP bool, log *slog.Logger, clock gatehouse.Clock, onRemoved func()) (*externalIssuer, error) {
	if err := cfg.Validate(allowHTTP); err != nil {
		return nil, fmt.Errorf("external issuer %s: %w", cfg.Issuer, err)
	}
	if cfg.ScopeClaim == "" {
		cfg.ScopeClaim = "scope"
	}
	if cfg.SubjectClaim == "" {
		cfg.SubjectClaim = "sub"
	}
	x := &externalIssuer{cfg: cfg, log: log.With("issuer", cfg.Issuer), clock: clock, allowHTTP: allowHTTP,
		scopes: map[string][]string{}, onRemoved: onRemoved, kick: make(chan struct{}, 1), jwksURL: cfg.JWKSURL}
	for ext, to := range cfg.ScopeMap {
		x.scopes[ext] = appendNew(x.scopes[ext], to...)
	}
	for _, s := range cfg.AllowedScopes {
		x.scopes[s] = appendNew(x.scopes[s], cfg.ScopePrefix+s)
	}
	x.client = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		return CheckFetchURL(req.URL.String(), allowHTTP)
	}}
	return x, nil
}

// appendNew appends the elements of add not already in list.
func appendNew(list []string, add ...string) []string {
	for _, s := range add {
		if !slices.Contains(list, s) {
			list = append(list, s)
		}
	}
	return list
}

// run keeps the key set fresh: at start (retrying with backoff until it
// succeeds), periodically, and when verification met an unknown kid.
func (x *externalIssuer) run(ctx context.Context) {
	backoff := time.Second
	for {
		wait := jwksRefreshEvery
		if err := x.fetch(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			x.log.Warn("fetch external JWKS failed", "url", x.currentURL(), "err", err)
			wait, backoff = backoff, min(backoff*2, time.Minute)
		} else {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-x.kick:
		}
	}
}

func (x *externalIssuer) currentURL() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.jwksURL
}

// fetch discovers the JWKS URL (when not configured) and loads the key
// set, keeping the previous set if it fails.
func (x *externalIssuer) fetch(ctx context.Context) error {
	x.fetched.Store(x.clock.Now().UnixNano())
	err := x.load(ctx)
	x.mu.Lock()
	x.lastErr = err
	if err == nil {
		x.loadedAt = x.clock.Now()
	}
	x.mu.Unlock()
	return err
}

func (x *externalIssuer) load(ctx context.Context) error {
	jwksURL := x.cfg.JWKSURL
	if jwksURL == "" {
		u, err := x.discover(ctx)
		if err != nil {
			return err
		}
		jwksURL = u
		x.mu.Lock()
		x.jwksURL = u
		x.mu.Unlock()
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := x.getJSON(ctx, jwksURL, &doc); err != nil {
		return fmt.Errorf("JWKS %s: %w", jwksURL, err)
	}
	if len(doc.Keys) > jwksMaxKeys {
		return fmt.Errorf("JWKS %s: %d keys, at most %d", jwksURL, len(doc.Keys), jwksMaxKeys)
	}
	set := &extKeySet{}
	for i, raw := range doc.Keys {
		k, err := parseExternalKey(raw, x.cfg.AllowedAlgs)
		if err != nil {
			x.log.Warn("external JWKS key skipped", "url", jwksURL, "index", i, "reason", err)
			continue
		}
		set.keys = append(set.keys, k)
	}
	if len(set.keys) == 0 {
		return fmt.Errorf("JWKS %s: no usable signing key among %d", jwksURL, len(doc.Keys))
	}
	old := x.keys.Swap(set)
	if old != nil && x.onRemoved != nil && removedKey(old, set) {
		x.onRemoved()
	}
	x.log.Info("external JWKS loaded", "url", jwksURL, "keys", len(set.keys))
	return nil
}

// removedKey reports whether a key of old is missing from next.
func removedKey(old, next *extKeySet) bool {
	for _, o := range old.keys {
		if !slices.ContainsFunc(next.keys, func(n extKey) bool { return n.kid == o.kid && n.thumb == o.thumb }) {
			return true
		}
	}
	return false
}

// discover reads the issuer's OpenID configuration and returns its
// jwks_uri. The document must name the configured issuer exactly.
func (x *externalIssuer) discover(ctx context.Context) (string, error) {
	u := strings.TrimSuffix(x.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := x.getJSON(ctx, u, &doc); err != nil {
		return "", fmt.Errorf("discovery %s: %w", u, err)
	}
	if doc.Issuer != x.cfg.Issuer {
		return "", fmt.Errorf("discovery %s: names issuer %q, not the configured %q", u, doc.Issuer, x.cfg.Issuer)
	}
	if err := CheckFetchURL(doc.JWKSURI, x.allowHTTP); err != nil {
		return "", fmt.Errorf("discovery %s: jwks_uri %w", u, err)
	}
	return doc.JWKSURI, nil
}

func (x *externalIssuer) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	res, err := x.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", res.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, fetchMaxBytes)).Decode(v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

// parseExternalKey turns one JWK into a verification key with the
// algorithms it may verify, or says why it is not usable: not a signing
// key, symmetric (HMAC), private material published, an RSA key under
// 2048 bits, a curve or alg Gatehouse does not accept.
func parseExternalKey(raw []byte, allowed []string) (extKey, error) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return extKey{}, err
	}
	if k.Use != "" && k.Use != "sig" {
		return extKey{}, fmt.Errorf("use %q is not sig", k.Use)
	}
	if !k.IsPublic() {
		return extKey{}, errors.New("not a public key (symmetric, or private material published in the JWKS)")
	}
	var family []string
	def := ""
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		if bits := pub.N.BitLen(); bits < MinRSABits {
			return extKey{}, fmt.Errorf("RSA key of %d bits, at least %d required", bits, MinRSABits)
		}
		family, def = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, "RS256"
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			family = []string{"ES256"}
		case elliptic.P384():
			family = []string{"ES384"}
		default:
			return extKey{}, fmt.Errorf("curve %s is not accepted", pub.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		family = []string{"EdDSA"}
	default:
		return extKey{}, fmt.Errorf("key type %T is not accepted", k.Key)
	}
	var algs []string
	switch {
	case k.Algorithm != "":
		if !slices.Contains(family, k.Algorithm) {
			return extKey{}, fmt.Errorf("alg %q does not fit the key or is not accepted", k.Algorithm)
		}
		algs = []string{k.Algorithm}
	case len(allowed) > 0:
		algs = family
	case def != "":
		algs = []string{def}
	default:
		algs = family
	}
	if len(allowed) > 0 {
		algs = slices.DeleteFunc(slices.Clone(algs), func(a string) bool { return !slices.Contains(allowed, a) })
		if len(algs) == 0 {
			return extKey{}, errors.New("none of its algorithms is in allowed_algs")
		}
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return extKey{}, err
	}
	return extKey{kid: k.KeyID, key: k.Key, algs: algs, thumb: string(tp)}, nil
}

// refreshSoon asks for a refresh unless one was tried in the last 30 s.
func (x *externalIssuer) refreshSoon() {
	if x.clock.Now().UnixNano()-x.fetched.Load() < int64(jwksUnknownKIDWait) {
		return
	}
	select {
	case x.kick <- struct{}{}:
	default:
	}
}

func (x *externalIssuer) status() ExternalIssuerStatus {
	x.mu.Lock()
	defer x.mu.Unlock()
	st := ExternalIssuerStatus{Issuer: x.cfg.Issuer, JWKSURL: x.jwksURL, LoadedAt: x.loadedAt, Err: x.lastErr}
	if set := x.keys.Load(); set != nil {
		st.Keys = len(set.keys)
	}
	return st
}

var (
	errAmbiguousKey = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid token: no kid, and the issuer has several keys for its alg")
	errBadScope     = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid token: a scope value contains whitespace, a comma or a control character")
)

// verify checks an external token whose claims (decoded, not yet
// trusted) are std: a key of the issuer that verifies the token's alg (by
// kid; without kid only if exactly one fits), the signature, iss, aud and
// times, the subject, and maps its scopes.
func (x *externalIssuer) verify(tok *compactJWS, std jwt.Claims, now time.Time) (*gatehouse.Principal, error) {
	alg, kid := tok.alg, tok.kid
	set := x.keys.Load()
	if set == nil {
		x.refreshSoon()
		return nil, errUnknownKID
	}
	var cands []*extKey
	kidKnown := false
	for i := range set.keys {
		k := &set.keys[i]
		if kid != "" && k.kid != kid {
			continue
		}
		kidKnown = true
		if slices.Contains(k.algs, alg) {
			cands = append(cands, k)
		}
	}
	switch {
	case len(cands) == 0 && kidKnown:
		return nil, errBadToken // the key exists but not for this alg
	case len(cands) == 0:
		x.refreshSoon()
		return nil, errUnknownKID
	case kid == "" && len(cands) > 1:
		return nil, errAmbiguousKey
	}
	if !slices.ContainsFunc(cands, func(k *extKey) bool { return verifyJWS(alg, k.key, tok.signingInput, tok.sig) }) {
		return nil, errBadSignature
	}
	if err := validateClaims(std, jwt.Expected{Issuer: x.cfg.Issuer, AnyAudience: x.cfg.Audiences, Time: now}); err != nil {
		return nil, err
	}
	var all map[string]any
	if err := decodeJOSE(tok.payload, &all); err != nil {
		return nil, errBadToken
	}
	sub, _ := all[x.cfg.SubjectClaim].(string)
	if sub == "" || len(sub) > 256 || !utf8.ValidString(sub) || strings.IndexFunc(sub, unicode.IsControl) >= 0 {
		return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid token: %s claim must be 1 to 256 characters without control characters", x.cfg.SubjectClaim)
	}
	scopes, err := x.mapScopes(all[x.cfg.ScopeClaim])
	if err != nil {
		return nil, err
	}
	return gatehouse.NewPrincipal(x.cfg.Issuer+"#"+sub, gatehouse.KindExternal, sub, scopes, ""), nil
}

// mapScopes turns the scope claim (a space-separated string or an array
// of strings) into Gatehouse scopes through scope_map and allowed_scopes.
// A value with whitespace, a comma or a control character refuses the
// whole token: it is an attempt to be read as several scopes, or an
// issuer producing what it should not, and either way the token is not
// what it claims to be.
func (x *externalIssuer) mapScopes(claim any) ([]string, error) {
	var out []string
	add := func(s string) error {
		if badScopeValue(s) {
			return errBadScope
		}
		out = appendNew(out, x.scopes[s]...)
		return nil
	}
	switch v := claim.(type) {
	case nil:
	case string:
		for s := range strings.SplitSeq(v, " ") {
			if s == "" {
				continue
			}
			if err := add(s); err != nil {
				return nil, err
			}
		}
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok || s == "" {
				return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid token: %s claim must be a string or an array of non-empty strings", x.cfg.ScopeClaim)
			}
			if err := add(s); err != nil {
				return nil, err
			}
		}
	default:
		return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid token: %s claim must be a string or an array of non-empty strings", x.cfg.ScopeClaim)
	}
	return out, nil
}
