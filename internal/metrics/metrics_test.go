package metrics_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/metrics"
)

// MustScrape returns m's text exposition.
func MustScrape(tb testing.TB, m *metrics.Metrics) string {
	tb.Helper()
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != http.StatusOK {
		tb.Fatalf("scrape: %d %s", w.Code, w.Body)
	}
	return w.Body.String()
}

// exercised is a Metrics with every metric given a value and every source
// set.
func exercised() *metrics.Metrics {
	m := metrics.New(metrics.Options{Version: "v-test"})
	r := m.Route("orders")
	r.Done("GET", 200, 3*time.Millisecond)
	r.Upstream(2 * time.Millisecond)
	m.AuthnFailure(metrics.AuthnRevoked)
	m.AuthzDecision(false, 40*time.Microsecond)
	m.RateLimited("free")
	m.BreakerState("http://orders:9000", metrics.BreakerOpen)
	m.AuditAppend(time.Millisecond, errors.New("disk full"))
	m.Revocation(time.Now().Add(-20 * time.Millisecond))
	m.CSPReport()
	now := time.Now()
	m.SetAudit(func() metrics.AuditState {
		return metrics.AuditState{Queued: 3, Tree: true, Entries: 42, CheckpointAt: now}
	})
	m.SetRateLimitBackend(func() bool { return false })
	m.SetStore(func(context.Context) error { return nil })
	m.SetReady(func(context.Context) bool { return true })
	m.SetSecrets(func(context.Context) map[string]time.Time {
		return map[string]time.Time{"signing_key": now.Add(-time.Hour)}
	})
	m.SetCerts(func() map[string]time.Time { return map[string]time.Time{"public": now.Add(24 * time.Hour)} })
	m.SetBackups(func() metrics.BackupState { return metrics.BackupState{LastSuccess: now} })
	return m
}

