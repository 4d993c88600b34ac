package ui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/authn"
)

// loginCookie carries the sign-in form's own CSRF token (there is no
// session yet): a random value, also in the form, compared on POST.
const loginCookie = "gatehouse_ui_login"

type loginData struct {
	Username string
	Message  string
	Token    string
}

// loginToken is the sign-in form's token: the cookie's, or a new one.
func loginToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(loginCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	b := make([]byte, 32)
	rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: "/ui/login", HttpOnly: true, // #nosec G124 -- Secure whenever served over TLS, like the session cookie
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	return tok
}

func checkLoginToken(r *http.Request) bool {
	c, err := r.Cookie(loginCookie)
	got := r.PostFormValue(csrfField)
	return err == nil && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(c.Value)) == 1
}

func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	u.render(w, r, nil, http.StatusOK, "login.html", "Sign in", loginData{Token: loginToken(w, r)})
}

// login signs in through POST /v1/session and passes its cookie on.
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	u.signIn(w, r, "")
}

// loginNewPassword is the forced password change: the same sign-in with
// new_password, as the API asks for an expired or reset password.
func (u *UI) loginNewPassword(w http.ResponseWriter, r *http.Request) {
	np := r.PostFormValue("new_password")
	if np != r.PostFormValue("new_password_confirm") {
		u.render(w, r, nil, http.StatusBadRequest, "password.html", "Change your password",
			loginData{Username: r.PostFormValue("username"), Token: loginToken(w, r), Message: "The new password and its confirmation differ."})
		return
	}
	u.signIn(w, r, np)
}

func (u *UI) signIn(w http.ResponseWriter, r *http.Request, newPassword string) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	tok := loginToken(w, r)
	name := r.PostFormValue("username")
	if !checkLoginToken(r) {
		u.render(w, r, nil, http.StatusForbidden, "login.html", "Sign in", loginData{Username: name, Token: tok,
			Message: "This form's CSRF token is missing or wrong: reload the page and sign in again."})
		return
	}
	req := admin.LoginRequest{Username: name, Password: r.PostFormValue("password"), TOTPCode: r.PostFormValue("totp_code"), NewPassword: newPassword}
	a, err := u.do(r.Context(), r, http.MethodPost, "/v1/session", req)
	var res admin.SessionResponse
	if err == nil {
		err = a.decode(&res)
	}
	if err != nil {
		tmpl, title := "login.html", "Sign in"
		if newPassword != "" || gatehouse.ErrorMessage(err) == authn.ErrPasswordExpired.Message {
			tmpl, title = "password.html", "Change your password"
		}
		if ra := a.header.Get("Retry-After"); ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		u.render(w, r, nil, errStatus(err), tmpl, title, loginData{Username: name, Token: tok, Message: u.errMessage(r, err)})
		return
	}
	for _, c := range a.header.Values("Set-Cookie") {
		w.Header().Add("Set-Cookie", c)
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/ui/login", MaxAge: -1, HttpOnly: true, // #nosec G124 -- clearing cookie
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

// logout signs out through DELETE /v1/session.
func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	s, err := u.signedIn(r)
	if err != nil {
		u.notSignedIn(w, r, err)
		return
	}
	if !u.checkCSRF(r, s) {
		u.renderError(w, r, s, http.StatusForbidden, "This form's CSRF token is missing or wrong: reload the page and send it again.")
		return
	}
	a, err := u.do(r.Context(), r, http.MethodDelete, "/v1/session", nil)
	if err == nil {
		err = a.decode(nil)
	}
	if err != nil {
		u.renderError(w, r, s, errStatus(err), u.errMessage(r, err))
		return
	}
	for _, c := range a.header.Values("Set-Cookie") {
		w.Header().Add("Set-Cookie", c)
	}
	redirectLogin(w, r)
}
