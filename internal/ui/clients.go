package ui

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/internal/admin"
)

// clientFilterStatuses are the statuses GET /v1/clients filters by.
var clientFilterStatuses = []string{"active", "expired", "revoked", "locked"}

type clientsData struct {
	Clients       []*admin.Client
	Status, Query string
	Statuses      []string
	Pager         pager
	Form          admin.CreateClientRequest
	FormScopes    string
	Message, Done string
}

// clientsDone are the messages of ?done= after an action.
var clientsDone = map[string]string{"revoked": "Client revoked.", "unlocked": "Client unlocked: its lockouts are lifted."}

// clientsPage lists service clients (GET /v1/clients with the filters).
func clientsPage(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	return u.renderClients(w, r, s, http.StatusOK, &clientsData{})
}

func (u *UI) renderClients(w http.ResponseWriter, r *http.Request, s *session, status int, d *clientsData) error {
	q := r.URL.Query()
	d.Status, d.Query, d.Statuses = q.Get("status"), strings.TrimSpace(q.Get("q")), clientFilterStatuses
	d.Done = clientsDone[q.Get("done")]
	api := url.Values{}
	if d.Status != "" {
		api.Set("status", d.Status)
	}
	if d.Query != "" {
		api.Set("name", d.Query)
	}
	list, pg, err := listPage(u, r, "/v1/clients", api, "/ui/clients", url.Values{"status": {d.Status}, "q": {d.Query}},
		func(l *admin.ClientList) string { return l.Next })
	if err != nil {
		u.listFailed(r, err, &d.Message, &status)
	}
	d.Clients, d.Pager = list.Clients, pg
	u.render(w, r, s, status, "clients.html", "Clients", d)
	return nil
}

// createClient is POST /v1/clients with the form's fields; the secret is
// shown once, on the answer page.
func createClient(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	req := admin.CreateClientRequest{Name: strings.TrimSpace(r.PostFormValue("name")), Scopes: splitList(r.PostFormValue("scopes")),
		Tier: strings.TrimSpace(r.PostFormValue("tier")), ExpiresIn: strings.TrimSpace(r.PostFormValue("expires_in"))}
	var c admin.Client
	if err := u.call(r.Context(), r, http.MethodPost, "/v1/clients", req, &c); err != nil {
		d := &clientsData{Form: req, FormScopes: r.PostFormValue("scopes"), Message: u.errMessage(r, err)}
		return u.renderClients(w, withQuery(r, nil), s, errStatus(err), d)
	}
	u.render(w, r, s, http.StatusCreated, "oncesecret.html", "Client created", clientSecret(&c, "created"))
	return nil
}

func clientSecret(c *admin.Client, action string) onceSecret {
	return onceSecret{What: "Client", ID: c.ClientID, Name: c.Name, Action: action, IDLabel: "Client id",
		Secret: c.ClientSecret, SecretName: "Client secret", Back: "Back to the clients", To: "/ui/clients"}
}

// clientPath is the API path of the form's client and its action.
func clientPath(r *http.Request, action string) string {
	return "/v1/clients/" + url.PathEscape(r.PathValue("id")) + "/" + action
}

// revokeClient is POST /v1/clients/{id}/revoke.
func revokeClient(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	if err := u.call(r.Context(), r, http.MethodPost, clientPath(r, "revoke"), nil, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/clients?done=revoked", http.StatusSeeOther)
	return nil
}

// unlockClient is POST /v1/clients/{id}/unlock.
func unlockClient(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	if err := u.call(r.Context(), r, http.MethodPost, clientPath(r, "unlock"), nil, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/clients?done=unlocked", http.StatusSeeOther)
	return nil
}

// rotateClient is POST /v1/clients/{id}/rotate: a new secret, shown once
// (the old one stops working).
func rotateClient(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	var c admin.Client
	if err := u.call(r.Context(), r, http.MethodPost, clientPath(r, "rotate"), nil, &c); err != nil {
		return err
	}
	u.render(w, r, s, http.StatusOK, "oncesecret.html", "Client secret rotated", clientSecret(&c, "rotated"))
	return nil
}
