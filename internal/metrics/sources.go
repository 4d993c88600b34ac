package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse"
)

// AuditState is what the audit log reports at scrape time.
type AuditState struct {
	// Queued is the number of events waiting to be committed.
	Queued int
	// Tree says Entries and CheckpointAt are known (the PostgreSQL log's
	// tree is the sequencing replica's; elsewhere they are left out).
	Tree bool
	// Entries is the number of entries in the log.
	Entries uint64
	// CheckpointAt is when the latest signed checkpoint was written (zero:
	// none yet; the gauge is then left out).
	CheckpointAt time.Time
}

// BackupState is what the backup schedule reports at scrape time; zero
// times are exposed as 0 (never).
type BackupState struct {
	LastSuccess     time.Time // newest backup made
	LastRestoreTest time.Time // newest restore test that passed
}

// sources are the gauges read when scraped, from the functions the
// server registers (Set* methods). A function not set leaves its gauge
// out of the exposition.
type sources struct {
	clock   gatehouse.Clock
	timeout time.Duration

	mu          sync.Mutex
	audit       func() AuditState
	rateLimitUp func() bool
	storeUp     func(ctx context.Context) error
	secrets     func(ctx context.Context) map[string]time.Time
	certs       func() map[string]time.Time
	backups     func() BackupState
	ready       func(ctx context.Context) bool

	queueDepth, checkpointAt, entries, rlUp, readyDesc, storeUpDesc, secretAge, certNotAfter, backupAt, restoreAt *prometheus.Desc
}

func newSources(clock gatehouse.Clock, timeout time.Duration) *sources {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
	}
	return &sources{
		clock: clock, timeout: timeout,
		queueDepth:   d("audit_queue_depth", "Audit events waiting to be committed."),
		checkpointAt: d("audit_checkpoint_timestamp_seconds", "Unix time of the latest signed audit checkpoint."),
		entries:      d("audit_entries", "Entries in the audit log."),
		readyDesc:    d("ready", "1 when the instance is ready (what /health/ready answers: not draining, every critical check passing), 0 otherwise."),
		rlUp:         d("ratelimit_backend_up", "1 when the rate-limit backend (memory, or Redis) answers, 0 while limits fall back or fail."),
		storeUpDesc:  d("store_up", "1 when the store (SQLite or PostgreSQL) answers a ping, 0 otherwise."),
		secretAge:    d("secret_age_seconds", "Age of each secret in use, as gatehouse secrets status lists it (signing_key, api_key, client_secret: the oldest in use; pepper, audit_key, backup_identity, vault_token, approle_secret_id).", "class"),
		certNotAfter: d("cert_not_after_seconds", "Unix time the certificate served on each TLS listener expires.", "listener"),
		backupAt:     d("backup_last_success_timestamp_seconds", "Unix time of the newest backup made (0: none)."),
		restoreAt:    d("restore_test_last_success_timestamp_seconds", "Unix time of the newest restore test that passed (0: none)."),
	}
}

// SetReady makes f the source of gatehouse_ready.
func (m *Metrics) SetReady(f func(ctx context.Context) bool) { m.set(func(s *sources) { s.ready = f }) }

// SetAudit makes f the source of the audit log gauges.
func (m *Metrics) SetAudit(f func() AuditState) { m.set(func(s *sources) { s.audit = f }) }

// SetRateLimitBackend makes f the source of gatehouse_ratelimit_backend_up.
func (m *Metrics) SetRateLimitBackend(f func() bool) { m.set(func(s *sources) { s.rateLimitUp = f }) }

// SetStore makes ping the source of gatehouse_store_up.
func (m *Metrics) SetStore(ping func(ctx context.Context) error) {
	m.set(func(s *sources) { s.storeUp = ping })
}

// SetSecrets makes f the source of gatehouse_secret_age_seconds: the
// creation time of the oldest secret in use, by class.
func (m *Metrics) SetSecrets(f func(ctx context.Context) map[string]time.Time) {
	m.set(func(s *sources) { s.secrets = f })
}

// SetCerts makes f the source of gatehouse_cert_not_after_seconds: each
// TLS listener's certificate expiry.
func (m *Metrics) SetCerts(f func() map[string]time.Time) { m.set(func(s *sources) { s.certs = f }) }

// SetBackups makes f the source of the backup and restore test times.
func (m *Metrics) SetBackups(f func() BackupState) { m.set(func(s *sources) { s.backups = f }) }

func (m *Metrics) set(f func(*sources)) {
	if m == nil {
		return
	}
	m.sources.mu.Lock()
	defer m.sources.mu.Unlock()
	f(m.sources)
}

// Describe sends nothing: which gauges exist depends on what is set, so
// the collector is unchecked.
func (s *sources) Describe(chan<- *prometheus.Desc) {}

// Collect reads every source that is set.
func (s *sources) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	audit, rl, store, secrets, certs, backups, ready := s.audit, s.rateLimitUp, s.storeUp, s.secrets, s.certs, s.backups, s.ready
	s.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	unix := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if ready != nil {
		gauge(s.readyDesc, boolValue(ready(ctx)))
	}
	if audit != nil {
		st := audit()
		gauge(s.queueDepth, float64(st.Queued))
		if st.Tree {
			gauge(s.entries, float64(st.Entries))
		}
		if st.Tree && !st.CheckpointAt.IsZero() {
			gauge(s.checkpointAt, unix(st.CheckpointAt))
		}
	}
	if rl != nil {
		gauge(s.rlUp, boolValue(rl()))
	}
	if store != nil {
		gauge(s.storeUpDesc, boolValue(store(ctx) == nil))
	}
	if secrets != nil {
		now := s.clock.Now()
		for class, created := range secrets(ctx) {
			gauge(s.secretAge, max(0, now.Sub(created).Seconds()), class)
		}
	}
	if certs != nil {
		for listener, notAfter := range certs() {
			gauge(s.certNotAfter, unix(notAfter), listener)
		}
	}
	if backups != nil {
		st := backups()
		gauge(s.backupAt, unix(st.LastSuccess))
		gauge(s.restoreAt, unix(st.LastRestoreTest))
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
