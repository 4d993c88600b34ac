package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/internal/certs"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/tracing"
)

// openTracing starts the trace exporter the tracing section asks for
// (nil when tracing is off), with the header values it names by secret.
func (a *App) openTracing(ctx context.Context, cfg *config.Config) (*tracing.Provider, error) {
	t := cfg.Tracing
	if !t.Enabled() {
		return nil, nil
	}
	headers := make(map[string]string, len(t.Headers)+len(t.HeaderSecrets))
	maps.Copy(headers, t.Headers)
	for _, h := range slices.Sorted(maps.Keys(t.HeaderSecrets)) {
		name := t.HeaderSecrets[h]
		sec, err := a.secrets.Provider.Get(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("tracing.header_secrets.%s: %w", h, err)
		}
		v := strings.TrimRight(string(sec.Value), "\r\n")
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("tracing.header_secrets.%s: secret %s is not one line", h, name)
		}
		headers[http.CanonicalHeaderKey(h)] = v
		a.secrets.Loaded = append(a.secrets.Loaded, LoadedSecret{Name: name, Provider: a.secrets.Provider.Name(), Where: sec.Where, Version: sec.Version, Secret: sec})
	}
	var tc *tls.Config
	if u := t.TLS; u != nil {
		var err error
		if tc, err = certs.NewUpstreamConfig(certs.UpstreamConfig{CAFile: u.CAFile, CertFile: u.CertFile, KeyFile: u.KeyFile, ServerName: u.ServerName}); err != nil {
			return nil, fmt.Errorf("tracing.tls: %w", err)
		}
	}
	p, err := tracing.New(ctx, tracing.Config{
		URL:                 t.ExportURL(),
		Headers:             headers,
		SampleRatio:         t.Ratio(),
		TrustParentSampling: t.TrustParentSampling,
		ServiceName:         t.ServiceName,
		ServiceVersion:      a.version,
		Timeout:             t.Timeout,
		Gzip:                t.Compression == "gzip",
		TLS:                 tc,
		Logger:              a.log,
		QueueSize:           t.QueueSize,
		BatchTimeout:        t.BatchTimeout,
	})
	if err != nil {
		return nil, err
	}
	a.log.Info("tracing on", "url", t.ExportURL(), "sample_ratio", t.Ratio(), "trust_parent_sampling", t.TrustParentSampling)
	return p, nil
}

// tracer is the gateway's tracer: nil, not a no-op tracer, when tracing
// is off, so that the request path skips it with a nil check.
func (a *App) tracer() trace.Tracer {
	if a.tracing == nil {
		return nil
	}
	return a.tracing.Tracer()
}
