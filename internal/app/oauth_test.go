package app_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

type clientOut struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

func (h *harness) createClient(scopes ...string) clientOut {
	h.t.Helper()
	var c clientOut
	if code := h.adminCall("POST", "/v1/clients", map[string]any{"name": "svc", "scopes": scopes}, &c); code != 201 {
		h.t.Fatalf("create client: %d", code)
	}
	return c
}

type tokenAnswer struct {
	status  int
	header  http.Header
	Access  string `json:"access_token"`
	Type    string `json:"token_type"`
	Expires int    `json:"expires_in"`
	Scope   string `json:"scope"`
	Error   string `json:"error"`
	Desc    string `json:"error_description"`
}

// token posts form to /oauth/token, with Basic credentials when id != "".
func (h *harness) token(form url.Values, id, secret string, headers ...string) tokenAnswer {
	h.t.Helper()
	hdr := append([]string{"Content-Type: application/x-www-form-urlencoded"}, headers...)
	if id != "" {
		hdr = append(hdr, "Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret))))
	}
	res := h.do("POST", h.base+"/oauth/token", strings.NewReader(form.Encode()), hdr...)
	var a tokenAnswer
	json.NewDecoder(res.Body).Decode(&a)
	a.status, a.header = res.StatusCode, res.Header
	return a
}

func TestClientCredentialsFlow(t *testing.T) {
	h := MustStart(t)
	c := h.createClient("read:signals", "write:signals")
	a := h.token(url.Values{"grant_type": {"client_credentials"}}, c.ClientID, c.ClientSecret)
	if a.status != 200 || a.Type != "Bearer" || a.Expires != 900 || a.Scope != "read:signals write:signals" || a.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("token response: %+v", a)
	}
	res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+a.Access)
	if res.StatusCode != 200 {
		t.Fatalf("gateway with JWT: %d", res.StatusCode)
	}
	got, _ := h.up.lastRequest()
	if got.Header.Get("X-Gatehouse-Principal") != c.ClientID || got.Header.Get("Authorization") != "" {
		t.Errorf("upstream saw principal %q, authorization %q", got.Header.Get("X-Gatehouse-Principal"), got.Header.Get("Authorization"))
	}
	// Form-field client authentication, narrowed scope.
	a = h.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}, "scope": {"write:signals"}}, "", "")
	if a.status != 200 || a.Scope != "write:signals" {
		t.Fatalf("narrowed token: %+v", a)
	}
	if res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+a.Access); res.StatusCode != 403 {
		t.Fatalf("narrowed token used beyond its scope: %d", res.StatusCode)
	}
	// Claims.
	parts := strings.Split(a.Access, ".")
	var hdr map[string]any
	b, _ := base64.RawURLEncoding.DecodeString(parts[0])
	json.Unmarshal(b, &hdr)
	var cl map[string]any
	b, _ = base64.RawURLEncoding.DecodeString(parts[1])
	json.Unmarshal(b, &cl)
	if hdr["alg"] != "EdDSA" || hdr["kid"] == "" {
		t.Errorf("header %v", hdr)
	}
	for _, k := range []string{"iss", "sub", "aud", "scope", "iat", "nbf", "exp", "jti"} {
		if cl[k] == nil {
			t.Errorf("claim %s missing: %v", k, cl)
		}
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	h := MustStart(t)
	c := h.createClient("read:signals")
	cc := url.Values{"grant_type": {"client_credentials"}}
	basic := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(c.ClientID+":"+c.ClientSecret))
	tests := []struct {
		name    string
		form    string
		headers []string
		status  int
		code    string
	}{
		{"wrong secret", cc.Encode(), []string{"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(c.ClientID+":gcs_wrong"))}, 401, "invalid_client"},
		{"unknown client", cc.Encode(), []string{"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("cl_nobody:x"))}, 401, "invalid_client"},
		{"no client authentication", cc.Encode(), nil, 401, "invalid_client"},
		{"missing grant_type", "", []string{basic}, 400, "invalid_request"},
		{"password grant", "grant_type=password&username=a&password=b", []string{basic}, 400, "unsupported_grant_type"},
		{"scope not granted", "grant_type=client_credentials&scope=admin", []string{basic}, 400, "invalid_scope"},
		{"two auth methods", "grant_type=client_credentials&client_id=" + c.ClientID + "&client_secret=" + c.ClientSecret, []string{basic}, 400, "invalid_request"},
		{"repeated parameter", "grant_type=client_credentials&grant_type=client_credentials", []string{basic}, 400, "invalid_request"},
		{"bearer scheme", cc.Encode(), []string{"Authorization: Bearer x"}, 401, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do("POST", h.base+"/oauth/token", strings.NewReader(tt.form), append([]string{"Content-Type: application/x-www-form-urlencoded"}, tt.headers...)...)
			var e tokenAnswer
			json.NewDecoder(res.Body).Decode(&e)
			if res.StatusCode != tt.status || e.Error != tt.code || e.Desc == "" {
				t.Fatalf("got %d %q (%s), want %d %q", res.StatusCode, e.Error, e.Desc, tt.status, tt.code)
			}
			if res.Header.Get("Cache-Control") != "no-store" {
				t.Error("no Cache-Control: no-store")
			}
			if tt.status == 401 && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("401 without WWW-Authenticate: Basic: %q", res.Header.Get("WWW-Authenticate"))
			}
		})
	}
	res := h.do("POST", h.base+"/oauth/token", strings.NewReader(`{"grant_type":"client_credentials"}`), "Content-Type: application/json", basic)
	if res.StatusCode != 400 {
		t.Errorf("JSON body: %d, want 400", res.StatusCode)
	}
	if res := h.do("GET", h.base+"/oauth/token", nil); res.StatusCode != 405 {
		t.Errorf("GET: %d, want 405", res.StatusCode)
	}
}

func TestClientLockout(t *testing.T) {
	h := MustStart(t)
	c := h.createClient("read:signals")
	cc := url.Values{"grant_type": {"client_credentials"}}
	wrong, _ := strings.CutSuffix(c.ClientSecret, c.ClientSecret[len(c.ClientSecret)-8:])
	for i := 0; i < 5; i++ {
		if a := h.token(cc, c.ClientID, wrong+"AAAAAAAA"); a.status != 401 {
			t.Fatalf("failure %d: %d", i, a.status)
		}
	}
	if a := h.token(cc, c.ClientID, c.ClientSecret); a.status != 429 || a.header.Get("Retry-After") == "" {
		t.Fatalf("locked client (from the failing address) got %d, Retry-After %q; want 429 with Retry-After", a.status, a.header.Get("Retry-After"))
	}
	h.clock.Advance(16 * time.Minute)
	if a := h.token(cc, c.ClientID, c.ClientSecret); a.status != 200 {
		t.Fatalf("after lockout: %d %s", a.status, a.Desc)
	}
}

// forger signs arbitrary tokens with the gateway's real signing key, read
// from its data dir.
type forger struct {
	kid  string
	priv ed25519.PrivateKey
}

func loadForger(t *testing.T, dataDir string) forger {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "signing-keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	var keys []struct {
		KID     string `json:"kid"`
		Private []byte `json:"private_pkcs8"`
	}
	json.Unmarshal(b, &keys)
	k, err := x509.ParsePKCS8PrivateKey(keys[len(keys)-1].Private)
	if err != nil {
		t.Fatal(err)
	}
	return forger{kid: keys[len(keys)-1].KID, priv: k.(ed25519.PrivateKey)}
}

