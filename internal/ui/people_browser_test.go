package ui_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/totp"
	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// TestBrowserSettingsEnforced: in Chromium, raise the minimum password
// length and require a second factor for role security in Settings →
// Authentication; then creating a user with a shorter password is refused
// with the API's message, and a security user without a second factor is
// held to enrolling one: a wrong code keeps him there, the right one lands
// him on /ui/ with the whole console, and later sign-ins ask for a code.
func TestBrowserSettingsEnforced(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	e.CreateUser("bob", "security")
	b := uitest.NewBrowser(t, e)
	b.SignIn("alice", uitest.Password, "")

	b.Visit("/ui/settings/authentication")
	b.Axe()
	if v := uitest.Eval[string](b, `document.getElementById("min_length").value`); v != "12" {
		t.Fatalf("min_length shown as %q", v)
	}
	b.Fill(map[string]string{"min_length": "16"})
	b.Do(chromedp.Evaluate[chromedp.Void](`document.getElementById("totp-security").checked = true`))
	b.Submit(`form[action="/ui/settings/authentication"] button[type="submit"]`)
	if msg := b.Text("main p.ok"); msg != "Settings saved." {
		t.Fatalf("after saving: %q: %s", msg, b.Text("main"))
	}
	if v := uitest.Eval[bool](b, `document.getElementById("totp-security").checked && document.getElementById("min_length").value === "16"`); !v {
		t.Fatal("the saved settings are not shown")
	}
	b.Axe()

	// A refused value: the API's message, the field kept.
	b.Fill(map[string]string{"absolute_timeout": "1000h"})
	b.Submit(`form[action="/ui/settings/authentication"] button[type="submit"]`)
	if msg := b.Text("#settings-error"); msg != "session.absolute_timeout: must be between idle_timeout and 168h" {
		t.Fatalf("refused setting: %q", msg)
	}
	b.Axe()

	// The longer minimum is enforced on a new user's password.
	b.Visit("/ui/users")
	b.Axe()
	b.Fill(map[string]string{"username": "erin", "password": "thirteen char", "password_confirm": "thirteen char"})
	b.Submit(`form[method="post"][action="/ui/users"] button[type="submit"]`)
	if msg := b.Text("main .error"); msg != "password: too short: at least 16 characters" {
		t.Fatalf("short password after raising the minimum: %q", msg)
	}
	var u struct{}
	if code := e.API("GET", "/v1/users/erin", nil, &u); code != http.StatusNotFound {
		t.Fatalf("erin created anyway: %d", code)
	}

	// bob (security, no second factor) signs in but may do nothing until
	// he enrols one.
	b2 := uitest.NewBrowser(t, e)
	b2.SignIn("bob", uitest.Password, "")
	b2.Visit("/ui/clients")
	if msg := b2.Text("main .error"); !strings.Contains(msg, "your role requires a second factor") {
		t.Fatalf("security without TOTP on the clients page: %q", msg)
	}
	// He enrols one in the console, and signs in again with its code.
	b2.Visit("/ui/account/second-factor")
	b2.Axe()
	b2.Fill(map[string]string{"current_password": uitest.Password})
	b2.Submit(`form[action="/ui/account/second-factor"] button[type="submit"]`)
	secret := uitest.Eval[string](b2, `document.getElementById("secret").value`)
	if len(secret) < 16 {
		t.Fatalf("no TOTP secret shown: %q: %s", secret, b2.Text("main"))
	}
	b2.Axe()
	// A wrong code leaves him restricted.
	b2.Fill(map[string]string{"code": wrongTOTP(e, secret)})
	b2.Submit(`form[action="/ui/account/second-factor/verify"] button[type="submit"]`)
	if msg := b2.Text("main .error"); !strings.Contains(msg, "totp_code") {
		t.Fatalf("a wrong code: %q", msg)
	}
	b2.Visit("/ui/clients")
	if msg := b2.Text("main .error"); !strings.Contains(msg, "your role requires a second factor") {
		t.Fatalf("after a wrong code on the clients page: %q", msg)
	}
	// The right one completes his sign-in: a new, full session, on /ui/.
	b2.Visit("/ui/account/second-factor")
	b2.Fill(map[string]string{"current_password": uitest.Password})
	b2.Submit(`form[action="/ui/account/second-factor"] button[type="submit"]`)
	secret = uitest.Eval[string](b2, `document.getElementById("secret").value`)
	b2.Fill(map[string]string{"code": e.TOTP(secret)})
	b2.Submit(`form[action="/ui/account/second-factor/verify"] button[type="submit"]`)
	if l := b2.Location(); l != e.Admin+"/ui/" {
		t.Fatalf("after confirming at %s, want /ui/: %s", l, b2.Text("main"))
	}
	if who := b2.Text("header .who"); !strings.Contains(who, "bob") {
		t.Fatalf("header after confirming: %q", who)
	}
	b2.Visit("/ui/clients")
	if h := b2.Text("main h1"); h != "Clients" || strings.Contains(b2.Text("main"), "requires a second factor") {
		t.Fatalf("bob after confirming, on the clients page: %s", b2.Text("main"))
	}
	b2.Axe()
	b2.Submit(`form[action="/ui/logout"] button[type="submit"]`)
	e.Clock.Advance(30 * time.Second)
	b2.SignIn("bob", uitest.Password, e.TOTP(secret))
	b2.Visit("/ui/clients")
	if h := b2.Text("main h1"); h != "Clients" || strings.Contains(b2.Text("main"), "requires a second factor") {
		t.Fatalf("bob with his second factor on the clients page: %s", b2.Text("main"))
	}
	e.NoCSPReports()
}

