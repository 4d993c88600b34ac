package admin

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/compliance"
	"github.com/gatehouse/gatehouse/internal/httpjson"
	"github.com/gatehouse/gatehouse/internal/lockdown"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Areas of the compliance endpoints. Auditors read all three; security
// engineers and administrators run reviews and incidents. A revocation a
// review or an incident makes also needs the role to change what it
// revokes (users and their tokens: administrators only).
const (
	areaEvidence  area = "evidence"
	areaReviews   area = "reviews"
	areaIncidents area = "incidents"
)

// Evidence builds signed evidence reports and keeps the newest status
// summary.
type Evidence interface {
	Report(ctx context.Context, by gatehouse.Actor, req *gatehouse.RequestInfo, period compliance.Period) (*compliance.Report, error)
	// Summary is the newest control status summary, of the newest report
	// or daily snapshot, without building a report: it must be cheap
	// (one store read, never a scan of the audit log). ENOTFOUND before
	// any report or snapshot.
	Summary(ctx context.Context) (compliance.StatusSummary, error)
}

var errNoCompliance = gatehouse.Errorf(gatehouse.ECONFLICT, "evidence is not available on this server")

func (s *Server) complianceRoutes() {
	s.handle("/v1/evidence", areaEvidence, methods{http.MethodGet: s.getEvidence})
	s.handle("/v1/evidence/summary", areaEvidence, methods{http.MethodGet: s.getEvidenceSummary})
	s.handle("/v1/reviews", areaReviews, methods{http.MethodGet: s.listReviews, http.MethodPost: noBody(s.startReview)})
	s.handle("/v1/reviews/{id}", areaReviews, methods{http.MethodGet: s.getReview})
	s.handle("/v1/reviews/{id}/items/{item}", areaReviews, methods{http.MethodPost: s.decideReviewItem})
	s.handle("/v1/reviews/{id}/complete", areaReviews, methods{http.MethodPost: noBody(s.completeReview)})
	s.handle("/v1/incidents", areaIncidents, methods{http.MethodGet: s.listIncidents, http.MethodPost: s.openIncident})
	s.handle("/v1/incidents/drill", areaIncidents, methods{http.MethodPost: noBody(s.runDrill)})
	s.handle("/v1/incidents/{id}", areaIncidents, methods{http.MethodGet: s.getIncident})
	s.handle("/v1/incidents/{id}/notes", areaIncidents, methods{http.MethodPost: s.addIncidentNote})
	s.handle("/v1/incidents/{id}/contain", areaIncidents, methods{http.MethodPost: s.containIncident})
	s.handle("/v1/incidents/{id}/lift", areaIncidents, methods{http.MethodPost: noBody(s.liftLockdown)})
	s.handle("/v1/incidents/{id}/close", areaIncidents, methods{http.MethodPost: noBody(s.closeIncident)})
	s.handle("/v1/incidents/{id}/review", areaIncidents, methods{http.MethodPost: s.reviewIncident})
}

// ParsePeriod reads "2026-10-01..2026-12-31" (dates, UTC, both days
// included) or RFC 3339 times "A..B" (B excluded). Empty: the 90 days
// before now.
func ParsePeriod(v string, now time.Time) (compliance.Period, error) {
	if v == "" {
		return compliance.Period{From: now.Add(-90 * 24 * time.Hour), To: now}, nil
	}
	a, b, ok := strings.Cut(v, "..")
	bad := gatehouse.Errorf(gatehouse.EINVALID, "period: must be FROM..TO, dates (2026-10-01..2026-12-31) or RFC 3339 times")
	if !ok {
		return compliance.Period{}, bad
	}
	parse := func(s string, end bool) (time.Time, error) {
		if t, err := time.Parse(time.DateOnly, s); err == nil {
			if end {
				t = t.Add(24 * time.Hour)
			}
			return t, nil
		}
		return time.Parse(time.RFC3339, s)
	}
	from, err1 := parse(a, false)
	to, err2 := parse(b, true)
	if err1 != nil || err2 != nil {
		return compliance.Period{}, bad
	}
	if !from.Before(to) {
		return compliance.Period{}, gatehouse.Errorf(gatehouse.EINVALID, "period: FROM must be before TO")
	}
	if to.Sub(from) > 3*366*24*time.Hour {
		return compliance.Period{}, gatehouse.Errorf(gatehouse.EINVALID, "period: at most three years")
	}
	return compliance.Period{From: from.UTC(), To: to.UTC()}, nil
}

