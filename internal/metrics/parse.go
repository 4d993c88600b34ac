package metrics

import (
	"fmt"
	"io"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Samples are the values of one text exposition by series,
// `name{label="value",…}` with the labels sorted by name; a histogram
// gives its _count and _sum, a summary too.
type Samples map[string]float64

// ParseText reads a text exposition (what /metrics serves by default), for
// tests and tools that read metrics without a client library of their own.
func ParseText(r io.Reader) (Samples, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	out := Samples{}
	for name, f := range fams {
		for _, m := range f.Metric {
			labels := seriesLabels(m.Label)
			switch {
			case m.Counter != nil:
				out[name+labels] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[name+labels] = m.Gauge.GetValue()
			case m.Untyped != nil:
				out[name+labels] = m.Untyped.GetValue()
			case m.Histogram != nil:
				out[name+"_count"+labels] = float64(m.Histogram.GetSampleCount())
				out[name+"_sum"+labels] = m.Histogram.GetSampleSum()
			case m.Summary != nil:
				out[name+"_count"+labels] = float64(m.Summary.GetSampleCount())
				out[name+"_sum"+labels] = m.Summary.GetSampleSum()
			}
		}
	}
	return out, nil
}

func seriesLabels(ls []*dto.LabelPair) string {
	if len(ls) == 0 {
		return ""
	}
	parts := make([]string, 0, len(ls))
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	slices.Sort(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// Series returns the series of s whose key starts with prefix.
func (s Samples) Series(prefix string) Samples {
	out := Samples{}
	for k, v := range s {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}
