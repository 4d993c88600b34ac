package ui

import (
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/internal/admin"
)

// secondFactorPath is the signed-in person's own second factor: enrol
// (POST /v1/me/totp, then /v1/me/totp/verify) or remove (DELETE
// /v1/me/totp). A session of a role that must use TOTP may do this and
// nothing else until the enrolment is confirmed: the API then replaces it
// with a full session, whose cookie the browser takes on its way to /ui/.
const secondFactorPath = "/ui/account/second-factor"

type secondFactorData struct {
	Enrolled bool
	// Secret and URI are the new factor's, shown once while it waits for
	// its first code.
	Secret, URI   string
	Message, Done string
}

var secondFactorDone = map[string]string{
	"enrolled": "Second factor enrolled: sign-ins from now on ask for its one-time code.",
	"removed":  "Second factor removed.",
}

// secondFactorPage shows the person's second factor and its form.
func secondFactorPage(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	d := &secondFactorData{Enrolled: s.user.TOTPEnabled, Done: secondFactorDone[r.URL.Query().Get("done")]}
	u.render(w, r, s, http.StatusOK, "secondfactor.html", "Second factor", d)
	return nil
}

// enrolSecondFactor is POST /v1/me/totp with the current password; the
// secret is shown once, with the form for the first code.
func enrolSecondFactor(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	var out struct {
		Secret string `json:"secret"`
		URI    string `json:"otpauth_uri"`
	}
	if err := u.call(r.Context(), r, http.MethodPost, "/v1/me/totp", admin.TOTPRequest{CurrentPassword: r.PostFormValue("current_password")}, &out); err != nil {
		u.render(w, r, s, errStatus(err), "secondfactor.html", "Second factor", &secondFactorData{Enrolled: s.user.TOTPEnabled, Message: u.errMessage(r, err)})
		return nil
	}
	u.render(w, r, s, http.StatusOK, "secondfactor.html", "Second factor", &secondFactorData{Secret: out.Secret, URI: out.URI})
	return nil
}

// confirmSecondFactor is POST /v1/me/totp/verify with the first code.
// When it completes a sign-in restricted to enrolment, the API answers
// 200 with a new session in place of this one: its cookie is passed on
// and the browser lands on /ui/, fully signed in. Otherwise (204) the
// page says the factor is enrolled.
func confirmSecondFactor(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	body := map[string]string{"code": strings.TrimSpace(r.PostFormValue("code"))}
	a, err := u.do(r.Context(), r, http.MethodPost, "/v1/me/totp/verify", body)
	if err == nil {
		err = a.decode(nil)
	}
	if err != nil {
		u.render(w, r, s, errStatus(err), "secondfactor.html", "Second factor", &secondFactorData{Enrolled: s.user.TOTPEnabled,
			Message: u.errMessage(r, err) + " Enrol again for a new secret if this one is lost."})
		return nil
	}
	if a.status == http.StatusOK {
		for _, c := range a.header.Values("Set-Cookie") {
			w.Header().Add("Set-Cookie", c)
		}
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, secondFactorPath+"?done=enrolled", http.StatusSeeOther)
	return nil
}

// removeSecondFactor is DELETE /v1/me/totp with the current password and
// a current code.
func removeSecondFactor(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	req := admin.TOTPRequest{CurrentPassword: r.PostFormValue("current_password"), Code: strings.TrimSpace(r.PostFormValue("code"))}
	if err := u.call(r.Context(), r, http.MethodDelete, "/v1/me/totp", req, nil); err != nil {
		u.render(w, r, s, errStatus(err), "secondfactor.html", "Second factor", &secondFactorData{Enrolled: s.user.TOTPEnabled, Message: u.errMessage(r, err)})
		return nil
	}
	http.Redirect(w, r, secondFactorPath+"?done=removed", http.StatusSeeOther)
	return nil
}
