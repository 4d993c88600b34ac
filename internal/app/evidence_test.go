package app_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/compliance"
)

// findingOf returns the finding of check in control id.
func findingOf(t *testing.T, r *compliance.Report, id, check string) compliance.Finding {
	t.Helper()
	for _, c := range r.Controls {
		if c.ID != id {
			continue
		}
		for _, f := range c.Findings {
			if f.Check == check {
				return f
			}
		}
	}
	t.Fatalf("no %s finding in %s", check, id)
	return compliance.Finding{}
}

// TestEvidenceFromLiveState: the report decides checks from the running
// process (its listeners probed, its routes asked without credentials,
// its policy asked), and verifies offline.
func TestEvidenceFromLiveState(t *testing.T) {
	h := MustStart(t)
	auth := "Authorization: Bearer " + adminToken
	data := h.expect(200, "GET", h.admin+"/v1/evidence?period=2025-10-01..2026-01-31", nil, auth)
	var r compliance.Report
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	res, err := compliance.Verify(data, r.AuditPublicKey)
	if err != nil || !res.OK() {
		t.Fatalf("verify: %v %v", err, res.Problems)
	}
	t.Logf("%d controls, %d findings, %d proofs, tree %d; summary %v", res.Controls, res.Findings, res.Proofs, res.TreeSize, r.Summary)
	for _, tc := range []struct {
		control, check string
		want           compliance.Status
	}{
		{"CC6.7", "tls.listeners", compliance.StatusFail}, // prod without TLS
		{"CC6.1", "routes.authenticated", compliance.StatusPass},
		{"CC6.1", "policy.deny_by_default", compliance.StatusPass},
		{"CC6.1", "credentials.hashed", compliance.StatusNotApplicable},
		{"CC6.6", "headers.security", compliance.StatusPass},
		{"CC6.6", "limits.rate_and_lockout", compliance.StatusPass},
		{"CC7.2", "audit.verifies", compliance.StatusPass},
		{"CC8.1", "changes.audited", compliance.StatusPass},
		{"CC6.2", "reviews.current", compliance.StatusFail},
		{"A1.2", "backup.recent", compliance.StatusManual},
		{"CC7.1", "dependencies.scan", compliance.StatusManual},
	} {
		if f := findingOf(t, &r, tc.control, tc.check); f.Status != tc.want {
			t.Errorf("%s %s: %s (%s), want %s", tc.control, tc.check, f.Status, f.Reason, tc.want)
		}
	}
	// The secrets status of the running process decides secrets.rotation,
	// and the checklist rests on the report's findings.
	sf := findingOf(t, &r, "CC6.1", "secrets.rotation")
	if sf.Status != compliance.StatusPass || !strings.Contains(sf.Reason, "pepper") || !strings.Contains(sf.Reason, "signing-keys") {
		t.Errorf("secrets.rotation: %s (%s)", sf.Status, sf.Reason)
	}
	want := map[string]compliance.Status{"secrets_rotated": compliance.StatusPass, "signing_keys_rotated": compliance.StatusPass,
		"policy_tested": compliance.StatusPass, "scans_clear": compliance.StatusManual, "drills_within_sla": compliance.StatusManual}
	if len(r.Checklist) != len(want) {
		t.Errorf("checklist: %+v", r.Checklist)
	}
	for _, it := range r.Checklist {
		if it.Status != want[it.ID] {
			t.Errorf("checklist %s: %s (%s), want %s", it.ID, it.Status, it.Reason, want[it.ID])
		}
	}
	h.expect(400, "GET", h.admin+"/v1/evidence?period=yesterday", nil, auth)
	h.expect(400, "GET", h.admin+"/v1/evidence?format=pdf", nil, auth)
}

