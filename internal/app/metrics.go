package app

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/store"
)

// readScrapeToken reads metrics.token_file and returns the SHA-256 of the
// token it holds (trailing whitespace dropped, as Prometheus's
// credentials_file does).
func readScrapeToken(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read metrics.token_file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if len(token) < config.MinScrapeToken || strings.ContainsAny(token, " \t\r\n") {
		return nil, fmt.Errorf("the scrape token in %s must be one word of at least %d characters", path, config.MinScrapeToken)
	}
	sum := sha256.Sum256([]byte(token))
	return sum[:], nil
}

// metricSources registers what the metrics read at scrape time: the
// audit log, the rate-limit backend, the store, secret ages, TLS
// certificates and backups.
func (a *App) metricSources(tlsConfigs map[string]*tls.Config) {
	m := a.metrics
	switch l := a.audit.(type) {
	case *audit.Log:
		m.SetAudit(func() metrics.AuditState {
			return metrics.AuditState{Queued: l.Queued(), Tree: true, Entries: l.Size(), CheckpointAt: l.CheckpointTime()}
		})
	default:
		if a.pgAudit != nil {
			m.SetAudit(func() metrics.AuditState { return metrics.AuditState{Queued: a.pgAudit.Queued()} })
		}
	}
	m.SetReady(a.gateway.Ready)
	m.SetRateLimitBackend(func() bool { ok, _ := a.limiter.Healthy(); return ok })
	m.SetStore(a.store.Ping)
	m.SetSecrets(a.secretAges())
	if len(tlsConfigs) > 0 {
		m.SetCerts(func() map[string]time.Time {
			out := make(map[string]time.Time, len(tlsConfigs))
			for name, tc := range tlsConfigs {
				if tc.GetCertificate == nil {
					continue
				}
				if c, err := tc.GetCertificate(&tls.ClientHelloInfo{}); err == nil && c != nil && c.Leaf != nil {
					out[name] = c.Leaf.NotAfter
				}
			}
			return out
		})
	}
	if a.backups != nil {
		m.SetBackups(func() metrics.BackupState {
			created, verified := a.backups.LastSuccess()
			return metrics.BackupState{LastSuccess: created, LastRestoreTest: verified}
		})
	}
}

// clientSecretCreated is when a client's current secret was made.
func clientSecretCreated(c *store.Client) time.Time {
	if !c.SecretRotatedAt.IsZero() {
		return c.SecretRotatedAt
	}
	return c.CreatedAt
}

func clientActive(c *store.Client, now time.Time) bool {
	return c.RevokedAt.IsZero() && (c.ExpiresAt.IsZero() || c.ExpiresAt.After(now))
}

// runMetricsSampler keeps the last hour of traffic, sampled every minute
// from the metrics registry off the request path, for GET
// /v1/metrics/summary (the console's dashboard).
func (a *App) runMetricsSampler(ctx context.Context) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.metrics.RunSampler(ctx, time.Minute)
	}()
}

// SampleMetrics takes one sample of the traffic now, by the app's clock
// (for tests, which step a fake clock rather than wait for the minute).
func (a *App) SampleMetrics() error { return a.metrics.Sampler().Sample(a.clock.Now()) }
