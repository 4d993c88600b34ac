package authn_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/secrets"
)

// fakeIdP is a real HTTP listener standing in for an identity provider:
// an OpenID configuration and a JWKS that the test can change or break.
type fakeIdP struct {
	*httptest.Server
	mu        sync.Mutex
	keys      []json.RawMessage
	issuer    string // the discovery document's issuer ("" = the server URL)
	jwksURI   string // the discovery document's jwks_uri ("" = /jwks.json here)
	jwksFails bool
}

func newFakeIdP(t testing.TB) *fakeIdP {
	idp := &fakeIdP{}
	idp.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idp.mu.Lock()
		defer idp.mu.Unlock()
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			iss, uri := idp.issuer, idp.jwksURI
			if iss == "" {
				iss = idp.URL
			}
			if uri == "" {
				uri = idp.URL + "/jwks.json"
			}
			json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": uri})
		case "/jwks.json":
			if idp.jwksFails {
				http.Error(w, "down", http.StatusInternalServerError)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"keys": idp.keys})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(idp.Close)
	return idp
}

// publish replaces the JWKS with these keys (public parts unless raw).
func (idp *fakeIdP) publish(t testing.TB, keys ...jose.JSONWebKey) {
	t.Helper()
	var raws []json.RawMessage
	for _, k := range keys {
		b, err := k.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, b)
	}
	idp.mu.Lock()
	idp.keys = raws
	idp.mu.Unlock()
}

func (idp *fakeIdP) publishRaw(raws ...string) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.keys = nil
	for _, r := range raws {
		idp.keys = append(idp.keys, json.RawMessage(r))
	}
}

// testKey is a signing key of the fake IdP.
type testKey struct {
	kid  string
	alg  string
	priv crypto.Signer
}

func (k testKey) jwk(withAlg bool) jose.JSONWebKey {
	j := jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Use: "sig"}
	if withAlg {
		j.Algorithm = k.alg
	}
	return j
}

var (
	rsaOnce sync.Once
	rsa2048 *rsa.PrivateKey
	rsaB    *rsa.PrivateKey
)

// rsaKeys generates two RSA 2048 keys once per test binary.
func rsaKeys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	rsaOnce.Do(func() {
		var err error
		if rsa2048, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
		if rsaB, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	})
	return rsa2048, rsaB
}

