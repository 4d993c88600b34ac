package ui

import (
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// svgShapes parses a rendered chart as XML (it must be well-formed) and
// returns every numeric geometry attribute of its shapes by name.
func svgShapes(t *testing.T, html string) (map[string][]float64, int) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(html))
	out := map[string][]float64{}
	shapes := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, html)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "rect", "circle", "polyline":
			shapes++
		}
		if se.Name.Local == "rect" {
			var x, w float64
			for _, a := range se.Attr {
				switch a.Name.Local {
				case "x":
					x, _ = strconv.ParseFloat(a.Value, 64)
				case "width":
					w, _ = strconv.ParseFloat(a.Value, 64)
				}
			}
			out["rectEnd"] = append(out["rectEnd"], x+w)
		}
		for _, a := range se.Attr {
			switch a.Name.Local {
			case "x", "y", "width", "height", "cx", "cy", "x1", "x2", "y1", "y2":
				f, err := strconv.ParseFloat(a.Value, 64)
				if err != nil {
					t.Fatalf("%s=%q is not a number", a.Name.Local, a.Value)
				}
				out[a.Name.Local] = append(out[a.Name.Local], f)
			case "points":
				for _, p := range strings.Fields(a.Value) {
					x, y, _ := strings.Cut(p, ",")
					fx, err1 := strconv.ParseFloat(x, 64)
					fy, err2 := strconv.ParseFloat(y, 64)
					if err1 != nil || err2 != nil {
						t.Fatalf("points %q", a.Value)
					}
					out["x"] = append(out["x"], fx)
					out["y"] = append(out["y"], fy)
				}
			case "style":
				t.Fatalf("style attribute in a chart (CSP style-src 'self'): %s", html)
			}
		}
	}
	return out, shapes
}

func TestRenderChart(t *testing.T) {
	from := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	to := from.Add(time.Hour)
	at := func(m int) time.Time { return from.Add(time.Duration(m) * time.Minute) }
	full := make([]chartPoint, 0, 60)
	for m := range 60 {
		full = append(full, chartPoint{At: at(m), Value: float64(m * m)})
	}
	tests := []struct {
		name       string
		spec       chartSpec
		wantShapes int
		contains   []string
		absent     []string
	}{
		{"empty", chartSpec{ID: "c", Title: "Requests"}, 0, []string{"no data", "Requests: no data from 07:00 UTC to 08:00 UTC."}, nil},
		{"bars", chartSpec{ID: "c", Title: "Requests", Points: full}, 60, []string{`role="img"`, `aria-labelledby="c-t c-d"`, "<title id=\"c-t\">Requests</title>", "at most 3481 (at 07:59 UTC), over 60 minute(s)", "<figcaption>"}, []string{"no data"}},
		{"line", chartSpec{ID: "c", Title: "p99", Points: full[:3], Line: true}, 4, []string{"<polyline", "highest 4 at 07:02 UTC, latest 4"}, nil},
		{"one point is a dot", chartSpec{ID: "c", Title: "p99", Points: full[:1], Line: true}, 1, []string{"<circle"}, []string{"<polyline"}},
		{"hostile title escaped", chartSpec{ID: "c", Title: `<script>alert(1)</script>" onload="x`, Points: full[:2]}, 2,
			[]string{"&lt;script&gt;alert(1)&lt;/script&gt;"}, []string{"<script>", `" onload="x`}},
		{"bad values count as zero", chartSpec{ID: "c", Title: "v", Points: []chartPoint{{at(0), math.NaN()}, {at(1), math.Inf(1)}, {at(2), -5}, {at(3), 2}}}, 4,
			[]string{"2 in all, at most 2 (at 07:03 UTC)"}, []string{"NaN", "Inf"}},
		{"points outside the hour left out", chartSpec{ID: "c", Title: "v", Points: []chartPoint{{at(-1), 9}, {at(60), 9}, {at(5), 1}}}, 1,
			[]string{"1 in all, at most 1 (at 07:05 UTC), over 1 minute(s)"}, nil},
		{"all zero", chartSpec{ID: "c", Title: "v", Points: full[:1]}, 1, []string{"max 0", "v from 07:00 UTC to 08:00 UTC: none, over 1 minute(s)."}, []string{"NaN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.From, tt.spec.To, tt.spec.Step = from, to, time.Minute
			if tt.spec.Format == nil {
				tt.spec.Format = formatCount
			}
			h, err := renderChart(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			s := string(h)
			geo, shapes := svgShapes(t, s)
			if shapes != tt.wantShapes {
				t.Errorf("%d shapes, want %d", shapes, tt.wantShapes)
			}
			// Bounded: every shape inside the viewBox.
			for _, k := range []string{"x", "cx", "x1", "x2"} {
				for _, v := range geo[k] {
					if v < 0 || v > chartW {
						t.Errorf("%s=%v outside 0..%d", k, v, chartW)
					}
				}
			}
			for _, k := range []string{"y", "cy", "y1", "y2"} {
				for _, v := range geo[k] {
					if v < 0 || v > chartH {
						t.Errorf("%s=%v outside 0..%d", k, v, chartH)
					}
				}
			}
			for i, end := range geo["rectEnd"] {
				if end > chartW {
					t.Errorf("bar %d ends at %v, past %d", i, end, chartW)
				}
			}
			for _, v := range geo["height"] {
				if v < 0 || v > chartH {
					t.Errorf("height %v", v)
				}
			}
			for _, c := range tt.contains {
				if !strings.Contains(s, c) {
					t.Errorf("no %q in\n%s", c, s)
				}
			}
			for _, c := range tt.absent {
				if strings.Contains(s, c) {
					t.Errorf("%q in\n%s", c, s)
				}
			}
		})
	}
}

func TestRenderChartManyPoints(t *testing.T) {
	from := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	var pts []chartPoint
	for i := range 10000 {
		pts = append(pts, chartPoint{At: from.Add(time.Duration(i) * time.Millisecond), Value: 1})
	}
	h, err := renderChart(chartSpec{ID: "c", Title: "v", From: from, To: from.Add(time.Hour), Step: time.Minute, Points: pts})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(h), "<rect"); n != chartMaxPoints {
		t.Fatalf("%d bars drawn, want at most %d", n, chartMaxPoints)
	}
}

func TestFormatSeconds(t *testing.T) {
	for _, tt := range []struct {
		v    float64
		want string
	}{{0.0025, "2.5 ms"}, {0.25, "250 ms"}, {3.75, "3750 ms"}, {30, "30.0 s"}} {
		if got := formatSeconds(tt.v); got != tt.want {
			t.Errorf("formatSeconds(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}
