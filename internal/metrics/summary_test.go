package metrics_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/metrics"
)

func TestQuantile(t *testing.T) {
	bounds := []float64{.1, .2, .5, 1}
	tests := []struct {
		name  string
		q     float64
		cum   []uint64
		count uint64
		want  float64
	}{
		{"no observations", .99, []uint64{0, 0, 0, 0}, 0, 0},
		{"all in the first bucket, from zero", .5, []uint64{100, 100, 100, 100}, 100, .05},
		{"p99 in the third bucket", .99, []uint64{90, 98, 100, 100}, 100, .2 + .3*(99-98)/2},
		{"exactly a bound", .9, []uint64{90, 100, 100, 100}, 100, .1},
		{"in +Inf: the highest finite bound", .99, []uint64{10, 20, 30, 40}, 100, 1},
		{"bucket counts shorter than the bounds", .99, []uint64{1}, 1, 0},
		{"NaN q", math.NaN(), []uint64{1, 1, 1, 1}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := metrics.Quantile(tt.q, bounds, tt.cum, tt.count); math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("Quantile = %v, want %v", got, tt.want)
			}
		})
	}
}

// fakeTotals is a read function the test moves by hand.
type fakeTotals struct {
	t   metrics.Totals
	err error
}

func (f *fakeTotals) read() (metrics.Totals, error) {
	out := f.t
	out.Buckets = append([]uint64(nil), f.t.Buckets...)
	return out, f.err
}

// grow adds n requests of which denied and limited, all of duration in
// bucket b (of bounds .1, .5, 1).
func (f *fakeTotals) grow(n, denied, limited uint64, b int) {
	if f.t.Bounds == nil {
		f.t.Bounds, f.t.Buckets = []float64{.1, .5, 1}, make([]uint64, 3)
	}
	f.t.Requests += n
	f.t.Denied += denied
	f.t.RateLimited += limited
	f.t.Count += n
	for i := b; i < len(f.t.Buckets); i++ {
		f.t.Buckets[i] += n
	}
}

func TestSampler(t *testing.T) {
	base := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return base.Add(time.Duration(min)*time.Minute + 10*time.Second) }
	type step struct {
		min                int // sample at base + min minutes (+10s)
		n, denied, limited uint64
		bucket             int
		reset              bool // the totals go back to zero first
	}
	tests := []struct {
		name  string
		steps []step
		now   int // the summary's minute
		// want: the minutes (offset from base) and their request counts,
		// the hour's totals and p99.
		wantMinutes  []int
		wantRequests []uint64
		total        uint64
		denied       uint64
		limited      uint64
		p99          float64
	}{
		{name: "first sample is only the base", steps: []step{{min: 0, n: 5}}, now: 0,
			wantMinutes: []int{0}, wantRequests: []uint64{0}, p99: 0},
		{name: "deltas per minute", steps: []step{{min: 0}, {min: 1, n: 10, denied: 2, limited: 1}, {min: 2, n: 4, denied: 1}, {min: 3, n: 0}}, now: 3,
			wantMinutes: []int{1, 2, 3}, wantRequests: []uint64{10, 4, 0}, total: 14, denied: 3, limited: 1, p99: .1 * 0.99 * 14 / 14},
		{name: "two samples in one minute add up", steps: []step{{min: 0}, {min: 1, n: 3}, {min: 1, n: 4}}, now: 1,
			wantMinutes: []int{1}, wantRequests: []uint64{7}, total: 7, p99: .1 * .99},
		{name: "a gap leaves minutes out", steps: []step{{min: 0}, {min: 1, n: 1}, {min: 5, n: 2}}, now: 5,
			wantMinutes: []int{1, 5}, wantRequests: []uint64{1, 2}, total: 3, p99: .1 * .99},
		{name: "ring wraps: only the last 60 minutes", steps: func() []step {
			s := []step{{min: 0}}
			for m := 1; m <= 75; m++ {
				s = append(s, step{min: m, n: uint64(m)})
			}
			return s
		}(), now: 75,
			wantMinutes: seq(16, 75), wantRequests: useq(16, 75), total: sum(16, 75), p99: .1 * .99},
		{name: "old minutes age out with no sample", steps: []step{{min: 0}, {min: 1, n: 1}, {min: 2, n: 2}}, now: 61,
			wantMinutes: []int{2, 61}, wantRequests: []uint64{2, 0}, total: 2, p99: .1 * .99},
		{name: "a reset counts from zero", steps: []step{{min: 0, n: 100}, {min: 1, n: 5, reset: true}}, now: 1,
			wantMinutes: []int{1}, wantRequests: []uint64{5}, total: 5, p99: .1 * .99},
		{name: "p99 from the buckets' deltas", steps: []step{{min: 0, n: 1000, bucket: 2}, {min: 1, n: 98, bucket: 0}, {min: 1, n: 2, bucket: 1}}, now: 1,
			// the 1000 slow ones of the base are not in the hour: 98 ≤ .1, 2 in (.1, .5]
			wantMinutes: []int{1}, wantRequests: []uint64{100}, total: 100, p99: .1 + .4*(99-98)/2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTotals{}
			s := metrics.NewSampler(f.read)
			for _, st := range tt.steps {
				if st.reset {
					f.t = metrics.Totals{}
				}
				f.grow(st.n, st.denied, st.limited, st.bucket)
				if err := s.Sample(at(st.min)); err != nil {
					t.Fatal(err)
				}
			}
			sum, err := s.Summary(at(tt.now))
			if err != nil {
				t.Fatal(err)
			}
			if len(sum.Minutes) != len(tt.wantMinutes) {
				t.Fatalf("%d minutes, want %d: %+v", len(sum.Minutes), len(tt.wantMinutes), sum.Minutes)
			}
			for i, m := range sum.Minutes {
				if want := base.Add(time.Duration(tt.wantMinutes[i]) * time.Minute); !m.Start.Equal(want) || m.Requests != tt.wantRequests[i] {
					t.Errorf("minute %d: %v %d requests, want %v %d", i, m.Start, m.Requests, want, tt.wantRequests[i])
				}
			}
			if sum.Requests != tt.total || sum.Denied != tt.denied || sum.RateLimited != tt.limited {
				t.Errorf("totals %d/%d/%d, want %d/%d/%d", sum.Requests, sum.Denied, sum.RateLimited, tt.total, tt.denied, tt.limited)
			}
			if math.Abs(sum.P99Seconds-tt.p99) > 1e-9 {
				t.Errorf("p99 %v, want %v", sum.P99Seconds, tt.p99)
			}
		})
	}
}

