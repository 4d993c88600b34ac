package ui

import (
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/backup"
	"github.com/gatehouse/gatehouse/internal/compliance"
	"github.com/gatehouse/gatehouse/internal/metrics"
)

// dashIncidents is how many open incidents the dashboard lists.
const dashIncidents = 5

type dashTraffic struct {
	Err                           string
	Charts                        []template.HTML
	Requests, Denied, RateLimited uint64
	P99                           string
	Minutes                       int
}

type dashAudit struct {
	Err          string
	CheckpointAt time.Time
	Entries      uint64
	Unknown      bool // this replica does not keep the tree
	Stale        bool // older than an hour
}

type dashBackups struct {
	Err             string
	Count           int
	Newest          time.Time
	LastRestoreTest time.Time
	RestoreKnown    bool
	Stale           bool // newest over a day old
}

type statusCount struct {
	Status, Label string
	Count         int
}

// dashControls is the control status summary: the newest report's or
// daily snapshot's (GET /v1/evidence/summary), never a report made for
// the view.
type dashControls struct {
	Err string
	// None: no report was generated and no snapshot recorded yet.
	None                  bool
	Source                string // compliance.SourceReport or SourceSnapshot
	ReportID, SnapshotDay string
	AsOf                  time.Time
	Counts                []statusCount
	// Failing lists the failing controls' IDs, sorted.
	Failing []string
}

type dashIncidentsPart struct {
	Err   string
	Open  []compliance.Incident
	Count int
}

type dashReviews struct {
	Err                string
	InProgress         string // id of the review under way
	Undecided          int
	Due                time.Time
	Overdue, NeverDone bool
}

type dashboardData struct {
	Traffic   dashTraffic
	Audit     dashAudit
	Backups   dashBackups
	Controls  dashControls
	Incidents dashIncidentsPart
	Reviews   dashReviews
}

// dashboardPage is the landing page: each part the admin API call of its
// own, a part whose call fails saying why in place.
func dashboardPage(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	d := &dashboardData{}
	now := u.cfg.Clock.Now()
	var sum metrics.Summary
	sumErr := u.call(r.Context(), r, http.MethodGet, "/v1/metrics/summary", nil, &sum)
	u.dashTraffic(r, &d.Traffic, sum, sumErr, now)
	u.dashAudit(r, &d.Audit, sum, sumErr, now)
	u.dashBackups(r, &d.Backups, sum, sumErr, now)
	u.dashControls(r, &d.Controls)
	u.dashIncidents(r, &d.Incidents)
	u.dashReviews(r, &d.Reviews, now)
	u.render(w, r, s, http.StatusOK, "dashboard.html", "Dashboard", d)
	return nil
}

func (u *UI) dashTraffic(r *http.Request, d *dashTraffic, sum metrics.Summary, err error, now time.Time) {
	if err != nil {
		d.Err = u.errMessage(r, err)
		return
	}
	to := now.UTC().Truncate(time.Minute).Add(time.Minute)
	from := to.Add(-metrics.SummaryMinutes * time.Minute)
	count := func(v func(metrics.Minute) uint64) []chartPoint {
		out := make([]chartPoint, 0, len(sum.Minutes))
		for _, m := range sum.Minutes {
			out = append(out, chartPoint{At: m.Start, Value: float64(v(m))})
		}
		return out
	}
	var p99 []chartPoint
	for _, m := range sum.Minutes {
		if m.Requests > 0 {
			p99 = append(p99, chartPoint{At: m.Start, Value: m.P99Seconds})
		}
	}
	specs := []chartSpec{
		{ID: "chart-requests", Title: "Requests per minute, last hour", Points: count(func(m metrics.Minute) uint64 { return m.Requests }), Format: formatCount},
		{ID: "chart-denied", Title: "Denials (401 and 403) per minute, last hour", Points: count(func(m metrics.Minute) uint64 { return m.Denied }), Format: formatCount},
		{ID: "chart-limited", Title: "Rate-limited (429) per minute, last hour", Points: count(func(m metrics.Minute) uint64 { return m.RateLimited }), Format: formatCount},
		{ID: "chart-p99", Title: "p99 latency per minute, last hour", Points: p99, Line: true, Format: formatSeconds},
	}
	for _, c := range specs {
		c.From, c.To, c.Step = from, to, time.Minute
		h, err := renderChart(c)
		if err != nil {
			d.Err = u.errMessage(r, err)
			return
		}
		d.Charts = append(d.Charts, h)
	}
	d.Requests, d.Denied, d.RateLimited, d.Minutes = sum.Requests, sum.Denied, sum.RateLimited, len(sum.Minutes)
	d.P99 = formatSeconds(sum.P99Seconds)
	if sum.Requests == 0 {
		d.P99 = "—"
	}
}