// TestComplianceRoles: auditors read evidence, reviews and incidents but
// change nothing; security engineers run reviews and incidents but may
// not disable users (administrators only); anonymous callers get 401.
func TestComplianceRoles(t *testing.T) {
	h := MustStart(t)
	auth := "Authorization: Bearer " + adminToken
	h.expect(201, "POST", h.admin+"/v1/users", map[string]any{"username": "sec", "role": "security", "password": alicePW}, auth)
	h.expect(201, "POST", h.admin+"/v1/users", map[string]any{"username": "aud", "role": "auditor", "password": alicePW}, auth)
	aud, sec := h.newPerson(), h.newPerson()
	if code, _ := aud.login("aud", alicePW, nil); code != 200 {
		t.Fatal("sign in aud")
	}
	if code, _ := sec.login("sec", alicePW, nil); code != 200 {
		t.Fatal("sign in sec")
	}
	for _, tc := range []struct{ method, path string }{
		{"POST", "/v1/reviews"}, {"POST", "/v1/incidents"}, {"POST", "/v1/reviews/rev_x/complete"},
		{"POST", "/v1/incidents/inc_x/close"}, {"POST", "/v1/incidents/inc_x/contain"}, {"POST", "/v1/incidents/drill"},
	} {
		if code := aud.call(tc.method, tc.path, map[string]any{}, true, nil); code != 403 {
			t.Errorf("auditor %s %s: %d, want 403", tc.method, tc.path, code)
		}
	}
	for _, path := range []string{"/v1/evidence", "/v1/reviews", "/v1/incidents"} {
		if code := aud.call("GET", path, nil, false, nil); code != 200 {
			t.Errorf("auditor GET %s: %d, want 200", path, code)
		}
		h.expect(401, "GET", h.admin+path, nil)
	}
	var in struct{ ID string }
	if code := sec.call("POST", "/v1/incidents", map[string]any{"title": "t", "severity": "high", "impact": "i"}, true, &in); code != 201 {
		t.Fatalf("security opens an incident: %d", code)
	}
	var e errorOut
	if code := sec.call("POST", "/v1/incidents/"+in.ID+"/contain", map[string]any{"revoke_principal": "user:aud"}, true, &e); code != 403 {
		t.Fatalf("security disables a user as containment: %d, want 403", code)
	}
	// Bad input: 400 naming the field.
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"title": "t", "severity": "apocalyptic", "impact": "i"}, "severity"},
		{map[string]any{"title": "", "severity": "low", "impact": "i"}, "title"},
		{map[string]any{"title": "t", "severity": "low"}, "impact"},
		{map[string]any{"title": "t", "severity": "low", "impact": "i", "extra": 1}, "extra"},
	} {
		var e errorOut
		if code := sec.call("POST", "/v1/incidents", tc.body, true, &e); code != 400 || !strings.Contains(e.Error.Message, tc.field) {
			t.Errorf("%v: %d %q, want 400 naming %s", tc.body, code, e.Error.Message, tc.field)
		}
	}
}

