package ui_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// TestSecondFactorJSOff: enrol one's own second factor (secret shown
// once, confirmed with a code), then remove it; wrong passwords and codes
// get the API's messages; a role that must use TOTP may enrol from its
// restricted session, and confirming it lifts the restriction: a new
// session replaces the old (whose id is refused from then on), and the
// browser lands on /ui/.
func TestSecondFactorJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	e.CreateUser("bob", "security")
	if code := e.API("PUT", "/v1/settings/authentication", map[string]any{"totp_required_roles": []string{"security"}}, nil); code != 200 {
		t.Fatalf("require TOTP: %d", code)
	}
	f := newForm(t, e)
	if body := f.signIn("bob", uitest.Password); !strings.Contains(body, `<a href="/ui/account/second-factor">enrol one</a>`) {
		t.Fatalf("the restricted session's first page does not point to enrolment: %s", body)
	}
	if res, body := f.get("/ui/clients"); res.StatusCode != 403 || !strings.Contains(body, "your role requires a second factor") {
		t.Fatalf("restricted session on clients: HTTP %d", res.StatusCode)
	}
	res, body := f.get("/ui/account/second-factor")
	if res.StatusCode != 200 || !strings.Contains(body, "has no second factor") {
		t.Fatalf("second factor page: HTTP %d %s", res.StatusCode, body)
	}
	tok := token(t, body)
	if res, _ := f.post("/ui/account/second-factor", url.Values{"current_password": {uitest.Password}}); res.StatusCode != 403 {
		t.Fatalf("enrol without the CSRF token: HTTP %d", res.StatusCode)
	}
	res, body = f.post("/ui/account/second-factor", url.Values{"current_password": {"wrong password <b>"}, "csrf_token": {tok}})
	if res.StatusCode < 400 || res.StatusCode >= 500 || !strings.Contains(body, `class="error"`) {
		t.Fatalf("enrol with a wrong password: HTTP %d %s", res.StatusCode, body)
	}
	res, body = f.post("/ui/account/second-factor", url.Values{"current_password": {uitest.Password}, "csrf_token": {tok}})
	secret := regexp.MustCompile(`id="secret" class="secret" readonly value="([A-Z2-7]+)"`).FindStringSubmatch(body)
	if res.StatusCode != 200 || secret == nil || !strings.Contains(body, `id="otpauth" class="secret" readonly value="otpauth://`) {
		t.Fatalf("enrol: HTTP %d %s", res.StatusCode, body)
	}
	res, body = f.post("/ui/account/second-factor/verify", url.Values{"code": {"000000"}, "csrf_token": {tok}})
	if res.StatusCode < 400 || res.StatusCode >= 500 || !strings.Contains(body, `class="error"`) {
		t.Fatalf("confirm with a wrong code: HTTP %d %s", res.StatusCode, body)
	}
	if strings.Contains(body, secret[1]) {
		t.Fatal("the secret is shown again")
	}
	oldID := sessionCookie(t, f)
	res, body = f.post("/ui/account/second-factor/verify", url.Values{"code": {e.TOTP(secret[1])}, "csrf_token": {tok}})
	if res.StatusCode != 200 || res.Request.URL.Path != "/ui/" {
		t.Fatalf("confirm: HTTP %d at %s, want /ui/: %s", res.StatusCode, res.Request.URL.Path, body)
	}
	// The restricted session is gone: a new one, full, took its place.
	if id := sessionCookie(t, f); id == oldID {
		t.Fatal("the session id did not change when the enrolment lifted the restriction")
	}
	if res, body := f.get("/ui/clients"); res.StatusCode != 200 || strings.Contains(body, "requires a second factor") || strings.Contains(body, `id="restricted"`) {
		t.Fatalf("clients after confirming: HTTP %d", res.StatusCode)
	}
	if res, body := f.post("/ui/account/second-factor", url.Values{"current_password": {uitest.Password}, "csrf_token": {tok}}); res.StatusCode != 403 || !strings.Contains(body, "CSRF token") {
		t.Fatalf("a form with the old session's CSRF token: HTTP %d", res.StatusCode)
	}
	old := newForm(t, e)
	old.setSession(oldID)
	if res, _ := old.get("/ui/account/second-factor"); res.Request.URL.Path != "/ui/login" {
		t.Fatalf("the old session id replayed: at %s, want /ui/login", res.Request.URL.Path)
	}
	var me struct {
		TOTP bool `json:"totp_enabled"`
	}
	e.API("GET", "/v1/users/bob", nil, &me)
	if !me.TOTP {
		t.Fatal("not enrolled after confirming")
	}

	// Signed in again with a code, bob may use the console, and remove
	// the factor with his password and a code.
	e.Clock.Advance(30 * time.Second)
	g := newForm(t, e)
	_, lb := g.get("/ui/login")
	res, body = g.post("/ui/login", url.Values{"username": {"bob"}, "password": {uitest.Password}, "totp_code": {e.TOTP(secret[1])}, "csrf_token": {token(t, lb)}})
	if res.StatusCode != 200 || res.Request.URL.Path != "/ui/" {
		t.Fatalf("sign in with the new factor: HTTP %d %s", res.StatusCode, body)
	}
	if res, _ := g.get("/ui/clients"); res.StatusCode != 200 {
		t.Fatalf("clients after enrolling: HTTP %d", res.StatusCode)
	}
	_, body = g.get("/ui/account/second-factor")
	gtok := token(t, body)
	if !strings.Contains(body, "has a second factor") {
		t.Fatal("the page does not show the factor")
	}
	e.Clock.Advance(30 * time.Second)
	res, body = g.post("/ui/account/second-factor/remove", url.Values{"current_password": {uitest.Password}, "code": {"123"}, "csrf_token": {gtok}})
	if res.StatusCode < 400 || res.StatusCode >= 500 {
		t.Fatalf("remove with a wrong code: HTTP %d %s", res.StatusCode, body)
	}
	// security must use a second factor: the API refuses the removal
	// even with the right password and code, and the page says why.
	res, body = g.post("/ui/account/second-factor/remove", url.Values{"current_password": {uitest.Password}, "code": {e.TOTP(secret[1])}, "csrf_token": {gtok}})
	if res.StatusCode != 403 || !strings.Contains(body, "must use a second factor") {
		t.Fatalf("remove under a role that requires it: HTTP %d %s", res.StatusCode, body)
	}
	// Once the role no longer requires one, bob may remove it.
	if code := e.API("PUT", "/v1/settings/authentication", map[string]any{"totp_required_roles": []string{}}, nil); code != 200 {
		t.Fatalf("settings: %d", code)
	}
	e.Clock.Advance(30 * time.Second)
	res, body = g.post("/ui/account/second-factor/remove", url.Values{"current_password": {uitest.Password}, "code": {e.TOTP(secret[1])}, "csrf_token": {gtok}})
	if res.StatusCode != 200 || !strings.Contains(body, "Second factor removed.") {
		t.Fatalf("remove: HTTP %d %s", res.StatusCode, body)
	}
	e.NoCSPReports()
}

// sessionCookie is the session id f's browser holds.
func sessionCookie(t *testing.T, f *form) string {
	t.Helper()
	u, _ := url.Parse(f.e.Admin)
	for _, c := range f.client.Jar.Cookies(u) {
		if c.Name == "gatehouse_session" {
			return c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// setSession gives f's browser the session id (as one who copied it).
func (f *form) setSession(id string) {
	u, _ := url.Parse(f.e.Admin)
	f.client.Jar.SetCookies(u, []*http.Cookie{{Name: "gatehouse_session", Value: id, Path: "/"}})
}