func mustEC(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sign makes a JWT with the given alg and key, kid ("" for none) and
// claims on top of valid defaults for issuer iss at now.
func sign(t testing.TB, alg string, key any, kid, iss string, now time.Time, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	c := map[string]any{"iss": iss, "sub": "alice", "aud": "gatehouse",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// hs256 forges an HS256 token with secret as the HMAC key.
func hs256(t testing.TB, kid string, secret []byte, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT", "kid": kid})
	p, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// mustExternal opens a token service trusting one external issuer and
// loads its key set.
func mustExternal(t testing.TB, clock gatehouse.Clock, e authn.ExternalIssuer) (*authn.Tokens, error) {
	t.Helper()
	if e.Audiences == nil {
		e.Audiences = []string{"gatehouse"}
	}
	if e.ScopeMap == nil && e.AllowedScopes == nil {
		e.AllowedScopes = []string{"read", "write"}
	}
	tok, err := authn.NewTokens(context.Background(), authn.TokensConfig{
		Issuer: "https://gatehouse.test", Clock: clock,
		Keys:     secrets.File{Path: filepath.Join(t.TempDir(), "signing-keys.json")},
		External: []authn.ExternalIssuer{e},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok, tok.RefreshExternal(context.Background())
}

var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// TestExternalAlgorithms: a token of each algorithm family real identity
// providers use verifies against a JWKS served over HTTP, found through
// OIDC discovery and through jwks_url.
func TestExternalAlgorithms(t *testing.T) {
	ra, _ := rsaKeys(t)
	keys := []testKey{
		{"rs256", "RS256", ra}, {"rs384", "RS384", ra}, {"rs512", "RS512", ra},
		{"ps256", "PS256", ra}, {"ps384", "PS384", ra}, {"ps512", "PS512", ra},
		{"es256", "ES256", mustEC(t, elliptic.P256())},
		{"es384", "ES384", mustEC(t, elliptic.P384())},
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	keys = append(keys, testKey{"ed", "EdDSA", ed})
	idp := newFakeIdP(t)
	var jwks []jose.JSONWebKey
	for _, k := range keys {
		jwks = append(jwks, k.jwk(true))
	}
	idp.publish(t, jwks...)
	clock := gatehouse.NewFakeClock(testNow)
	for _, how := range []string{"discovery", "jwks_url"} {
		cfg := authn.ExternalIssuer{Issuer: idp.URL, ScopeMap: map[string][]string{"read": {"read:signals"}}}
		if how == "jwks_url" {
			cfg.JWKSURL = idp.URL + "/jwks.json"
		}
		tok, err := mustExternal(t, clock, cfg)
		if err != nil {
			t.Fatalf("%s: load JWKS: %v", how, err)
		}
		if st := tok.ExternalStatus(); len(st) != 1 || st[0].Keys != len(keys) || st[0].JWKSURL != idp.URL+"/jwks.json" || st[0].Err != nil {
			t.Fatalf("%s: status %+v", how, st)
		}
		for _, k := range keys {
			t.Run(how+"/"+k.alg, func(t *testing.T) {
				s := sign(t, k.alg, k.priv, k.kid, idp.URL, testNow, map[string]any{"scope": "read"})
				p, err := tok.Authenticate(context.Background(), s)
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if p.Kind != gatehouse.KindExternal || p.ID != idp.URL+"#alice" || p.ScopesHeader != "read:signals" {
					t.Fatalf("principal %+v", p)
				}
			})
		}
	}
}

// TestExternalKeyAbuse: the keys and algorithms an attacker would try.
// Each token is otherwise valid.
func TestExternalKeyAbuse(t *testing.T) {
	ra, rb := rsaKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p256 := mustEC(t, elliptic.P256())
	pubDER, _ := x509.MarshalPKIXPublicKey(&ra.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	privJWK, _ := jose.JSONWebKey{Key: rb, KeyID: "leaked", Algorithm: "RS256"}.MarshalJSON()
	octJWK := `{"kty":"oct","kid":"oct","alg":"HS256","k":"` + base64.RawURLEncoding.EncodeToString(pubPEM) + `"}`
	jwkJSON := func(k jose.JSONWebKey) string { b, _ := k.MarshalJSON(); return string(b) }
	encKey := jwkJSON(jose.JSONWebKey{Key: &rb.PublicKey, KeyID: "enc", Use: "enc"})
	noneTok := func(iss string) string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"a"}`))
		p, _ := json.Marshal(map[string]any{"iss": iss, "sub": "alice", "aud": "gatehouse", "exp": testNow.Add(time.Minute).Unix(), "scope": "read"})
		return h + "." + base64.RawURLEncoding.EncodeToString(p) + "."
	}
	type tc struct {
		name   string
		keys   []string // JWKS
		algs   []string // allowed_algs
		token  func(iss string) string
		accept bool
	}
	rsaA := func(alg string) string {
		return jwkJSON(jose.JSONWebKey{Key: &ra.PublicKey, KeyID: "a", Algorithm: alg, Use: "sig"})
	}
	rsaBJ := jwkJSON(jose.JSONWebKey{Key: &rb.PublicKey, KeyID: "b", Algorithm: "RS256"})
	tok := func(alg string, key any, kid string, claims map[string]any) func(string) string {
		return func(iss string) string { return sign(t, alg, key, kid, iss, testNow, claims) }
	}
	cases := []tc{
		{name: "RS256 with alg RS256 key", keys: []string{rsaA("RS256")}, token: tok("RS256", ra, "a", nil), accept: true},
		{name: "PS256 token, key alg RS256", keys: []string{rsaA("RS256")}, token: tok("PS256", ra, "a", nil)},
		{name: "RS512 token, key alg RS256", keys: []string{rsaA("RS256")}, token: tok("RS512", ra, "a", nil)},
		{name: "RSA key without alg: RS256", keys: []string{rsaA("")}, token: tok("RS256", ra, "a", nil), accept: true},
		{name: "RSA key without alg: PS256 refused", keys: []string{rsaA("")}, token: tok("PS256", ra, "a", nil)},
		{name: "allowed_algs PS256: PS256", keys: []string{rsaA("")}, algs: []string{"PS256"}, token: tok("PS256", ra, "a", nil), accept: true},
		{name: "allowed_algs PS256: RS256 refused", keys: []string{rsaA("")}, algs: []string{"PS256"}, token: tok("RS256", ra, "a", nil)},
		{name: "allowed_algs ES256: RS256 key unusable", keys: []string{rsaA("RS256")}, algs: []string{"ES256"}, token: tok("RS256", ra, "a", nil)},
		{name: "RSA 1024 key", keys: []string{jwkJSON(jose.JSONWebKey{Key: &small.PublicKey, KeyID: "a", Algorithm: "RS256"}), rsaBJ}, token: tok("RS256", small, "a", nil)},
		{name: "HS256 with the RSA public key PEM as secret", keys: []string{rsaA("RS256")},
			token: func(iss string) string {
				return hs256(t, "a", pubPEM, map[string]any{"iss": iss, "sub": "alice", "aud": "gatehouse", "exp": testNow.Add(time.Minute).Unix()})
			}},
		{name: "HS256 with the RSA modulus as secret", keys: []string{rsaA("")},
			token: func(iss string) string {
				return hs256(t, "a", ra.N.Bytes(), map[string]any{"iss": iss, "sub": "alice", "aud": "gatehouse", "exp": testNow.Add(time.Minute).Unix()})
			}},
		{name: "HS256 against an oct key in the JWKS", keys: []string{octJWK, rsaBJ},
			token: func(iss string) string {
				return hs256(t, "oct", pubPEM, map[string]any{"iss": iss, "sub": "alice", "aud": "gatehouse", "exp": testNow.Add(time.Minute).Unix()})
			}},
		{name: "alg none", keys: []string{rsaA("RS256")}, token: noneTok},
		{name: "private key published in the JWKS", keys: []string{string(privJWK), rsaA("RS256")}, token: tok("RS256", rb, "leaked", nil)},
		{name: "encryption key", keys: []string{encKey, rsaA("RS256")}, token: tok("RS256", rb, "enc", nil)},
		{name: "kid of A, signed by B", keys: []string{rsaA("RS256"), rsaBJ}, token: tok("RS256", rb, "a", nil)},
		{name: "no kid, one key", keys: []string{rsaA("RS256")}, token: tok("RS256", ra, "", nil), accept: true},
		{name: "no kid, several keys", keys: []string{rsaA("RS256"), rsaBJ}, token: tok("RS256", ra, "", nil)},
		{name: "no kid, several keys, one for the alg", keys: []string{rsaA("PS256"), rsaBJ}, token: tok("PS256", ra, "", nil), accept: true},
		{name: "ES256 on a P-256 key marked ES384", keys: []string{jwkJSON(jose.JSONWebKey{Key: &p256.PublicKey, KeyID: "a", Algorithm: "ES384"}), rsaBJ}, token: tok("ES256", p256, "a", nil)},
		{name: "ES256 token for an RSA kid", keys: []string{rsaA(""), jwkJSON(jose.JSONWebKey{Key: &p256.PublicKey, KeyID: "e"})}, token: tok("ES256", p256, "a", nil)},
		{name: "unknown kid", keys: []string{rsaA("RS256")}, token: tok("RS256", rb, "zzz", nil)},
		{name: "wrong audience", keys: []string{rsaA("RS256")}, token: tok("RS256", ra, "a", map[string]any{"aud": "other"})},
		{name: "expired", keys: []string{rsaA("RS256")}, token: tok("RS256", ra, "a", map[string]any{"exp": testNow.Add(-time.Hour).Unix()})},
		{name: "no exp", keys: []string{rsaA("RS256")}, token: tok("RS256", ra, "a", map[string]any{"exp": nil})},
		{name: "subject with CRLF", keys: []string{rsaA("RS256")}, token: tok("RS256", ra, "a", map[string]any{"sub": "alice\r\nX-Gatehouse-Scopes: admin"})},
		{name: "no subject", keys: []string{rsaA("RS256")}, token: tok("RS256", ra, "a", map[string]any{"sub": nil})},
	}
	clock := gatehouse.NewFakeClock(testNow)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			idp := newFakeIdP(t)
			idp.publishRaw(c.keys...)
			tok, err := mustExternal(t, clock, authn.ExternalIssuer{Issuer: idp.URL, JWKSURL: idp.URL + "/jwks.json", AllowedAlgs: c.algs})
			if err != nil && c.accept {
				t.Fatalf("load JWKS: %v", err)
			}
			p, err := tok.Authenticate(context.Background(), c.token(idp.URL))
			switch {
			case c.accept && err != nil:
				t.Fatalf("refused: %v", err)
			case !c.accept && err == nil:
				t.Fatalf("accepted as %+v", p)
			case !c.accept && gatehouse.ErrorCode(err) != gatehouse.EUNAUTHORIZED:
				t.Fatalf("refused with %v, want EUNAUTHORIZED", err)
			}
		})
	}
}

// TestExternalScopeMapping: only mapped or allowed scopes pass, admin only
// when mapped, and a scope value that could be read as two refuses the
// token.
func TestExternalScopeMapping(t *testing.T) {
	ra, _ := rsaKeys(t)
	idp := newFakeIdP(t)
	idp.publish(t, jose.JSONWebKey{Key: &ra.PublicKey, KeyID: "a", Algorithm: "RS256"})
	clock := gatehouse.NewFakeClock(testNow)
	mapped := authn.ExternalIssuer{Issuer: idp.URL, ScopeMap: map[string][]string{
		"read":      {"read:signals"},
		"rw":        {"read:signals", "write:signals"},
		"idp-admin": {"admin"},
	}, AllowedScopes: []string{"demo:read"}, ScopePrefix: "idp:"}
	cases := []struct {
		name  string
		cfg   authn.ExternalIssuer
		claim any    // the scope claim (nil: absent)
		want  string // X-Gatehouse-Scopes; "!" = refused
	}{
		{"string claim mapped", mapped, "read", "read:signals"},
		{"array claim mapped", mapped, []string{"read"}, "read:signals"},
		{"one to several, deduplicated", mapped, "read rw", "read:signals write:signals"},
		{"unmapped admin dropped", mapped, "read admin", "read:signals"},
		{"only admin: no scopes", mapped, []string{"admin"}, ""},
		{"admin when mapped", mapped, "idp-admin", "admin"},
		{"allowed scope gets the prefix", mapped, "demo:read", "idp:demo:read"},
		{"a prefixed value is not an allowed scope", mapped, "idp:demo:read", ""},
		{"unknown scopes dropped", mapped, "openid profile email", ""},
		{"no claim", mapped, nil, ""},
		{"double spaces", mapped, "  read   rw ", "read:signals write:signals"},
		{"space inside an array element", mapped, []string{"read", "z admin:api"}, "!"},
		{"space inside an unmapped element", mapped, []string{"z admin"}, "!"},
		{"tab in the string", mapped, "read\tidp-admin", "!"},
		{"newline in the string", mapped, "read\nidp-admin", "!"},
		{"comma", mapped, []string{"read,idp-admin"}, "!"},
		{"NUL", mapped, []string{"read\x00"}, "!"},
		{"no-break space", mapped, []string{"read\u00a0idp-admin"}, "!"},
		{"DEL", mapped, []string{"read\x7f"}, "!"},
		{"empty array element", mapped, []string{""}, "!"},
		{"number in the array", mapped, []any{"read", 1}, "!"},
		{"object claim", mapped, map[string]any{"read": true}, "!"},
		{"number claim", mapped, 7, "!"},
		{"allowed_scopes without prefix", authn.ExternalIssuer{Issuer: idp.URL, AllowedScopes: []string{"read:signals"}}, "read:signals admin", "read:signals"},
		{"allowed_scopes: [] passes none", authn.ExternalIssuer{Issuer: idp.URL, AllowedScopes: []string{}}, "read:signals admin", ""},
		{"scope_claim scp (array)", authn.ExternalIssuer{Issuer: idp.URL, ScopeClaim: "scp", AllowedScopes: []string{"read"}}, nil, "read"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := mustExternal(t, clock, c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			claims := map[string]any{"scope": c.claim}
			if c.cfg.ScopeClaim == "scp" {
				claims = map[string]any{"scope": "admin", "scp": []string{"read", "admin"}}
			}
			p, err := tok.Authenticate(context.Background(), sign(t, "RS256", ra, "a", idp.URL, testNow, claims))
			if c.want == "!" {
				if err == nil || gatehouse.ErrorCode(err) != gatehouse.EUNAUTHORIZED {
					t.Fatalf("want 401, got %+v %v", p, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if p.ScopesHeader != c.want {
				t.Fatalf("scopes %q, want %q", p.ScopesHeader, c.want)
			}
			if p.HasScope("admin:api") && c.want != "admin" {
				t.Fatalf("principal holds admin:api: %q", p.ScopesHeader)
			}
		})
	}
}

// TestExternalDiscoveryChecks: the discovered issuer must be the
// configured one, and jwks_uri must pass the same scheme rule as jwks_url.
func TestExternalDiscoveryChecks(t *testing.T) {
	ra, _ := rsaKeys(t)
	clock := gatehouse.NewFakeClock(testNow)
	cases := []struct {
		name, issuer, jwksURI string
		want                  string // error substring
	}{
		{"other issuer", "https://evil.example", "", "names issuer"},
		{"issuer with a trailing slash", "{{URL}}/", "", "names issuer"},
		{"plain http jwks_uri off loopback", "", "http://idp.example/jwks.json", "plain http"},
		{"jwks_uri with credentials", "", "https://u:p@idp.example/jwks.json", "credentials"},
		{"jwks_uri not a URL", "", "jwks.json", "http(s) URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			idp := newFakeIdP(t)
			idp.publish(t, jose.JSONWebKey{Key: &ra.PublicKey, KeyID: "a", Algorithm: "RS256"})
			idp.issuer, idp.jwksURI = strings.ReplaceAll(c.issuer, "{{URL}}", idp.URL), c.jwksURI
			tok, err := mustExternal(t, clock, authn.ExternalIssuer{Issuer: idp.URL})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("load: %v, want %q", err, c.want)
			}
			if st := tok.ExternalStatus()[0]; st.Err == nil || st.Keys != 0 {
				t.Fatalf("status %+v", st)
			}
			if _, err := tok.Authenticate(context.Background(), sign(t, "RS256", ra, "a", idp.URL, testNow, nil)); err == nil {
				t.Fatal("token accepted without a trusted key set")
			}
		})
	}
}

// TestExternalKeySetChanges: a failed refresh keeps the keys and shows
// in the status; a key that leaves the set stops verifying at once, even
// for tokens verified (and cached) before.
func TestExternalKeySetChanges(t *testing.T) {
	ra, rb := rsaKeys(t)
	idp := newFakeIdP(t)
	idp.publish(t, jose.JSONWebKey{Key: &ra.PublicKey, KeyID: "a", Algorithm: "RS256"})
	clock := gatehouse.NewFakeClock(testNow)
	tok, err := mustExternal(t, clock, authn.ExternalIssuer{Issuer: idp.URL, JWKSURL: idp.URL + "/jwks.json"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := sign(t, "RS256", ra, "a", idp.URL, testNow, map[string]any{"scope": "read"})
	if _, err := tok.Authenticate(ctx, s); err != nil {
		t.Fatal(err)
	}

	idp.mu.Lock()
	idp.jwksFails = true
	idp.mu.Unlock()
	if err := tok.RefreshExternal(ctx); err == nil {
		t.Fatal("refresh of a failing JWKS succeeded")
	}
	if st := tok.ExternalStatus()[0]; st.Err == nil || st.Keys != 1 || !strings.Contains(st.Err.Error(), "HTTP 500") {
		t.Fatalf("status after a failed refresh: %+v", st)
	}
	if _, err := tok.Authenticate(ctx, sign(t, "RS256", ra, "a", idp.URL, testNow, map[string]any{"jti": "2"})); err != nil {
		t.Fatalf("kept key no longer verifies: %v", err)
	}

	idp.mu.Lock()
	idp.jwksFails = false
	idp.mu.Unlock()
	idp.publish(t, jose.JSONWebKey{Key: &rb.PublicKey, KeyID: "b", Algorithm: "RS256"})
	if err := tok.RefreshExternal(ctx); err != nil {
		t.Fatal(err)
	}
	if st := tok.ExternalStatus()[0]; st.Err != nil || st.Keys != 1 {
		t.Fatalf("status after rotation: %+v", st)
	}
	if p, err := tok.Authenticate(ctx, s); err == nil {
		t.Fatalf("token of a removed key still accepted as %+v", p)
	}
	if _, err := tok.Authenticate(ctx, sign(t, "RS256", rb, "b", idp.URL, testNow, nil)); err != nil {
		t.Fatalf("new key: %v", err)
	}
}

// TestExternalIssuerValidate: config errors name the field.
func TestExternalIssuerValidate(t *testing.T) {
	ok := authn.ExternalIssuer{Issuer: "https://idp.example", JWKSURL: "https://idp.example/jwks", Audiences: []string{"gatehouse"}, AllowedScopes: []string{"read"}}
	with := func(f func(*authn.ExternalIssuer)) authn.ExternalIssuer { e := ok; f(&e); return e }
	cases := []struct {
		name  string
		e     authn.ExternalIssuer
		dev   bool
		field string // "" = valid
	}{
		{"valid", ok, false, ""},
		{"plain http JWKS in prod", with(func(e *authn.ExternalIssuer) { e.JWKSURL = "http://idp.example/jwks" }), false, "jwks_url"},
		{"plain http JWKS in dev", with(func(e *authn.ExternalIssuer) { e.JWKSURL = "http://idp.example/jwks" }), true, ""},
		{"plain http JWKS on 127.0.0.1", with(func(e *authn.ExternalIssuer) { e.JWKSURL = "http://127.0.0.1:9/jwks" }), false, ""},
		{"plain http JWKS on [::1]", with(func(e *authn.ExternalIssuer) { e.JWKSURL = "http://[::1]:9/jwks" }), false, ""},
		{"plain http JWKS on localhost", with(func(e *authn.ExternalIssuer) { e.JWKSURL = "http://localhost:9/jwks" }), false, ""},
		{"plain http on a lookalike host", with(func(e *authn.ExternalIssuer) { e.JWKSURL = "http://127.0.0.1.evil.example/jwks" }), false, "jwks_url"},
		{"discovery over plain http in prod", with(func(e *authn.ExternalIssuer) { e.JWKSURL, e.Issuer = "", "http://idp.example" }), false, "issuer"},
		{"discovery over https", with(func(e *authn.ExternalIssuer) { e.JWKSURL = "" }), false, ""},
		{"credentials in the JWKS URL", with(func(e *authn.ExternalIssuer) { e.JWKSURL = "https://a:b@idp.example/jwks" }), false, "jwks_url"},
		{"no scope_map nor allowed_scopes", with(func(e *authn.ExternalIssuer) { e.AllowedScopes = nil }), false, "scope_map"},
		{"allowed admin", with(func(e *authn.ExternalIssuer) { e.AllowedScopes = []string{"admin"} }), false, "allowed_scopes[0]"},
		{"allowed admin with a prefix", with(func(e *authn.ExternalIssuer) { e.AllowedScopes, e.ScopePrefix = []string{"admin"}, "idp:" }), false, ""},
		{"allowed scope with a space", with(func(e *authn.ExternalIssuer) { e.AllowedScopes = []string{"a b"} }), false, "allowed_scopes[0]"},
		{"prefix with a space", with(func(e *authn.ExternalIssuer) { e.ScopePrefix = "idp " }), false, "scope_prefix"},
		{"mapped to admin", with(func(e *authn.ExternalIssuer) { e.ScopeMap = map[string][]string{"x": {"admin"}} }), false, ""},
		{"mapped to a scope with a space", with(func(e *authn.ExternalIssuer) { e.ScopeMap = map[string][]string{"x": {"a admin"}} }), false, "scope_map.x"},
		{"map key with a comma", with(func(e *authn.ExternalIssuer) { e.ScopeMap = map[string][]string{"a,b": {"a"}} }), false, "scope_map"},
		{"allowed_algs HS256", with(func(e *authn.ExternalIssuer) { e.AllowedAlgs = []string{"HS256"} }), false, "allowed_algs[0]"},
		{"allowed_algs none", with(func(e *authn.ExternalIssuer) { e.AllowedAlgs = []string{"RS256", "none"} }), false, "allowed_algs[1]"},
		{"allowed_algs ES512", with(func(e *authn.ExternalIssuer) { e.AllowedAlgs = []string{"ES512"} }), false, "allowed_algs[0]"},
		{"no audience", with(func(e *authn.ExternalIssuer) { e.Audiences = nil }), false, "audiences"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.e.Validate(c.dev)
			var fe *authn.FieldError
			switch {
			case c.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
				t.Fatalf("got %v, want an error on %s", err, c.field)
			}
		})
	}
}
