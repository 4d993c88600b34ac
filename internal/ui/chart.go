package ui

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"strconv"
	"time"
)

// Chart geometry, in the SVG's own units (the viewBox; CSS scales it to
// the page's width).
const (
	chartW, chartH         = 600, 160
	chartLeft, chartRight  = 8, 8
	chartTop, chartBottom  = 18, 22
	chartMaxPoints         = 240 // more points than this are not drawn (a bound, not a use)
	chartTimeLayout        = "15:04"
	chartTimeLayoutSummary = "15:04 UTC"
)

// chartPoint is one value of a chart at a time.
type chartPoint struct {
	At    time.Time
	Value float64
}

// chartSpec is what a chart shows: a bar per point, or a line through the
// points, over [From, To).
type chartSpec struct {
	ID       string // unique on the page; the SVG's element ids derive from it
	Title    string // also the accessible name
	From, To time.Time
	Step     time.Duration // the width of a bar (a minute)
	Points   []chartPoint
	Line     bool
	// Format writes a value ("12", "250 ms").
	Format func(float64) string
}

// chartBar and chartView are the geometry chart.svg draws.
type chartBar struct {
	X, Y, W, H string
	Label      string
}

type chartView struct {
	ID, Title, Summary string
	W, H               int
	Bars               []chartBar
	Line               string // polyline points
	Dots               []chartBar
	Max, Start, End    string
	AxisY, BaseY       string
	MaxY               string
	Empty              bool
}

var chartTmpl = template.Must(template.New("chart").Parse(`<figure class="chart">
<svg class="chart-svg" viewBox="0 0 {{.W}} {{.H}}" width="{{.W}}" height="{{.H}}" role="img" aria-labelledby="{{.ID}}-t {{.ID}}-d" preserveAspectRatio="xMidYMid meet" focusable="false">
<title id="{{.ID}}-t">{{.Title}}</title>
<desc id="{{.ID}}-d">{{.Summary}}</desc>
<line class="chart-grid" x1="8" y1="{{.MaxY}}" x2="592" y2="{{.MaxY}}"/>
<line class="chart-axis" x1="8" y1="{{.BaseY}}" x2="592" y2="{{.BaseY}}"/>
{{range .Bars}}<rect class="chart-bar" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"/>
{{end}}{{with .Line}}<polyline class="chart-line" fill="none" points="{{.}}"/>
{{end}}{{range .Dots}}<circle class="chart-dot" cx="{{.X}}" cy="{{.Y}}" r="2.5"/>
{{end}}<text class="chart-label" x="8" y="14">max {{.Max}}</text>
{{if .Empty}}<text class="chart-label" x="300" y="90" text-anchor="middle">no data</text>
{{end}}<text class="chart-label" x="8" y="157">{{.Start}}</text>
<text class="chart-label" x="592" y="157" text-anchor="end">{{.End}}</text>
</svg>
<figcaption>{{.Summary}}</figcaption>
</figure>`))

// renderChart draws c as an inline SVG (no script, no style attribute:
// classes of ui.css and presentation attributes only). Every text is
// escaped by html/template; values that are negative, NaN or infinite
// count as 0, points outside [From, To) are left out, and every shape
// stays inside the viewBox.
func renderChart(c chartSpec) (template.HTML, error) {
	v := layoutChart(c)
	var b bytes.Buffer
	if err := chartTmpl.Execute(&b, v); err != nil {
		return "", fmt.Errorf("render chart %s: %w", c.ID, err)
	}
	return template.HTML(b.String()), nil // #nosec G203 -- made by html/template, which escaped every value
}

func clean(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0
	}
	return v
}

func num(f float64) string { return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64) }

func layoutChart(c chartSpec) chartView {
	if c.Format == nil {
		c.Format = func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	}
	if c.Step <= 0 {
		c.Step = time.Minute
	}
	if !c.From.Before(c.To) {
		c.To = c.From.Add(c.Step)
	}
	v := chartView{ID: c.ID, Title: c.Title, W: chartW, H: chartH,
		Start: c.From.UTC().Format(chartTimeLayout), End: c.To.UTC().Format(chartTimeLayout)}
	plotW := float64(chartW - chartLeft - chartRight)
	plotH := float64(chartH - chartTop - chartBottom)
	base := float64(chartH - chartBottom)
	v.BaseY, v.MaxY = num(base), num(float64(chartTop))
	span := c.To.Sub(c.From).Seconds()

	var pts []chartPoint
	peak, total := chartPoint{}, 0.0
	for _, p := range c.Points {
		if p.At.Before(c.From) || !p.At.Before(c.To) || len(pts) >= chartMaxPoints {
			continue
		}
		p.Value = clean(p.Value)
		pts = append(pts, p)
		total += p.Value
		if len(pts) == 1 || p.Value > peak.Value {
			peak = p
		}
	}
	v.Max = c.Format(peak.Value)
	scale := 0.0
	if peak.Value > 0 {
		scale = plotH / peak.Value
	}
	x := func(t time.Time) float64 {
		return float64(chartLeft) + plotW*t.Sub(c.From).Seconds()/span
	}
	barW := math.Max(1, plotW*c.Step.Seconds()/span-1)
	var line bytes.Buffer
	for _, p := range pts {
		h := p.Value * scale
		if c.Line {
			cx := math.Min(x(p.At)+barW/2, float64(chartW-chartRight))
			if line.Len() > 0 {
				line.WriteByte(' ')
			}
			line.WriteString(num(cx) + "," + num(base-h))
			v.Dots = append(v.Dots, chartBar{X: num(cx), Y: num(base - h)})
			continue
		}
		bw := math.Min(barW, float64(chartW-chartRight)-x(p.At))
		v.Bars = append(v.Bars, chartBar{X: num(x(p.At)), Y: num(base - h), W: num(math.Max(bw, 0)), H: num(h)})
	}
	if len(v.Dots) > 1 { // one point is a dot, not a line
		v.Line = line.String()
	}
	from, to := c.From.UTC().Format(chartTimeLayoutSummary), c.To.UTC().Format(chartTimeLayoutSummary)
	switch {
	case len(pts) == 0:
		v.Empty = true
		v.Summary = fmt.Sprintf("%s: no data from %s to %s.", c.Title, from, to)
	case !c.Line && total == 0:
		v.Summary = fmt.Sprintf("%s from %s to %s: none, over %d minute(s).", c.Title, from, to, len(pts))
	case c.Line:
		v.Summary = fmt.Sprintf("%s from %s to %s: highest %s at %s, latest %s, over %d minute(s).", c.Title, from, to,
			c.Format(peak.Value), peak.At.UTC().Format(chartTimeLayoutSummary), c.Format(pts[len(pts)-1].Value), len(pts))
	default:
		v.Summary = fmt.Sprintf("%s from %s to %s: %s in all, at most %s (at %s), over %d minute(s).", c.Title, from, to,
			c.Format(total), c.Format(peak.Value), peak.At.UTC().Format(chartTimeLayoutSummary), len(pts))
	}
	return v
}
