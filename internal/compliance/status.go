package compliance

import (
	"time"

	"github.com/gatehouse/gatehouse"
)

// Sources of a StatusSummary.
const (
	SourceReport   = "report"
	SourceSnapshot = "snapshot"
)

// StatusSummary is every control's status as last decided, without
// building a report: from the newest report any caller generated or the
// newest daily compliance.snapshot, whichever was decided last (GET
// /v1/evidence/summary). It is a convenience for dashboards, not
// evidence: the signed report is, and the summary names the report or the
// snapshot entry it was taken from.
type StatusSummary struct {
	// Source is "report" or "snapshot".
	Source string `json:"source"`
	// AsOf is when the statuses were decided: the report's generated_at
	// or the snapshot's time.
	AsOf time.Time `json:"as_of"`
	// ReportID and Period are the report's (source "report").
	ReportID string  `json:"report_id,omitempty"`
	Period   *Period `json:"period,omitempty"`
	// SnapshotDay and EventID are the snapshot's UTC day (2006-01-02) and
	// audit event id (source "snapshot").
	SnapshotDay string `json:"snapshot_day,omitempty"`
	EventID     string `json:"event_id,omitempty"`
	// Summary counts the controls by status; Controls is each control's
	// status by control ID.
	Summary  map[Status]int    `json:"summary"`
	Controls map[string]Status `json:"controls"`
}

// ReportStatus is the status summary of a report.
func ReportStatus(r *Report) StatusSummary {
	p := r.Period
	s := StatusSummary{Source: SourceReport, AsOf: r.GeneratedAt.UTC(), ReportID: r.ID, Period: &p,
		Summary: map[Status]int{}, Controls: map[string]Status{}}
	for _, c := range r.Controls {
		s.Controls[c.ID] = c.Status
		s.Summary[c.Status]++
	}
	return s
}

// SnapshotStatus is the status summary of a compliance.snapshot event
// (SnapshotEvent); false if e is not one.
func SnapshotStatus(e gatehouse.Event) (StatusSummary, bool) {
	d, ok := snapshotOf(e)
	if !ok {
		return StatusSummary{}, false
	}
	s := StatusSummary{Source: SourceSnapshot, AsOf: e.Time.UTC(), SnapshotDay: d.day, EventID: e.ID,
		Summary: map[Status]int{}, Controls: d.controls}
	for _, st := range d.controls {
		s.Summary[st]++
	}
	return s, true
}
