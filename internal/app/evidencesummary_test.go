package app_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/compliance"
)

// TestEvidenceSummary: GET /v1/evidence/summary is 404 before any report
// or snapshot, then the newest of the daily snapshot and the reports any
// caller generated (never a report of its own: no compliance.report is
// recorded by reading it), to the roles that read evidence, each read
// audited; bad input and missing credentials are refused.
func TestEvidenceSummary(t *testing.T) {
	h := MustStart(t)
	auth := "Authorization: Bearer " + adminToken
	summary := func() compliance.StatusSummary {
		t.Helper()
		var s compliance.StatusSummary
		if err := json.Unmarshal(h.expect(200, "GET", h.admin+"/v1/evidence/summary", nil, auth), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	reports := func() int {
		t.Helper()
		var page audit.Page
		json.Unmarshal(h.expect(200, "GET", h.admin+"/v1/audit?type=compliance.report&limit=100", nil, auth), &page)
		return len(page.Entries)
	}
	var e errorOut
	if err := json.Unmarshal(h.expect(404, "GET", h.admin+"/v1/evidence/summary", nil, auth), &e); err != nil || !strings.Contains(e.Error.Message, "no control status yet") {
		t.Fatalf("before any report: %v %q", err, e.Error.Message)
	}

	if ok, err := h.app.Snapshot(t.Context()); err != nil || !ok {
		t.Fatalf("snapshot: %v %v", ok, err)
	}
	s := summary()
	day := h.clock.Now().UTC().Format(time.DateOnly)
	if s.Source != compliance.SourceSnapshot || s.SnapshotDay != day || s.EventID == "" || !s.AsOf.Equal(h.clock.Now().UTC()) || s.ReportID != "" {
		t.Fatalf("after the snapshot: %+v", s)
	}
	// Prod without TLS: CC6.7 fails (as TestDailySnapshot's timeline).
	if s.Controls["CC6.7"] != compliance.StatusFail || s.Summary[compliance.StatusFail] < 1 {
		t.Fatalf("snapshot summary: %v %v", s.Controls, s.Summary)
	}
	var snaps audit.Page
	json.Unmarshal(h.expect(200, "GET", h.admin+"/v1/audit?type=compliance.snapshot", nil, auth), &snaps)
	if len(snaps.Entries) != 1 || snaps.Entries[0].Event.ID != s.EventID {
		t.Fatalf("event_id %s does not name the snapshot entry: %+v", s.EventID, snaps.Entries)
	}

	h.clock.Advance(time.Hour)
	var r compliance.Report
	if err := json.Unmarshal(h.expect(200, "GET", h.admin+"/v1/evidence", nil, auth), &r); err != nil {
		t.Fatal(err)
	}
	s = summary()
	if s.Source != compliance.SourceReport || s.ReportID != r.ID || !s.AsOf.Equal(r.GeneratedAt) || s.Period == nil || !s.Period.From.Equal(r.Period.From) {
		t.Fatalf("after the report: %+v", s)
	}
	for st, n := range r.Summary {
		if s.Summary[st] != n {
			t.Errorf("summary[%s] = %d, the report says %d", st, s.Summary[st], n)
		}
	}
	for _, c := range r.Controls {
		if s.Controls[c.ID] != c.Status {
			t.Errorf("controls[%s] = %s, the report says %s", c.ID, s.Controls[c.ID], c.Status)
		}
	}
	n := reports()
	for range 3 {
		summary()
	}
	if reports() != n {
		t.Errorf("reading the summary made %d report(s)", reports()-n)
	}
	// A day on, the day's snapshot is newer than the report.
	h.clock.Advance(24 * time.Hour)
	if ok, err := h.app.Snapshot(t.Context()); err != nil || !ok {
		t.Fatalf("snapshot on day 2: %v %v", ok, err)
	}
	if s = summary(); s.Source != compliance.SourceSnapshot || s.SnapshotDay != h.clock.Now().UTC().Format(time.DateOnly) {
		t.Fatalf("after day 2's snapshot: %+v", s)
	}

	// The roles that read evidence, each read audited as admin.read.
	h.expect(201, "POST", h.admin+"/v1/users", map[string]any{"username": "sec", "role": "security", "password": alicePW}, auth)
	h.expect(201, "POST", h.admin+"/v1/users", map[string]any{"username": "aud", "role": "auditor", "password": alicePW}, auth)
	for _, user := range []string{"sec", "aud"} {
		p := h.newPerson()
		if code, _ := p.login(user, alicePW, nil); code != 200 {
			t.Fatalf("sign in %s", user)
		}
		var got compliance.StatusSummary
		if code := p.call("GET", "/v1/evidence/summary", nil, false, &got); code != 200 || got.EventID != s.EventID {
			t.Errorf("%s: HTTP %d %+v", user, code, got)
		}
		var reads audit.Page
		json.Unmarshal(h.expect(200, "GET", h.admin+"/v1/audit?type=admin.read&actor=user:"+user+"&limit=100", nil, auth), &reads)
		found := false
		for _, en := range reads.Entries {
			found = found || en.Event.Resource == "/v1/evidence/summary"
		}
		if !found {
			t.Errorf("%s's read of /v1/evidence/summary is not audited", user)
		}
	}

	// Refused: no credential, a gateway key, bad input, other methods.
	key := h.createKey(map[string]any{"name": "gw", "scopes": []string{"read:signals"}})
	for _, tc := range []struct {
		method, path string
		headers      []string
		want         int
		msg          string
	}{
		{"GET", "/v1/evidence/summary", nil, 401, ""},
		{"GET", "/v1/evidence/summary", []string{"Authorization: Bearer " + key.Key}, 403, "lacks the admin scope"},
		{"GET", "/v1/evidence/summary", []string{"X-Gatehouse-Principal: admin"}, 401, ""},
		{"GET", "/v1/evidence/summary?period=2026-01-01..2026-01-02", []string{auth}, 400, "takes no parameters"},
		{"GET", "/v1/evidence/summary?x=%00", []string{auth}, 400, "takes no parameters"},
		{"POST", "/v1/evidence/summary", []string{auth}, 405, "use GET"},
		{"DELETE", "/v1/evidence/summary", []string{auth}, 405, "use GET"},
	} {
		t.Run(fmt.Sprintf("%s %s %d", tc.method, tc.path, tc.want), func(t *testing.T) {
			var e errorOut
			json.Unmarshal(h.expect(tc.want, tc.method, h.admin+tc.path, nil, tc.headers...), &e)
			if !strings.Contains(e.Error.Message, tc.msg) {
				t.Errorf("message %q, want %q", e.Error.Message, tc.msg)
			}
		})
	}
}

// TestEvidenceSummaryReadBack: a server whose store keeps no summary
// (its audit log made elsewhere, or by a version before the summary was
// kept) reads back the newest snapshot among the log's newest entries at
// start, without a report.
func TestEvidenceSummaryReadBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l, err := audit.Open(t.Context(), audit.Config{Dir: dir, Origin: "gatehouse/readback", Durability: audit.DurabilityBatch, NoPreallocate: true})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)
	snap := func(at time.Time) gatehouse.Event {
		return compliance.SnapshotEvent(&compliance.State{Now: at, Period: compliance.Period{From: at.Add(-24 * time.Hour), To: at}, Mode: "prod"}, gatehouse.Actor{Kind: "system", ID: "test"})
	}
	older, newer := snap(at.Add(-24*time.Hour)), snap(at)
	if err := l.Record(t.Context(), older); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if err := l.Record(t.Context(), gatehouse.Event{Time: at.Add(-time.Duration(300-i) * time.Second), Type: "http.request", Action: "proxy", Outcome: gatehouse.OutcomeSuccess}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Record(t.Context(), newer); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		l.Record(t.Context(), gatehouse.Event{Time: at.Add(time.Second), Type: "http.request", Action: "proxy", Outcome: gatehouse.OutcomeSuccess})
	}
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	h := MustStartWith(t, "audit:\n  dir: "+dir+"\n  origin: gatehouse/readback\n")
	var s compliance.StatusSummary
	json.Unmarshal(h.expect(200, "GET", h.admin+"/v1/evidence/summary", nil, "Authorization: Bearer "+adminToken), &s)
	if s.Source != compliance.SourceSnapshot || s.EventID != newer.ID || s.SnapshotDay != "2026-01-01" {
		t.Fatalf("read back %+v, want the snapshot %s of 2026-01-01", s, newer.ID)
	}
}
