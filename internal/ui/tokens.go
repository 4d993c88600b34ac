package ui

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/authn"
)

// tokenFilterStatuses are the statuses GET /v1/tokens filters by.
var tokenFilterStatuses = []string{"active", "expired", "revoked"}

type tokensData struct {
	Tokens        []*admin.Token
	Status, Query string
	Statuses      []string
	// All lists everyone's tokens (?all=true: admins only, as the API
	// decides); CanAll offers the choice.
	All, CanAll   bool
	Roles         []string
	Pager         pager
	Form          admin.CreateTokenRequest
	FormScopes    string
	Message, Done string
}

// tokensDone are the messages of ?done= after an action.
var tokensDone = map[string]string{"revoked": "Token revoked."}

// tokensPage lists the signed-in person's personal access tokens (GET
// /v1/tokens), or everyone's with ?all=true.
func tokensPage(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	return u.renderTokens(w, r, s, http.StatusOK, &tokensData{})
}

func (u *UI) renderTokens(w http.ResponseWriter, r *http.Request, s *session, status int, d *tokensData) error {
	q := r.URL.Query()
	d.Status, d.Query, d.Statuses = q.Get("status"), strings.TrimSpace(q.Get("q")), tokenFilterStatuses
	d.All, d.CanAll, d.Roles = q.Get("all") == "true", s.user.Role == authn.RoleAdmin, authn.Roles()
	d.Done = tokensDone[q.Get("done")]
	api := url.Values{}
	if d.All {
		api.Set("all", "true")
	}
	if d.Status != "" {
		api.Set("status", d.Status)
	}
	if d.Query != "" {
		api.Set("name", d.Query)
	}
	all := ""
	if d.All {
		all = "true"
	}
	list, pg, err := listPage(u, r, "/v1/tokens", api, "/ui/tokens", url.Values{"all": {all}, "status": {d.Status}, "q": {d.Query}},
		func(l *admin.TokenList) string { return l.Next })
	if err != nil {
		u.listFailed(r, err, &d.Message, &status)
	}
	d.Tokens, d.Pager = list.Tokens, pg
	u.render(w, r, s, status, "tokens.html", "Tokens", d)
	return nil
}

// createToken is POST /v1/tokens with the form's fields; the token is
// shown once.
func createToken(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	req := admin.CreateTokenRequest{Name: strings.TrimSpace(r.PostFormValue("name")), Scopes: splitList(r.PostFormValue("scopes")),
		Role: r.PostFormValue("role"), ExpiresIn: strings.TrimSpace(r.PostFormValue("expires_in"))}
	var t admin.Token
	if err := u.call(r.Context(), r, http.MethodPost, "/v1/tokens", req, &t); err != nil {
		d := &tokensData{Form: req, FormScopes: r.PostFormValue("scopes"), Message: u.errMessage(r, err)}
		return u.renderTokens(w, withQuery(r, nil), s, errStatus(err), d)
	}
	u.render(w, r, s, http.StatusCreated, "oncesecret.html", "Token created", onceSecret{What: "Token", ID: t.ID, Name: t.Name,
		Action: "created, expiring " + t.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"), Secret: t.Token, SecretName: "Personal access token",
		Back: "Back to the tokens", To: "/ui/tokens"})
	return nil
}

// revokeToken is POST /v1/tokens/{id}/revoke.
func revokeToken(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	if err := u.call(r.Context(), r, http.MethodPost, "/v1/tokens/"+url.PathEscape(r.PathValue("id"))+"/revoke", nil, nil); err != nil {
		return err
	}
	to := "/ui/tokens?done=revoked"
	if r.PostFormValue("all") == "true" {
		to += "&all=true"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}
