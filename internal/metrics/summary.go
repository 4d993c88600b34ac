package metrics

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// SummaryMinutes is how many one-minute samples a Sampler keeps: the last
// hour.
const SummaryMinutes = 60

// Minute is the traffic of the public listener in one minute (health
// probes left out): what the requests counter and the duration histogram
// grew by.
type Minute struct {
	// Start is the minute's first instant (UTC).
	Start time.Time `json:"start"`
	// Requests answered, and of them Denied (401 and 403) and
	// RateLimited (429).
	Requests    uint64 `json:"requests"`
	Denied      uint64 `json:"denied"`
	RateLimited uint64 `json:"rate_limited"`
	// P99Seconds is the 99th percentile of the request duration, read
	// from the histogram's buckets as Prometheus's histogram_quantile
	// does (linear within a bucket; the highest finite bound when it
	// falls in the +Inf bucket); 0 when there was no request.
	P99Seconds float64 `json:"p99_seconds"`
}

// Summary is the last hour of traffic, one Minute for each minute the
// sampler saw (oldest first; the current minute so far last), with the
// hour's totals, and the audit and backup times the gauges read.
type Summary struct {
	// Now is when the summary was made (UTC).
	Now     time.Time `json:"now"`
	Minutes []Minute  `json:"minutes"`
	// Requests, Denied, RateLimited and P99Seconds are over all of
	// Minutes.
	Requests    uint64  `json:"requests"`
	Denied      uint64  `json:"denied"`
	RateLimited uint64  `json:"rate_limited"`
	P99Seconds  float64 `json:"p99_seconds"`
	// AuditCheckpointAt is when the audit log's latest signed checkpoint
	// was written (what gatehouse_audit_checkpoint_timestamp_seconds
	// reads; left out where this process does not keep the tree, or
	// before the first checkpoint), and AuditEntries the log's size now.
	AuditCheckpointAt time.Time `json:"audit_checkpoint_at,omitzero"`
	AuditEntries      uint64    `json:"audit_entries,omitempty"`
	// Backups are the newest backup made and restore test passed (left
	// out without a backup destination); zero times: none yet.
	Backups *BackupTimes `json:"backups,omitempty"`
}

// BackupTimes are the newest backup and passing restore test.
type BackupTimes struct {
	LastBackup      time.Time `json:"last_backup,omitzero"`
	LastRestoreTest time.Time `json:"last_restore_test,omitzero"`
}

// Totals are the cumulative values a sample reads: the requests counter
// summed over every series but the health probes', and the duration
// histogram's cumulative bucket counts summed likewise (Buckets[i] counts
// the durations ≤ Bounds[i]; Count is every duration, the +Inf bucket).
type Totals struct {
	Requests, Denied, RateLimited uint64
	Bounds                        []float64
	Buckets                       []uint64
	Count                         uint64
}

// slot is one minute of the ring.
type slot struct {
	minute int64 // Unix minute; 0: empty
	Totals       // the growth in that minute
}

// Sampler keeps the growth of the request metrics minute by minute, for
// the last SummaryMinutes minutes, in a ring: Sample, called once a
// minute (Run), reads the totals and adds what grew since the previous
// sample to the slot of the current minute. Nothing on the request path
// changes: it reads the metrics as a scrape does. A Sampler is safe for
// concurrent use.
type Sampler struct {
	read func() (Totals, error)

	mu   sync.Mutex
	prev Totals
	have bool
	ring [SummaryMinutes]slot
}

// NewSampler returns a sampler of the totals read returns (Metrics.Sampler
// reads the registry's).
func NewSampler(read func() (Totals, error)) *Sampler { return &Sampler{read: read} }

// Sampler returns m's sampler, made on first use: it gathers only the
// requests counter and the duration histogram, from a registry of their
// own (not the sources a scrape reads).
func (m *Metrics) Sampler() *Sampler {
	if m == nil {
		return nil
	}
	m.samplerOnce.Do(func() {
		reg := prometheus.NewRegistry()
		reg.MustRegister(m.requests, m.duration)
		m.sampler = NewSampler(func() (Totals, error) { return gatherTotals(reg) })
	})
	return m.sampler
}