// TestBrowserAdminResetForcesChange: an admin resets a user's password in
// /ui/users; the user signing in with it must choose a new one before
// landing on /ui/.
func TestBrowserAdminResetForcesChange(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	e.CreateUser("bob", "security")
	const temp = "temporary from alice 2026 x"
	const next = "a fresh passphrase of my own 8 long"
	b := uitest.NewBrowser(t, e)
	b.SignIn("alice", uitest.Password, "")
	b.Visit("/ui/users")
	b.Axe()
	b.Submit(`a[href="/ui/users?user=bob"]`)
	if h := b.Text("#account-h"); h != "Account bob" {
		t.Fatalf("account panel: %q", h)
	}
	b.Axe()
	b.Fill(map[string]string{"new_password": temp, "new_password_confirm": temp})
	b.Submit(`form[action="/ui/users/bob/password"] button[type="submit"]`)
	if msg := b.Text("main p.ok"); !strings.HasPrefix(msg, "Password reset") {
		t.Fatalf("after the reset: %q: %s", msg, b.Text("main"))
	}
	if txt := b.Text(".facts"); !strings.Contains(txt, "expired") {
		t.Fatalf("the account does not show the forced change: %q", txt)
	}

	b2 := uitest.NewBrowser(t, e)
	b2.Visit("/ui/login")
	b2.Fill(map[string]string{"username": "bob", "password": temp})
	b2.Submit(`form[action="/ui/login"] button[type="submit"]`)
	if h := b2.Text("main h1"); h != "Change your password" {
		t.Fatalf("bob after the reset: %q: %s", h, b2.Text("main"))
	}
	b2.Fill(map[string]string{"password": temp, "new_password": next, "new_password_confirm": next})
	b2.Submit(`form[action="/ui/login/password"] button[type="submit"]`)
	if l := b2.Location(); l != e.Admin+"/ui/" {
		t.Fatalf("after the change at %s: %s", l, b2.Text("main"))
	}
	b3 := uitest.NewBrowser(t, e)
	b3.SignIn("bob", next, "")
	e.NoCSPReports()
}

