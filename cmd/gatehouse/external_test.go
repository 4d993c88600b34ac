package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestExternalIssuer runs two gatehouse processes: B issues a token with
// its OAuth endpoint, and A, configured to trust B as an external issuer
// (its JWKS found through B's OIDC discovery document), accepts it at its
// gateway as a principal of kind external, with only the scopes A allows.
func TestExternalIssuer(t *testing.T) {
	demo := "routes:\n  - name: demo\n    path: /demo/\n    upstream: builtin:echo\n    scopes: [demo:read]\n"
	b := startServer(t, demo)
	a := startServer(t, fmt.Sprintf(`auth:
  external_issuers:
    - issuer: %[1]s
      audiences: [gatehouse]
      allowed_scopes: [demo:read]
`, b.base)+demo)

	out, errOut, code := run(t, b.env(), "clients", "create", "--name", "partner", "--scopes", "demo:read,admin", "--json")
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &c) != nil {
		t.Fatalf("create client on B: %d %s", code, errOut)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}
	res, err := http.PostForm(b.base+"/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	if tok.AccessToken == "" {
		t.Fatalf("no token from B: %d", res.StatusCode)
	}

	call := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", a.base+"/demo/x", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	// A fetches B's JWKS in the background at start; allow it a moment.
	deadline := time.Now().Add(10 * time.Second)
	status, body := call(tok.AccessToken)
	for status != 200 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		status, body = call(tok.AccessToken)
	}
	if status != 200 {
		t.Fatalf("A refused B's token: %d %s", status, body)
	}
	if want := `"X-Gatehouse-Principal":"` + b.base + "#" + c.ClientID + `"`; !strings.Contains(body, want) {
		t.Errorf("upstream did not see the external principal %s:\n%s", want, body)
	}
	if want := `"X-Gatehouse-Scopes":"demo:read"`; !strings.Contains(body, want) {
		t.Errorf("upstream did not see exactly the allowed scopes %s (B's admin scope is not A's):\n%s", want, body)
	}
	// A tampered token from B fails at A.
	parts := strings.Split(tok.AccessToken, ".")
	sig := []byte(parts[2])
	sig[5] ^= 1
	if status, _ := call(parts[0] + "." + parts[1] + "." + string(sig)); status != 401 {
		t.Errorf("tampered external token: %d", status)
	}
	// B accepts its own token too.
	req, _ := http.NewRequest("GET", b.base+"/demo/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Errorf("B refused its own token: %v", err)
	}
}
