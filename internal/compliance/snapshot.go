package compliance

import (
	"crypto/rand"
	"fmt"
	"sort"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
)

// EventSnapshot records the status of every control and check on one UTC
// day; serve records one a day, and a report's timeline is made of them.
const EventSnapshot = "compliance.snapshot"

// SnapshotEvent evaluates s and returns the compliance.snapshot event of
// its day (s.Now, UTC): every control's status and every check's, by ID.
func SnapshotEvent(s *State, by gatehouse.Actor) gatehouse.Event {
	findings := Evaluate(s)
	checks := map[string]any{}
	for id, f := range findings {
		checks[id] = string(f.Status)
	}
	controls := map[string]any{}
	summary := map[string]any{}
	for _, c := range Catalog() {
		var fs []Finding
		for _, id := range c.Checks {
			fs = append(fs, findings[id])
		}
		st, _ := controlStatus(fs)
		controls[c.ID] = string(st)
		n, _ := summary[string(st)].(int)
		summary[string(st)] = n + 1
	}
	day := s.Now.UTC().Format(time.DateOnly)
	return gatehouse.Event{
		ID: ulid.MustNew(ulid.Timestamp(s.Now), rand.Reader).String(), Time: s.Now.UTC(), Type: EventSnapshot,
		Actor: by, Action: EventSnapshot, Resource: "snapshot:" + day, Outcome: gatehouse.OutcomeSuccess,
		Details: map[string]any{"day": day, "controls": controls, "checks": checks, "summary": summary},
	}
}

// Timeline is when each control held and when it did not over a report's
// period, made of the daily compliance.snapshot entries of the audit log
// (each cited, with its inclusion proof), not of today's state.
type Timeline struct {
	// Days is the number of UTC days of the period up to the report;
	// Missing lists the ranges of those days without a snapshot (the
	// server was not running, or the schedule failed).
	Days     int             `json:"days"`
	Missing  []DayRange      `json:"missing"`
	Controls []ControlPeriod `json:"controls"`
	// Snapshots cites every snapshot entry the timeline is made of.
	Snapshots []Ref `json:"snapshots"`
}

// DayRange is a range of UTC days, both included (2006-01-02).
type DayRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// ControlPeriod is one control's statuses over the period.
type ControlPeriod struct {
	ID string `json:"id"`
	// Days counts the snapshot days by status.
	Days map[Status]int `json:"days"`
	// Segments are the runs of consecutive snapshot days with one
	// status, oldest first; a day without a snapshot ends a run.
	Segments []Segment `json:"segments"`
}

// Segment is a run of days with one status.
type Segment struct {
	DayRange
	Status Status `json:"status"`
}

// snapshotDay is one day's control statuses, as a snapshot recorded them.
type snapshotDay struct {
	day      string
	controls map[string]Status
}

// snapshotOf reads a snapshot event.
func snapshotOf(e gatehouse.Event) (snapshotDay, bool) {
	if e.Type != EventSnapshot {
		return snapshotDay{}, false
	}
	raw, _ := e.Details["controls"].(map[string]any)
	d := snapshotDay{day: e.Time.UTC().Format(time.DateOnly), controls: map[string]Status{}}
	for id, v := range raw {
		if st, ok := v.(string); ok && Status(st).Valid() {
			d.controls[id] = Status(st)
		}
	}
	return d, true
}

// periodDays lists the UTC days of p up to until, oldest first.
func periodDays(p Period, until time.Time) []string {
	var out []string
	end := p.To
	if until.Before(end) {
		end = until
	}
	for d := p.From.UTC().Truncate(24 * time.Hour); !d.After(end) && d.Before(p.To); d = d.Add(24 * time.Hour) {
		out = append(out, d.Format(time.DateOnly))
	}
	return out
}

// nextDay is the day after d (2006-01-02).
func nextDay(d string) string {
	t, err := time.Parse(time.DateOnly, d)
	if err != nil {
		return ""
	}
	return t.Add(24 * time.Hour).Format(time.DateOnly)
}