// TestBrowserClientCredentials: a client created in the console, its
// secret shown once with a working copy button, gets a token at
// POST /oauth/token and passes the gateway with it; the secret is never
// shown again. Tokens the same way. Every page axe-clean.
func TestBrowserClientCredentials(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	b := uitest.NewBrowser(t, e)
	b.SignIn("alice", uitest.Password, "")

	b.Visit("/ui/clients")
	b.Axe()
	b.Fill(map[string]string{"name": "<b>billing</b>", "scopes": "demo:read"})
	b.Submit(`form[method="post"][action="/ui/clients"] button[type="submit"]`)
	id := uitest.Eval[string](b, `document.getElementById("secret-id").value`)
	secret := uitest.Eval[string](b, `document.getElementById("secret").value`)
	if id == "" || len(secret) < 20 {
		t.Fatalf("client id %q, secret %q", id, secret)
	}
	if n := uitest.Eval[int](b, `document.querySelectorAll("button.copy:not([hidden])").length`); n != 2 {
		t.Errorf("%d copy buttons shown with JS on, want 2", n)
	}
	if strings.Contains(uitest.Eval[string](b, `document.querySelector("main p.ok").innerHTML`), "<b>") {
		t.Fatal("the client's name is not escaped")
	}
	b.Axe()
	code, at := clientToken(t, e, id, secret)
	if code != 200 || at == "" {
		t.Fatalf("/oauth/token with the client made in the console: %d", code)
	}
	if code := e.Gate("/api/x", at); code != 200 {
		t.Fatalf("gateway with the client's token: %d", code)
	}

	b.Visit("/ui/clients")
	if strings.Contains(uitest.Eval[string](b, `document.body.innerHTML`), secret) {
		t.Fatal("the secret is shown again")
	}
	if txt := b.Text("table tbody tr"); !strings.Contains(txt, "alice") {
		t.Errorf("the list row does not say who created it: %q", txt)
	}
	b.Submit(`form[action$="/revoke"] button[type="submit"]`)
	if msg := b.Text("main p.ok"); msg != "Client revoked." {
		t.Fatalf("after revoke: %q", msg)
	}
	if code, _ := clientToken(t, e, id, secret); code == 200 {
		t.Fatal("the revoked client still gets tokens")
	}

	b.Visit("/ui/tokens")
	b.Axe()
	b.Fill(map[string]string{"name": "ci", "expires_in": "7d"})
	b.Do(chromedp.Evaluate[chromedp.Void](`document.getElementById("role").value = "auditor"`))
	b.Submit(`form[method="post"][action="/ui/tokens"] button[type="submit"]`)
	pat := uitest.Eval[string](b, `document.getElementById("secret").value`)
	if code := bearer(t, e, "/v1/settings/authentication", pat); code != 200 {
		t.Fatalf("the token made in the console: %d", code)
	}
	b.Axe()
	e.NoCSPReports()
}

// TestBrowserPeoplePagesNarrow: at 360 px wide, the clients, users,
// tokens and settings pages fit (no sideways scrolling of the page) and
// stay axe-clean.
func TestBrowserPeoplePagesNarrow(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	e.CreateUser("a-rather-long-username@example.com", "auditor")
	e.API("POST", "/v1/clients", map[string]any{"name": "a service client with a long name", "scopes": []string{"demo:read"}}, nil)
	b := uitest.NewBrowser(t, e)
	b.SignIn("alice", uitest.Password, "")
	b.Do(chromedp.EmulateViewport(360, 800))
	for _, p := range []string{"/ui/clients", "/ui/users", "/ui/users?user=a-rather-long-username@example.com", "/ui/tokens", "/ui/account/second-factor", "/ui/settings/authentication"} {
		b.Visit(p)
		if w := uitest.Eval[int](b, `document.documentElement.scrollWidth`); w > 360 {
			b.Screenshot(strings.NewReplacer("/", "_", "?", "_", "@", "_").Replace(p))
			wide := uitest.Eval[string](b, `[...document.querySelectorAll("main *")].filter(el => el.getBoundingClientRect().right > 360).slice(-3).map(el => el.outerHTML.slice(0, 120)).join(" | ")`)
			t.Errorf("%s is %d px wide at 360 px: %s", p, w, wide)
		}
		b.Axe()
	}
	e.NoCSPReports()
}

// wrongTOTP is a six-digit code that is not secret's now, nor in the
// steps either side.
func wrongTOTP(e *uitest.Env, secret string) string {
	valid := map[string]bool{}
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		c, _ := totp.Code(secret, e.Clock.Now().Add(d))
		valid[c] = true
	}
	for n := 123456; ; n = (n + 7919) % 1000000 {
		if c := fmt.Sprintf("%06d", n); !valid[c] {
			return c
		}
	}
}