func (f forger) sign(t *testing.T, c jwt.Claims, extra map[string]any, kid string) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: f.priv}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(sig).Claims(c).Claims(extra).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJWTValidation(t *testing.T) {
	h := MustStart(t)
	c := h.createClient("read:signals")
	good := h.token(url.Values{"grant_type": {"client_credentials"}}, c.ClientID, c.ClientSecret).Access
	f := loadForger(t, h.dataDir)
	now := h.clock.Now()
	iss := "http://" + strings.TrimPrefix(h.base, "http://")
	valid := func() jwt.Claims {
		return jwt.Claims{Issuer: iss, Subject: c.ClientID, Audience: jwt.Audience{"gatehouse"},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(10 * time.Minute))}
	}
	scope := map[string]any{"scope": "read:signals"}
	mod := func(fn func(*jwt.Claims)) string {
		cl := valid()
		fn(&cl)
		return f.sign(t, cl, scope, f.kid)
	}
	parts := strings.Split(good, ".")
	pub := f.priv.Public().(ed25519.PublicKey)
	hs := func() string {
		hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT","kid":"` + f.kid + `"}`))
		m := hmac.New(sha256.New, pub)
		m.Write([]byte(hdr + "." + parts[1]))
		return hdr + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}()
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	// Change a character in the middle of the signature: the last one may
	// carry only padding bits, which lenient base64 decoding ignores.
	sig := []byte(parts[2])
	if sig[20] == 'A' {
		sig[20] = 'B'
	} else {
		sig[20] = 'A'
	}
	tampered := parts[0] + "." + parts[1] + "." + string(sig)
	otherPayload := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"cl_x","scope":"admin"}`)) + "." + parts[2]

	cases := []struct {
		name  string
		token string
		want  int
	}{
		{"issued token", good, 200},
		{"forged but well-formed (control)", f.sign(t, valid(), scope, f.kid), 200},
		{"tampered signature", tampered, 401},
		{"swapped payload", otherPayload, 401},
		{"wrong audience", mod(func(c *jwt.Claims) { c.Audience = jwt.Audience{"someone-else"} }), 401},
		{"wrong issuer", mod(func(c *jwt.Claims) { c.Issuer = "https://evil.example" }), 401},
		{"expired", mod(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-2 * time.Minute)) }), 401},
		{"expired within leeway", mod(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-30 * time.Second)) }), 200},
		{"not yet valid", mod(func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(5 * time.Minute)) }), 401},
		{"no expiry", mod(func(c *jwt.Claims) { c.Expiry = nil }), 401},
		{"alg none", none, 401},
		{"HS256 with the public key", hs, 401},
		{"unknown kid", f.sign(t, valid(), scope, "no-such-kid"), 401},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+tt.token)
			if res.StatusCode != tt.want {
				b, _ := io.ReadAll(res.Body)
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.want, b)
			}
		})
	}

	// Revoking the client fails its tokens on the next request, cached or not.
	if code := h.adminCall("POST", "/v1/clients/"+c.ClientID+"/revoke", nil, nil); code != 200 {
		t.Fatalf("revoke client: %d", code)
	}
	if res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+good); res.StatusCode != 401 {
		t.Fatalf("revoked client's token: %d, want 401", res.StatusCode)
	}
	if a := h.token(url.Values{"grant_type": {"client_credentials"}}, c.ClientID, c.ClientSecret); a.status != 401 {
		t.Fatalf("revoked client got a token: %d", a.status)
	}
	// Cached tokens expire with the clock.
	c2 := h.createClient("read:signals")
	tok := h.token(url.Values{"grant_type": {"client_credentials"}}, c2.ClientID, c2.ClientSecret).Access
	h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+tok)
	h.clock.Advance(15*time.Minute + 61*time.Second)
	if res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+tok); res.StatusCode != 401 {
		t.Fatalf("cached token after expiry: %d", res.StatusCode)
	}
}

func TestSigningKeyRotationOverlap(t *testing.T) {
	h := MustStart(t)
	c := h.createClient("read:signals")
	cc := url.Values{"grant_type": {"client_credentials"}}
	old := h.token(cc, c.ClientID, c.ClientSecret).Access
	jwks := func() []string {
		res := h.do("GET", h.base+"/.well-known/jwks.json", nil)
		var set struct {
			Keys []struct {
				KID string `json:"kid"`
				Alg string `json:"alg"`
			} `json:"keys"`
		}
		json.NewDecoder(res.Body).Decode(&set)
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.KID)
		}
		return kids
	}
	before := jwks()
	if len(before) != 1 {
		t.Fatalf("JWKS before rotation: %v", before)
	}
	if code := h.adminCall("POST", "/v1/signing-keys/rotate", nil, nil); code != 200 {
		t.Fatalf("rotate: %d", code)
	}
	after := jwks()
	if len(after) != 2 || after[0] != before[0] {
		t.Fatalf("JWKS after rotation: %v", after)
	}
	fresh := h.token(cc, c.ClientID, c.ClientSecret).Access
	for name, tok := range map[string]string{"old": old, "new": fresh} {
		if res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+tok); res.StatusCode != 200 {
			t.Fatalf("%s token after rotation: %d", name, res.StatusCode)
		}
	}
	// Once every token of the old key has expired, it leaves the JWKS.
	h.clock.Advance(15*time.Minute + 61*time.Second)
	if _, err := h.app.Tokens().RotateIfDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := jwks(); len(got) != 1 || got[0] != after[1] {
		t.Fatalf("JWKS after the old key's tokens expired: %v", got)
	}
	if res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+old); res.StatusCode != 401 {
		t.Fatalf("old token after expiry: %d", res.StatusCode)
	}
}

func TestDiscovery(t *testing.T) {
	h := MustStart(t)
	res := h.do("GET", h.base+"/.well-known/openid-configuration", nil)
	var d map[string]any
	json.NewDecoder(res.Body).Decode(&d)
	if d["issuer"] != h.base || d["jwks_uri"] != h.base+"/.well-known/jwks.json" || d["token_endpoint"] != h.base+"/oauth/token" {
		t.Errorf("discovery: %v", d)
	}
	if g, _ := d["grant_types_supported"].([]any); len(g) != 1 || g[0] != "client_credentials" {
		t.Errorf("grant types: %v", d["grant_types_supported"])
	}
}

// TestTokenAuditedWhenClientHangsUp: a token request whose client has gone
// away (its context canceled) still leaves its oauth.token event, for a
// refusal and for an issued token, and logs no ERROR: nothing failed but
// the client.
func TestTokenAuditedWhenClientHangsUp(t *testing.T) {
	h := MustStart(t)
	c := h.createClient("read:things")
	if a := h.token(url.Values{"grant_type": {"client_credentials"}}, c.ClientID, c.ClientSecret); a.status != 200 {
		t.Fatalf("first token: %d %s", a.status, a.Desc) // warms the client cache: no store read below
	}
	for _, tc := range []struct {
		name, secret string
		status       int
		outcome      string
	}{
		{"refused", "gcs_not-a-secret", 401, "failure"},
		{"issued", c.ClientSecret, 200, "success"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			req := httptest.NewRequestWithContext(ctx, "POST", "/oauth/token", strings.NewReader("grant_type=client_credentials"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(c.ClientID, tc.secret)
			rec := httptest.NewRecorder()
			h.app.PublicHandler().ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			rid := rec.Header().Get("X-Request-Id")
			if logs := h.logs.String(); strings.Contains(logs, `"level":"ERROR"`) {
				t.Errorf("a client hanging up is logged as an error:\n%s", logs)
			}
			var page struct {
				Entries []struct {
					Event struct {
						Outcome string `json:"outcome"`
						Request struct {
							RequestID string `json:"request_id"`
						} `json:"request"`
					} `json:"event"`
				} `json:"entries"`
			}
			if code := h.adminCall("GET", "/v1/audit?type=oauth.token", nil, &page); code != 200 {
				t.Fatalf("GET /v1/audit: %d", code)
			}
			for _, e := range page.Entries {
				if e.Event.Outcome == tc.outcome && e.Event.Request.RequestID == rid {
					return
				}
			}
			t.Errorf("no %s oauth.token event for the request whose client hung up: %+v", tc.outcome, page.Entries)
		})
	}
}
