package compliance

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

//go:embed report.html.tmpl
var htmlTemplate string

// htmlReportStart opens the element of an HTML report holding its signed
// JSON form (base64), which `gatehouse evidence verify` checks.
const htmlReportStart = `<pre hidden id="gatehouse-report">`

// Bar is one bar of a chart.
type bar struct {
	X, Y, W, H int
	Label      string
	Value      int
}

type chart struct {
	Title  string
	Width  int
	Height int
	Bars   []bar
	Max    int
	Empty  bool
}

func newChart(title string, days []DayCount, value func(DayCount) int) chart {
	c := chart{Title: title, Width: 720, Height: 140}
	for _, d := range days {
		c.Max = max(c.Max, value(d))
	}
	if len(days) == 0 || c.Max == 0 {
		c.Empty = true
		return c
	}
	w := max(1, (c.Width-20)/len(days))
	for i, d := range days {
		v := value(d)
		h := v * (c.Height - 30) / c.Max
		c.Bars = append(c.Bars, bar{X: 10 + i*w, Y: c.Height - 20 - h, W: max(1, w-1), H: h, Label: d.Day, Value: v})
	}
	return c
}

// RenderHTML writes r as one self-contained, printable HTML page: a
// summary of controls by status, the verification checklist, traffic
// charts, a section per control
// with its findings and evidence, the corrections of common mislabels,
// reviews and incidents. Every value is escaped by html/template; the
// signed JSON is embedded (base64) for `gatehouse evidence verify`.
func RenderHTML(w io.Writer, r *Report, signedJSON []byte) error {
	t, err := template.New("report").Funcs(template.FuncMap{
		"date": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"join":  func(s []string) string { return strings.Join(s, ", ") },
		"b64":   func(b []byte) string { return base64.StdEncoding.EncodeToString(b) },
		"short": func(b []byte) string { s := base64.StdEncoding.EncodeToString(b); return s[:min(12, len(s))] },
		"json":  func(v any) string { return canonicalString(v) },
	}).Parse(htmlTemplate)
	if err != nil {
		return fmt.Errorf("parse report template: %w", err)
	}
	data := map[string]any{
		"Strips":   timelineStrips(r),
		"R":        r,
		"Charts":   []chart{newChart("Requests per day", r.Traffic, func(d DayCount) int { return d.Requests }), newChart("Denials per day", r.Traffic, func(d DayCount) int { return d.Denied }), newChart("Revocations per day", r.Traffic, func(d DayCount) int { return d.Revocations })},
		"Embedded": base64.StdEncoding.EncodeToString(signedJSON),
		"Statuses": []Status{StatusPass, StatusFail, StatusManual, StatusNotApplicable},
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// strip is one control's row of the timeline chart: a cell per day of
// the period, coloured by the status its snapshot recorded.
type strip struct {
	ID       string
	Width    int
	Cells    []cell
	Days     map[string]int
	Segments []Segment
}

type cell struct {
	X      int
	Day    string
	Status string // a Status, or "missing"
}

// timelineStrips lays out the timeline chart of r.
func timelineStrips(r *Report) []strip {
	if r.Timeline == nil {
		return nil
	}
	days := periodDays(r.Period, r.GeneratedAt)
	const w = 6
	var out []strip
	for _, c := range r.Timeline.Controls {
		st := map[string]string{}
		for _, sg := range c.Segments {
			for d := sg.From; d != "" && d <= sg.To; d = nextDay(d) {
				st[d] = string(sg.Status)
			}
		}
		s := strip{ID: c.ID, Width: max(w, len(days)*w), Days: map[string]int{}, Segments: c.Segments}
		for k, v := range c.Days {
			s.Days[string(k)] = v
		}
		for i, d := range days {
			status := st[d]
			if status == "" {
				status = "missing"
			}
			s.Cells = append(s.Cells, cell{X: i * w, Day: d, Status: status})
		}
		out = append(out, s)
	}
	return out
}
