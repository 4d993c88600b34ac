package compliance_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/compliance"
)

// buildTimelineReport records ten days of snapshots in a real log — five
// good days, two without a snapshot, three with TLS off (CC6.7 fails) —
// and builds the report of those days.
func buildTimelineReport(t *testing.T) (*audit.Log, *compliance.Report, time.Time) {
	t.Helper()
	l := MustOpenLog(t)
	base := now.Truncate(day).Add(-9 * day) // 2026-11-23
	var snaps []audit.Entry
	for i := range 10 {
		if i == 5 || i == 6 {
			continue // the server was down
		}
		s := goodState(t, l)
		s.Now = base.Add(time.Duration(i)*day + time.Hour)
		if i >= 7 {
			s.Listeners[0].TLS = false
		}
		snaps = append(snaps, record(t, l, compliance.SnapshotEvent(s, gatehouse.Actor{Kind: "system", ID: "snapshot"})))
	}
	s := goodState(t, l)
	s.Period = compliance.Period{From: base, To: now}
	s.Events = append(s.Events, snaps...)
	r, err := compliance.Build(context.Background(), s, compliance.BuildOptions{Log: l, By: gatehouse.Actor{Kind: "user", ID: "auditor"}})
	if err != nil {
		t.Fatal(err)
	}
	return l, r, base
}

// TestTimelineFromSnapshots: a report's timeline says, per control, on
// which days it held and on which it did not, from the snapshot entries
// of the log (cited with proofs an independent verifier accepts), names
// the days without a snapshot, and renders in HTML and Markdown.
func TestTimelineFromSnapshots(t *testing.T) {
	l, r, _ := buildTimelineReport(t)
	tl := r.Timeline
	if tl == nil {
		t.Fatal("no timeline")
	}
	if tl.Days != 10 || len(tl.Snapshots) != 8 {
		t.Fatalf("days %d, snapshots %d; want 10 and 8", tl.Days, len(tl.Snapshots))
	}
	if got := canon(t, tl.Missing); got != `[{"from":"2026-11-28","to":"2026-11-29"}]` {
		t.Fatalf("missing %s", got)
	}
	byID := map[string]compliance.ControlPeriod{}
	for _, c := range tl.Controls {
		byID[c.ID] = c
	}
	if len(byID) != len(compliance.Catalog()) {
		t.Fatalf("%d controls in the timeline", len(byID))
	}
	want := `[{"from":"2026-11-23","status":"pass","to":"2026-11-27"},{"from":"2026-11-30","status":"fail","to":"2026-12-02"}]`
	if got := canon(t, byID["CC6.7"].Segments); got != want {
		t.Fatalf("CC6.7 segments %s, want %s", got, want)
	}
	if d := byID["CC6.7"].Days; d[compliance.StatusPass] != 5 || d[compliance.StatusFail] != 3 {
		t.Fatalf("CC6.7 days %v", d)
	}
	if got := canon(t, byID["CC6.6"].Segments); !strings.Contains(got, `"from":"2026-11-23","status":"pass","to":"2026-11-27"`) || strings.Contains(got, "fail") {
		t.Fatalf("CC6.6 segments %s", got)
	}
	cp, err := audit.ParseCheckpoint(strings.SplitN(r.Checkpoint, "\n\n", 2)[0] + "\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range tl.Snapshots {
		leaf := sha256.Sum256(append([]byte{0}, ref.Entry...))
		if !bytes.Equal(leaf[:], ref.LeafHash) || !verifyInclusion(ref.Index, cp.Size, ref.LeafHash, ref.Proof, cp.Root) {
			t.Fatalf("snapshot entry %d: proof does not verify", ref.Index)
		}
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
	if !strings.Contains(html.String(), `<title>2026-11-30: fail</title>`) || !strings.Contains(html.String(), `<title>2026-11-28: missing</title>`) {
		t.Error("HTML timeline lacks the days of CC6.7")
	}
	if !strings.Contains(md.String(), "| CC6.7 | 5 | 3 | 0 | 0 | 2026-11-23 to 2026-11-27 pass; 2026-11-30 to 2026-12-02 fail |") ||
		!strings.Contains(md.String(), "Days without a snapshot: 2026-11-28 to 2026-11-29") {
		t.Errorf("Markdown timeline:\n%s", md.String())
	}
}

// TestTimelineTamperDetected: a timeline that does not follow from the
// snapshots it cites is refused, even re-signed with the log's own key.
func TestTimelineTamperDetected(t *testing.T) {
	l, r, _ := buildTimelineReport(t)
	resign := func(t *testing.T, edit func(tl *compliance.Timeline)) []string {
		var c compliance.Report
		b, _ := compliance.MarshalReport(r)
		json.Unmarshal(b, &c)
		edit(c.Timeline)
		sum, _ := compliance.Hash(&c)
		sig, _ := l.SignReport(sum)
		c.Signature = string(sig)
		out, _ := compliance.MarshalReport(&c)
		res, err := compliance.Verify(out, l.VerifierKey())
		if err != nil {
			t.Fatal(err)
		}
		return res.Problems
	}
	cc67 := func(tl *compliance.Timeline) *compliance.ControlPeriod {
		for i := range tl.Controls {
			if tl.Controls[i].ID == "CC6.7" {
				return &tl.Controls[i]
			}
		}
		t.Fatal("no CC6.7")
		return nil
	}
	tests := []struct {
		name string
		edit func(tl *compliance.Timeline)
		want string
	}{
		{"segment status", func(tl *compliance.Timeline) { cc67(tl).Segments[1].Status = compliance.StatusPass }, "timeline.controls[CC6.7]: does not follow"},
		{"day counts", func(tl *compliance.Timeline) { cc67(tl).Days[compliance.StatusFail] = 0 }, "timeline.controls[CC6.7]: does not follow"},
		{"snapshot dropped", func(tl *compliance.Timeline) { tl.Snapshots = tl.Snapshots[:len(tl.Snapshots)-3] }, "timeline.controls[CC6.7]: does not follow"},
		{"missing days hidden", func(tl *compliance.Timeline) { tl.Missing = nil }, "missing ranges"},
		{"snapshot entry edited", func(tl *compliance.Timeline) {
			tl.Snapshots[0].Entry = bytes.Replace(tl.Snapshots[0].Entry, []byte(`"CC6.7":"pass"`), []byte(`"CC6.7":"fail"`), 1)
		}, "timeline.snapshots[0]: leaf_hash"},
		{"control removed", func(tl *compliance.Timeline) { tl.Controls = tl.Controls[1:] }, "timeline.controls[CC6.1]: missing"},
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

func canon(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var g any
	json.Unmarshal(b, &g)
	b, _ = json.Marshal(g)
	return string(b)
}
