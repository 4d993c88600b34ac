package ui

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
)

// settingsForm is Settings → Authentication as its form shows it: what
// the API holds, or what was sent when the API refused it.
type settingsForm struct {
	MinLength, MinStrength, History, MaxAgeDays string
	ForbidUsername, CheckCommon                 bool
	MaxFailures, LockoutWindow, LockoutDuration string
	IdleTimeout, AbsoluteTimeout                string
	BasicAuth                                   bool
	TOTPRoles                                   []roleChoice
	PerSourceRequests, PerSourcePer             string
	PerUsernameRequests, PerUsernamePer         string
}

type roleChoice struct {
	Role    string
	Checked bool
}

type settingsData struct {
	Form          *settingsForm
	Message, Done string
}

// settingsPage shows GET /v1/settings/authentication as a form.
func settingsPage(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	d := &settingsData{}
	if r.URL.Query().Get("done") == "saved" {
		d.Done = "Settings saved."
	}
	var cur authn.AuthSettings
	if err := u.call(r.Context(), r, http.MethodGet, "/v1/settings/authentication", nil, &cur); err != nil {
		d.Message = u.errMessage(r, err)
		u.render(w, r, s, errStatus(err), "settings.html", "Settings → Authentication", d)
		return nil
	}
	d.Form = settingsFormOf(cur)
	u.render(w, r, s, http.StatusOK, "settings.html", "Settings → Authentication", d)
	return nil
}

func settingsFormOf(a authn.AuthSettings) *settingsForm {
	itoa := strconv.Itoa
	f := &settingsForm{
		MinLength: itoa(a.Password.MinLength), MinStrength: itoa(a.Password.MinStrength), History: itoa(a.Password.History),
		MaxAgeDays: itoa(a.Password.MaxAgeDays), ForbidUsername: a.Password.ForbidUsername, CheckCommon: a.Password.CheckCommon,
		MaxFailures: itoa(a.Lockout.MaxFailures), LockoutWindow: shortDuration(time.Duration(a.Lockout.Window)),
		LockoutDuration: shortDuration(time.Duration(a.Lockout.Duration)),
		IdleTimeout:     shortDuration(time.Duration(a.Session.IdleTimeout)), AbsoluteTimeout: shortDuration(time.Duration(a.Session.AbsoluteTimeout)),
		BasicAuth:         a.BasicAuth,
		PerSourceRequests: itoa(a.SignInLimits.PerSource.Requests), PerSourcePer: shortDuration(a.SignInLimits.PerSource.Per),
		PerUsernameRequests: itoa(a.SignInLimits.PerUsername.Requests), PerUsernamePer: shortDuration(a.SignInLimits.PerUsername.Per),
	}
	for _, role := range authn.Roles() {
		f.TOTPRoles = append(f.TOTPRoles, roleChoice{Role: role, Checked: a.TOTPRequired(role)})
	}
	return f
}

// shortDuration writes d as the form reads it back: 15m, 12h, 1h30m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// saveSettings is PUT /v1/settings/authentication with the form as JSON:
// numbers as numbers (anything else as the string it is, for the API to
// refuse in its own words), durations as strings, boxes as true/false.
func saveSettings(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	v := func(name string) string { return strings.TrimSpace(r.PostFormValue(name)) }
	num := func(name string) any {
		if n, err := strconv.Atoi(v(name)); err == nil {
			return n
		}
		return v(name)
	}
	on := func(name string) bool { return r.PostFormValue(name) == "on" }
	roles := []string{}
	for _, role := range r.PostForm["totp_required_roles"] {
		if !slices.Contains(roles, role) {
			roles = append(roles, role)
		}
	}
	body := map[string]any{
		"password_policy": map[string]any{"min_length": num("min_length"), "min_strength": num("min_strength"), "history": num("history"),
			"max_age_days": num("max_age_days"), "forbid_username": on("forbid_username"), "check_common": on("check_common")},
		"basic_auth":          on("basic_auth"),
		"lockout":             map[string]any{"max_failures": num("max_failures"), "window": v("lockout_window"), "duration": v("lockout_duration")},
		"session":             map[string]any{"idle_timeout": v("idle_timeout"), "absolute_timeout": v("absolute_timeout")},
		"totp_required_roles": roles,
		"sign_in_limits": map[string]any{
			"per_source":   map[string]any{"requests": num("per_source_requests"), "per": v("per_source_per")},
			"per_username": map[string]any{"requests": num("per_username_requests"), "per": v("per_username_per")},
		},
	}
	if err := u.call(r.Context(), r, http.MethodPut, "/v1/settings/authentication", body, nil); err != nil {
		f := &settingsForm{MinLength: v("min_length"), MinStrength: v("min_strength"), History: v("history"), MaxAgeDays: v("max_age_days"),
			ForbidUsername: on("forbid_username"), CheckCommon: on("check_common"), MaxFailures: v("max_failures"),
			LockoutWindow: v("lockout_window"), LockoutDuration: v("lockout_duration"), IdleTimeout: v("idle_timeout"),
			AbsoluteTimeout: v("absolute_timeout"), BasicAuth: on("basic_auth"),
			PerSourceRequests: v("per_source_requests"), PerSourcePer: v("per_source_per"),
			PerUsernameRequests: v("per_username_requests"), PerUsernamePer: v("per_username_per")}
		for _, role := range authn.Roles() {
			f.TOTPRoles = append(f.TOTPRoles, roleChoice{Role: role, Checked: slices.Contains(roles, role)})
		}
		u.render(w, r, s, errStatus(err), "settings.html", "Settings → Authentication", &settingsData{Form: f, Message: u.errMessage(r, err)})
		return nil
	}
	http.Redirect(w, r, "/ui/settings/authentication?done=saved", http.StatusSeeOther)
	return nil
}
