package ui

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/authn"
)

// userFilterStatuses are the statuses GET /v1/users filters by.
var userFilterStatuses = []string{"active", "disabled", "locked"}

type usersData struct {
	Users               []*admin.User
	Status, Role, Query string
	Statuses, Roles     []string
	Pager               pager
	// Selected is the account ?user= names, with its actions.
	Selected *admin.User
	// Form is the create form as sent (never its password).
	Form          admin.CreateUserRequest
	FormScopes    string
	Message, Done string
	// Me is the signed-in username (no delete button on one's own row).
	Me string
}

// usersDone are the messages of ?done= after an action on ?user=.
var usersDone = map[string]string{
	"created":  "User created.",
	"disabled": "User disabled: their sessions and tokens have ended.",
	"enabled":  "User enabled.",
	"role":     "Role changed.",
	"unlocked": "User unlocked.",
	"password": "Password reset: the user must choose a new one at their next sign-in.",
	"totp":     "Second factor reset: the user enrols a new one at their next sign-in (if their role requires one).",
	"deleted":  "User deleted.",
}

// usersPage lists accounts (GET /v1/users with the filters) and, with
// ?user=, shows one account with its actions.
func usersPage(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	return u.renderUsers(w, r, s, http.StatusOK, &usersData{})
}

func (u *UI) renderUsers(w http.ResponseWriter, r *http.Request, s *session, status int, d *usersData) error {
	q := r.URL.Query()
	d.Status, d.Role, d.Query = q.Get("status"), q.Get("role"), strings.TrimSpace(q.Get("q"))
	d.Statuses, d.Roles, d.Me = userFilterStatuses, authn.Roles(), s.user.Username
	if d.Form.Role == "" {
		d.Form.Role = authn.RoleAuditor // the least a new account gets unless chosen
	}
	if d.Done == "" {
		d.Done = usersDone[q.Get("done")]
	}
	fail := func(err error) { u.listFailed(r, err, &d.Message, &status) }
	if name := q.Get("user"); name != "" {
		var one admin.User
		if err := u.call(r.Context(), r, http.MethodGet, "/v1/users/"+url.PathEscape(name), nil, &one); err != nil {
			fail(err)
		} else {
			d.Selected = &one
		}
	}
	api := url.Values{}
	for k, v := range map[string]string{"status": d.Status, "role": d.Role, "name": d.Query} {
		if v != "" {
			api.Set(k, v)
		}
	}
	list, pg, err := listPage(u, r, "/v1/users", api, "/ui/users", url.Values{"status": {d.Status}, "role": {d.Role}, "q": {d.Query}},
		func(l *admin.UserList) string { return l.Next })
	if err != nil {
		fail(err)
	}
	d.Users, d.Pager = list.Users, pg
	u.render(w, r, s, status, "users.html", "Users", d)
	return nil
}

// createUser is POST /v1/users with the form's fields.
func createUser(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	req := admin.CreateUserRequest{Username: strings.TrimSpace(r.PostFormValue("username")), Role: r.PostFormValue("role"),
		Scopes: splitList(r.PostFormValue("scopes")), Password: r.PostFormValue("password")}
	again := func(msg string, status int) error {
		form := req
		form.Password = ""
		return u.renderUsers(w, withQuery(r, nil), s, status, &usersData{Form: form, FormScopes: r.PostFormValue("scopes"), Message: msg})
	}
	if req.Password != r.PostFormValue("password_confirm") {
		return again("The password and its confirmation differ.", http.StatusBadRequest)
	}
	var out admin.User
	if err := u.call(r.Context(), r, http.MethodPost, "/v1/users", req, &out); err != nil {
		return again(u.errMessage(r, err), errStatus(err))
	}
	redirectUser(w, r, out.Username, "created")
	return nil
}

// redirectUser shows the account name after an action's done.
func redirectUser(w http.ResponseWriter, r *http.Request, name, done string) {
	http.Redirect(w, r, "/ui/users?"+url.Values{"user": {name}, "done": {done}}.Encode(), http.StatusSeeOther)
}

// userAction is an action on the account {name}: method path with body,
// then back to the account with done, or the account with the API's
// refusal.
func userAction(method, action string, body func(r *http.Request) (any, string), done string) PageFunc {
	return func(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
		name := r.PathValue("name")
		var in any
		if body != nil {
			var msg string
			if in, msg = body(r); msg != "" {
				return u.renderUsers(w, withQuery(r, url.Values{"user": {name}}), s, http.StatusBadRequest, &usersData{Message: msg})
			}
		}
		path := "/v1/users/" + url.PathEscape(name)
		if action != "" {
			path += "/" + action
		}
		if err := u.call(r.Context(), r, method, path, in, nil); err != nil {
			return u.renderUsers(w, withQuery(r, url.Values{"user": {name}}), s, errStatus(err), &usersData{Message: u.errMessage(r, err)})
		}
		if done == "deleted" {
			http.Redirect(w, r, "/ui/users?done=deleted", http.StatusSeeOther)
			return nil
		}
		redirectUser(w, r, name, done)
		return nil
	}
}

// roleBody is PUT /v1/users/{name}/role's body from the form.
func roleBody(r *http.Request) (any, string) {
	return admin.RoleRequest{Role: r.PostFormValue("role")}, ""
}

// passwordBody is the admin reset's body: the new password, twice.
func passwordBody(r *http.Request) (any, string) {
	np := r.PostFormValue("new_password")
	if np != r.PostFormValue("new_password_confirm") {
		return nil, "The new password and its confirmation differ."
	}
	return admin.PasswordRequest{NewPassword: np}, ""
}

// deleteBody asks for the confirmation box (the API call has no body).
func deleteBody(r *http.Request) (any, string) {
	if r.PostFormValue("confirm") != "yes" {
		return nil, "Tick the box to confirm deleting " + r.PathValue("name") + "."
	}
	return nil, ""
}

// userActions are the account actions of the users page.
func userActions() map[string]PageFunc {
	return map[string]PageFunc{
		"/ui/users":                   createUser,
		"/ui/users/{name}/disable":    userAction(http.MethodPost, "disable", nil, "disabled"),
		"/ui/users/{name}/enable":     userAction(http.MethodPost, "enable", nil, "enabled"),
		"/ui/users/{name}/role":       userAction(http.MethodPut, "role", roleBody, "role"),
		"/ui/users/{name}/unlock":     userAction(http.MethodPost, "unlock", nil, "unlocked"),
		"/ui/users/{name}/password":   userAction(http.MethodPost, "password", passwordBody, "password"),
		"/ui/users/{name}/totp-reset": userAction(http.MethodPost, "totp/reset", nil, "totp"),
		"/ui/users/{name}/delete":     userAction(http.MethodDelete, "", deleteBody, "deleted"),
	}
}
