package ui_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// TestSessionCookieAttributesJSOff: the session cookie a console sign-in
// sets is HttpOnly and SameSite=Strict (no cross-site request carries
// it), for the whole listener, and not Secure over plain HTTP (a browser
// would drop it); the sign-in form's own token cookie likewise, on
// /ui/login only; sign-out clears the session cookie.
func TestSessionCookieAttributesJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	f := newForm(t, e)
	f.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cookie := func(res *http.Response, name string) *http.Cookie {
		t.Helper()
		for _, c := range res.Cookies() {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("no %s cookie set: %q", name, res.Header.Values("Set-Cookie"))
		return nil
	}
	res, body := f.get("/ui/login")
	if c := cookie(res, "gatehouse_ui_login"); !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui/login" {
		t.Errorf("sign-in token cookie %q: want HttpOnly, SameSite=Strict, Path=/ui/login", c.String())
	}
	res, _ = f.post("/ui/login", url.Values{"username": {"alice"}, "password": {uitest.Password}, "csrf_token": {token(t, body)}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/ui/" {
		t.Fatalf("sign-in: HTTP %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	c := cookie(res, authn.SessionCookie)
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure || c.Value == "" {
		t.Errorf("session cookie %q: want HttpOnly, SameSite=Strict, Path=/, not Secure over HTTP", c.String())
	}
	_, page := f.get("/ui/")
	res, _ = f.post("/ui/logout", url.Values{"csrf_token": {token(t, page)}})
	if c := cookie(res, authn.SessionCookie); c.MaxAge >= 0 || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Errorf("sign-out's cookie %q: want it cleared with the same attributes", c.String())
	}
}