// unixMinute is the minute t falls in.
func unixMinute(t time.Time) int64 { return t.Unix() / 60 }

// Sample reads the totals and records their growth since the previous
// sample in now's minute (the first sample only sets the base). A total
// that went down (a reset) counts from zero.
func (s *Sampler) Sample(now time.Time) error {
	cur, err := s.read()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.have {
		m := unixMinute(now)
		sl := &s.ring[m%SummaryMinutes]
		if sl.minute != m {
			*sl = slot{minute: m}
		}
		sl.Totals = sl.Totals.add(cur.sub(s.prev))
	}
	s.prev, s.have = cur, true
	return nil
}

// Summary is the last SummaryMinutes minutes before now: the minutes
// sampled, with what grew since the last sample read now and added to the
// current minute (not stored).
func (s *Sampler) Summary(now time.Time) (Summary, error) {
	cur, err := s.read()
	if err != nil {
		return Summary{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	nowMin := unixMinute(now)
	out := Summary{Now: now.UTC(), Minutes: []Minute{}}
	var hour Totals
	for m := nowMin - SummaryMinutes + 1; m <= nowMin; m++ {
		sl := s.ring[((m%SummaryMinutes)+SummaryMinutes)%SummaryMinutes]
		t, ok := sl.Totals, sl.minute == m
		if m == nowMin && s.have {
			live := cur.sub(s.prev)
			if !ok {
				t = Totals{}
			}
			t, ok = t.add(live), true
		}
		if !ok {
			continue
		}
		hour = hour.add(t)
		out.Minutes = append(out.Minutes, t.minute(time.Unix(m*60, 0).UTC()))
	}
	h := hour.minute(time.Time{})
	out.Requests, out.Denied, out.RateLimited, out.P99Seconds = h.Requests, h.Denied, h.RateLimited, h.P99Seconds
	return out, nil
}

func (t Totals) minute(start time.Time) Minute {
	return Minute{Start: start, Requests: t.Requests, Denied: t.Denied, RateLimited: t.RateLimited, P99Seconds: Quantile(0.99, t.Bounds, t.Buckets, t.Count)}
}

// sub is the growth from p to t, each value from zero if it went down.
func (t Totals) sub(p Totals) Totals {
	d := func(a, b uint64) uint64 {
		if a < b {
			return a
		}
		return a - b
	}
	out := Totals{Requests: d(t.Requests, p.Requests), Denied: d(t.Denied, p.Denied), RateLimited: d(t.RateLimited, p.RateLimited),
		Count: d(t.Count, p.Count), Bounds: t.Bounds}
	if len(t.Buckets) > 0 {
		out.Buckets = make([]uint64, len(t.Buckets))
		for i, v := range t.Buckets {
			var pv uint64
			if slices.Equal(t.Bounds, p.Bounds) {
				pv = p.Buckets[i]
			}
			out.Buckets[i] = d(v, pv)
		}
	}
	return out
}

// add sums two growths (buckets of other bounds than t's are dropped).
func (t Totals) add(o Totals) Totals {
	out := Totals{Requests: t.Requests + o.Requests, Denied: t.Denied + o.Denied, RateLimited: t.RateLimited + o.RateLimited, Count: t.Count + o.Count}
	switch {
	case len(t.Bounds) == 0:
		out.Bounds, out.Buckets = o.Bounds, slices.Clone(o.Buckets)
	case len(o.Bounds) == 0 || !slices.Equal(t.Bounds, o.Bounds):
		out.Bounds, out.Buckets = t.Bounds, slices.Clone(t.Buckets)
	default:
		out.Bounds, out.Buckets = t.Bounds, make([]uint64, len(t.Buckets))
		for i := range t.Buckets {
			out.Buckets[i] = t.Buckets[i] + o.Buckets[i]
		}
	}
	return out
}

// Quantile is the q-quantile (0 < q < 1) of a classic histogram given its
// upper bounds, cumulative bucket counts (cum[i] counts observations ≤
// bounds[i]) and total count (the +Inf bucket), the way PromQL's
// histogram_quantile estimates it: linearly within the bucket the rank
// falls in, from 0 for the first bucket; the highest finite bound if the
// rank falls in +Inf. It is 0 with no observations or malformed input.
func Quantile(q float64, bounds []float64, cum []uint64, count uint64) float64 {
	if count == 0 || len(bounds) == 0 || len(bounds) != len(cum) || math.IsNaN(q) {
		return 0
	}
	rank := q * float64(count)
	lower, below := 0.0, uint64(0)
	for i, ub := range bounds {
		if float64(cum[i]) >= rank {
			in := cum[i] - below
			if in == 0 || cum[i] < below {
				return ub
			}
			return lower + (ub-lower)*(rank-float64(below))/float64(in)
		}
		lower, below = ub, cum[i]
	}
	return bounds[len(bounds)-1]
}

// gatherTotals reads the requests counter and the duration histogram from
// g, leaving out the health probes' series.
func gatherTotals(g prometheus.Gatherer) (Totals, error) {
	fams, err := g.Gather()
	if err != nil {
		return Totals{}, fmt.Errorf("gather request metrics: %w", err)
	}
	var t Totals
	for _, f := range fams {
		switch f.GetName() {
		case namespace + "_requests_total":
			for _, m := range f.GetMetric() {
				if label(m, "route") == RouteHealth {
					continue
				}
				n := uint64(m.GetCounter().GetValue())
				t.Requests += n
				switch code, _ := strconv.Atoi(label(m, "code")); code {
				case 401, 403:
					t.Denied += n
				case 429:
					t.RateLimited += n
				}
			}
		case namespace + "_request_duration_seconds":
			for _, m := range f.GetMetric() {
				h := m.GetHistogram()
				if label(m, "route") == RouteHealth || h == nil {
					continue
				}
				var bounds []float64
				var cum []uint64
				for _, b := range h.GetBucket() {
					if math.IsInf(b.GetUpperBound(), 1) {
						continue
					}
					bounds = append(bounds, b.GetUpperBound())
					cum = append(cum, b.GetCumulativeCount())
				}
				t = t.add(Totals{Bounds: bounds, Buckets: cum, Count: h.GetSampleCount()})
			}
		}
	}
	return t, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// RunSampler samples m's request metrics every interval (a minute, if 0)
// until ctx ends, labelling each sample with m's clock.
func (m *Metrics) RunSampler(ctx context.Context, every time.Duration) {
	s := m.Sampler()
	if s == nil {
		return
	}
	if every <= 0 {
		every = time.Minute
	}
	s.Sample(m.clock.Now()) // the base
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Sample(m.clock.Now()) // a failed gather skips a minute; the next sample covers it
		}
	}
}

// Summary is the last hour of traffic (the Sampler's, by m's clock) with
// the audit checkpoint and backup times the gauges read.
func (m *Metrics) Summary() (Summary, error) {
	if m == nil {
		return Summary{Minutes: []Minute{}}, nil
	}
	out, err := m.Sampler().Summary(m.clock.Now())
	if err != nil {
		return Summary{}, err
	}
	m.sources.mu.Lock()
	audit, backups := m.sources.audit, m.sources.backups
	m.sources.mu.Unlock()
	if audit != nil {
		if st := audit(); st.Tree && !st.CheckpointAt.IsZero() {
			out.AuditCheckpointAt, out.AuditEntries = st.CheckpointAt.UTC(), st.Entries
		}
	}
	if backups != nil {
		st := backups()
		out.Backups = &BackupTimes{LastBackup: utcOrZero(st.LastSuccess), LastRestoreTest: utcOrZero(st.LastRestoreTest)}
	}
	return out, nil
}

func utcOrZero(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}
