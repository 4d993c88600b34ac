package config_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

func TestDefaults(t *testing.T) {
	c, err := config.Load("", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.AdminListen != "127.0.0.1:8081" || c.DataDir != "./gatehouse-data" || c.Store.Driver != "sqlite" {
		t.Errorf("defaults: %+v", c)
	}
	if len(c.Routes) != 1 || c.Routes[0].Path != "/demo/" || c.Routes[0].Upstream != config.BuiltinEcho || c.Routes[0].Scopes[0] != "demo:read" {
		t.Errorf("demo route: %+v", c.Routes)
	}
	if c.Routes[0].MaxBody != 1<<20 || c.Routes[0].Timeout != 30*time.Second {
		t.Errorf("route defaults: %+v", c.Routes[0])
	}
	if c.Limits.IPv6Prefix != 64 {
		t.Errorf("limits.ipv6_prefix default: %d, want 64", c.Limits.IPv6Prefix)
	}
}

func TestEnvOverrides(t *testing.T) {
	env := map[string]string{"GATEHOUSE_DATA_DIR": "/tmp/d", "GATEHOUSE_LISTEN": "127.0.0.1:9000", "GATEHOUSE_ADMIN_LISTEN": "127.0.0.1:9001"}
	c, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/tmp/d" || c.Listen != "127.0.0.1:9000" || c.AdminListen != "127.0.0.1:9001" {
		t.Errorf("overrides not applied: %+v", c)
	}
}

func TestParseFull(t *testing.T) {
	c, err := config.Parse("g.yaml", []byte(`
mode: dev
limits: {max_body: 2MiB, max_headers: 50}
routes:
  - name: signals-read
    path: /api/v1/signals/
    methods: [get, HEAD]
    upstream: http://127.0.0.1:9000
    scopes: [read:signals]
    strip_prefix: true
    max_body: 64KiB
    timeout: 5s
  - name: other
    path: /other
    upstream: https://example.internal:8443/base
    scopes: [a, b]
`))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Routes[0]
	if r.Methods[0] != "GET" || r.MaxBody != 64<<10 || r.Timeout != 5*time.Second || !r.StripPrefix {
		t.Errorf("route 0: %+v", r)
	}
	if c.Routes[1].MaxBody != 2<<20 {
		t.Errorf("route 1 max_body = %d, want the global 2MiB", c.Routes[1].MaxBody)
	}
	if len(c.Hash) != 64 {
		t.Errorf("hash %q", c.Hash)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "36h": 36 * time.Hour, "1y": 365 * 24 * time.Hour, "0s": 0} {
		if got, err := config.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1d", "1.5d", "soon"} {
		if _, err := config.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q): no error", in)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("routes:\n  - name: a\n    path: /a/\n    upstream: http://h\n    scopes: [x]\n"))
	f.Add([]byte("mode: dev\nlimits: {max_body: 1MiB}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse("fuzz.yaml", data)
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && config.AsProblems(err) == nil {
			t.Fatalf("error is not Problems: %v", err)
		}
		for _, p := range config.AsProblems(err) {
			if badProblem(p) {
				t.Errorf("problem %q spans lines or names a Go type", p)
			}
		}
	})
}

func TestDevModeAllowsShorterAuditRetention(t *testing.T) {
	c, err := config.Parse("g.yaml", []byte("mode: dev\naudit: {retention: 30d}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.Audit.Retention) != 30*24*time.Hour {
		t.Errorf("retention %v", time.Duration(c.Audit.Retention))
	}
}

// TestAuditBackendDefaults: the audit log follows the store, and with
// PostgreSQL its origin names the database, not the host, so that every
// replica signs the same log.
func TestAuditBackendDefaults(t *testing.T) {
	tests := []struct{ yaml, backend, origin string }{
		{"store: {driver: postgres, dsn: \"postgres://gh@db:5432/gatehouse_prod\"}\n", "postgres", "gatehouse/gatehouse_prod"},
		{"store: {driver: postgres, dsn: \"postgres://gh@db/prod\"}\naudit: {backend: file}\n", "file", ""},
		{"store: {driver: postgres, dsn: \"postgres://gh@db/prod\"}\naudit: {origin: example.com/audit}\n", "postgres", "example.com/audit"},
		{"", "file", ""},
	}
	for _, tt := range tests {
		c, err := config.Parse("g.yaml", []byte(tt.yaml))
		if err != nil {
			t.Fatal(err)
		}
		if c.Audit.Backend != tt.backend || (tt.origin != "" && c.Audit.Origin != tt.origin) {
			t.Errorf("%q: backend %q origin %q, want %q %q", tt.yaml, c.Audit.Backend, c.Audit.Origin, tt.backend, tt.origin)
		}
	}
}

func TestIPv6PrefixAccepted(t *testing.T) {
	for _, b := range []int{48, 56, 64, 128} {
		c, err := config.Parse("g.yaml", []byte(fmt.Sprintf("limits: {ipv6_prefix: %d}\n", b)))
		if err != nil {
			t.Fatalf("ipv6_prefix %d: %v", b, err)
		}
		if c.Limits.IPv6Prefix != b {
			t.Errorf("ipv6_prefix %d read as %d", b, c.Limits.IPv6Prefix)
		}
	}
}
