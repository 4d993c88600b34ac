package ui

import (
	"net/http"
)

// Page is one page of the console. To add a page: write
// templates/NAME.html (it defines "content"), a PageFunc, and one entry
// in registry below; the nav, the session check, the CSP, no-store and
// the CSRF check of its actions come with it.
type Page struct {
	Path  string // GET path, e.g. "/ui/keys"
	Title string // nav label and <title>
	// Template is the file in templates/ that renders Serve's data; a
	// page without Serve renders placeholder.html with Missing.
	Template string
	Serve    PageFunc
	// Actions are the page's forms: POST pattern → handler (the form's
	// CSRF token is checked before the handler runs).
	Actions map[string]PageFunc
	// Missing says which part is not available yet (a placeholder page).
	Missing string
	// Views are further GET pages of the page's (pattern → handler),
	// e.g. one entry's detail; the nav shows the page only.
	Views map[string]PageFunc
}

// PageFunc serves a page or action for a signed-in session: it makes its
// admin API calls with u.call and renders with u.render (or redirects).
// An error returned is shown on the page with the API's message.
type PageFunc func(u *UI, w http.ResponseWriter, r *http.Request, s *session) error

// registry is every page, in nav order: the one place a page is added.
func (u *UI) registry() []Page {
	return []Page{
		{Path: "/ui/{$}", Title: "Dashboard", Template: "dashboard.html", Serve: dashboardPage},
		{Path: "/ui/keys", Title: "Keys", Template: "keys.html", Serve: keysPage, Actions: map[string]PageFunc{
			"/ui/keys":             createKey,
			"/ui/keys/{id}/revoke": revokeKey,
			"/ui/keys/{id}/rotate": rotateKey,
		}},
		{Path: "/ui/clients", Title: "Clients", Template: "clients.html", Serve: clientsPage, Actions: map[string]PageFunc{
			"/ui/clients": createClient, "/ui/clients/{id}/revoke": revokeClient, "/ui/clients/{id}/rotate": rotateClient, "/ui/clients/{id}/unlock": unlockClient,
		}},
		{Path: "/ui/users", Title: "Users", Template: "users.html", Serve: usersPage, Actions: userActions()},
		{Path: "/ui/tokens", Title: "Tokens", Template: "tokens.html", Serve: tokensPage, Actions: map[string]PageFunc{
			"/ui/tokens": createToken, "/ui/tokens/{id}/revoke": revokeToken,
		}},
		{Path: secondFactorPath, Title: "Second factor", Template: "secondfactor.html", Serve: secondFactorPage, Actions: map[string]PageFunc{
			secondFactorPath: enrolSecondFactor, secondFactorPath + "/verify": confirmSecondFactor, secondFactorPath + "/remove": removeSecondFactor,
		}},
		{Path: "/ui/settings/authentication", Title: "Settings → Authentication", Template: "settings.html", Serve: settingsPage, Actions: map[string]PageFunc{
			"/ui/settings/authentication": saveSettings,
		}},
		{Path: "/ui/audit", Title: "Audit", Template: "audit.html", Serve: auditPage, Views: map[string]PageFunc{"/ui/audit/{index}": auditEntry}},
		{Path: "/ui/policies", Title: "Policies", Template: "policies.html", Serve: policiesPage, Actions: map[string]PageFunc{
			"/ui/policies/reload": reloadPolicy,
		}},
		{Path: "/ui/evidence", Title: "Evidence", Template: "evidence.html", Serve: evidencePage, Actions: map[string]PageFunc{
			"/ui/evidence": generateEvidence,
		}},
		{Path: "/ui/reviews", Title: "Access reviews", Template: "reviews.html", Serve: reviewsPage, Actions: map[string]PageFunc{
			"/ui/reviews":                   startReview,
			"/ui/reviews/{id}/items/{item}": decideReviewItem,
			"/ui/reviews/{id}/complete":     completeReview,
		}},
		{Path: "/ui/incidents", Title: "Incidents", Template: "incidents.html", Serve: incidentsPage, Actions: map[string]PageFunc{
			"/ui/incidents":              openIncident,
			"/ui/incidents/drill":        runDrill,
			"/ui/incidents/{id}/notes":   addIncidentNote,
			"/ui/incidents/{id}/contain": containIncident,
			"/ui/incidents/{id}/lift":    liftLockdown,
			"/ui/incidents/{id}/close":   closeIncident,
			"/ui/incidents/{id}/review":  reviewIncident,
		}},
		{Path: "/ui/backups", Title: "Backups", Template: "backups.html", Serve: backupsPage, Actions: map[string]PageFunc{
			"/ui/backups":             createBackup,
			"/ui/backups/{id}/verify": verifyBackup,
			"/ui/backups/prune":       pruneBackups,
		}},
	}
}

// navItem is one link of the nav.
type navItem struct {
	Href, Title string
	Current     bool
}

func (u *UI) nav(current string) []navItem {
	out := make([]navItem, 0, len(u.pages))
	for _, p := range u.pages {
		href := p.href()
		out = append(out, navItem{Href: href, Title: p.Title, Current: href == current})
	}
	return out
}

// href is the page's link (its pattern without the {$} anchor).
func (p Page) href() string {
	if p.Path == "/ui/{$}" {
		return "/ui/"
	}
	return p.Path
}

// page serves GET of p: the session check, then p.Serve or the
// placeholder.
func (u *UI) page(p Page) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		s, err := u.signedIn(r)
		if err != nil {
			u.notSignedIn(w, r, err)
			return
		}
		if p.Serve == nil {
			u.render(w, r, s, http.StatusOK, "placeholder.html", p.Title, p.Missing)
			return
		}
		if err := p.Serve(u, w, r, s); err != nil {
			u.renderError(w, r, s, errStatus(err), u.errMessage(r, err))
		}
	})
}

// action serves a POST of p's: session, CSRF token, then the handler.
func (u *UI) action(p Page, act PageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		s, err := u.signedIn(r)
		if err != nil {
			u.notSignedIn(w, r, err)
			return
		}
		if !u.checkCSRF(r, s) {
			u.renderError(w, r, s, http.StatusForbidden, "This form's CSRF token is missing or wrong: reload the page and send it again.")
			return
		}
		if err := act(u, w, r, s); err != nil {
			u.renderError(w, r, s, errStatus(err), u.errMessage(r, err))
		}
	})
}

// notSignedIn answers a page request the API would not serve for its
// session: the sign-in page for no or an ended session, the API's
// message otherwise.
func (u *UI) notSignedIn(w http.ResponseWriter, r *http.Request, err error) {
	if errStatus(err) == http.StatusUnauthorized {
		redirectLogin(w, r)
		return
	}
	u.renderError(w, r, nil, errStatus(err), u.errMessage(r, err))
}
