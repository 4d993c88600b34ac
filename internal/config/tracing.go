package config

import (
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/secrets"
)

// TracingConfig configures OpenTelemetry tracing of the request path,
// exported over OTLP/HTTP (docs/tracing.md). Tracing is off unless
// Endpoint is set; OTEL_* environment variables never switch it on.
type TracingConfig struct {
	// Endpoint is the collector's OTLP/HTTP URL: a base URL
	// (http://collector:4318) gets /v1/traces appended, a URL with a path
	// is used as it is.
	Endpoint string `yaml:"endpoint"`
	// Headers are sent with every export (a tenant id…); HeaderSecrets
	// name, by header, the secret (secrets section) that holds the value,
	// so that the config file holds no credential.
	Headers       map[string]string `yaml:"headers"`
	HeaderSecrets map[string]string `yaml:"header_secrets"`
	// SampleRatio is the fraction of traces recorded, 0 to 1 (default 1).
	SampleRatio *float64 `yaml:"sample_ratio"`
	// TrustParentSampling follows the sampled flag of an incoming
	// traceparent when the request came through trusted_proxies; by
	// default a caller's flag is ignored and SampleRatio decides alone.
	TrustParentSampling bool `yaml:"trust_parent_sampling"`
	// ServiceName is the service.name resource attribute (default
	// gatehouse).
	ServiceName string `yaml:"service_name"`
	// Timeout bounds one export (default 10s); Compression is gzip
	// (default) or none.
	Timeout     time.Duration `yaml:"timeout"`
	Compression string        `yaml:"compression"`
	// BatchTimeout is the longest a finished span waits to be exported
	// (default 5s); at most QueueSize (default 2048) wait, beyond which
	// spans are dropped rather than held.
	BatchTimeout time.Duration `yaml:"batch_timeout"`
	QueueSize    int           `yaml:"queue_size"`
	// TLS to the collector: a CA to trust, a client certificate.
	TLS *UpstreamTLSConfig `yaml:"tls"`
}

// Tracing defaults.
const (
	DefaultTracingService = "gatehouse"
	DefaultTracingTimeout = 10 * time.Second
	DefaultTracingBatch   = 5 * time.Second
	DefaultTracingQueue   = 2048
)

// Enabled reports whether traces are exported.
func (t TracingConfig) Enabled() bool { return t.Endpoint != "" }

// Ratio is the sample ratio, defaults applied.
func (t TracingConfig) Ratio() float64 {
	if t.SampleRatio == nil {
		return 1
	}
	return *t.SampleRatio
}

