package app_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// idpServer is a real HTTP listener standing in for an identity provider
// (OIDC discovery and a JWKS with one RSA 2048 key, kid "k1").
type idpServer struct {
	*httptest.Server
	key *rsa.PrivateKey
}

func newIdPServer(t *testing.T) *idpServer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp := &idpServer{key: key}
	idp.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]string{"issuer": idp.URL, "jwks_uri": idp.URL + "/keys"})
		case "/keys":
			json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(idp.Close)
	return idp
}

// token signs an RS256 token for sub alice with the given scope claim,
// valid at the harness clock.
func (idp *idpServer) token(t *testing.T, h *harness, scope any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: idp.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	now := h.clock.Now()
	tok, err := jwt.Signed(s).Claims(map[string]any{"iss": idp.URL, "sub": "alice", "aud": "gatehouse", "scope": scope,
		"iat": now.Unix(), "exp": now.Add(10 * 60e9).Unix()}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// readiness returns the admin listener's /health/ready status code and
// checks (the public one shows the status alone).
func readiness(t *testing.T, h *harness) (int, map[string]struct {
	OK     bool   `json:"ok"`
	Error  string `json:"error"`
	Detail string `json:"detail"`
}) {
	t.Helper()
	res := h.do("GET", h.admin+"/health/ready", nil)
	defer res.Body.Close()
	var body struct {
		Checks map[string]struct {
			OK     bool   `json:"ok"`
			Error  string `json:"error"`
			Detail string `json:"detail"`
		} `json:"checks"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, body.Checks
}

// TestExternalIssuerScopesEndToEnd: an RS256 token of an IdP found by OIDC
// discovery reaches the upstream with exactly the mapped scopes; an
// unmapped admin scope gets 403 and a scope with a space inside 401.
func TestExternalIssuerScopesEndToEnd(t *testing.T) {
	idp := newIdPServer(t)
	h := MustStartWith(t, fmt.Sprintf(`auth:
  external_issuers:
    - issuer: %s
      audiences: [gatehouse]
      scope_map:
        signals.read: [read:signals]
        signals.admin: [signals:admin]
        idp-superuser: [admin]
`, idp.URL))
	if err := h.app.Tokens().RefreshExternal(context.Background()); err != nil {
		t.Fatal(err)
	}
	name := "external_issuer:" + idp.URL
	if code, checks := readiness(t, h); code != 200 || !checks[name].OK || checks[name].Detail == "" {
		t.Fatalf("readiness %d %+v", code, checks)
	}
	call := func(method, path string, scope any) (int, string) {
		t.Helper()
		res := h.do(method, h.base+path, nil, "Authorization: Bearer "+idp.token(t, h, scope))
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	// Mapped: the upstream sees exactly the mapped scopes.
	if code, body := call("GET", "/api/v1/signals/x", "signals.read admin openid"); code != 200 {
		t.Fatalf("mapped token: %d %s", code, body)
	}
	last, _ := h.up.lastRequest()
	if got := last.Header.Get("X-Gatehouse-Scopes"); got != "read:signals" {
		t.Errorf("upstream X-Gatehouse-Scopes %q, want %q", got, "read:signals")
	}
	if got := last.Header.Get("X-Gatehouse-Principal"); got != idp.URL+"#alice" {
		t.Errorf("upstream X-Gatehouse-Principal %q", got)
	}

	cases := []struct {
		name   string
		method string
		path   string
		scope  any
		want   int
	}{
		{"unmapped admin", "GET", "/api/v1/signals/admin/x", "admin", 403},
		{"unmapped admin, write", "POST", "/api/v1/signals/x", []string{"admin", "signals.read"}, 403},
		{"gatehouse scope names are not mapped", "GET", "/api/v1/signals/x", "read:signals", 403},
		{"space inside an element", "GET", "/api/v1/signals/admin/x", []string{"z signals.admin"}, 401},
		{"space inside an admin element", "GET", "/api/v1/signals/admin/x", []string{"signals.read", "z admin"}, 401},
		{"mapped signals admin", "GET", "/api/v1/signals/admin/x", []string{"signals.admin"}, 200},
		{"explicitly mapped admin", "POST", "/api/v1/signals/x", "idp-superuser", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if code, body := call(c.method, c.path, c.scope); code != c.want {
				t.Fatalf("%s %s with scope %v: %d, want %d: %s", c.method, c.path, c.scope, code, c.want, body)
			}
		})
	}
}

// TestExternalIssuerUnreachableReady: a JWKS that cannot be fetched shows
// on /health/ready (not critical: the instance still serves other
// credentials), and recovers once it can be.
func TestExternalIssuerUnreachableReady(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // nothing listens there now
	idp := newIdPServer(t)
	h := MustStartWith(t, fmt.Sprintf(`auth:
  external_issuers:
    - {issuer: https://down.example, jwks_url: %s/keys, audiences: [gatehouse], allowed_scopes: [read]}
    - {issuer: %s, jwks_url: %s/keys, audiences: [gatehouse], allowed_scopes: [read]}
`, downURL, idp.URL, idp.URL))
	if err := h.app.Tokens().RefreshExternal(context.Background()); err == nil {
		t.Fatal("refresh of an unreachable JWKS succeeded")
	}
	code, checks := readiness(t, h)
	if code != 200 {
		t.Errorf("readiness %d: an unreachable IdP must not take the instance out of service", code)
	}
	if c := checks["external_issuer:https://down.example"]; c.OK || c.Error == "" {
		t.Errorf("unreachable JWKS not shown: %+v", checks)
	}
	if c := checks["external_issuer:"+idp.URL]; !c.OK {
		t.Errorf("reachable JWKS not ok: %+v", c)
	}
	// The working issuer's tokens pass meanwhile.
	res := h.do("GET", h.base+"/public/x", nil, "Authorization: Bearer "+idp.token(t, h, "read"))
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("token of the reachable issuer: %d", res.StatusCode)
	}
}