func (s *Server) actor(p *gatehouse.Principal) gatehouse.Actor {
	return gatehouse.Actor{Kind: string(p.Kind), ID: p.ID}
}

func who(p *gatehouse.Principal) string { return string(p.Kind) + ":" + p.ID }

// getEvidence is GET /v1/evidence?period=A..B: a signed report (JSON).
func (s *Server) getEvidence(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if s.cfg.Evidence == nil {
		return errNoCompliance
	}
	for k := range r.URL.Query() {
		if k != "period" {
			return gatehouse.Errorf(gatehouse.EINVALID, "%s: unknown parameter (only period)", k)
		}
	}
	period, err := ParsePeriod(r.URL.Query().Get("period"), s.cfg.Clock.Now().UTC())
	if err != nil {
		return err
	}
	rep, err := s.cfg.Evidence.Report(context.WithoutCancel(r.Context()), s.actor(p), s.requestInfo(r.Context()), period)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpjson.Write(w, http.StatusOK, rep)
	return nil
}

// getEvidenceSummary is GET /v1/evidence/summary: every control's
// status as last decided, by the newest report any caller generated or
// the newest daily snapshot (compliance.StatusSummary), without building
// a report; 404 before either.
func (s *Server) getEvidenceSummary(w http.ResponseWriter, r *http.Request, _ *gatehouse.Principal) error {
	if s.cfg.Evidence == nil {
		return errNoCompliance
	}
	if len(r.URL.Query()) > 0 {
		return gatehouse.Errorf(gatehouse.EINVALID, "this endpoint takes no parameters")
	}
	sum, err := s.cfg.Evidence.Summary(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpjson.Write(w, http.StatusOK, sum)
	return nil
}

func (s *Server) records() (*compliance.Records, error) {
	if s.cfg.Records == nil {
		return nil, errNoCompliance
	}
	return s.cfg.Records, nil
}

// listReviews is GET /v1/reviews: the summaries of the reviews (their
// counts, not their items), or with ?items=true every review whole.
func (s *Server) listReviews(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	rec, err := s.records()
	if err != nil {
		return err
	}
	switch v := r.URL.Query().Get("items"); v {
	case "true":
		list, err := rec.Reviews(r.Context())
		if err != nil {
			return err
		}
		writeList(w, "reviews", list, func(v compliance.Review) compliance.Review { return v })
		return nil
	case "", "false":
	default:
		return gatehouse.Errorf(gatehouse.EINVALID, "items: must be true or false")
	}
	list, err := rec.ReviewSummaries(r.Context())
	if err != nil {
		return err
	}
	writeList(w, "reviews", list, func(v compliance.ReviewSummary) compliance.ReviewSummary { return v })
	return nil
}

// ReviewPage is GET /v1/reviews/{id}: the review's summary and its
// items, or with ?limit= (or ?cursor=, ?undecided=true) a page of them
// and the next page's cursor, or with ?item=ID just that item.
type ReviewPage struct {
	compliance.ReviewSummary
	Items []compliance.ReviewItem `json:"items"`
	Next  string                  `json:"next,omitempty"`
}

func reviewPage(rv compliance.Review) ReviewPage {
	return ReviewPage{ReviewSummary: rv.Summary(), Items: rv.Items}
}

func (s *Server) getReview(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	rec, err := s.records()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	paged := q.Has("limit") || q.Has("cursor") || q.Has("undecided")
	cur, limit, err := pageQuery(q)
	if err != nil {
		return err
	}
	var undecided bool
	switch q.Get("undecided") {
	case "true":
		undecided = true
	case "", "false":
	default:
		return gatehouse.Errorf(gatehouse.EINVALID, "undecided: must be true or false")
	}
	rv, err := rec.Review(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	out := reviewPage(rv)
	if item := q.Get("item"); item != "" {
		i := slices.IndexFunc(rv.Items, func(it compliance.ReviewItem) bool { return it.ID == item })
		if i < 0 {
			return gatehouse.Errorf(gatehouse.ENOTFOUND, "item %q not found in review %s", item, rv.ID)
		}
		out.Items = rv.Items[i : i+1]
	} else if paged {
		from := 0
		if cur.ID != "" {
			i := slices.IndexFunc(rv.Items, func(it compliance.ReviewItem) bool { return it.ID == cur.ID })
			if i < 0 {
				return gatehouse.Errorf(gatehouse.EINVALID, "cursor: not a cursor this review returned as next; start again without it")
			}
			from = i + 1
		}
		out.Items = make([]compliance.ReviewItem, 0, min(limit, len(rv.Items)-from))
		for _, it := range rv.Items[from:] {
			if undecided && it.Decision != "" {
				continue
			}
			if len(out.Items) == limit {
				out.Next = encodeCursor(store.PageCursor{ID: out.Items[len(out.Items)-1].ID})
				break
			}
			out.Items = append(out.Items, it)
		}
	}
	httpjson.Write(w, http.StatusOK, out)
	return nil
}

// snapshot lists every principal for a review: keys, clients, tokens
// (active ones) and users (enabled ones).
func (s *Server) snapshot(ctx context.Context) ([]compliance.ReviewItem, error) {
	now := s.cfg.Clock.Now()
	live := func(revoked, expires time.Time) bool {
		return revoked.IsZero() && (expires.IsZero() || now.Before(expires))
	}
	var items []compliance.ReviewItem
	keys, err := s.cfg.Keys.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	for _, k := range keys {
		if live(k.RevokedAt, k.ExpiresAt) {
			items = append(items, compliance.ReviewItem{Principal: "api_key:" + k.ID, Kind: "api_key", Name: k.Name, Scopes: k.Scopes,
				CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt, LastUsedAt: s.lastUsed(k.ID, k.LastUsedAt)})
		}
	}
	if s.cfg.Clients != nil {
		cs, err := s.cfg.Clients.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("list clients: %w", err)
		}
		for _, c := range cs {
			if live(c.RevokedAt, c.ExpiresAt) {
				items = append(items, compliance.ReviewItem{Principal: "client:" + c.ID, Kind: "client", Name: c.Name, Scopes: c.Scopes,
					CreatedBy: c.CreatedBy, CreatedAt: c.CreatedAt, LastUsedAt: s.lastUsed(c.ID, c.LastUsedAt)})
			}
		}
	}
	if s.cfg.PATs != nil {
		ts, err := s.cfg.PATs.List(ctx, "")
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		for _, t := range ts {
			if live(t.RevokedAt, t.ExpiresAt) {
				items = append(items, compliance.ReviewItem{Principal: "pat:" + t.ID, Kind: "pat", Name: t.Name, Scopes: t.Scopes, Role: t.Role,
					CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt, LastUsedAt: s.lastUsed(t.ID, t.LastUsedAt)})
			}
		}
	}
	if s.cfg.Users != nil {
		us, err := s.cfg.Users.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		for _, u := range us {
			if u.DisabledAt.IsZero() {
				items = append(items, compliance.ReviewItem{Principal: "user:" + u.Username, Kind: "user", Name: u.Username, Scopes: u.Scopes,
					Role: u.Role, CreatedBy: u.CreatedBy, CreatedAt: u.CreatedAt})
			}
		}
	}
	return items, nil
}

func (s *Server) startReview(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	rec, err := s.records()
	if err != nil {
		return err
	}
	items, err := s.snapshot(r.Context())
	if err != nil {
		return err
	}
	rv, err := rec.StartReview(r.Context(), who(p), items)
	if err != nil {
		return err
	}
	s.record(r.Context(), p, "review.start", "review:"+rv.ID, map[string]any{"items": len(rv.Items), "sha256": compliance.ReviewDigest(rv)})
	httpjson.Write(w, http.StatusCreated, rv)
	return nil
}

// DecideRequest is the body of POST /v1/reviews/{id}/items/{item}.
type DecideRequest struct {
	Decision string `json:"decision"` // approve | revoke | change
	Reason   string `json:"reason"`
}

func (s *Server) decideReviewItem(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	rec, err := s.records()
	if err != nil {
		return err
	}
	var req DecideRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := compliance.ValidateDecision(req.Decision, req.Reason); err != nil {
		return err
	}
	id, itemID := r.PathValue("id"), r.PathValue("item")
	item, err := rec.ReviewItemOf(r.Context(), id, itemID)
	if err != nil {
		return err
	}
	// Segregation of duties: nobody approves their own access.
	if req.Decision == compliance.DecisionApprove && item.Principal == who(p) {
		return gatehouse.Errorf(gatehouse.EFORBIDDEN, "a reviewer may not approve their own access (%s): another reviewer decides it", item.Principal)
	}
	var revoked []string
	if req.Decision == compliance.DecisionRevoke {
		if revoked, err = s.revokePrincipal(r.Context(), p, item.Principal, "review:"+id); err != nil {
			return err
		}
	}
	item, err = rec.Decide(r.Context(), id, itemID, req.Decision, req.Reason, who(p))
	if err != nil {
		return err
	}
	s.record(r.Context(), p, "review.decide", "review:"+id, map[string]any{"item": itemID, "principal": item.Principal,
		"decision": req.Decision, "reason": req.Reason, "revoked": revoked})
	httpjson.Write(w, http.StatusOK, item)
	return nil
}

func (s *Server) completeReview(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	rec, err := s.records()
	if err != nil {
		return err
	}
	rv, err := rec.CompleteReview(r.Context(), r.PathValue("id"), who(p))
	if err != nil {
		return err
	}
	counts := map[string]int{}
	for _, it := range rv.Items {
		counts[it.Decision]++
	}
	// The completion event is the reviewer's sign-off: it holds the
	// digest of the review as decided, in the tamper-evident log.
	s.record(r.Context(), p, "review.complete", "review:"+rv.ID, map[string]any{"items": len(rv.Items), "decisions": counts, "sha256": compliance.ReviewDigest(rv)})
	httpjson.Write(w, http.StatusOK, rv)
	return nil
}

// revokePrincipal revokes a principal ("kind:id") and what it created,
// each revocation audited, if p's role may change that kind of
// principal. It returns what it revoked.
func (s *Server) revokePrincipal(ctx context.Context, p *gatehouse.Principal, principal, because string) ([]string, error) {
	kind, id, ok := strings.Cut(principal, ":")
	if !ok || id == "" {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "principal: must be kind:id (api_key:key_…, client:…, pat:pat_…, user:NAME)")
	}
	details := map[string]any{"because": because}
	switch gatehouse.PrincipalKind(kind) {
	case gatehouse.KindAPIKey:
		if err := s.authorize(p, areaKeys, http.MethodPost); err != nil {
			return nil, err
		}
		k, err := s.cfg.Keys.Revoke(ctx, id)
		if err != nil {
			return nil, err
		}
		s.record(ctx, p, "key.revoke", "key:"+k.ID, details)
		return []string{principal}, s.revokeDescendants(ctx, p, principal)
	case gatehouse.KindClient:
		if err := s.authorize(p, areaClients, http.MethodPost); err != nil {
			return nil, err
		}
		c, err := s.cfg.Clients.Revoke(ctx, id)
		if err != nil {
			return nil, err
		}
		s.record(ctx, p, "client.revoke", "client:"+c.ID, details)
		return []string{principal}, s.revokeDescendants(ctx, p, principal)
	case gatehouse.KindPAT:
		if err := s.authorize(p, areaUsers, http.MethodPost); err != nil {
			return nil, err
		}
		t, err := s.cfg.PATs.Revoke(ctx, id)
		if err != nil {
			return nil, err
		}
		details["owner"] = t.Username
		s.record(ctx, p, "token.revoke", "token:"+t.ID, details)
		return []string{principal}, s.revokeDescendants(ctx, p, principal)
	case gatehouse.KindUser:
		if err := s.authorize(p, areaUsers, http.MethodPost); err != nil {
			return nil, err
		}
		if id == p.ID && p.Kind == gatehouse.KindUser {
			return nil, gatehouse.Errorf(gatehouse.EFORBIDDEN, "you may not disable your own account")
		}
		s.peopleMu.Lock()
		defer s.peopleMu.Unlock()
		u, err := s.cfg.Users.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := s.keepAnAdmin(ctx, u, "disabling"); err != nil {
			return nil, err
		}
		if u, err = s.cfg.Users.Disable(ctx, id); err != nil {
			return nil, err
		}
		s.record(ctx, p, "user.disable", "user:"+u.Username, details)
		return []string{principal}, s.revokeUserTokens(ctx, p, u.Username, because)
	}
	return nil, gatehouse.Errorf(gatehouse.EINVALID, "principal: unknown kind %q (api_key, client, pat or user)", kind)
}