// ExportURL is the URL spans are posted to: Endpoint, with /v1/traces
// when it names no path.
func (t TracingConfig) ExportURL() string {
	u, err := url.Parse(t.Endpoint)
	if err != nil {
		return t.Endpoint
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String()
}

func (t *TracingConfig) applyDefaults() {
	if !t.Enabled() {
		return
	}
	if t.ServiceName == "" {
		t.ServiceName = DefaultTracingService
	}
	if t.Timeout == 0 {
		t.Timeout = DefaultTracingTimeout
	}
	if t.Compression == "" {
		t.Compression = "gzip"
	}
	if t.BatchTimeout == 0 {
		t.BatchTimeout = DefaultTracingBatch
	}
	if t.QueueSize == 0 {
		t.QueueSize = DefaultTracingQueue
	}
}

// tracingReserved are headers an export sets itself.
var tracingReserved = []string{"Content-Type", "Content-Length", "Content-Encoding", "Host", "Transfer-Encoding", "Connection"}

// validateTracing checks the tracing section.
func (c *Config) validateTracing(p *problems) {
	t := &c.Tracing
	if !t.Enabled() {
		if t.SampleRatio != nil || t.TrustParentSampling || t.ServiceName != "" || t.Timeout != 0 || t.Compression != "" || t.BatchTimeout != 0 || t.QueueSize != 0 || t.TLS != nil || len(t.Headers) > 0 || len(t.HeaderSecrets) > 0 {
			p.add("tracing", "set without tracing.endpoint: tracing is off until an OTLP/HTTP endpoint is given")
		}
		return
	}
	u, err := url.Parse(t.Endpoint)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
		p.add("tracing.endpoint", "must be the collector's OTLP/HTTP URL, such as http://collector:4318, not %q", t.Endpoint)
	case u.User != nil:
		p.add("tracing.endpoint", "must not carry user info; put credentials in tracing.header_secrets")
	case u.RawQuery != "" || u.Fragment != "":
		p.add("tracing.endpoint", "must not carry a query or fragment")
	case u.Scheme == "http" && len(t.HeaderSecrets) > 0 && c.Mode == ModeProd && !loopbackHost(u.Hostname()):
		p.add("tracing.endpoint", "is plain http in prod mode while tracing.header_secrets are set: they would cross the network in clear; use https")
	case u.Scheme == "http" && t.TLS != nil:
		p.add("tracing.tls", "set but tracing.endpoint is plain http")
	}
	if t.TLS != nil && (t.TLS.CertFile == "") != (t.TLS.KeyFile == "") {
		p.add("tracing.tls", "cert_file and key_file go together (the client certificate and its key)")
	}
	if r := t.Ratio(); !(r >= 0 && r <= 1) {
		p.add("tracing.sample_ratio", "must be from 0 to 1 (the fraction of requests traced), not %v", r)
	}
	if t.Timeout < 0 || t.Timeout > 0 && t.Timeout < 100*time.Millisecond {
		p.add("tracing.timeout", "must be at least 100ms")
	}
	if t.BatchTimeout < 10*time.Millisecond || t.BatchTimeout > time.Minute {
		p.add("tracing.batch_timeout", "must be from 10ms to 1m")
	}
	if t.QueueSize < 1 || t.QueueSize > 1<<20 {
		p.add("tracing.queue_size", "must be from 1 to 1048576 spans")
	}
	if t.Compression != "gzip" && t.Compression != "none" {
		p.add("tracing.compression", "must be gzip or none, not %q", t.Compression)
	}
	if strings.TrimSpace(t.ServiceName) != t.ServiceName || len(t.ServiceName) > 128 {
		p.add("tracing.service_name", "must be a name without surrounding spaces, at most 128 bytes")
	}
	for _, k := range slices.Sorted(maps.Keys(t.Headers)) {
		c.checkTracingHeader(p, "tracing.headers."+k, k)
		if v := t.Headers[k]; strings.ContainsAny(v, "\r\n\x00") {
			p.add("tracing.headers."+k, "the value must be one line")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(t.HeaderSecrets)) {
		at := "tracing.header_secrets." + k
		c.checkTracingHeader(p, at, k)
		if _, dup := t.Headers[k]; dup {
			p.add(at, "%s is also in tracing.headers; set it in one of them", k)
		}
		name := t.HeaderSecrets[k]
		if err := secrets.CheckName(name); err != nil {
			p.add(at, "%q is not a secret name: lowercase letters, digits, '-' and '_', starting with a letter", name)
		} else if secrets.IsMasterKeyEnv(secrets.EnvName(name)) {
			p.add(at, "the master key is not readable as a secret")
		}
	}
}

func (c *Config) checkTracingHeader(p *problems, at, name string) {
	if !validHeaderName(name) {
		p.add(at, "%q is not an HTTP header name", name)
		return
	}
	canon := textproto.CanonicalMIMEHeaderKey(name)
	if slices.Contains(tracingReserved, canon) {
		p.add(at, "%s is set by the exporter itself", canon)
	}
	for k := range c.Tracing.Headers {
		if k != name && http.CanonicalHeaderKey(k) == canon {
			p.add(at, "%s is given twice, in different cases", canon)
			return
		}
	}
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
