package ui

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/internal/admin"
)

type keysData struct {
	Keys          []*admin.Key
	State, Query  string
	Pager         pager
	Form          admin.CreateKeyRequest
	FormScopes    string
	Message, Done string
	States        []string
}

// keyStates are the API's status filters (active includes rotating).
var keyStates = []string{"active", "expired", "revoked"}

// keysPage lists keys (GET /v1/keys), filtered by state and name.
func keysPage(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	d := &keysData{}
	return u.renderKeys(w, r, s, http.StatusOK, d)
}

// renderKeys renders one page of the key list: the API's page for the
// filters and cursor in the URL, so a page costs the same with ten keys
// or a million. A query that is a key id shows that key.
func (u *UI) renderKeys(w http.ResponseWriter, r *http.Request, s *session, status int, d *keysData) error {
	q := r.URL.Query()
	d.State, d.Query, d.States = q.Get("state"), strings.TrimSpace(q.Get("q")), keyStates
	switch q.Get("done") {
	case "revoked":
		d.Done = "Key revoked."
	}
	if strings.HasPrefix(d.Query, "key_") && !strings.ContainsAny(d.Query, " /?#") {
		var k admin.Key
		if err := u.call(r.Context(), r, http.MethodGet, "/v1/keys/"+url.PathEscape(d.Query), nil, &k); err == nil {
			d.Keys = []*admin.Key{&k}
		} else if errStatus(err) != http.StatusNotFound {
			u.listFailed(r, err, &d.Message, &status)
		}
	} else {
		api := url.Values{}
		if d.State != "" {
			api.Set("status", d.State)
		}
		if d.Query != "" {
			api.Set("name", d.Query)
		}
		list, pg, err := listPage(u, r, "/v1/keys", api, "/ui/keys", url.Values{"state": {d.State}, "q": {d.Query}},
			func(l *admin.KeyList) string { return l.Next })
		if err != nil {
			u.listFailed(r, err, &d.Message, &status)
		}
		d.Keys, d.Pager = list.Keys, pg
	}
	u.render(w, r, s, status, "keys.html", "Keys", d)
	return nil
}

type secretData struct {
	Key    *admin.Key
	Action string
}

// createKey is POST /v1/keys with the form's fields; the secret is shown
// once, on the answer page.
func createKey(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	req := admin.CreateKeyRequest{Name: strings.TrimSpace(r.PostFormValue("name")), Scopes: splitList(r.PostFormValue("scopes")),
		Tier: strings.TrimSpace(r.PostFormValue("tier")), ExpiresIn: strings.TrimSpace(r.PostFormValue("expires_in"))}
	var k admin.Key
	if err := u.call(r.Context(), r, http.MethodPost, "/v1/keys", req, &k); err != nil {
		// The list with the form as sent and the API's message.
		d := &keysData{Form: req, FormScopes: r.PostFormValue("scopes"), Message: u.errMessage(r, err)}
		r2 := r.Clone(r.Context())
		r2.URL.RawQuery = ""
		return u.renderKeys(w, r2, s, errStatus(err), d)
	}
	u.render(w, r, s, http.StatusCreated, "secret.html", "Key created", secretData{Key: &k, Action: "created"})
	return nil
}

// revokeKey is POST /v1/keys/{id}/revoke.
func revokeKey(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	if err := u.call(r.Context(), r, http.MethodPost, "/v1/keys/"+url.PathEscape(r.PathValue("id"))+"/revoke", nil, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/keys?done=revoked", http.StatusSeeOther)
	return nil
}

// rotateKey is POST /v1/keys/{id}/rotate; the new secret is shown once.
func rotateKey(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	var body *admin.RotateKeyRequest
	if g := strings.TrimSpace(r.PostFormValue("grace")); g != "" {
		body = &admin.RotateKeyRequest{Grace: g}
	}
	var k admin.Key
	var in any
	if body != nil {
		in = body
	}
	if err := u.call(r.Context(), r, http.MethodPost, "/v1/keys/"+url.PathEscape(r.PathValue("id"))+"/rotate", in, &k); err != nil {
		return err
	}
	u.render(w, r, s, http.StatusCreated, "secret.html", "Key rotated", secretData{Key: &k, Action: "rotated"})
	return nil
}
