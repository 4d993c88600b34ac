package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/oklog/ulid/v2"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/secrets"
)

// Signing algorithms Gatehouse issues (and accepts of its own tokens).
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
)

// Leeway is the clock skew allowed on exp, nbf and iat.
const Leeway = 60 * time.Second

// Token defaults.
const (
	DefaultTokenTTL        = 15 * time.Minute
	DefaultSigningRotation = 180 * 24 * time.Hour
	DefaultAudience        = "gatehouse"
)

// SigningKeyStore persists the signing keys as one opaque blob. The data
// dir file (secrets.File) implements it; Vault can later.
type SigningKeyStore interface {
	Load(ctx context.Context) ([]byte, error) // nil, nil when nothing is stored
	Save(ctx context.Context, data []byte) error
}

// TokensConfig configures the token service.
type TokensConfig struct {
	Issuer   string // iss of issued tokens, e.g. https://gatehouse.example
	Audience string // aud of issued tokens and required of verified ones
	TTL      time.Duration
	Alg      string // AlgEdDSA (default) or AlgES256
	Rotation time.Duration
	Keys     SigningKeyStore
	// ReloadEvery is how often Run checks the key store for a rotation
	// another replica made (with a store that has a Changed method, a
	// version check; else a read); 0: never (one replica per store).
	ReloadEvery time.Duration
	Clients     *Clients // revoked clients' tokens fail
	External    []ExternalIssuer
	// AllowPlainHTTP (dev mode) lets external issuers' keys and discovery
	// be fetched over plain http:// from hosts other than loopback.
	AllowPlainHTTP bool
	Clock          gatehouse.Clock
	Logger         *slog.Logger
	Auditor        gatehouse.Auditor
}

// Tokens issues and verifies JWTs: its own (client credentials) and those
// of configured external issuers. It is safe for concurrent use.
type Tokens struct {
	cfg   TokensConfig
	log   *slog.Logger
	clock gatehouse.Clock

	mu    sync.Mutex               // serializes rotation and reloads
	state atomic.Pointer[keyState] // current signing keys, immutable
	// miss is the reload tokens with an unknown kid cause (reloadOnMiss).
	miss struct {
		mu      sync.Mutex
		running chan struct{} // closed when the reload under way ends
		last    time.Time     // the last reload that found nothing new
	}
	cache *tokenCache                // verified tokens
	ext   map[string]*externalIssuer // by issuer
	exts  []*externalIssuer          // in config order
}

// signingKey is one signing key pair.
type signingKey struct {
	KID       string    `json:"kid"`
	Alg       string    `json:"alg"`
	Private   []byte    `json:"private_pkcs8"`
	CreatedAt time.Time `json:"created_at"`
	RetiredAt time.Time `json:"retired_at,omitzero"`

	pub    crypto.PublicKey
	signer jose.Signer
}

// keyState is an immutable snapshot of the signing keys.
type keyState struct {
	keys   []*signingKey // oldest first; the last one signs
	byKID  map[string]*signingKey
	jwks   []byte
	active *signingKey
}