func (s *Server) listIncidents(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	rec, err := s.records()
	if err != nil {
		return err
	}
	list, err := rec.Incidents(r.Context())
	if err != nil {
		return err
	}
	writeList(w, "incidents", list, func(v compliance.Incident) compliance.Incident { return v })
	return nil
}

// OpenIncidentRequest is the body of POST /v1/incidents.
type OpenIncidentRequest struct {
	Title    string `json:"title"`
	Severity string `json:"severity"` // low | medium | high | critical
	Impact   string `json:"impact"`
}

func (s *Server) openIncident(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	rec, err := s.records()
	if err != nil {
		return err
	}
	var req OpenIncidentRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	in, err := rec.OpenIncident(r.Context(), who(p), req.Title, req.Severity, req.Impact)
	if err != nil {
		return err
	}
	s.record(r.Context(), p, "incident.open", "incident:"+in.ID, map[string]any{"title": in.Title, "severity": in.Severity, "impact": in.Impact})
	httpjson.Write(w, http.StatusCreated, in)
	return nil
}

// IncidentJSON is an incident with its timeline: its notes, containment
// and the audit events of its window and of the principals involved.
type IncidentJSON struct {
	compliance.Incident
	Timeline []TimelineEntry `json:"timeline"`
	// Lockdown is the gateway's lockdown when this incident holds it.
	Lockdown *lockdown.State `json:"lockdown,omitempty"`
}