func (u *UI) dashAudit(r *http.Request, d *dashAudit, sum metrics.Summary, err error, now time.Time) {
	if err != nil {
		d.Err = u.errMessage(r, err)
		return
	}
	d.CheckpointAt, d.Entries = sum.AuditCheckpointAt, sum.AuditEntries
	d.Unknown = d.CheckpointAt.IsZero()
	d.Stale = !d.Unknown && now.Sub(d.CheckpointAt) > time.Hour
}

func (u *UI) dashBackups(r *http.Request, d *dashBackups, sum metrics.Summary, sumErr error, now time.Time) {
	var list struct {
		Backups []backup.Info `json:"backups"`
	}
	if err := u.call(r.Context(), r, http.MethodGet, "/v1/backups", nil, &list); err != nil {
		d.Err = u.errMessage(r, err)
		return
	}
	d.Count = len(list.Backups)
	for _, b := range list.Backups {
		if b.CreatedAt.After(d.Newest) {
			d.Newest = b.CreatedAt
		}
	}
	d.Stale = d.Newest.IsZero() || now.Sub(d.Newest) > 24*time.Hour
	if sumErr == nil && sum.Backups != nil {
		d.LastRestoreTest, d.RestoreKnown = sum.Backups.LastRestoreTest, true
	}
}

// statusLabels are the evidence statuses in the order the dashboard
// lists them.
var statusLabels = []statusCount{
	{Status: string(compliance.StatusFail), Label: "fail"},
	{Status: string(compliance.StatusPass), Label: "pass"},
	{Status: string(compliance.StatusManual), Label: "manual"},
	{Status: string(compliance.StatusNotApplicable), Label: "not applicable"},
}

func (u *UI) dashControls(r *http.Request, d *dashControls) {
	var sum compliance.StatusSummary
	err := u.call(r.Context(), r, http.MethodGet, "/v1/evidence/summary", nil, &sum)
	switch {
	case gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND:
		d.None = true
		return
	case err != nil:
		d.Err = u.errMessage(r, err)
		return
	}
	d.Source, d.ReportID, d.SnapshotDay, d.AsOf = sum.Source, sum.ReportID, sum.SnapshotDay, sum.AsOf
	d.Counts = statusCounts(sum.Summary)
	for _, id := range slices.Sorted(maps.Keys(sum.Controls)) {
		if sum.Controls[id] == compliance.StatusFail {
			d.Failing = append(d.Failing, id)
		}
	}
}

// statusCounts lists the controls by status: the four statuses in
// statusLabels' order, then any other the API named.
func statusCounts(summary map[compliance.Status]int) []statusCount {
	out := make([]statusCount, 0, len(statusLabels))
	seen := map[string]bool{}
	for _, l := range statusLabels {
		l.Count = summary[compliance.Status(l.Status)]
		seen[l.Status] = true
		out = append(out, l)
	}
	for _, st := range slices.Sorted(maps.Keys(summary)) {
		if !seen[string(st)] {
			out = append(out, statusCount{Status: string(st), Label: string(st), Count: summary[st]})
		}
	}
	return out
}

func (u *UI) dashIncidents(r *http.Request, d *dashIncidentsPart) {
	var list struct {
		Incidents []compliance.Incident `json:"incidents"`
	}
	if err := u.call(r.Context(), r, http.MethodGet, "/v1/incidents", nil, &list); err != nil {
		d.Err = u.errMessage(r, err)
		return
	}
	for _, in := range list.Incidents {
		if in.ClosedAt.IsZero() {
			d.Count++
			if len(d.Open) < dashIncidents {
				d.Open = append(d.Open, in)
			}
		}
	}
}

func (u *UI) dashReviews(r *http.Request, d *dashReviews, now time.Time) {
	var list struct {
		Reviews []compliance.ReviewSummary `json:"reviews"`
	}
	if err := u.call(r.Context(), r, http.MethodGet, "/v1/reviews", nil, &list); err != nil {
		d.Err = u.errMessage(r, err)
		return
	}
	var last time.Time
	for _, rv := range list.Reviews {
		if rv.CompletedAt.IsZero() {
			if d.InProgress == "" {
				d.InProgress = rv.ID
				d.Undecided = rv.ItemCount - rv.Decided
			}
			continue
		}
		if rv.CompletedAt.After(last) {
			last = rv.CompletedAt
		}
	}
	if last.IsZero() {
		d.NeverDone, d.Overdue = true, true
		return
	}
	d.Due = last.Add(compliance.DefaultThresholds().ReviewEvery)
	d.Overdue = now.After(d.Due)
}

func formatCount(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }

// formatSeconds writes a duration in seconds as ms below 10 s.
func formatSeconds(v float64) string {
	ms := v * 1000
	switch {
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 1, 64) + " ms"
	case v < 10:
		return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " s"
}
