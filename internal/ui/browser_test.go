package ui_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// TestBrowserSignInWithTOTPAndKeys: in real Chromium, sign in with a
// second factor, create a key and use it at the gateway, revoke it and
// see the gateway refuse it; axe-core clean and no CSP report on every
// page visited.
func TestBrowserSignInWithTOTPAndKeys(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	secret := e.EnrollTOTP("alice")
	b := uitest.NewBrowser(t, e)

	b.Visit("/ui/login")
	b.Axe()
	b.SignIn("alice", uitest.Password, e.TOTP(secret))
	if who := b.Text("header .who"); !strings.Contains(who, "alice") || !strings.Contains(who, "session ends") {
		t.Fatalf("header %q: want the user and the session's end", who)
	}
	b.Axe()

	b.Visit("/ui/keys")
	b.Axe()
	b.Fill(map[string]string{"name": "<script>alert(1)</script>", "scopes": "demo:read"})
	b.Submit(`form[method="post"][action="/ui/keys"] button[type="submit"]`)
	key := uitest.Eval[string](b, `document.getElementById("secret").value`)
	if !strings.HasPrefix(key, "gk_") && len(key) < 20 {
		t.Fatalf("no secret shown: %q", key)
	}
	if hidden := uitest.Eval[bool](b, `document.querySelector("button.copy").hidden`); hidden {
		t.Error("copy button still hidden with JS on")
	}
	b.Axe()
	if code := e.Gate("/api/x", key); code != 200 {
		t.Fatalf("gateway with the key made in the UI: %d", code)
	}

	b.Visit("/ui/keys")
	if strings.Contains(uitest.Eval[string](b, `document.body.innerHTML`), key) {
		t.Fatal("the secret is shown again")
	}
	b.Submit(`form[action$="/revoke"] button[type="submit"]`)
	if msg := b.Text("main p.ok"); msg != "Key revoked." {
		t.Fatalf("after revoke: %q", msg)
	}
	if code := e.Gate("/api/x", key); code != 401 {
		t.Fatalf("gateway with the key revoked in the UI: %d, want 401", code)
	}

	b.Visit("/ui/audit") // the audit viewer: TestBrowserAuditViewer
	if h := b.Text("main h1"); h != "Audit" {
		t.Fatalf("audit page: %q", h)
	}
	b.Axe()

	b.Submit(`form[action="/ui/logout"] button[type="submit"]`)
	if l := b.Location(); !strings.HasSuffix(l, "/ui/login") {
		t.Fatalf("after sign-out at %s", l)
	}
	b.Visit("/ui/keys")
	if l := b.Location(); !strings.HasSuffix(l, "/ui/login") {
		t.Fatalf("signed out, /ui/keys at %s", l)
	}
	e.NoCSPReports()
}

// TestBrowserForcedPasswordChange: a password reset by an administrator
// must be replaced at the next sign-in.
func TestBrowserForcedPasswordChange(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("bob", "security")
	const temp = "temporary password from the admin 7"
	const next = "a fresh passphrase of forty-two 99"
	if code := e.API("POST", "/v1/users/bob/password", map[string]string{"new_password": temp}, nil); code != 200 {
		t.Fatalf("reset: HTTP %d", code)
	}
	b := uitest.NewBrowser(t, e)
	b.Visit("/ui/login")
	b.Fill(map[string]string{"username": "bob", "password": temp})
	b.Submit(`form[action="/ui/login"] button[type="submit"]`)
	if h := b.Text("main h1"); h != "Change your password" {
		t.Fatalf("after signing in with a reset password: %q: %s", h, b.Text("main"))
	}
	b.Axe()
	b.Fill(map[string]string{"password": temp, "new_password": next, "new_password_confirm": next})
	b.Submit(`form[action="/ui/login/password"] button[type="submit"]`)
	if l := b.Location(); l != e.Admin+"/ui/" {
		t.Fatalf("after the change at %s: %s", l, b.Text("main"))
	}
	b2 := uitest.NewBrowser(t, e)
	b2.SignIn("bob", next, "")
	e.NoCSPReports()
}

// TestBrowserRefusals: an auditor is shown the API's 403 for creating a
// key; a form stripped of its CSRF token, or posted from another origin,
// is refused.
func TestBrowserRefusals(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("carol", "auditor")
	b := uitest.NewBrowser(t, e)
	b.SignIn("carol", uitest.Password, "")
	b.Visit("/ui/keys")
	b.Fill(map[string]string{"name": "nope"})
	b.Submit(`form[method="post"][action="/ui/keys"] button[type="submit"]`)
	if msg := b.Text("main .error"); !regexp.MustCompile(`(?i)role|not allowed|forbidden|auditor`).MatchString(msg) {
		t.Fatalf("auditor creating a key: %q", msg)
	}
	b.Axe()

	b.Visit("/ui/keys")
	b.Do(chromedp.Evaluate[chromedp.Void](`document.querySelectorAll('form[method="post"][action="/ui/keys"] input[name="csrf_token"]').forEach(i => i.remove())`))
	b.Fill(map[string]string{"name": "no token"})
	b.Submit(`form[method="post"][action="/ui/keys"] button[type="submit"]`)
	if msg := b.Text("main .error"); !strings.Contains(msg, "CSRF token") {
		t.Fatalf("form without its token: %q", msg)
	}

	// Another origin (the gateway's listener, another port) trying to
	// post to the console: whether the browser sends it or not (the
	// page's own CSP may stop it), no key comes of it. The header-level
	// refusal is TestCSRFRefused/cross_origin.
	b.Do(chromedp.Navigate(e.Gateway + "/public-nothing"))
	res := uitest.Eval[string](b, `fetch("`+e.Admin+`/ui/keys", {method: "POST", mode: "no-cors", credentials: "include", body: new URLSearchParams({name: "x"})}).then(() => "sent", err => "blocked")`)
	t.Logf("cross-origin post: %s", res)
	var list struct{ Keys []any }
	e.API("GET", "/v1/keys", nil, &list)
	if len(list.Keys) != 0 {
		t.Fatalf("%d key(s) created by refused forms", len(list.Keys))
	}
	e.NoCSPReports()
}
