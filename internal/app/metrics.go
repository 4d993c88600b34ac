package app

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
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

// secretAgesEvery is how long the secret ages are kept between scrapes:
// they need store listings, and change by the day.
const secretAgesEvery = time.Minute

// secretAges returns the source of gatehouse_secret_age_seconds: when the
// oldest secret in use of each class was created — the active signing
// key, the oldest API key and client secret neither revoked nor expired.
func (a *App) secretAges() func(ctx context.Context) map[string]time.Time {
	var mu sync.Mutex
	var at time.Time
	var last map[string]time.Time
	return func(ctx context.Context) map[string]time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		if last != nil && now.Sub(at) < secretAgesEvery {
			return last
		}
		out := map[string]time.Time{}
		for _, k := range a.tokens.SigningKeys() {
			if k.Active {
				out["signing_key"] = k.CreatedAt
			}
		}
		if keys, err := a.keys.List(ctx); err == nil {
			if t, ok := oldest(len(keys), func(i int) (time.Time, bool) {
				k := keys[i]
				return k.CreatedAt, k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || k.ExpiresAt.After(now))
			}); ok {
				out["api_key"] = t
			}
		} else if !errors.Is(err, context.Canceled) {
			a.log.Warn("metrics: list keys for their ages", "err", err)
		}
		if clients, err := a.clients.List(ctx); err == nil {
			if t, ok := oldest(len(clients), func(i int) (time.Time, bool) {
				c := clients[i]
				return clientSecretCreated(c), clientActive(c, now)
			}); ok {
				out["client_secret"] = t
			}
		}
		at, last = now, out
		return out
	}
}

// oldest is the earliest of n times whose second result is true.
func oldest(n int, at func(i int) (time.Time, bool)) (time.Time, bool) {
	var min time.Time
	found := false
	for i := range n {
		if t, ok := at(i); ok && (!found || t.Before(min)) {
			min, found = t, true
		}
	}
	return min, found
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