// SigningKeyInfo describes a signing key without its private part.
type SigningKeyInfo struct {
	KID       string     `json:"kid"`
	Alg       string     `json:"alg"`
	CreatedAt time.Time  `json:"created_at"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
	Active    bool       `json:"active"`
}

// NewTokens loads the signing keys (generating the first on first start)
// and starts fetching external issuers' key sets.
func NewTokens(ctx context.Context, cfg TokensConfig) (*Tokens, error) {
	if cfg.Keys == nil || cfg.Issuer == "" {
		return nil, errors.New("authn: tokens need a key store and an issuer")
	}
	if cfg.Clock == nil {
		cfg.Clock = gatehouse.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTokenTTL
	}
	if cfg.Rotation <= 0 {
		cfg.Rotation = DefaultSigningRotation
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.Alg == "" {
		cfg.Alg = AlgEdDSA
	}
	if cfg.Alg != AlgEdDSA && cfg.Alg != AlgES256 {
		return nil, fmt.Errorf("authn: signing algorithm %q: use %s or %s", cfg.Alg, AlgEdDSA, AlgES256)
	}
	t := &Tokens{cfg: cfg, log: cfg.Logger.WithGroup("tokens"), clock: cfg.Clock, cache: newTokenCache(), ext: map[string]*externalIssuer{}}
	data, err := cfg.Keys.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	var keys []*signingKey
	if data != nil {
		if err := json.Unmarshal(data, &keys); err != nil {
			return nil, fmt.Errorf("decode signing keys: %w", err)
		}
		for _, k := range keys {
			if err := k.init(); err != nil {
				return nil, err
			}
		}
	}
	if len(keys) == 0 || keys[len(keys)-1].Alg != cfg.Alg || !keys[len(keys)-1].RetiredAt.IsZero() {
		if err := t.rotateLocked(ctx, keys, "initial"); err != nil {
			return nil, err
		}
	} else {
		t.publish(keys)
	}
	for _, e := range cfg.External {
		if t.ext[e.Issuer] != nil {
			return nil, fmt.Errorf("external issuer %s: configured twice", e.Issuer)
		}
		x, err := newExternalIssuer(e, cfg.AllowPlainHTTP, t.log, cfg.Clock, t.cache.clear)
		if err != nil {
			return nil, err
		}
		t.ext[e.Issuer] = x
		t.exts = append(t.exts, x)
	}
	return t, nil
}

// Run refreshes external key sets and rotates the signing key on schedule
// until ctx ends.
func (t *Tokens) Run(ctx context.Context) {
	for _, x := range t.ext {
		go x.run(ctx)
	}
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	var reload <-chan time.Time
	if t.cfg.ReloadEvery > 0 {
		r := time.NewTicker(t.cfg.ReloadEvery)
		defer r.Stop()
		reload = r.C
	}
	for {
		if _, err := t.RotateIfDue(ctx); err != nil {
			t.log.Error("scheduled signing key rotation failed", "err", err)
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				break wait
			case <-reload:
				if _, err := t.Reload(ctx); err != nil && ctx.Err() == nil {
					t.log.Warn("signing keys: check for a rotation elsewhere failed", "err", err)
				}
			}
		}
	}
}

// Reload adopts the signing keys as stored when they differ from the ones
// in use (another replica rotated them): the JWKS, the key that signs and
// the keys that verify swap at once, and the retired keys stay until
// their tokens expire, as the rotating replica keeps them. It reports
// whether anything changed.
func (t *Tokens) Reload(ctx context.Context) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reloadLocked(ctx)
}

func (t *Tokens) reloadLocked(ctx context.Context) (bool, error) {
	if c, ok := t.cfg.Keys.(interface {
		Changed(context.Context) (bool, error)
	}); ok {
		changed, err := c.Changed(ctx)
		if err != nil || !changed {
			return false, err
		}
	}
	data, err := t.cfg.Keys.Load(ctx)
	if err != nil || data == nil {
		return false, err
	}
	var keys []*signingKey
	if err := json.Unmarshal(data, &keys); err != nil {
		return false, fmt.Errorf("decode signing keys: %w", err)
	}
	if len(keys) == 0 || sameKeys(t.state.Load().keys, keys) {
		return false, nil
	}
	for _, k := range keys {
		if err := k.init(); err != nil {
			return false, err
		}
	}
	old := t.state.Load().active.KID
	t.publish(keys)
	t.cache.clear()
	t.log.InfoContext(ctx, "signing keys reloaded: rotated elsewhere", "active_kid", t.state.Load().active.KID, "was", old, "keys", len(keys))
	return true, nil
}

// sameKeys reports whether a and b are the same keys in the same states.
func sameKeys(a, b []*signingKey) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].KID != b[i].KID || !a[i].RetiredAt.Equal(b[i].RetiredAt) {
			return false
		}
	}
	return true
}

// retryReason marks the one retry of a rotation whose save met another
// replica's.
const retryReason = " (after a rotation elsewhere)"

// reloadOnMiss reloads the keys for a token of this issuer whose kid is
// unknown (signed by a key another replica just made); the caller looks
// the kid up again after it. Callers that arrive while a reload runs wait
// for it rather than fail. Reloads after which the kid is still unknown
// are at most one per missReloadEvery, whatever callers send; the others
// do not count, so the next rotation is followed at once too. The reload
// is not cut short by the caller that started it hanging up.
func (t *Tokens) reloadOnMiss(ctx context.Context, now time.Time, kid string) {
	m := &t.miss
	m.mu.Lock()
	if t.state.Load().byKID[kid] != nil {
		// Another caller's reload found it meanwhile.
		m.mu.Unlock()
		return
	}
	if ch := m.running; ch != nil {
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		return
	}
	if !m.last.IsZero() && now.Sub(m.last) < missReloadEvery {
		m.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	m.running = ch
	m.mu.Unlock()

	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	changed, err := t.Reload(rctx)
	cancel()
	if err != nil {
		t.log.Warn("signing keys: reload for an unknown kid failed", "err", err)
	}
	m.mu.Lock()
	m.running = nil
	if changed || t.state.Load().byKID[kid] != nil {
		m.last = time.Time{}
	} else {
		m.last = now // a kid no key has: what bounds a flood of them
	}
	m.mu.Unlock()
	close(ch)
}

// missReloadEvery bounds the reloads tokens with unknown kids cause.
const missReloadEvery = 250 * time.Millisecond

func (k *signingKey) init() error {
	priv, err := x509.ParsePKCS8PrivateKey(k.Private)
	if err != nil {
		return fmt.Errorf("signing key %s: %w", k.KID, err)
	}
	var alg jose.SignatureAlgorithm
	switch p := priv.(type) {
	case ed25519.PrivateKey:
		k.pub, alg = p.Public(), jose.EdDSA
	case *ecdsa.PrivateKey:
		k.pub, alg = p.Public(), jose.ES256
	default:
		return fmt.Errorf("signing key %s: unsupported key type %T", k.KID, priv)
	}
	k.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.KID))
	if err != nil {
		return fmt.Errorf("signing key %s: %w", k.KID, err)
	}
	return nil
}

func newSigningKey(alg string, now time.Time) (*signingKey, error) {
	var priv crypto.Signer
	var err error
	if alg == AlgES256 {
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	tp, err := (&jose.JSONWebKey{Key: priv.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing key thumbprint: %w", err)
	}
	k := &signingKey{KID: base64.RawURLEncoding.EncodeToString(tp)[:16], Alg: alg, Private: der, CreatedAt: now}
	return k, k.init()
}

// publish makes keys the current state.
func (t *Tokens) publish(keys []*signingKey) {
	st := &keyState{keys: keys, byKID: map[string]*signingKey{}, active: keys[len(keys)-1]}
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		st.byKID[k.KID] = k
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.pub, KeyID: k.KID, Algorithm: k.Alg, Use: "sig"})
	}
	st.jwks, _ = json.Marshal(set)
	t.state.Store(st)
}

// Rotate retires the active signing key and starts signing with a new
// one. The old key stays in the JWKS, and its tokens verify, until they
// have all expired.
func (t *Tokens) Rotate(ctx context.Context, reason string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rotateLocked(ctx, t.state.Load().keys, reason)
}

// RotateIfDue rotates when the active key is older than the rotation
// period, and drops retired keys whose tokens have all expired.
func (t *Tokens) RotateIfDue(ctx context.Context) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.state.Load()
	now := t.clock.Now()
	if now.Sub(st.active.CreatedAt) >= t.cfg.Rotation {
		return true, t.rotateLocked(ctx, st.keys, "scheduled")
	}
	if kept := t.pruneRetired(st.keys, now); len(kept) != len(st.keys) {
		return false, t.saveAndPublish(ctx, kept)
	}
	return false, nil
}

func (t *Tokens) pruneRetired(keys []*signingKey, now time.Time) []*signingKey {
	var kept []*signingKey
	for _, k := range keys {
		if k.RetiredAt.IsZero() || now.Sub(k.RetiredAt) < t.cfg.TTL+Leeway {
			kept = append(kept, k)
		}
	}
	return kept
}

func (t *Tokens) rotateLocked(ctx context.Context, keys []*signingKey, reason string) error {
	now := t.clock.Now().UTC()
	next, err := newSigningKey(t.cfg.Alg, now)
	if err != nil {
		return err
	}
	var out []*signingKey
	var old string
	for _, k := range keys {
		k2 := *k
		if k2.RetiredAt.IsZero() {
			k2.RetiredAt, old = now, k.KID
		}
		out = append(out, &k2)
	}
	out = append(t.pruneRetired(out, now), next)
	if err := t.saveAndPublish(ctx, out); err != nil {
		if !errors.Is(err, secrets.ErrConflict) || strings.HasSuffix(reason, retryReason) {
			return err
		}
		// Another replica changed the keys since this one read them:
		// serve its keys; a rotation asked for is made on top of them.
		if _, rerr := t.reloadLocked(ctx); rerr != nil {
			return err
		}
		st := t.state.Load()
		if reason == "scheduled" && now.Sub(st.active.CreatedAt) < t.cfg.Rotation {
			return nil
		}
		return t.rotateLocked(ctx, st.keys, reason+retryReason)
	}
	t.cache.clear()
	t.log.InfoContext(ctx, "signing key rotated", "reason", reason, "new_kid", next.KID, "retired_kid", old)
	if t.cfg.Auditor != nil {
		t.cfg.Auditor.Record(ctx, gatehouse.Event{
			Time: now, Type: "signing_key.rotated", Actor: gatehouse.Actor{Kind: "system"},
			Action: "rotate", Resource: "signing_key:" + next.KID, Outcome: gatehouse.OutcomeSuccess,
			Details: map[string]any{"reason": reason, "retired_kid": old, "alg": next.Alg},
		})
	}
	return nil
}

func (t *Tokens) saveAndPublish(ctx context.Context, keys []*signingKey) error {
	data, err := json.Marshal(keys)
	if err != nil {
		return fmt.Errorf("encode signing keys: %w", err)
	}
	if err := t.cfg.Keys.Save(ctx, data); err != nil {
		return fmt.Errorf("save signing keys: %w", err)
	}
	t.publish(keys)
	return nil
}

// SigningKeys lists the signing keys in the JWKS.
func (t *Tokens) SigningKeys() []SigningKeyInfo {
	st := t.state.Load()
	out := make([]SigningKeyInfo, 0, len(st.keys))
	for _, k := range st.keys {
		info := SigningKeyInfo{KID: k.KID, Alg: k.Alg, CreatedAt: k.CreatedAt, Active: k == st.active}
		if !k.RetiredAt.IsZero() {
			r := k.RetiredAt
			info.RetiredAt = &r
		}
		out = append(out, info)
	}
	return out
}

// JWKS returns the JSON Web Key Set of every key whose tokens may still
// be valid.
func (t *Tokens) JWKS() []byte { return t.state.Load().jwks }

// ExternalStatus reports the key set of each external issuer, in config
// order.
func (t *Tokens) ExternalStatus() []ExternalIssuerStatus {
	out := make([]ExternalIssuerStatus, 0, len(t.exts))
	for _, x := range t.exts {
		out = append(out, x.status())
	}
	return out
}

// RefreshExternal fetches every external issuer's key set now (Run also
// does, in the background), returning the failures joined.
func (t *Tokens) RefreshExternal(ctx context.Context) error {
	var errs []error
	for _, x := range t.exts {
		if err := x.fetch(ctx); err != nil {
			errs = append(errs, fmt.Errorf("external issuer %s: %w", x.cfg.Issuer, err))
		}
	}
	return errors.Join(errs...)
}

// Issuer is the iss of issued tokens.
func (t *Tokens) Issuer() string { return t.cfg.Issuer }

// TTL is the lifetime of issued tokens.
func (t *Tokens) TTL() time.Duration { return t.cfg.TTL }

// Alg is the signing algorithm.
func (t *Tokens) Alg() string { return t.cfg.Alg }

// claims are the private claims Gatehouse puts in its tokens.
type claims struct {
	Scope string `json:"scope,omitempty"`
	Tier  string `json:"tier,omitempty"`
}

// Issue signs a token for principal p with the given scopes (a subset of
// p's, checked by the caller).
func (t *Tokens) Issue(p *gatehouse.Principal, scopes []string) (string, time.Time, error) {
	return t.IssueUntil(p, scopes, time.Time{})
}

// IssueUntil is Issue with the token's expiry capped at notAfter (zero:
// no cap), such as the expiry of the client it is issued to: no token
// outlives the credential it was issued for.
func (t *Tokens) IssueUntil(p *gatehouse.Principal, scopes []string, notAfter time.Time) (string, time.Time, error) {
	st := t.state.Load()
	now := t.clock.Now()
	exp := now.Add(t.cfg.TTL)
	if !notAfter.IsZero() && notAfter.Before(exp) {
		exp = notAfter
	}
	std := jwt.Claims{
		Issuer:    t.cfg.Issuer,
		Subject:   p.ID,
		Audience:  jwt.Audience{t.cfg.Audience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		Expiry:    jwt.NewNumericDate(exp),
		ID:        ulid.Make().String(),
	}
	tok, err := jwt.Signed(st.active.signer).Claims(std).Claims(claims{Scope: strings.Join(scopes, " "), Tier: p.Tier}).Serialize()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return tok, exp, nil
}

// LooksLikeJWT reports whether s has the shape of a compact JWS.
func LooksLikeJWT(s string) bool {
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}

// Token verification failures.
var (
	errBadToken     = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid token")
	errUnknownKID   = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid token: unknown signing key")
	errBadSignature = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid token: bad signature")
	errNoExpiry     = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid token: no expiry")
)

// Authenticate verifies a bearer JWT and returns its principal. A token
// verified before costs one SHA-256 and two map lookups; a new one is
// split and decoded once and its signature verified once (see
// parseCompact). A token over MaxJWTBytes is refused before any of it.
func (t *Tokens) Authenticate(ctx context.Context, raw string) (*gatehouse.Principal, error) {
	if len(raw) > MaxJWTBytes {
		return nil, errBadToken
	}
	now := t.clock.Now()
	key := sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw))) // #nosec G103 -- read-only view of a string's bytes for hashing, not retained
	if e := t.cache.get(key); e != nil {
		if !now.Before(e.expires.Add(Leeway)) {
			return nil, ErrExpired
		}
		if e.client != "" && t.cfg.Clients != nil {
			if t.cfg.Clients.Revoked(e.client) {
				return nil, ErrRevoked
			}
			t.cfg.Clients.Used(e.client, now)
		}
		return e.principal, nil
	}
	tok, err := parseCompact(raw)
	if err != nil {
		return nil, err
	}
	if k := t.state.Load().byKID[tok.kid]; k != nil {
		if tok.alg != k.Alg {
			return nil, errBadToken
		}
		return t.verifyOwn(&tok, k, key, now)
	}
	var unverified jwt.Claims
	if err := decodeJOSE(tok.payload, &unverified); err != nil {
		return nil, errBadToken
	}
	if unverified.Issuer == t.cfg.Issuer {
		// The keys may have changed since they were read above: by this
		// reload, one this caller waited for, or another's.
		t.reloadOnMiss(ctx, now, tok.kid)
		if k := t.state.Load().byKID[tok.kid]; k != nil && tok.alg == k.Alg {
			return t.verifyOwn(&tok, k, key, now)
		}
	}
	if x := t.ext[unverified.Issuer]; x != nil {
		p, err := x.verify(&tok, unverified, now)
		if err != nil {
			return nil, err
		}
		t.cache.put(key, &cachedToken{principal: p, expires: unverified.Expiry.Time()})
		return p, nil
	}
	return nil, errUnknownKID
}

// ownClaims decodes a token's registered and private claims in one pass.
type ownClaims struct {
	jwt.Claims
	claims
}

// verifyOwn checks a token signed by one of Gatehouse's keys: the
// signature over the token's own text, then one decode of its claims.
func (t *Tokens) verifyOwn(tok *compactJWS, k *signingKey, key [32]byte, now time.Time) (*gatehouse.Principal, error) {
	if !verifyJWS(tok.alg, k.pub, tok.signingInput, tok.sig) {
		return nil, errBadSignature
	}
	var all ownClaims
	if err := decodeJOSE(tok.payload, &all); err != nil {
		return nil, errBadToken
	}
	std, priv := all.Claims, all.claims
	if err := validateClaims(std, jwt.Expected{Issuer: t.cfg.Issuer, AnyAudience: jwt.Audience{t.cfg.Audience}, Time: now}); err != nil {
		return nil, err
	}
	if t.cfg.Clients != nil && t.cfg.Clients.Revoked(std.Subject) {
		return nil, ErrRevoked
	}
	p := gatehouse.NewPrincipal(std.Subject, gatehouse.KindClient, "", strings.Fields(priv.Scope), priv.Tier)
	t.cache.put(key, &cachedToken{principal: p, expires: std.Expiry.Time(), client: std.Subject})
	if t.cfg.Clients != nil {
		t.cfg.Clients.Used(std.Subject, now)
	}
	return p, nil
}

// validateClaims checks iss, aud, exp (required), nbf and iat with Leeway.
func validateClaims(c jwt.Claims, want jwt.Expected) error {
	if c.Expiry == nil {
		return errNoExpiry
	}
	switch err := c.ValidateWithLeeway(want, Leeway); {
	case err == nil:
		return nil
	case errors.Is(err, jwt.ErrExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid token: not valid yet")
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid token: wrong issuer")
	case errors.Is(err, jwt.ErrInvalidAudience):
		return gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid token: wrong audience")
	default:
		return errBadToken
	}
}

// tokenCache remembers verified tokens by SHA-256, until they expire.
type tokenCache struct {
	shards [cacheShards]tokenShard
}

type tokenShard struct {
	mu sync.RWMutex
	m  map[[32]byte]*cachedToken
}

type cachedToken struct {
	principal *gatehouse.Principal
	expires   time.Time
	client    string // client id whose revocation voids the token
}

// tokenCacheShardMax bounds memory: a full shard is emptied.
const tokenCacheShardMax = 8192

func newTokenCache() *tokenCache {
	c := &tokenCache{}
	for i := range c.shards {
		c.shards[i].m = map[[32]byte]*cachedToken{}
	}
	return c
}

func (c *tokenCache) get(k [32]byte) *cachedToken {
	s := &c.shards[k[0]%cacheShards]
	s.mu.RLock()
	e := s.m[k]
	s.mu.RUnlock()
	return e
}

func (c *tokenCache) put(k [32]byte, e *cachedToken) {
	s := &c.shards[k[0]%cacheShards]
	s.mu.Lock()
	if len(s.m) >= tokenCacheShardMax {
		clear(s.m)
	}
	s.m[k] = e
	s.mu.Unlock()
}

func (c *tokenCache) clear() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.mu.Unlock()
	}
}
