package compliance_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/compliance"
)

// TestChecklist: each item of the verification checklist is decided from
// its finding, and an item whose check fails for another reason keeps its
// own status (an old API key fails credentials.rotation_age, not the
// signing keys item).
func TestChecklist(t *testing.T) {
	drill := func(ms float64, refused bool) func(s *compliance.State) {
		return func(s *compliance.State) {
			s.Events = append(s.Events, recordMem(t, gatehouse.Event{Time: now.Add(-day), Type: "admin.incident.drill", Outcome: "success",
				Details: map[string]any{"duration_ms": ms, "refused": refused}}))
		}
	}
	tests := []struct {
		name string
		mod  func(s *compliance.State)
		item string
		want compliance.Status
	}{
		{"secrets within cadence", nil, "secrets_rotated", compliance.StatusPass},
		{"vault token overdue", func(s *compliance.State) { s.Secrets[2].Overdue = true }, "secrets_rotated", compliance.StatusFail},
		{"signing keys within 180 days", nil, "signing_keys_rotated", compliance.StatusPass},
		{"old API key only", func(s *compliance.State) { s.Credentials[0].CreatedAt = now.Add(-91 * day) }, "signing_keys_rotated", compliance.StatusPass},
		{"old signing key", func(s *compliance.State) { s.SigningKeys[0].CreatedAt = now.Add(-181 * day) }, "signing_keys_rotated", compliance.StatusFail},
		{"no signing keys", func(s *compliance.State) { s.SigningKeys = nil }, "signing_keys_rotated", compliance.StatusNotApplicable},
		{"policy tested", nil, "policy_tested", compliance.StatusPass},
		{"policy without tests", func(s *compliance.State) { s.Policy.Tests = 0 }, "policy_tested", compliance.StatusFail},
		{"no scan on record", nil, "scans_clear", compliance.StatusManual},
		{"no drill on record", nil, "drills_within_sla", compliance.StatusManual},
		{"drill within SLA", drill(120, true), "drills_within_sla", compliance.StatusPass},
		{"drill over SLA", drill(7000, true), "drills_within_sla", compliance.StatusFail},
	}
	l := MustOpenLog(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := goodState(t, l)
			if tc.mod != nil {
				tc.mod(s)
			}
			findings := compliance.Evaluate(s)
			var got *compliance.ChecklistItem
			list := compliance.Checklist(findings)
			if len(list) != 5 {
				t.Fatalf("%d items, want the baseline's 5", len(list))
			}
			for i := range list {
				if list[i].ID == tc.item {
					got = &list[i]
				}
			}
			if got == nil {
				t.Fatalf("no item %s", tc.item)
			}
			if got.Status != tc.want || got.Reason == "" {
				t.Fatalf("%s: %s (%s), want %s", tc.item, got.Status, got.Reason, tc.want)
			}
			if f := findings[got.Check]; got.FindingStatus != f.Status {
				t.Fatalf("%s: finding_status %s, the finding of %s is %s", tc.item, got.FindingStatus, got.Check, f.Status)
			}
		})
	}
}

// recordMem is an entry that is not in a log (for checks that only read
// State.Events).
func recordMem(tb testing.TB, e gatehouse.Event) (en audit.Entry) {
	tb.Helper()
	en.Event = e
	return en
}

// TestChecklistInReport: a built report carries the checklist in JSON,
// HTML and Markdown, and Verify refuses an item that does not follow from
// its finding even when the report is re-signed with the log's own key.
func TestChecklistInReport(t *testing.T) {
	l := MustOpenLog(t)
	s := goodState(t, l)
	s.SigningKeys[0].CreatedAt = now.Add(-200 * day)
	r, err := compliance.Build(context.Background(), s, compliance.BuildOptions{Log: l, By: gatehouse.Actor{Kind: "user", ID: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Checklist) != 5 || r.Checklist[1].ID != "signing_keys_rotated" || r.Checklist[1].Status != compliance.StatusFail {
		t.Fatalf("checklist: %+v", r.Checklist)
	}
	b, _ := compliance.MarshalReport(r)
	if res, err := compliance.Verify(b, l.VerifierKey()); err != nil || !res.OK() {
		t.Fatalf("verify: %v %v", err, res.Problems)
	}
	var html, md bytes.Buffer
	if err := compliance.RenderHTML(&html, r, b); err != nil {
		t.Fatal(err)
	}
	if err := compliance.RenderMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{html.String(), md.String()} {
		for _, want := range []string{"Verification checklist", "Auth-service signing keys rotated", "credentials.rotation_age", "Incident drills within SLA"} {
			if !strings.Contains(out, want) {
				t.Errorf("rendering lacks %q", want)
			}
		}
	}

	resign := func(t *testing.T, edit func(r *compliance.Report)) []string {
		c := *r
		c.Checklist = append([]compliance.ChecklistItem(nil), r.Checklist...)
		edit(&c)
		sum, _ := compliance.Hash(&c)
		sig, _ := l.SignReport(sum)
		c.Signature = string(sig)
		b, _ := compliance.MarshalReport(&c)
		res, err := compliance.Verify(b, l.VerifierKey())
		if err != nil {
			t.Fatal(err)
		}
		return res.Problems
	}
	tests := []struct {
		name string
		edit func(r *compliance.Report)
		want string
	}{
		{"status", func(r *compliance.Report) { r.Checklist[1].Status = compliance.StatusPass }, "checklist[signing_keys_rotated]: status pass does not follow"},
		{"finding status", func(r *compliance.Report) { r.Checklist[0].FindingStatus = compliance.StatusFail }, "checklist[secrets_rotated]: says finding"},
		{"other finding", func(r *compliance.Report) { r.Checklist[3].Check = "audit.verifies" }, "checklist[scans_clear]: rests on audit.verifies"},
		{"removed", func(r *compliance.Report) { r.Checklist = r.Checklist[1:] }, "checklist[secrets_rotated]: missing"},
		{"added", func(r *compliance.Report) {
			r.Checklist = append(r.Checklist, compliance.ChecklistItem{ID: "pentest_done", Status: compliance.StatusPass})
		}, "checklist[pentest_done]: not an item"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			problems := resign(t, tc.edit)
			if !strings.Contains(strings.Join(problems, "\n"), tc.want) {
				t.Fatalf("problems %q do not name %q", problems, tc.want)
			}
		})
	}
}

// TestVerifyFormatV1: a report of the format before the checklist and the
// timeline still verifies; the current format without them does not.
func TestVerifyFormatV1(t *testing.T) {
	l := MustOpenLog(t)
	r, err := compliance.Build(context.Background(), goodState(t, l), compliance.BuildOptions{Log: l, By: gatehouse.Actor{Kind: "user", ID: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	strip := func(format string) []string {
		c := *r
		c.Format, c.Checklist, c.Timeline = format, nil, nil
		sum, _ := compliance.Hash(&c)
		sig, _ := l.SignReport(sum)
		c.Signature = string(sig)
		b, _ := compliance.MarshalReport(&c)
		res, err := compliance.Verify(b, l.VerifierKey())
		if err != nil {
			t.Fatal(err)
		}
		return res.Problems
	}
	if p := strip("gatehouse-evidence/v1"); len(p) != 0 {
		t.Fatalf("v1 report: %q", p)
	}
	if p := strings.Join(strip(compliance.FormatVersion), "\n"); !strings.Contains(p, "checklist[secrets_rotated]: missing") || !strings.Contains(p, "timeline: missing") {
		t.Fatalf("%s without checklist and timeline: %q", compliance.FormatVersion, p)
	}
}
