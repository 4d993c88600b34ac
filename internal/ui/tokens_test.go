package ui_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// bearer calls the admin API with a token and returns the status.
func bearer(t *testing.T, e *uitest.Env, path, tok string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", e.Admin+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestTokensFormFlowJSOff: create a personal access token (shown once,
// usable at the admin API), list and filter, revoke; everyone's tokens
// for admins only.
func TestTokensFormFlowJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	e.CreateUser("bob", "security")
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)
	res, body := f.get("/ui/tokens")
	if res.StatusCode != 200 || !strings.Contains(body, `action="/ui/tokens"`) {
		t.Fatalf("tokens page: HTTP %d %s", res.StatusCode, body)
	}
	tok := token(t, body)
	const hostile = `"><script>alert(1)</script>`
	res, body = f.post("/ui/tokens", url.Values{"name": {hostile}, "role": {"auditor"}, "expires_in": {"7d"}, "csrf_token": {tok}})
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create: HTTP %d %s", res.StatusCode, body)
	}
	if strings.Contains(body, hostile) || !strings.Contains(body, html.EscapeString(hostile)) {
		t.Fatal("hostile token name not escaped on the answer page")
	}
	sec := secretRE.FindStringSubmatch(body)
	if sec == nil {
		t.Fatalf("no token on the answer page: %s", body)
	}
	if code := bearer(t, e, "/v1/settings/authentication", sec[1]); code != 200 {
		t.Fatalf("the new token (auditor) reading settings: %d", code)
	}
	if code := bearer(t, e, "/v1/users", sec[1]); code != 403 {
		t.Fatalf("the new token (auditor) reading users: %d, want 403", code)
	}
	_, body = f.get("/ui/tokens")
	if strings.Contains(body, sec[1]) || strings.Contains(body, hostile) || !strings.Contains(body, "1 token(s)") {
		t.Fatal("the list shows the secret again, or the name unescaped, or not the token")
	}

	// bob's token; alice sees it among everyone's.
	b := newForm(t, e)
	b.signIn("bob", uitest.Password)
	_, bb := b.get("/ui/tokens")
	btok := token(t, bb)
	if res, body := b.post("/ui/tokens", url.Values{"name": {"bobs"}, "role": {"security"}, "csrf_token": {btok}}); res.StatusCode != 201 {
		t.Fatalf("bob's create: HTTP %d %s", res.StatusCode, body)
	}
	if res, body := b.post("/ui/tokens", url.Values{"name": {"too high"}, "role": {"admin"}, "csrf_token": {btok}}); res.StatusCode != 403 || !strings.Contains(body, "role: only the bootstrap token and role admin grant role admin") {
		t.Fatalf("bob's admin token: HTTP %d %s", res.StatusCode, body)
	}
	if res, body := b.get("/ui/tokens?all=true"); res.StatusCode != 403 || !strings.Contains(body, "only admins list everyone&#39;s tokens") {
		t.Fatalf("bob listing everyone's: HTTP %d %s", res.StatusCode, body)
	}
	if _, body := b.get("/ui/tokens"); strings.Contains(body, `name="all"`) {
		t.Error("non-admin offered everyone's tokens")
	}
	_, body = f.get("/ui/tokens?all=true")
	if !strings.Contains(body, "2 token(s)") || !strings.Contains(body, "bobs") || !strings.Contains(body, "<th scope=\"col\">Owner</th>") {
		t.Fatalf("alice's everyone's tokens: %s", body)
	}
	if _, body := f.get("/ui/tokens"); strings.Contains(body, "bobs") {
		t.Fatal("alice's own list shows bob's token")
	}
	if _, body := f.get("/ui/tokens?all=true&q=bob"); !strings.Contains(body, "1 token(s) on this page, matching the filter") {
		t.Error("name filter")
	}
	if res, body := f.get("/ui/tokens?status=lost"); res.StatusCode != 400 || !strings.Contains(body, "status: must be one of active, expired, revoked") {
		t.Errorf("bad status filter: HTTP %d", res.StatusCode)
	}

	// Bad input: the API's message.
	for _, tt := range []struct {
		name string
		v    url.Values
		msg  string
	}{
		{"bad expiry", url.Values{"name": {"x"}, "role": {"auditor"}, "expires_in": {"soon"}}, "expires_in: "},
		{"no scopes or role", url.Values{"name": {"x"}}, ""},
		{"bad role", url.Values{"name": {"x"}, "role": {"<i>root</i>"}}, `role: "<i>root</i>" is not one of admin, security, auditor`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.v.Set("csrf_token", tok)
			res, body := f.post("/ui/tokens", tt.v)
			if res.StatusCode < 400 || res.StatusCode >= 500 || !strings.Contains(body, html.EscapeString(tt.msg)) || strings.Contains(body, "<i>root") {
				t.Fatalf("HTTP %d, want 4xx and %q: %s", res.StatusCode, tt.msg, body)
			}
		})
	}

	// Revoke: the token stops working. Without the CSRF token, nothing.
	_, body = f.get("/ui/tokens")
	id := regexpFind(t, body, `action="/ui/tokens/([^/"]+)/revoke"`)
	if res, _ := f.post("/ui/tokens/"+id+"/revoke", url.Values{}); res.StatusCode != 403 {
		t.Fatalf("revoke without its token: HTTP %d", res.StatusCode)
	}
	if code := bearer(t, e, "/v1/settings/authentication", sec[1]); code != 200 {
		t.Fatal("a refused revoke revoked")
	}
	res, body = f.post("/ui/tokens/"+id+"/revoke", url.Values{"csrf_token": {tok}})
	if res.StatusCode != 200 || !strings.Contains(body, "Token revoked.") {
		t.Fatalf("revoke: HTTP %d %s", res.StatusCode, body)
	}
	if code := bearer(t, e, "/v1/settings/authentication", sec[1]); code != 401 {
		t.Fatalf("the revoked token: %d, want 401", code)
	}
	// bob cannot revoke alice's token: the API's 404, never a 500.
	if res, _ := b.post("/ui/tokens/"+id+"/revoke", url.Values{"csrf_token": {btok}}); res.StatusCode != 404 {
		t.Errorf("bob revoking alice's token: HTTP %d", res.StatusCode)
	}
	e.NoCSPReports()
}

func regexpFind(t *testing.T, body, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in %s", re, body)
	}
	return m[1]
}

func regexpAll(body, re string) []string {
	var out []string
	for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}
