package ui

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/compliance"
	"github.com/gatehouse/gatehouse/internal/lockdown"
)

type incidentRow struct {
	compliance.Incident
	Open, ReviewOverdue bool
}

type incidentsData struct {
	Open, Closed  []incidentRow
	Form          admin.OpenIncidentRequest
	Severities    []string
	Drill         *admin.DrillResult
	Message, Done string
}

// incidentEvent is one entry of an incident's own record, in time order.
type incidentEvent struct {
	At               time.Time
	By, What, Detail string
	Note             bool
	Revoked          []string
}

// incidentForm is what was typed into an incident's forms, kept when the
// API refuses it.
type incidentForm struct {
	Text, Principal, Before, Allow, Summary string
}

type incidentData struct {
	In            admin.IncidentJSON
	Open          bool
	Events        []incidentEvent
	NeedsReview   bool
	ReviewOverdue bool
	Form          incidentForm
	// EventsShown: d.In.Timeline was asked for (events=1).
	EventsShown   bool
	Message, Done string
}

// heldLockdown is the lockdown in's record says it holds: a lockdown
// containment not followed by a lift (nil if none).
func heldLockdown(in compliance.Incident) *lockdown.State {
	var st *lockdown.State
	for _, c := range in.Actions {
		switch c.Action {
		case "lockdown":
			st = &lockdown.State{Incident: in.ID, Allow: c.Allow, By: c.By, Since: c.At}
		case "lift_lockdown":
			st = nil
		}
	}
	return st
}

var incidentSeverities = []string{"low", "medium", "high", "critical"}

// incidentsPage is GET /ui/incidents (GET /v1/incidents, open ones
// first) or /ui/incidents?id=ID (GET /v1/incidents/{id}: its record and
// timeline).
func incidentsPage(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	if id := r.URL.Query().Get("id"); id != "" {
		return u.renderIncident(w, r, s, http.StatusOK, id, &incidentData{})
	}
	return u.renderIncidents(w, r, s, http.StatusOK, &incidentsData{})
}

func (u *UI) renderIncidents(w http.ResponseWriter, r *http.Request, s *session, status int, d *incidentsData) error {
	d.Severities = incidentSeverities
	if d.Form.Severity == "" {
		d.Form.Severity = "medium"
	}
	var list struct {
		Incidents []compliance.Incident `json:"incidents"`
	}
	if err := u.call(r.Context(), r, http.MethodGet, "/v1/incidents", nil, &list); err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.EINTERNAL {
			return err
		}
		if d.Message == "" {
			d.Message = u.errMessage(r, err)
		}
		status = max(status, errStatus(err))
	}
	now := u.cfg.Clock.Now()
	for i := len(list.Incidents) - 1; i >= 0; i-- { // newest first
		in := list.Incidents[i]
		row := incidentRow{Incident: in, Open: in.ClosedAt.IsZero()}
		row.ReviewOverdue = !row.Open && in.ReviewedAt.IsZero() && now.After(in.ReviewDue)
		if row.Open {
			d.Open = append(d.Open, row)
		} else {
			d.Closed = append(d.Closed, row)
		}
	}
	u.render(w, r, s, status, "incidents.html", "Incidents", d)
	return nil
}