func seq(a, b int) []int {
	var out []int
	for i := a; i <= b; i++ {
		out = append(out, i)
	}
	return out
}

func useq(a, b int) []uint64 {
	var out []uint64
	for i := a; i <= b; i++ {
		out = append(out, uint64(i))
	}
	return out
}

func sum(a, b int) uint64 {
	var n uint64
	for i := a; i <= b; i++ {
		n += uint64(i)
	}
	return n
}

// TestSamplerLiveMinute: the summary adds what grew since the last sample
// to the current minute, without storing it.
func TestSamplerLiveMinute(t *testing.T) {
	f := &fakeTotals{}
	s := metrics.NewSampler(f.read)
	now := time.Date(2026, 12, 3, 7, 0, 30, 0, time.UTC)
	s.Sample(now)
	f.grow(3, 1, 0, 0)
	for range 2 {
		sum, err := s.Summary(now)
		if err != nil {
			t.Fatal(err)
		}
		if len(sum.Minutes) != 1 || sum.Minutes[0].Requests != 3 || sum.Denied != 1 {
			t.Fatalf("summary %+v, want the 3 requests of the current minute", sum)
		}
	}
	f.err = errors.New("gather failed")
	if _, err := s.Summary(now); err == nil {
		t.Fatal("a failed read is no error")
	}
	if err := s.Sample(now); err == nil {
		t.Fatal("a failed read is no error")
	}
}

// TestMetricsSummary: through the real registry, health probes left out,
// 401/403 denials and 429s counted, the p99 from the duration histogram,
// and the audit and backup times of the sources.
func TestMetricsSummary(t *testing.T) {
	clock := gatehouse.NewFakeClock(time.Date(2026, 12, 3, 7, 0, 5, 0, time.UTC))
	m := metrics.New(metrics.Options{Clock: clock})
	sum, err := m.Summary()
	if err != nil || len(sum.Minutes) != 0 || sum.Backups != nil || !sum.AuditCheckpointAt.IsZero() {
		t.Fatalf("empty summary %+v %v", sum, err)
	}
	m.Sampler().Sample(clock.Now())
	api, health := m.Route("api"), m.Route(metrics.RouteHealth)
	for range 95 {
		api.Done("GET", 200, 2*time.Millisecond)
	}
	api.Done("GET", 401, time.Millisecond)
	api.Done("POST", 403, time.Millisecond)
	api.Done("GET", 429, time.Millisecond)
	api.Done("GET", 502, 3*time.Second)
	api.Done("GET", 200, 3*time.Second)
	for range 50 {
		health.Done("GET", 200, time.Minute)
	}
	clock.Advance(time.Minute)
	m.Sampler().Sample(clock.Now())
	cp := clock.Now().Add(-30 * time.Second)
	m.SetAudit(func() metrics.AuditState { return metrics.AuditState{Tree: true, Entries: 42, CheckpointAt: cp} })
	m.SetBackups(func() metrics.BackupState { return metrics.BackupState{LastSuccess: cp} })
	sum, err = m.Summary()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Requests != 100 || sum.Denied != 2 || sum.RateLimited != 1 {
		t.Fatalf("totals %d/%d/%d, want 100/2/1 (health left out)", sum.Requests, sum.Denied, sum.RateLimited)
	}
	// 98 of 100 at most 5 ms; the 99th rank falls in (2.5 s, 5 s].
	if want := 2.5 + 2.5*(99-98)/2.0; math.Abs(sum.P99Seconds-want) > 1e-9 {
		t.Fatalf("p99 %v, want %v", sum.P99Seconds, want)
	}
	if len(sum.Minutes) != 1 || !sum.Minutes[0].Start.Equal(time.Date(2026, 12, 3, 7, 1, 0, 0, time.UTC)) {
		t.Fatalf("minutes %+v", sum.Minutes)
	}
	if !sum.AuditCheckpointAt.Equal(cp) || sum.AuditEntries != 42 {
		t.Fatalf("audit %v %d", sum.AuditCheckpointAt, sum.AuditEntries)
	}
	if sum.Backups == nil || !sum.Backups.LastBackup.Equal(cp) || !sum.Backups.LastRestoreTest.IsZero() {
		t.Fatalf("backups %+v", sum.Backups)
	}
	var nilM *metrics.Metrics
	if s, err := nilM.Summary(); err != nil || s.Minutes == nil {
		t.Fatalf("nil Metrics: %+v %v", s, err)
	}
}
