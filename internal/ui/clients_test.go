package ui_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

var (
	secretRE   = regexp.MustCompile(`id="secret" class="secret" readonly value="([^"]+)"`)
	secretIDRE = regexp.MustCompile(`id="secret-id" class="secret" readonly value="([^"]+)"`)
)

// clientToken asks the gateway's /oauth/token for a client-credentials
// token: the status and the access token.
func clientToken(t *testing.T, e *uitest.Env, id, secret string) (int, string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	res, err := http.PostForm(e.Gateway+"/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out.AccessToken
}

// TestClientsFormFlowJSOff: create (secret once, usable at /oauth/token),
// list with filters, rotate, unlock, revoke — forms only, with the API's
// messages for bad input.
func TestClientsFormFlowJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)
	res, body := f.get("/ui/clients")
	if res.StatusCode != 200 || !strings.Contains(body, `action="/ui/clients"`) {
		t.Fatalf("clients page: HTTP %d %s", res.StatusCode, body)
	}
	tok := token(t, body)
	const hostile = `<img src=x onerror=alert(1)>`
	res, body = f.post("/ui/clients", url.Values{"name": {hostile}, "scopes": {"demo:read"}, "csrf_token": {tok}})
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create: HTTP %d %s", res.StatusCode, body)
	}
	if strings.Contains(body, hostile) || !strings.Contains(body, html.EscapeString(hostile)) {
		t.Fatal("hostile client name not escaped on the answer page")
	}
	sec, id := secretRE.FindStringSubmatch(body), secretIDRE.FindStringSubmatch(body)
	if sec == nil || id == nil {
		t.Fatalf("no client id and secret on the answer page: %s", body)
	}
	if code, at := clientToken(t, e, id[1], sec[1]); code != 200 || at == "" {
		t.Fatalf("/oauth/token with the client made in the console: %d", code)
	}
	_, body = f.get("/ui/clients")
	if strings.Contains(body, sec[1]) {
		t.Fatal("the secret is shown again in the list")
	}
	if strings.Contains(body, hostile) || !strings.Contains(body, html.EscapeString(hostile)) {
		t.Fatal("hostile client name not escaped in the list")
	}
	if !strings.Contains(body, "alice") {
		t.Error("the list does not say who created the client")
	}
	e.API("POST", "/v1/clients", map[string]any{"name": "reports", "scopes": []string{"demo:read"}}, nil)

	for _, tt := range []struct{ query, want, not string }{
		{"?q=IMG", "1 client(s) on this page, matching the filter", "reports"},
		{"?q=rep", "1 client(s) on this page, matching the filter", "onerror"},
		{"?status=active", "2 client(s) on this page, matching the filter", ""},
		{"?status=revoked", "0 client(s) on this page, matching the filter", "reports"},
		{"?q=" + id[1], "1 client(s) on this page, matching the filter", "reports"},
	} {
		res, body := f.get("/ui/clients" + tt.query)
		if res.StatusCode != 200 || !strings.Contains(body, tt.want) || (tt.not != "" && strings.Contains(body, tt.not)) {
			t.Errorf("%s: HTTP %d, want %q without %q", tt.query, res.StatusCode, tt.want, tt.not)
		}
	}
	if res, body := f.get("/ui/clients?status=paused"); res.StatusCode != 400 || !strings.Contains(body, "status: must be one of active, expired, revoked, locked") {
		t.Errorf("unknown status filter: HTTP %d", res.StatusCode)
	}

	// Rotate: a new secret, once; the old one stops working.
	res, body = f.post("/ui/clients/"+id[1]+"/rotate", url.Values{"csrf_token": {tok}})
	sec2 := secretRE.FindStringSubmatch(body)
	if res.StatusCode != 200 || sec2 == nil || sec2[1] == sec[1] {
		t.Fatalf("rotate: HTTP %d %s", res.StatusCode, body)
	}
	if code, _ := clientToken(t, e, id[1], sec[1]); code == 200 {
		t.Fatal("the rotated-out secret still gets tokens")
	}
	if code, _ := clientToken(t, e, id[1], sec2[1]); code != 200 {
		t.Fatalf("the new secret: %d", code)
	}
	res, body = f.post("/ui/clients/"+id[1]+"/unlock", url.Values{"csrf_token": {tok}})
	if res.StatusCode != 200 || !strings.Contains(body, "Client unlocked") {
		t.Fatalf("unlock: HTTP %d %s", res.StatusCode, body)
	}
	res, body = f.post("/ui/clients/"+id[1]+"/revoke", url.Values{"csrf_token": {tok}})
	if res.StatusCode != 200 || !strings.Contains(body, "Client revoked.") {
		t.Fatalf("revoke: HTTP %d %s", res.StatusCode, body)
	}
	if code, _ := clientToken(t, e, id[1], sec2[1]); code == 200 {
		t.Fatal("a revoked client still gets tokens")
	}
	if _, body = f.get("/ui/clients?status=revoked"); !strings.Contains(body, "1 client(s) on this page, matching the filter") {
		t.Error("revoked client not listed as revoked")
	}

	// Bad input: the API's 4xx and message, the form kept.
	tests := []struct {
		name   string
		v      url.Values
		status int
		msg    string
	}{
		{"no scopes", url.Values{"name": {"x"}}, 400, "scopes: at least one scope is required"},
		{"no name", url.Values{"scopes": {"demo:read"}}, 400, "name: is required"},
		{"bad expiry", url.Values{"name": {"x"}, "scopes": {"demo:read"}, "expires_in": {"soon"}}, 400, `expires_in: "soon" is not a positive duration`},
		{"bad tier", url.Values{"name": {"x"}, "scopes": {"demo:read"}, "tier": {"<b>gold</b>"}}, 400, `tier: "<b>gold</b>" must be letters`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.v.Set("csrf_token", tok)
			res, body := f.post("/ui/clients", tt.v)
			if res.StatusCode != tt.status || !strings.Contains(body, html.EscapeString(tt.msg)) {
				t.Fatalf("HTTP %d, want %d and %q: %s", res.StatusCode, tt.status, tt.msg, body)
			}
			if strings.Contains(body, "<b>gold") {
				t.Fatal("form value not escaped")
			}
		})
	}
	// Unknown client: the API's 404.
	if res, _ := f.post("/ui/clients/c_nope/revoke", url.Values{"csrf_token": {tok}}); res.StatusCode != 404 {
		t.Errorf("revoking an unknown client: HTTP %d", res.StatusCode)
	}
	e.NoCSPReports()
}