// renderIncident shows incident id from the list (GET /v1/incidents),
// its lockdown read off its containment record; with events=1 it is GET
// /v1/incidents/{id}, which adds the audit events (and the gateway's
// lockdown as it is): that reads the audit log from an hour before the
// incident opened, too slow on a large log to do for every view.
func (u *UI) renderIncident(w http.ResponseWriter, r *http.Request, s *session, status int, id string, d *incidentData) error {
	if r.URL.Query().Get("events") == "1" {
		if err := u.call(r.Context(), r, http.MethodGet, "/v1/incidents/"+url.PathEscape(id), nil, &d.In); err != nil {
			return err
		}
		d.EventsShown = true
	} else {
		var list struct {
			Incidents []compliance.Incident `json:"incidents"`
		}
		if err := u.call(r.Context(), r, http.MethodGet, "/v1/incidents", nil, &list); err != nil {
			return err
		}
		i := slices.IndexFunc(list.Incidents, func(in compliance.Incident) bool { return in.ID == id })
		if i < 0 {
			return gatehouse.Errorf(gatehouse.ENOTFOUND, "incident %q not found", id)
		}
		d.In.Incident = list.Incidents[i]
		d.In.Lockdown = heldLockdown(d.In.Incident)
	}
	in := d.In.Incident
	d.Open = in.ClosedAt.IsZero()
	d.NeedsReview = !d.Open && in.ReviewedAt.IsZero()
	d.ReviewOverdue = d.NeedsReview && u.cfg.Clock.Now().After(in.ReviewDue)
	switch r.URL.Query().Get("done") {
	case "opened":
		d.Done = "Incident opened."
	case "note":
		d.Done = "Note added."
	case "contained":
		d.Done = "Containment recorded."
	case "lifted":
		d.Done = "Lockdown lifted: the gateway admits everyone again."
	case "closed":
		d.Done = "Incident closed: its post-incident review is due by " + in.ReviewDue.UTC().Format("2006-01-02 15:04 UTC") + "."
	case "reviewed":
		d.Done = "Post-incident review recorded."
	}
	d.Events = append(d.Events, incidentEvent{At: in.OpenedAt, By: in.OpenedBy, What: "Opened (" + in.Severity + ")", Detail: in.Impact, Note: true})
	for _, n := range in.Notes {
		d.Events = append(d.Events, incidentEvent{At: n.At, By: n.By, What: "Note", Detail: n.Text, Note: true})
	}
	for _, c := range in.Actions {
		ev := incidentEvent{At: c.At, By: c.By, Revoked: c.Revoked}
		switch c.Action {
		case "revoke_principal":
			ev.What, ev.Detail = "Contained: revoked "+c.Target, ""
		case "revoke_before":
			ev.What = "Contained: revoked every credential created before " + c.Target
		case "lockdown":
			ev.What = "Contained: gateway locked down, admitting " + strings.Join(c.Allow, ", ")
		case "lift_lockdown":
			ev.What = "Lockdown lifted"
		default:
			ev.What = "Contained: " + c.Action + " " + c.Target
		}
		d.Events = append(d.Events, ev)
	}
	if !in.ClosedAt.IsZero() {
		d.Events = append(d.Events, incidentEvent{At: in.ClosedAt, By: in.ClosedBy, What: "Closed; post-incident review due by " + in.ReviewDue.UTC().Format("2006-01-02 15:04 UTC")})
	}
	if !in.ReviewedAt.IsZero() {
		d.Events = append(d.Events, incidentEvent{At: in.ReviewedAt, By: in.ReviewedBy, What: "Post-incident review", Detail: in.Review, Note: true})
	}
	slices.SortStableFunc(d.Events, func(a, b incidentEvent) int { return a.At.Compare(b.At) })
	u.render(w, r, s, status, "incident.html", "Incident: "+in.Title, d)
	return nil
}

// openIncident is POST /v1/incidents.
func openIncident(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	req := admin.OpenIncidentRequest{Title: strings.TrimSpace(r.PostFormValue("title")), Severity: r.PostFormValue("severity"), Impact: r.PostFormValue("impact")}
	var in compliance.Incident
	if err := u.call(r.Context(), r, http.MethodPost, "/v1/incidents", req, &in); err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.EINTERNAL {
			return err
		}
		return u.renderIncidents(w, opsNoQuery(r), s, errStatus(err), &incidentsData{Form: req, Message: u.errMessage(r, err)})
	}
	http.Redirect(w, r, incidentLink(in.ID, "opened"), http.StatusSeeOther)
	return nil
}

// runDrill is POST /v1/incidents/drill: a canary key made, used, revoked
// and timed until the gateway refuses it.
func runDrill(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	var res admin.DrillResult
	if err := u.call(r.Context(), r, http.MethodPost, "/v1/incidents/drill", nil, &res); err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.EINTERNAL {
			return err
		}
		return u.renderIncidents(w, opsNoQuery(r), s, errStatus(err), &incidentsData{Message: u.errMessage(r, err)})
	}
	return u.renderIncidents(w, opsNoQuery(r), s, http.StatusOK, &incidentsData{Drill: &res})
}

func incidentLink(id, done string) string {
	v := url.Values{"id": {id}}
	if done != "" {
		v.Set("done", done)
	}
	return "/ui/incidents?" + v.Encode()
}

