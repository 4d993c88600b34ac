package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

func TestTracingSection(t *testing.T) {
	bad := []struct{ name, yaml, want string }{
		{"not a URL", "tracing:\n  endpoint: collector:4318\n", `g.yaml:2: tracing.endpoint: must be the collector's OTLP/HTTP URL, such as http://collector:4318, not "collector:4318"`},
		{"grpc scheme", "tracing:\n  endpoint: grpc://collector:4317\n", "g.yaml:2: tracing.endpoint: must be the collector's OTLP/HTTP URL"},
		{"user info", "tracing:\n  endpoint: https://u:p@collector:4318\n", "g.yaml:2: tracing.endpoint: must not carry user info; put credentials in tracing.header_secrets"},
		{"query", "tracing:\n  endpoint: https://collector:4318/v1/traces?k=v\n", "tracing.endpoint: must not carry a query or fragment"},
		{"secret headers in clear", "tracing:\n  endpoint: http://collector.example:4318\n  header_secrets: {Authorization: otlp-token}\n",
			"g.yaml:2: tracing.endpoint: is plain http in prod mode while tracing.header_secrets are set"},
		{"ratio above 1", "tracing:\n  endpoint: http://collector:4318\n  sample_ratio: 1.5\n", "g.yaml:3: tracing.sample_ratio: must be from 0 to 1 (the fraction of requests traced), not 1.5"},
		{"negative ratio", "tracing:\n  endpoint: http://collector:4318\n  sample_ratio: -0.1\n", "tracing.sample_ratio: must be from 0 to 1"},
		{"ratio not a number", "tracing:\n  endpoint: http://collector:4318\n  sample_ratio: all\n", "g.yaml:3: tracing.sample_ratio:"},
		{"compression", "tracing:\n  endpoint: http://collector:4318\n  compression: zstd\n", `g.yaml:3: tracing.compression: must be gzip or none, not "zstd"`},
		{"timeout", "tracing:\n  endpoint: http://collector:4318\n  timeout: 1ms\n", "g.yaml:3: tracing.timeout: must be at least 100ms"},
		{"batch timeout", "tracing:\n  endpoint: http://collector:4318\n  batch_timeout: 2m\n", "g.yaml:3: tracing.batch_timeout: must be from 10ms to 1m"},
		{"queue", "tracing:\n  endpoint: http://collector:4318\n  queue_size: -1\n", "g.yaml:3: tracing.queue_size: must be from 1 to 1048576 spans"},
		{"header name", "tracing:\n  endpoint: http://collector:4318\n  headers:\n    \"bad header\": x\n", `g.yaml:4: tracing.headers.bad header: "bad header" is not an HTTP header name`},
		{"reserved header", "tracing:\n  endpoint: http://collector:4318\n  headers:\n    content-type: text/plain\n", "g.yaml:4: tracing.headers.content-type: Content-Type is set by the exporter itself"},
		{"multi-line value", "tracing:\n  endpoint: http://collector:4318\n  headers:\n    X-Tenant: \"a\\nb\"\n", "g.yaml:4: tracing.headers.X-Tenant: the value must be one line"},
		{"header twice", "tracing:\n  endpoint: https://collector:4318\n  headers: {X-Token: a}\n  header_secrets: {X-Token: tok}\n", "tracing.header_secrets.X-Token: X-Token is also in tracing.headers"},
		{"secret name", "tracing:\n  endpoint: https://collector:4318\n  header_secrets:\n    Authorization: Bad/Name\n", `g.yaml:4: tracing.header_secrets.Authorization: "Bad/Name" is not a secret name`},
		{"tls over http", "tracing:\n  endpoint: http://collector:4318\n  tls: {ca_file: /ca.pem}\n", "tracing.tls: set but tracing.endpoint is plain http"},
		{"cert without key", "tracing:\n  endpoint: https://collector:4318\n  tls: {cert_file: /c.pem}\n", "tracing.tls: cert_file and key_file go together"},
		{"no endpoint", "tracing:\n  sample_ratio: 0.5\n", "g.yaml:1: tracing: set without tracing.endpoint: tracing is off until an OTLP/HTTP endpoint is given"},
		{"unknown key", "tracing:\n  endpoints: http://collector:4318\n", `g.yaml:2: tracing.endpoints: unknown key (did you mean "endpoint"?)`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("g.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}

	// Off by default, and the defaults once an endpoint is set.
	if d := config.Default(); d.Tracing.Enabled() {
		t.Error("tracing is on without an endpoint")
	}
	c, err := config.Parse("g.yaml", []byte("tracing:\n  endpoint: http://collector:4318\n"))
	if err != nil {
		t.Fatal(err)
	}
	tr := c.Tracing
	if !tr.Enabled() || tr.Ratio() != 1 || tr.ServiceName != "gatehouse" || tr.Timeout != 10*time.Second || tr.Compression != "gzip" ||
		tr.BatchTimeout != 5*time.Second || tr.QueueSize != 2048 || tr.TrustParentSampling {
		t.Errorf("defaults: %+v", tr)
	}
	for _, u := range []struct{ endpoint, want string }{
		{"http://collector:4318", "http://collector:4318/v1/traces"},
		{"http://collector:4318/", "http://collector:4318/v1/traces"},
		{"https://otlp.example/otlp/v1/traces", "https://otlp.example/otlp/v1/traces"},
	} {
		if got := (config.TracingConfig{Endpoint: u.endpoint}).ExportURL(); got != u.want {
			t.Errorf("ExportURL(%s) = %s, want %s", u.endpoint, got, u.want)
		}
	}
	// Secret headers over plain http to loopback (a sidecar collector),
	// and a ratio of 0, are fine.
	if _, err := config.Parse("g.yaml", []byte("tracing:\n  endpoint: http://127.0.0.1:4318\n  sample_ratio: 0\n  header_secrets: {Authorization: otlp-token}\n")); err != nil {
		t.Errorf("loopback collector: %v", err)
	}
}