// TestClientsRefusedJSOff: an auditor gets the API's 403 (not a 500), and
// a form without its CSRF token is refused.
func TestClientsRefusedJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	e.CreateUser("carol", "auditor")
	var c struct {
		ClientID string `json:"client_id"`
	}
	e.API("POST", "/v1/clients", map[string]any{"name": "svc", "scopes": []string{"demo:read"}}, &c)

	f := newForm(t, e)
	f.signIn("carol", uitest.Password)
	res, body := f.get("/ui/clients")
	if res.StatusCode != 403 || !strings.Contains(body, "role auditor may not read clients") {
		t.Fatalf("auditor's clients page: HTTP %d %s", res.StatusCode, body)
	}
	tok := token(t, body)
	for _, p := range []string{"/ui/clients", "/ui/clients/" + c.ClientID + "/revoke", "/ui/clients/" + c.ClientID + "/rotate", "/ui/clients/" + c.ClientID + "/unlock"} {
		res, body := f.post(p, url.Values{"name": {"x"}, "scopes": {"demo:read"}, "csrf_token": {tok}})
		if res.StatusCode != 403 || !strings.Contains(body, "role auditor may not change clients") {
			t.Errorf("auditor POST %s: HTTP %d", p, res.StatusCode)
		}
	}

	g := newForm(t, e)
	g.signIn("alice", uitest.Password)
	_, body = g.get("/ui/clients")
	tok = token(t, body)
	for _, p := range []string{"/ui/clients", "/ui/clients/" + c.ClientID + "/revoke", "/ui/clients/" + c.ClientID + "/rotate"} {
		if res, _ := g.post(p, url.Values{"name": {"x"}, "scopes": {"demo:read"}}); res.StatusCode != 403 {
			t.Errorf("POST %s without its token: HTTP %d", p, res.StatusCode)
		}
		if res, _ := g.post(p, url.Values{"name": {"x"}, "scopes": {"demo:read"}, "csrf_token": {tok}}, "Origin: https://evil.example"); res.StatusCode != 403 {
			t.Errorf("POST %s from another origin: HTTP %d", p, res.StatusCode)
		}
	}
	var list struct {
		Clients []struct{ Status string } `json:"clients"`
	}
	e.API("GET", "/v1/clients", nil, &list)
	if len(list.Clients) != 1 || list.Clients[0].Status != "active" {
		t.Fatalf("refused forms changed clients: %+v", list.Clients)
	}
}
