package ui_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/ui"
	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

const wantCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// form is a JS-off browser: cookies, no redirects followed automatically
// beyond net/http's, forms sent as application/x-www-form-urlencoded.
type form struct {
	t      *testing.T
	e      *uitest.Env
	client *http.Client
}

func newForm(t *testing.T, e *uitest.Env) *form {
	jar, _ := cookiejar.New(nil)
	return &form{t: t, e: e, client: &http.Client{Jar: jar}}
}

func (f *form) get(path string) (*http.Response, string) {
	f.t.Helper()
	res, err := f.client.Get(f.e.Admin + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func (f *form) post(path string, v url.Values, headers ...string) (*http.Response, string) {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.e.Admin+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, h := range headers {
		k, val, _ := strings.Cut(h, ": ")
		req.Header.Set(k, val)
	}
	res, err := f.client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

var tokenRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func token(t *testing.T, body string) string {
	t.Helper()
	m := tokenRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf_token field in %s", body)
	}
	return m[1]
}

// signIn signs in through the login form with JS off.
func (f *form) signIn(user, pw string) string {
	f.t.Helper()
	_, body := f.get("/ui/login")
	res, body := f.post("/ui/login", url.Values{"username": {user}, "password": {pw}, "csrf_token": {token(f.t, body)}})
	if res.StatusCode != 200 || res.Request.URL.Path != "/ui/" {
		f.t.Fatalf("sign in: HTTP %d at %s: %s", res.StatusCode, res.Request.URL, body)
	}
	return body
}

func TestCSPHeaderExact(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	f := newForm(t, e)
	for _, p := range []string{"/ui/login", "/ui/static/ui.css", "/ui/nope", "/ui/keys"} {
		res, _ := f.get(p)
		csp := res.Header.Get("Content-Security-Policy")
		if csp != wantCSP+"; report-uri "+ui.CSPReportPath {
			t.Errorf("%s: CSP %q", p, csp)
		}
		if !strings.HasPrefix(csp, wantCSP+";") {
			t.Errorf("%s: CSP does not start with the required policy", p)
		}
		if n := len(res.Header.Values("Content-Security-Policy")); n != 1 {
			t.Errorf("%s: %d CSP headers", p, n)
		}
	}
	body := f.signIn("alice", uitest.Password)
	for _, bad := range []string{"style=", "<style", "onclick", "javascript:", "<script>"} {
		if strings.Contains(body, bad) {
			t.Errorf("dashboard contains %q", bad)
		}
	}
	res, _ := f.get("/ui/keys")
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("keys page Cache-Control %q", cc)
	}
}

func TestUnauthenticatedRedirectsToLogin(t *testing.T) {
	e := uitest.Start(t, "")
	f := newForm(t, e)
	f.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, p := range []string{"/ui/", "/ui/keys", "/ui/audit", "/ui/settings/authentication"} {
		res, _ := f.get(p)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/ui/login" {
			t.Errorf("%s: HTTP %d to %q, want 303 to /ui/login", p, res.StatusCode, res.Header.Get("Location"))
		}
	}
}

func TestCSRFRefused(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)
	_, body := f.get("/ui/keys")
	tok := token(t, body)
	tests := []struct {
		name    string
		v       url.Values
		headers []string
	}{
		{"no token", url.Values{"name": {"x"}}, nil},
		{"wrong token", url.Values{"name": {"x"}, "csrf_token": {tok + "x"}}, nil},
		{"cross origin", url.Values{"name": {"x"}, "csrf_token": {tok}}, []string{"Sec-Fetch-Site: cross-site"}},
		{"foreign Origin", url.Values{"name": {"x"}, "csrf_token": {tok}}, []string{"Origin: https://evil.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := f.post("/ui/keys", tt.v, tt.headers...)
			if res.StatusCode != http.StatusForbidden {
				t.Fatalf("HTTP %d, want 403: %s", res.StatusCode, body)
			}
		})
	}
	var list struct{ Keys []any }
	e.API("GET", "/v1/keys", nil, &list)
	if len(list.Keys) != 0 {
		t.Fatalf("a refused form created %d key(s)", len(list.Keys))
	}
	// The sign-in form has its own token.
	g := newForm(t, e)
	if res, _ := g.post("/ui/login", url.Values{"username": {"alice"}, "password": {uitest.Password}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in without its token: HTTP %d", res.StatusCode)
	}
}

func TestKeysFormFlowJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)
	_, body := f.get("/ui/keys")
	tok := token(t, body)
	res, body := f.post("/ui/keys", url.Values{"name": {"<script>alert(1)</script>"}, "scopes": {"demo:read"}, "csrf_token": {tok}})
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create: HTTP %d %s", res.StatusCode, body)
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("secret page Cache-Control %q", res.Header.Get("Cache-Control"))
	}
	secret := regexp.MustCompile(`id="secret" class="secret" readonly value="([^"]+)"`).FindStringSubmatch(body)
	if secret == nil {
		t.Fatalf("no secret on the answer page: %s", body)
	}
	if strings.Contains(body, "<script>alert") {
		t.Fatal("hostile key name not escaped on the answer page")
	}
	if code := e.Gate("/api/x", secret[1]); code != 200 {
		t.Fatalf("gateway with the new key: %d", code)
	}
	_, body = f.get("/ui/keys")
	if strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatal("hostile key name not escaped in the list")
	}
	if strings.Contains(body, secret[1]) {
		t.Fatal("the secret is shown again in the list")
	}
	id := regexp.MustCompile(`action="/ui/keys/([^/"]+)/revoke"`).FindStringSubmatch(body)
	if id == nil {
		t.Fatal("no revoke form")
	}
	res, body = f.post("/ui/keys/"+id[1]+"/revoke", url.Values{"csrf_token": {tok}})
	if res.StatusCode != 200 || !strings.Contains(body, "Key revoked.") {
		t.Fatalf("revoke: HTTP %d %s", res.StatusCode, body)
	}
	if code := e.Gate("/api/x", secret[1]); code != 401 {
		t.Fatalf("gateway with the revoked key: %d, want 401", code)
	}
	// API validation messages are shown as the API words them.
	res, body = f.post("/ui/keys", url.Values{"name": {"bad"}, "expires_in": {"soon"}, "csrf_token": {tok}})
	if res.StatusCode != 400 || !strings.Contains(body, "expires_in: &#34;soon&#34; is not a positive duration") {
		t.Fatalf("bad expiry: HTTP %d %s", res.StatusCode, body)
	}
	e.NoCSPReports()
}

func TestAuditorCannotCreateKey(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("carol", "auditor")
	f := newForm(t, e)
	f.signIn("carol", uitest.Password)
	_, body := f.get("/ui/")
	res, body := f.post("/ui/keys", url.Values{"name": {"x"}, "csrf_token": {token(t, body)}})
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("auditor creating a key: HTTP %d %s", res.StatusCode, body)
	}
}

func TestCSPReportCounted(t *testing.T) {
	e := uitest.Start(t, "")
	tests := []struct {
		name, ct, body string
		want           int
	}{
		{"legacy", "application/csp-report", `{"csp-report":{"document-uri":"http://x/ui/","violated-directive":"style-src","blocked-uri":"inline"}}`, 204},
		{"reporting api", "application/reports+json", `[{"type":"csp-violation","body":{"documentURL":"http://x/ui/","effectiveDirective":"script-src-elem","blockedURL":"inline"}}]`, 204},
		{"not a report", "application/csp-report", `{}`, 400},
		{"wrong type", "text/plain", `x`, 415},
		{"too big", "application/csp-report", `{"csp-report":{"document-uri":"` + strings.Repeat("a", 20000) + `"}}`, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := http.Post(e.Admin+ui.CSPReportPath, tt.ct, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.want {
				t.Fatalf("HTTP %d, want %d", res.StatusCode, tt.want)
			}
		})
	}
	if n := e.App.Console().CSPReports(); n != 2 {
		t.Fatalf("%d reports counted, want 2", n)
	}
	if !strings.Contains(e.Logs.String(), "content security policy violation") {
		t.Fatal("report not logged")
	}
}