// TimelineEntry is one event of an incident's timeline.
type TimelineEntry struct {
	Index  uint64    `json:"index"`
	Time   time.Time `json:"time"`
	Type   string    `json:"type"`
	Actor  string    `json:"actor"`
	Target string    `json:"resource,omitempty"`
	Result string    `json:"outcome"`
}

// maxTimeline bounds an incident's timeline.
const maxTimeline = 500

func (s *Server) getIncident(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	rec, err := s.records()
	if err != nil {
		return err
	}
	in, err := rec.Incident(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	out := IncidentJSON{Incident: in, Timeline: []TimelineEntry{}}
	if s.cfg.Lockdown != nil {
		if st := s.cfg.Lockdown.Current(); st.Incident == in.ID {
			out.Lockdown = &st
		}
	}
	if s.cfg.Audit != nil {
		out.Timeline, err = s.timeline(r.Context(), in)
		if err != nil {
			return err
		}
	}
	httpjson.Write(w, http.StatusOK, out)
	return nil
}

// timeline is the security events (not single requests) of the
// incident's window, from an hour before it opened to its close, and
// every event of the principals its containment touched.
func (s *Server) timeline(ctx context.Context, in compliance.Incident) ([]TimelineEntry, error) {
	// The close is recorded just after ClosedAt is set: a minute's grace
	// keeps incident.close itself in the timeline.
	until := in.ClosedAt.Add(time.Minute)
	if in.ClosedAt.IsZero() {
		until = s.cfg.Clock.Now().Add(time.Second)
	}
	involved := map[string]bool{}
	for _, c := range in.Actions {
		for _, r := range c.Revoked {
			involved[r] = true
		}
	}
	out := []TimelineEntry{}
	cursor := ""
	for len(out) < maxTimeline {
		page, err := s.cfg.Audit.Query(ctx, auditFilterWindow(in.OpenedAt.Add(-time.Hour), until), cursor, 1000)
		if err != nil {
			return nil, err
		}
		for _, e := range page.Entries {
			ev := e.Event
			actor := ev.Actor.Kind + ":" + ev.Actor.ID
			routine := ev.Type == "http.request" || ev.Type == "authz.decision" || ev.Type == "admin.read"
			if routine && !involved[actor] {
				continue
			}
			out = append(out, TimelineEntry{Index: e.Index, Time: ev.Time, Type: ev.Type, Actor: actor, Target: ev.Resource, Result: ev.Outcome})
			if len(out) == maxTimeline {
				break
			}
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	return out, nil
}

// NoteRequest is the body of POST /v1/incidents/{id}/notes.
type NoteRequest struct {
	Text string `json:"text"`
}

func (s *Server) addIncidentNote(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	rec, err := s.records()
	if err != nil {
		return err
	}
	var req NoteRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	in, err := rec.AddNote(r.Context(), r.PathValue("id"), who(p), req.Text)
	if err != nil {
		return err
	}
	s.record(r.Context(), p, "incident.note", "incident:"+in.ID, map[string]any{"text": req.Text})
	httpjson.Write(w, http.StatusOK, in)
	return nil
}

// ContainRequest is the body of POST /v1/incidents/{id}/contain: exactly
// one of revoke_principal (kind:id: the credential, or the user disabled
// with their tokens), revoke_before (RFC 3339: every key, client and
// token created before it) and lockdown (only the roles and principals in
// allow pass the gateway; everyone else gets 503 until POST …/lift).
type ContainRequest struct {
	RevokePrincipal string   `json:"revoke_principal"`
	RevokeBefore    string   `json:"revoke_before"`
	Lockdown        bool     `json:"lockdown"`
	Allow           []string `json:"allow"`
}

func (s *Server) containIncident(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	rec, err := s.records()
	if err != nil {
		return err
	}
	var req ContainRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if len(req.Allow) > 0 && !req.Lockdown {
		return gatehouse.Errorf(gatehouse.EINVALID, "allow: only with lockdown")
	}
	given := 0
	for _, set := range []bool{req.RevokePrincipal != "", req.RevokeBefore != "", req.Lockdown} {
		if set {
			given++
		}
	}
	if given != 1 {
		return gatehouse.Errorf(gatehouse.EINVALID, "revoke_principal, revoke_before, lockdown: give exactly one")
	}
	id := r.PathValue("id")
	if _, err := rec.OpenCheck(r.Context(), id); err != nil {
		return err
	}
	if req.Lockdown {
		return s.lockdown(w, r, p, rec, id, req.Allow)
	}
	because := "incident:" + id
	c := compliance.Containment{By: who(p)}
	switch {
	case req.RevokePrincipal != "":
		c.Action, c.Target = "revoke_principal", req.RevokePrincipal
		c.Revoked, err = s.revokePrincipal(r.Context(), p, req.RevokePrincipal, because)
	default:
		t, perr := time.Parse(time.RFC3339, req.RevokeBefore)
		if perr != nil {
			return gatehouse.Errorf(gatehouse.EINVALID, "revoke_before: must be an RFC 3339 time, e.g. 2026-12-01T09:00:00Z")
		}
		c.Action, c.Target = "revoke_before", t.UTC().Format(time.RFC3339)
		c.Revoked, err = s.revokeBefore(r.Context(), p, t, because)
	}
	if err != nil {
		if len(c.Revoked) == 0 {
			return err
		}
		s.log.ErrorContext(r.Context(), "containment stopped part way", "incident", id, "err", err)
	}
	in, serr := rec.AddContainment(r.Context(), id, c)
	s.record(r.Context(), p, "incident.contain", "incident:"+id, map[string]any{"action": c.Action, "target": c.Target, "revoked": c.Revoked})
	if err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	httpjson.Write(w, http.StatusOK, in)
	return nil
}

// revokeBefore revokes every active key, client and token created before
// t (and what they created).
func (s *Server) revokeBefore(ctx context.Context, p *gatehouse.Principal, t time.Time, because string) ([]string, error) {
	items, err := s.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	// Check the role for every kind first: nothing is revoked half way
	// for lack of a role.
	for _, it := range items {
		if it.Kind == "user" || !it.CreatedAt.Before(t) {
			continue
		}
		a := map[string]area{"api_key": areaKeys, "client": areaClients, "pat": areaUsers}[it.Kind]
		if err := s.authorize(p, a, http.MethodPost); err != nil {
			return nil, err
		}
	}
	var revoked []string
	for _, it := range items {
		if it.Kind == "user" || !it.CreatedAt.Before(t) {
			continue
		}
		got, err := s.revokePrincipal(ctx, p, it.Principal, because)
		revoked = append(revoked, got...)
		if err != nil && gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
			return revoked, err
		}
	}
	if revoked == nil {
		revoked = []string{}
	}
	return revoked, nil
}

func (s *Server) closeIncident(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	rec, err := s.records()
	if err != nil {
		return err
	}
	if id := r.PathValue("id"); s.cfg.Lockdown != nil && s.cfg.Lockdown.Current().Incident == id {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "incident %s holds the gateway in lockdown: lift it first (gatehouse incident lift %s)", id, id)
	}
	in, err := rec.CloseIncident(r.Context(), r.PathValue("id"), who(p), compliance.DefaultThresholds().IncidentReviewDays)
	if err != nil {
		return err
	}
	s.record(r.Context(), p, "incident.close", "incident:"+in.ID, map[string]any{"review_due": in.ReviewDue.Format(time.RFC3339)})
	httpjson.Write(w, http.StatusOK, in)
	return nil
}

// ReviewIncidentRequest is the body of POST /v1/incidents/{id}/review.
type ReviewIncidentRequest struct {
	Summary string `json:"summary"`
}

func (s *Server) reviewIncident(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	rec, err := s.records()
	if err != nil {
		return err
	}
	var req ReviewIncidentRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	in, err := rec.ReviewIncident(r.Context(), r.PathValue("id"), who(p), req.Summary)
	if err != nil {
		return err
	}
	s.record(r.Context(), p, "incident.review", "incident:"+in.ID, map[string]any{"summary": req.Summary, "on_time": !in.ReviewedAt.After(in.ReviewDue)})
	httpjson.Write(w, http.StatusOK, in)
	return nil
}

func auditFilterWindow(since, until time.Time) audit.Filter {
	return audit.Filter{Since: since, Until: until}
}

// DrillResult is the outcome of a revocation drill.
type DrillResult struct {
	KeyID string `json:"key_id"`
	// Target is the listener the canary key was presented to.
	Target string `json:"target"`
	// BeforeStatus is the gateway's answer to the canary key before it
	// was revoked (not 401).
	BeforeStatus int `json:"before_status"`
	// Refused says the gateway refused the key after the revocation;
	// DurationMS is from the revocation to that refusal (or to giving up).
	Refused    bool    `json:"refused"`
	DurationMS float64 `json:"duration_ms"`
	SLAMS      int64   `json:"sla_ms"`
	WithinSLA  bool    `json:"within_sla"`
	// Targets are the listeners asked: this replica's first, then those of
	// incidents.drill_targets; Refused and DurationMS above are over all
	// of them (the slowest).
	Targets []DrillTarget `json:"targets"`
}

// DrillTarget is one public listener a drill presented the canary key to.
type DrillTarget struct {
	URL          string  `json:"url"`
	BeforeStatus int     `json:"before_status"`
	Refused      bool    `json:"refused"`
	DurationMS   float64 `json:"duration_ms"`
}

// runDrill is POST /v1/incidents/drill: create a canary key, use it,
// revoke it, measure until the gateway refuses it (audited as
// incident.drill, which the revocation.propagation check reads).
func (s *Server) runDrill(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if s.cfg.Drill == nil {
		return errNoCompliance
	}
	if err := s.authorize(p, areaKeys, http.MethodPost); err != nil {
		return err
	}
	res, err := s.cfg.Drill(context.WithoutCancel(r.Context()), s.actor(p))
	if res.KeyID != "" {
		s.record(r.Context(), p, "key.create", "key:"+res.KeyID, map[string]any{"because": "incident drill canary"})
		s.record(r.Context(), p, "key.revoke", "key:"+res.KeyID, map[string]any{"because": "incident drill canary"})
	}
	if err != nil {
		return err
	}
	sla := compliance.DefaultThresholds().RevocationSLA
	res.SLAMS = sla.Milliseconds()
	res.WithinSLA = res.Refused && res.DurationMS <= float64(res.SLAMS)
	s.record(r.Context(), p, "incident.drill", "key:"+res.KeyID, map[string]any{"duration_ms": res.DurationMS, "refused": res.Refused,
		"target": res.Target, "replicas": len(res.Targets), "sla_ms": res.SLAMS, "within_sla": res.WithinSLA, "targets": res.Targets})
	httpjson.Write(w, http.StatusOK, res)
	return nil
}