// TestReviewRevokes: a review's revoke decision makes the key fail at the
// gateway at once; completion needs every item decided and is audited.
func TestReviewRevokes(t *testing.T) {
	h := MustStart(t)
	k := h.createKey(map[string]any{"name": "svc", "scopes": []string{"read:signals"}})
	h.expect(200, "GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+k.Key)
	var rv compliance.Review
	if code := h.adminCall("POST", "/v1/reviews", nil, &rv); code != 201 {
		t.Fatalf("start: %d", code)
	}
	if code := h.adminCall("POST", "/v1/reviews", nil, nil); code != 409 {
		t.Fatalf("second open review: %d, want 409", code)
	}
	var e errorOut
	if code := h.adminCall("POST", "/v1/reviews/"+rv.ID+"/complete", nil, &e); code != 409 || !strings.Contains(e.Error.Message, "not decided") {
		t.Fatalf("complete undecided: %d %s", code, e.Error.Message)
	}
	for _, it := range rv.Items {
		d := map[string]any{"decision": "approve", "reason": "needed"}
		if it.Principal == "api_key:"+k.ID {
			d = map[string]any{"decision": "revoke", "reason": "unused service"}
		}
		if code := h.adminCall("POST", "/v1/reviews/"+rv.ID+"/items/"+it.ID, map[string]any{"decision": "maybe", "reason": "x"}, &e); code != 400 || !strings.Contains(e.Error.Message, "decision") {
			t.Fatalf("bad decision: %d %s", code, e.Error.Message)
		}
		if code := h.adminCall("POST", "/v1/reviews/"+rv.ID+"/items/"+it.ID, d, nil); code != 200 {
			t.Fatalf("decide %s: %d", it.Principal, code)
		}
	}
	h.expect(401, "GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+k.Key)
	if code := h.adminCall("POST", "/v1/reviews/"+rv.ID+"/complete", nil, &rv); code != 200 || rv.CompletedAt.IsZero() {
		t.Fatalf("complete: %d", code)
	}
	var page struct{ Entries []json.RawMessage }
	h.adminCall("GET", "/v1/audit?type=admin.review.*", nil, &page)
	if len(page.Entries) != 2+len(rv.Items) {
		t.Fatalf("%d review events, want start, %d decisions, complete", len(page.Entries), len(rv.Items))
	}
}

// TestIncidentContainment: revoking a principal as containment makes it
// fail at the gateway; closing computes the review due date.
func TestIncidentContainment(t *testing.T) {
	h := MustStart(t)
	k := h.createKey(map[string]any{"name": "leaked", "scopes": []string{"read:signals"}})
	var in compliance.Incident
	if code := h.adminCall("POST", "/v1/incidents", map[string]any{"title": "key leaked", "severity": "critical", "impact": "reads"}, &in); code != 201 {
		t.Fatalf("open: %d", code)
	}
	if code := h.adminCall("POST", "/v1/incidents/"+in.ID+"/notes", map[string]any{"text": "found in a public repo"}, nil); code != 200 {
		t.Fatalf("note: %d", code)
	}
	var e errorOut
	if code := h.adminCall("POST", "/v1/incidents/"+in.ID+"/contain", map[string]any{}, &e); code != 400 {
		t.Fatalf("contain with nothing: %d", code)
	}
	if code := h.adminCall("POST", "/v1/incidents/"+in.ID+"/contain", map[string]any{"revoke_before": "last week"}, &e); code != 400 || !strings.Contains(e.Error.Message, "revoke_before") {
		t.Fatalf("bad time: %d %s", code, e.Error.Message)
	}
	if code := h.adminCall("POST", "/v1/incidents/"+in.ID+"/contain", map[string]any{"revoke_principal": "api_key:" + k.ID}, &in); code != 200 {
		t.Fatalf("contain: %d", code)
	}
	h.expect(401, "GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+k.Key)
	var full struct {
		Timeline []struct{ Type string }
	}
	h.adminCall("GET", "/v1/incidents/"+in.ID, nil, &full)
	if len(full.Timeline) == 0 {
		t.Fatal("empty timeline")
	}
	if code := h.adminCall("POST", "/v1/incidents/"+in.ID+"/close", nil, &in); code != 200 || in.ReviewDue.IsZero() {
		t.Fatalf("close: %d", code)
	}
	if want := compliance.BusinessDaysAfter(in.ClosedAt, 5); !in.ReviewDue.Equal(want) {
		t.Fatalf("review due %s, want %s", in.ReviewDue, want)
	}
	// The timeline of a closed incident ends with its close.
	full.Timeline = nil
	h.adminCall("GET", "/v1/incidents/"+in.ID, nil, &full)
	if n := len(full.Timeline); n == 0 || full.Timeline[n-1].Type != "admin.incident.close" {
		t.Errorf("closed incident's timeline %v does not end with admin.incident.close", full.Timeline)
	}
	if code := h.adminCall("POST", "/v1/incidents/"+in.ID+"/review", map[string]any{"summary": "rotated; scanner added"}, &in); code != 200 {
		t.Fatalf("review: %d", code)
	}
}

// TestDrill: the drill measures how long the gateway takes to refuse a
// revoked canary key, and the report's revocation check reads its figure.
func TestDrill(t *testing.T) {
	h := MustStart(t)
	var d struct {
		KeyID      string  `json:"key_id"`
		Refused    bool    `json:"refused"`
		DurationMS float64 `json:"duration_ms"`
		WithinSLA  bool    `json:"within_sla"`
	}
	if code := h.adminCall("POST", "/v1/incidents/drill", nil, &d); code != 200 || !d.Refused || !d.WithinSLA {
		t.Fatalf("drill: %d %+v", code, d)
	}
	t.Logf("revocation refused after %.3f ms", d.DurationMS)
	var r compliance.Report
	h.adminCall("GET", "/v1/evidence", nil, &r)
	if f := findingOf(t, &r, "CC6.2", "revocation.propagation"); f.Status != compliance.StatusPass {
		t.Fatalf("revocation.propagation: %s %s", f.Status, f.Reason)
	}
}

// TestDailySnapshot: serve's snapshot records every control's status
// once a UTC day by the app's clock (a second try the same day records
// nothing), and a report over those days shows per control when it held,
// from the snapshot entries, verifiable offline.
func TestDailySnapshot(t *testing.T) {
	h := MustStart(t)
	auth := "Authorization: Bearer " + adminToken
	ctx := t.Context()
	for i, want := range []bool{true, false} {
		got, err := h.app.Snapshot(ctx)
		if err != nil || got != want {
			t.Fatalf("try %d on day 1: recorded %v (%v), want %v", i+1, got, err, want)
		}
	}
	h.clock.Advance(24 * time.Hour)
	if got, err := h.app.Snapshot(ctx); err != nil || !got {
		t.Fatalf("day 2: recorded %v (%v)", got, err)
	}
	h.clock.Advance(48 * time.Hour) // 4 and 5 January: none (the report is of 5 January)

	data := h.expect(200, "GET", h.admin+"/v1/evidence?period=2026-01-01..2026-01-05", nil, auth)
	var r compliance.Report
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if res, err := compliance.Verify(data, r.AuditPublicKey); err != nil || !res.OK() {
		t.Fatalf("verify: %v %v", err, res.Problems)
	}
	tl := r.Timeline
	if tl == nil || len(tl.Snapshots) != 2 || tl.Days != 5 {
		t.Fatalf("timeline: %+v", tl)
	}
	var missing []string
	for _, m := range tl.Missing {
		missing = append(missing, m.From+".."+m.To)
	}
	if got := strings.Join(missing, " "); got != "2026-01-01..2026-01-01 2026-01-04..2026-01-05" {
		t.Fatalf("days without a snapshot: %s", got)
	}
	for _, c := range tl.Controls {
		if c.ID != "CC6.7" {
			continue
		}
		// Prod without TLS: CC6.7 failed on both days the snapshot ran.
		if len(c.Segments) != 1 || c.Segments[0].From != "2026-01-02" || c.Segments[0].To != "2026-01-03" || c.Segments[0].Status != compliance.StatusFail {
			t.Fatalf("CC6.7 segments: %+v", c.Segments)
		}
		return
	}
	t.Fatal("no CC6.7 in the timeline")
}

// TestDrillAcrossReplicas: a drill run on one of three replicas on one
// PostgreSQL asks its own listener and the two of incidents.drill_targets,
// and its figure is the time until all three refuse the revoked canary key.
func TestDrillAcrossReplicas(t *testing.T) {
	r := MustStartReplicas(t)
	aBase := r.a.base
	c, _ := startReplica(t, r.a, r.dsn, fmt.Sprintf("incidents: {drill_targets: [%q, %q]}\n", aBase, r.bBase))

	req, _ := http.NewRequest("POST", "http://"+c.AdminAddr()+"/v1/incidents/drill", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var d struct {
		Refused    bool    `json:"refused"`
		DurationMS float64 `json:"duration_ms"`
		WithinSLA  bool    `json:"within_sla"`
		Targets    []struct {
			URL          string  `json:"url"`
			BeforeStatus int     `json:"before_status"`
			Refused      bool    `json:"refused"`
			DurationMS   float64 `json:"duration_ms"`
		} `json:"targets"`
	}
	body, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(body, &d); err != nil || res.StatusCode != 200 {
		t.Fatalf("drill on C: %d %s", res.StatusCode, body)
	}
	if !d.Refused || !d.WithinSLA || len(d.Targets) != 3 {
		t.Fatalf("drill: %s", body)
	}
	slowest := 0.0
	for i, tg := range d.Targets {
		if !tg.Refused || tg.BeforeStatus == 401 || tg.BeforeStatus == 0 {
			t.Errorf("target %d: %+v", i, tg)
		}
		slowest = max(slowest, tg.DurationMS)
	}
	if d.Targets[1].URL != aBase || d.Targets[2].URL != r.bBase || d.DurationMS != slowest {
		t.Errorf("targets or figure: %s", body)
	}
	t.Logf("three replicas refused the revoked canary key after %.1f ms (C %.1f, A %.1f, B %.1f)", d.DurationMS, d.Targets[0].DurationMS, d.Targets[1].DurationMS, d.Targets[2].DurationMS)
}

// TestDrillTargetDown: a drill target that cannot be reached is a 502
// naming it and the config key, a body naming targets of the caller's is
// refused, and no canary key outlives a failed drill.
func TestDrillTargetDown(t *testing.T) {
	h := MustStartWith(t, "incidents: {drill_targets: [\"http://127.0.0.1:1\"]}\n")
	var e struct {
		Error struct {
			Code, Message string
		}
	}
	if code := h.adminCall("POST", "/v1/incidents/drill", nil, &e); code != 502 || e.Error.Code != "bad_gateway" ||
		!strings.Contains(e.Error.Message, "http://127.0.0.1:1") || !strings.Contains(e.Error.Message, "incidents.drill_targets") {
		t.Fatalf("drill with a target down: %d %+v", code, e)
	}
	// A caller cannot steer a drill, which carries a live key, at a
	// target of its own: the body takes nothing.
	if code := h.adminCall("POST", "/v1/incidents/drill", map[string]any{"targets": []string{"http://203.0.113.9:8080"}}, &e); code != 400 || !strings.Contains(e.Error.Message, "targets") {
		t.Fatalf("drill naming its own targets: %d %+v, want 400 naming targets", code, e)
	}
	var keys struct {
		Keys []keyOut `json:"keys"`
	}
	h.adminCall("GET", "/v1/keys", nil, &keys)
	for _, k := range keys.Keys {
		if k.Status == "active" {
			t.Errorf("a key is still active after the failed drill: %+v", k)
		}
	}
}

// TestReviewItemPages: GET /v1/reviews lists summaries; a review's items
// come a page at a time by cursor, undecided ones alone if asked.
func TestReviewItemPages(t *testing.T) {
	h := MustStart(t)
	for _, n := range []string{"a", "b", "c", "d"} {
		h.createKey(map[string]any{"name": n, "scopes": []string{"read:signals"}})
	}
	var rv compliance.Review
	if code := h.adminCall("POST", "/v1/reviews", nil, &rv); code != 201 || len(rv.Items) < 4 {
		t.Fatalf("start: %d, %d items", code, len(rv.Items))
	}
	if code := h.adminCall("POST", "/v1/reviews/"+rv.ID+"/items/"+rv.Items[1].ID, map[string]any{"decision": "change", "reason": "narrow"}, nil); code != 200 {
		t.Fatalf("decide: %d", code)
	}
	var list struct {
		Reviews []map[string]any `json:"reviews"`
	}
	if code := h.adminCall("GET", "/v1/reviews", nil, &list); code != 200 || len(list.Reviews) != 1 {
		t.Fatalf("list: %d %v", code, list)
	}
	if s := list.Reviews[0]; s["items"] != nil || s["item_count"] != float64(len(rv.Items)) || s["decided"] != float64(1) {
		t.Errorf("summary %v, want counts and no items", s)
	}
	var full struct {
		Reviews []compliance.Review `json:"reviews"`
	}
	if code := h.adminCall("GET", "/v1/reviews?items=true", nil, &full); code != 200 || len(full.Reviews[0].Items) != len(rv.Items) {
		t.Errorf("?items=true: %d, want every item", code)
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"limit=2", itemIDs(rv.Items)},
		{"limit=2&undecided=true", append([]string{rv.Items[0].ID}, itemIDs(rv.Items[2:])...)},
	} {
		var got []string
		q := "?" + tc.query
		for pages := 0; ; pages++ {
			var page struct {
				ItemCount int                     `json:"item_count"`
				Items     []compliance.ReviewItem `json:"items"`
				Next      string                  `json:"next"`
			}
			if code := h.adminCall("GET", "/v1/reviews/"+rv.ID+q, nil, &page); code != 200 || len(page.Items) > 2 || page.ItemCount != len(rv.Items) || pages > 10 {
				t.Fatalf("%s: %d, %d items", q, code, len(page.Items))
			}
			got = append(got, itemIDs(page.Items)...)
			if page.Next == "" {
				break
			}
			q = "?" + tc.query + "&cursor=" + page.Next
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: items %v, want %v", tc.query, got, tc.want)
		}
	}
	var one struct {
		Items []compliance.ReviewItem `json:"items"`
	}
	if code := h.adminCall("GET", "/v1/reviews/"+rv.ID+"?item="+rv.Items[2].ID, nil, &one); code != 200 || len(one.Items) != 1 || one.Items[0].ID != rv.Items[2].ID {
		t.Errorf("?item=: %d %v", code, one.Items)
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?cursor=forged", "?undecided=maybe", "?cursor=" + base64.RawURLEncoding.EncodeToString([]byte("0.item_999"))} {
		var e errorOut
		if code := h.adminCall("GET", "/v1/reviews/"+rv.ID+q, nil, &e); code != 400 || e.Error.Message == "" {
			t.Errorf("%s: %d %q, want 400 naming the problem", q, code, e.Error.Message)
		}
	}
}

func itemIDs(items []compliance.ReviewItem) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}