// opsNoQuery is r without its query: a page rendered as the answer of a
// form shows the page's defaults.
func opsNoQuery(r *http.Request) *http.Request {
	r2 := r.Clone(r.Context())
	r2.URL.RawQuery = ""
	return r2
}

// incidentCall makes an incident's action call and answers it: back to
// the incident (done) on success, the incident with the API's message
// and the form as sent on a refusal.
func (u *UI) incidentCall(w http.ResponseWriter, r *http.Request, s *session, path string, body any, done string, form incidentForm) error {
	id := r.PathValue("id")
	if err := u.call(r.Context(), r, http.MethodPost, "/v1/incidents/"+url.PathEscape(id)+path, body, nil); err != nil {
		if c := gatehouse.ErrorCode(err); c == gatehouse.EINTERNAL || c == gatehouse.ENOTFOUND {
			return err
		}
		return u.renderIncident(w, opsNoQuery(r), s, errStatus(err), id, &incidentData{Form: form, Message: u.errMessage(r, err)})
	}
	http.Redirect(w, r, incidentLink(id, done), http.StatusSeeOther)
	return nil
}

// addIncidentNote is POST /v1/incidents/{id}/notes.
func addIncidentNote(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	text := r.PostFormValue("text")
	return u.incidentCall(w, r, s, "/notes", admin.NoteRequest{Text: text}, "note", incidentForm{Text: text})
}

// containIncident is POST /v1/incidents/{id}/contain, one of its three
// actions (form field action): revoke_principal, revoke_before or
// lockdown. Each takes effect at once, so it is confirmed first.
func containIncident(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	var req admin.ContainRequest
	var form incidentForm
	var what, button string
	switch action := r.PostFormValue("action"); action {
	case "revoke_principal":
		form.Principal = strings.TrimSpace(r.PostFormValue("principal"))
		req.RevokePrincipal = form.Principal
		what = "Revoking " + form.Principal + " takes effect at once: the credential stops working at the gateway (a user is disabled with their tokens), and what it created is revoked with it."
		button = "Yes, revoke " + form.Principal + " now"
	case "revoke_before":
		form.Before = strings.TrimSpace(r.PostFormValue("before"))
		req.RevokeBefore = opsRFC3339(form.Before)
		what = "Every API key, service client and token created before " + req.RevokeBefore + " is revoked at once, everywhere: clients using them are refused until they get new credentials."
		button = "Yes, revoke everything created before " + req.RevokeBefore
	case "lockdown":
		form.Allow = r.PostFormValue("allow")
		req.Lockdown, req.Allow = true, splitList(form.Allow)
		what = "The gateway is locked down at once: only " + strings.Join(req.Allow, ", ") + " may pass; every other request is answered 503 until the lockdown is lifted."
		button = "Yes, lock the gateway down"
	default:
		return gatehouse.Errorf(gatehouse.EINVALID, "action: must be revoke_principal, revoke_before or lockdown")
	}
	// Without what the action needs, the API's refusal says what is
	// missing: nothing to confirm.
	if req.RevokePrincipal != "" || req.RevokeBefore != "" || len(req.Allow) > 0 {
		if !u.opsConfirmed(w, r, s, "Confirm the containment", opsConfirmData{What: what, Button: button, Cancel: incidentLink(r.PathValue("id"), "")}) {
			return nil
		}
	}
	return u.incidentCall(w, r, s, "/contain", req, "contained", form)
}

// opsRFC3339 reads a time typed as RFC 3339, or as a datetime-local
// input sends it (2026-12-01T09:00, taken as UTC); anything else is
// passed on for the API to refuse.
func opsRFC3339(v string) string {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC().Format(time.RFC3339)
		}
	}
	return v
}

// liftLockdown is POST /v1/incidents/{id}/lift.
func liftLockdown(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	return u.incidentCall(w, r, s, "/lift", nil, "lifted", incidentForm{})
}

// closeIncident is POST /v1/incidents/{id}/close.
func closeIncident(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	return u.incidentCall(w, r, s, "/close", nil, "closed", incidentForm{})
}

// reviewIncident is POST /v1/incidents/{id}/review.
func reviewIncident(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	summary := r.PostFormValue("summary")
	return u.incidentCall(w, r, s, "/review", admin.ReviewIncidentRequest{Summary: summary}, "reviewed", incidentForm{Summary: summary})
}