// TestExposition: every metric the issue names is exposed, with the Go
// and process collectors, and promlint finds nothing to say about any.
func TestExposition(t *testing.T) {
	text := MustScrape(t, exercised())
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, name := range []string{
		"gatehouse_requests_total", "gatehouse_request_duration_seconds", "gatehouse_upstream_duration_seconds",
		"gatehouse_authn_failures_total", "gatehouse_authz_decisions_total", "gatehouse_authz_eval_seconds",
		"gatehouse_ratelimit_rejections_total", "gatehouse_ratelimit_backend_up", "gatehouse_breaker_state",
		"gatehouse_audit_append_seconds", "gatehouse_audit_append_errors_total", "gatehouse_audit_queue_depth",
		"gatehouse_audit_checkpoint_timestamp_seconds", "gatehouse_audit_entries", "gatehouse_revocation_propagation_seconds",
		"gatehouse_secret_age_seconds", "gatehouse_cert_not_after_seconds", "gatehouse_backup_last_success_timestamp_seconds",
		"gatehouse_restore_test_last_success_timestamp_seconds", "gatehouse_store_up", "gatehouse_ready", "gatehouse_build_info",
		"gatehouse_ui_csp_reports_total",
		"go_goroutines", "process_cpu_seconds_total",
	} {
		if !strings.Contains(text, "\n# TYPE "+name+" ") {
			t.Errorf("%s is not exposed", name)
		}
	}
	s, err := metrics.ParseText(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for series, want := range map[string]float64{
		`gatehouse_requests_total{code="200",method="GET",route="orders"}`: 1,
		`gatehouse_request_duration_seconds_count{route="orders"}`:         1,
		`gatehouse_upstream_duration_seconds_count{route="orders"}`:        1,
		`gatehouse_authn_failures_total{reason="revoked"}`:                 1,
		`gatehouse_authn_failures_total{reason="missing"}`:                 0, // every reason from the start
		`gatehouse_authz_decisions_total{allow="false"}`:                   1,
		`gatehouse_ratelimit_rejections_total{tier="free"}`:                1,
		`gatehouse_breaker_state{upstream="http://orders:9000"}`:           2,
		`gatehouse_audit_append_errors_total`:                              1,
		`gatehouse_ui_csp_reports_total`:                                   1,
		`gatehouse_audit_queue_depth`:                                      3,
		`gatehouse_audit_entries`:                                          42,
		`gatehouse_ratelimit_backend_up`:                                   0,
		`gatehouse_store_up`:                                               1,
		`gatehouse_restore_test_last_success_timestamp_seconds`:            0,
	} {
		if got, ok := s[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if age := s[`gatehouse_secret_age_seconds{class="signing_key"}`]; age < 3599 || age > 3700 {
		t.Errorf("signing key age %v, want about 3600", age)
	}
}

// TestNativeHistograms: a scraper asking for protobuf gets the native
// buckets of the request histogram beside the classic ones.
func TestNativeHistograms(t *testing.T) {
	m := exercised()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, req)
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/vnd.google.protobuf") {
		t.Fatalf("Content-Type %q", ct)
	}
	// The native schema and positive spans are only in the protobuf form.
	if !strings.Contains(w.Body.String(), "gatehouse_request_duration_seconds") {
		t.Fatal("no request histogram in the protobuf exposition")
	}
}

// TestLabelsBounded: what a client controls never mints a label value: an
// unknown method is "other", a status outside 100-599 is 599.
func TestLabelsBounded(t *testing.T) {
	m := metrics.New(metrics.Options{})
	r := m.Route("r")
	for _, method := range []string{"BREW", "get", "X-" + strings.Repeat("A", 100)} {
		r.Done(method, 200, time.Millisecond)
	}
	r.Done("GET", 42, time.Millisecond)
	r.Done("GET", 1000, time.Millisecond)
	m.AuthnFailure(metrics.AuthnReason(99))
	s, err := metrics.ParseText(strings.NewReader(MustScrape(t, m)))
	if err != nil {
		t.Fatal(err)
	}
	want := metrics.Samples{
		`gatehouse_requests_total{code="200",method="other",route="r"}`: 3,
		`gatehouse_requests_total{code="599",method="GET",route="r"}`:   2,
	}
	got := s.Series("gatehouse_requests_total")
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if s[`gatehouse_authn_failures_total{reason="error"}`] != 1 {
		t.Errorf("an unknown reason is not counted as error")
	}
}

// TestNil: a nil *Metrics and *Route record nothing and do not panic, so
// components take them optionally.
func TestNil(t *testing.T) {
	var m *metrics.Metrics
	r := m.Route("x")
	r.Done("GET", 200, time.Second)
	r.Upstream(time.Second)
	m.AuthnFailure(metrics.AuthnInvalid)
	m.AuthzDecision(true, time.Second)
	m.RateLimited("t")
	m.BreakerState("u", 1)
	m.AuditAppend(time.Second, nil)
	m.Revocation(time.Now())
	m.CSPReport()
	m.SetStore(nil)
	var a gatehouse.Auditor = nopAuditor{}
	if m.Auditor(a) != a {
		t.Error("a nil Metrics wraps the auditor")
	}
}

type nopAuditor struct{}

func (nopAuditor) Record(context.Context, gatehouse.Event) error { return nil }

type failingAuditor struct{}

func (failingAuditor) Record(context.Context, gatehouse.Event) error { return errors.New("no space") }

// TestAuditor: the wrapped auditor times every append and counts the
// failed ones, and passes each error on.
func TestAuditor(t *testing.T) {
	m := metrics.New(metrics.Options{})
	ok, bad := m.Auditor(nopAuditor{}), m.Auditor(failingAuditor{})
	for range 3 {
		if err := ok.Record(context.Background(), gatehouse.Event{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := bad.Record(context.Background(), gatehouse.Event{}); err == nil {
		t.Fatal("the failure was swallowed")
	}
	s, _ := metrics.ParseText(strings.NewReader(MustScrape(t, m)))
	if s["gatehouse_audit_append_seconds_count"] != 4 || s["gatehouse_audit_append_errors_total"] != 1 {
		t.Errorf("appends %v, errors %v; want 4, 1", s["gatehouse_audit_append_seconds_count"], s["gatehouse_audit_append_errors_total"])
	}
}

// TestRegistryPerServer: two servers in one process keep their own
// counts (no default registry, no package state).
func TestRegistryPerServer(t *testing.T) {
	a, b := metrics.New(metrics.Options{}), metrics.New(metrics.Options{})
	a.Route("r").Done("GET", 200, 0)
	sa, _ := metrics.ParseText(strings.NewReader(MustScrape(t, a)))
	sb, _ := metrics.ParseText(strings.NewReader(MustScrape(t, b)))
	key := `gatehouse_requests_total{code="200",method="GET",route="r"}`
	if sa[key] != 1 || sb[key] != 0 {
		t.Errorf("a %v, b %v", sa[key], sb[key])
	}
}

// requestMetrics is what the gateway records for one proxied request.
func requestMetrics(m *metrics.Metrics, r *metrics.Route) {
	m.AuthzDecision(true, 30*time.Microsecond)
	r.Upstream(800 * time.Microsecond)
	r.Done("GET", 200, 1200*time.Microsecond)
}

// TestRequestMetricsAllocate nothing once a route's series exist.
func TestRequestMetricsAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	m := metrics.New(metrics.Options{})
	r := m.Route("r")
	requestMetrics(m, r)
	if n := testing.AllocsPerRun(1000, func() { requestMetrics(m, r) }); n != 0 {
		t.Errorf("%v allocations per request", n)
	}
}

// BenchmarkRequestMetrics is the metrics' share of one proxied request:
// the decision counter and eval histogram, the upstream histogram, the
// request counter and duration histogram (classic and native).
func BenchmarkRequestMetrics(b *testing.B) {
	m := metrics.New(metrics.Options{})
	r := m.Route("r")
	b.ReportAllocs()
	for b.Loop() {
		requestMetrics(m, r)
	}
}

// BenchmarkRequestMetricsParallel is the same on every core at once
// (the counters are shared: contention is what this measures).
func BenchmarkRequestMetricsParallel(b *testing.B) {
	m := metrics.New(metrics.Options{})
	r := m.Route("r")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			requestMetrics(m, r)
		}
	})
}
