package ui

import (
	"net/http"

	"github.com/gatehouse/gatehouse/internal/authz"
)

type policiesData struct {
	Status        *authz.Status
	Message, Done string
}

// policiesPage is GET /ui/policies: the serving policy (GET /v1/policies)
// and the reload form.
func policiesPage(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	d := &policiesData{}
	if r.URL.Query().Get("done") == "reloaded" {
		d.Done = "Policy reloaded: its source was read again, compiled and tested."
	}
	return u.renderPolicies(w, r, s, http.StatusOK, d)
}

func (u *UI) renderPolicies(w http.ResponseWriter, r *http.Request, s *session, status int, d *policiesData) error {
	var st authz.Status
	if err := u.call(r.Context(), r, http.MethodGet, "/v1/policies", nil, &st); err != nil {
		if d.Message == "" {
			d.Message = u.errMessage(r, err)
		}
		status = max(status, errStatus(err))
	} else {
		d.Status = &st
	}
	u.render(w, r, s, status, "policies.html", "Policies", d)
	return nil
}

// reloadPolicy is POST /v1/policies/reload; a refused policy shows the
// API's reason (the previous one keeps serving).
func reloadPolicy(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	if err := u.call(r.Context(), r, http.MethodPost, "/v1/policies/reload", nil, nil); err != nil {
		r2 := r.Clone(r.Context())
		r2.URL.RawQuery = ""
		return u.renderPolicies(w, r2, s, errStatus(err), &policiesData{Message: u.errMessage(r, err)})
	}
	http.Redirect(w, r, "/ui/policies?done=reloaded", http.StatusSeeOther)
	return nil
}