// timelineOf makes the timeline of the period from the snapshots (the
// newest of a day counts); controls in catalog order.
func timelineOf(p Period, until time.Time, snaps []snapshotDay) Timeline {
	days := periodDays(p, until)
	inPeriod := map[string]bool{}
	for _, d := range days {
		inPeriod[d] = true
	}
	byDay := map[string]snapshotDay{}
	for _, s := range snaps {
		if inPeriod[s.day] {
			byDay[s.day] = s
		}
	}
	t := Timeline{Days: len(days), Missing: []DayRange{}, Controls: []ControlPeriod{}}
	for _, d := range days {
		if _, ok := byDay[d]; ok {
			continue
		}
		if n := len(t.Missing); n > 0 && nextDay(t.Missing[n-1].To) == d {
			t.Missing[n-1].To = d
		} else {
			t.Missing = append(t.Missing, DayRange{From: d, To: d})
		}
	}
	have := make([]string, 0, len(byDay))
	for d := range byDay {
		have = append(have, d)
	}
	sort.Strings(have)
	for _, c := range Catalog() {
		cp := ControlPeriod{ID: c.ID, Days: map[Status]int{}, Segments: []Segment{}}
		for _, d := range have {
			st, ok := byDay[d].controls[c.ID]
			if !ok {
				continue // the control was not in the catalog that day
			}
			cp.Days[st]++
			if n := len(cp.Segments); n > 0 && cp.Segments[n-1].Status == st && nextDay(cp.Segments[n-1].To) == d {
				cp.Segments[n-1].To = d
			} else {
				cp.Segments = append(cp.Segments, Segment{DayRange: DayRange{From: d, To: d}, Status: st})
			}
		}
		t.Controls = append(t.Controls, cp)
	}
	return t
}

// snapshotsOf returns the snapshot entries of the period in s.Events.
func snapshotsOf(s *State) []audit.Entry {
	return inPeriod(s, EventSnapshot)
}

// verifyTimeline recomputes r's timeline from the snapshot entries it
// cites (each already checked against the checkpoint by check) and names
// what differs.
func verifyTimeline(r *Report, check func(where string, ref Ref) (gatehouse.Event, bool)) []string {
	var problems []string
	if r.Timeline == nil {
		return []string{"timeline: missing"}
	}
	var snaps []snapshotDay
	for i, ref := range r.Timeline.Snapshots {
		where := fmt.Sprintf("timeline.snapshots[%d]", i)
		e, ok := check(where, ref)
		if !ok {
			continue
		}
		d, ok := snapshotOf(e)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: entry %d is %s, not a %s", where, ref.Index, e.Type, EventSnapshot))
			continue
		}
		if !r.Period.Contains(e.Time) {
			problems = append(problems, fmt.Sprintf("%s: the snapshot of %s is outside the period", where, d.day))
		}
		snaps = append(snaps, d)
	}
	want := timelineOf(r.Period, r.GeneratedAt, snaps)
	if r.Timeline.Days != want.Days || canonicalString(r.Timeline.Missing) != canonicalString(want.Missing) {
		problems = append(problems, fmt.Sprintf("timeline: %d days with %d missing ranges, the snapshots cited make %d days with %d", r.Timeline.Days, len(r.Timeline.Missing), want.Days, len(want.Missing)))
	}
	got := map[string]ControlPeriod{}
	for _, c := range r.Timeline.Controls {
		got[c.ID] = c
	}
	for _, w := range want.Controls {
		g, ok := got[w.ID]
		if !ok {
			problems = append(problems, fmt.Sprintf("timeline.controls[%s]: missing", w.ID))
			continue
		}
		if canonicalString(g.Segments) != canonicalString(w.Segments) || canonicalString(g.Days) != canonicalString(w.Days) {
			problems = append(problems, fmt.Sprintf("timeline.controls[%s]: does not follow from the snapshots cited", w.ID))
		}
	}
	if len(r.Timeline.Controls) != len(want.Controls) {
		problems = append(problems, fmt.Sprintf("timeline.controls: %d controls, the catalog has %d", len(r.Timeline.Controls), len(want.Controls)))
	}
	return problems
}
