// Package config defines Gatehouse's configuration file: its schema, its
// defaults, environment overrides and validation with errors that name the
// offending field and its line.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

// Modes.
const (
	ModeProd = "prod"
	ModeDev  = "dev"
)

// BuiltinEcho is the upstream value that names the built-in echo service.
const BuiltinEcho = "builtin:echo"

// Defaults.
const (
	DefaultDataDir         = "./gatehouse-data"
	DefaultListen          = "127.0.0.1:8080"
	DefaultAdminListen     = "127.0.0.1:8081"
	DefaultMaxBody         = 1 << 20
	DefaultMaxHeaderBytes  = 64 << 10
	DefaultMaxHeaders      = 100
	DefaultRouteTimeout    = 30 * time.Second
	DefaultShutdownTimeout = 15 * time.Second
	// Slow clients (nginx: client_header_timeout and client_body_timeout
	// 60s; Apache mod_reqtimeout: body MinRate 500 bytes/s).
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultMinRate           = 500
	// Pre-authentication limits: failed authentications and unknown
	// routes allowed per source address.
	DefaultPreAuthFailures = 20
	DefaultPreAuthPer      = time.Minute
	DefaultPreAuthSources  = 100_000
	// DefaultIPv6Prefix: per-source limits key IPv6 clients by their /64.
	DefaultIPv6Prefix = 64
)

// Config is the whole configuration of one Gatehouse process.
type Config struct {
	Mode            string           `yaml:"mode"`
	DataDir         string           `yaml:"data_dir"`
	Listen          string           `yaml:"listen"`
	AdminListen     string           `yaml:"admin_listen"`
	Store           StoreConfig      `yaml:"store"`
	Limits          LimitsConfig     `yaml:"limits"`
	Log             LogConfig        `yaml:"log"`
	Policy          PolicyConfig     `yaml:"policy"`
	RateLimit       ratelimit.Config `yaml:"ratelimit"`
	Auth            AuthConfig       `yaml:"auth"`
	TLS             TLSConfig        `yaml:"tls"`
	Audit           AuditConfig      `yaml:"audit"`
	ShutdownTimeout time.Duration    `yaml:"shutdown_timeout"`
	Routes          []RouteConfig    `yaml:"routes"`
	// TrustedProxies are the proxies (CIDRs or addresses) whose
	// X-Forwarded-For is believed: the client address used for rate
	// limits, policy input and audit is read right to left from it up to
	// the first untrusted hop, and only when the TCP peer is one of these.
	TrustedProxies []string          `yaml:"trusted_proxies"`
	ForwardAuth    ForwardAuthConfig `yaml:"forward_auth"`
	Backup         BackupConfig      `yaml:"backup"`
	Secrets        SecretsConfig     `yaml:"secrets"`
	Metrics        MetricsConfig     `yaml:"metrics"`
	Tracing        TracingConfig     `yaml:"tracing"`
	Incidents      IncidentsConfig   `yaml:"incidents"`

	// Source is the file the config came from ("" for built-in defaults).
	Source string `yaml:"-"`
	// Hash is the SHA-256 of the config file's bytes, hex ("" for defaults).
	Hash string `yaml:"-"`

	// lines are the lines of the fields in Source, by path; env the
	// environment variables that set fields, by path (see Problem).
	lines map[string]int
	env   map[string]string
}

// ForwardAuthConfig configures GET /auth/verify.
type ForwardAuthConfig struct {
	// Proxy is the proxy in front (nginx | traefik | caddy | envoy); only
	// its headers name the checked request. Unset: /auth/verify refuses
	// every call with a message saying to set it.
	Proxy string `yaml:"proxy"`
	// TrustedProxies, if set, are the only peers (CIDRs or addresses)
	// whose forward-auth calls are answered.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// MetricsConfig configures GET /metrics on the admin listener, which
// always needs a credential: an admin-API credential whose role reads
// metrics (admin, security, auditor), or the dedicated scrape token.
type MetricsConfig struct {
	// TokenFile holds the scrape token (at least 32 characters; trailing
	// whitespace ignored), a bearer token that reads /metrics and nothing
	// else — Prometheus's authorization.credentials_file. Unset: no
	// scrape token.
	TokenFile string `yaml:"token_file"`
}

// MinScrapeToken is the shortest scrape token accepted.
const MinScrapeToken = 32

// StoreConfig selects where keys, users and settings live.
type StoreConfig struct {
	Driver string `yaml:"driver"` // sqlite (default)
	DSN    string `yaml:"dsn"`
	// PasswordSecret names the secret (secrets section) that holds the
	// database password, set into the DSN when serve starts, so that the
	// config file holds none.
	PasswordSecret string `yaml:"password_secret"`
}

// LimitsConfig bounds what a request may carry.
type LimitsConfig struct {
	MaxBody        ByteSize `yaml:"max_body"`
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes"`
	MaxHeaders     int      `yaml:"max_headers"`

	// PasswordHashMemory bounds the argon2id memory of sign-ins checked at
	// once; more wait up to PasswordHashWait, then get 503 with
	// Retry-After. Default: GOMAXPROCS hashes of 19 MiB.
	PasswordHashMemory ByteSize      `yaml:"password_hash_memory"`
	PasswordHashWait   time.Duration `yaml:"password_hash_wait"` // default 2s
	// ReadHeaderTimeout is how long a client may take to send a request's
	// headers, on both listeners (default 10s).
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout is how long a client may take to send a request body,
	// in all (default 60s), and MinRate the slowest it may send it, in
	// bytes per second after the first second (default 500). Routes may
	// set their own.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	MinRate     ByteSize      `yaml:"min_rate"`
	// PreAuth limits failed authentications and unknown routes per
	// source address, before any credential is looked up.
	PreAuth PreAuthConfig `yaml:"preauth"`
	// IPv6Prefix is how many leading bits of an IPv6 client address every
	// per-source-address limit keys on (pre-authentication, anonymous
	// rate limits, admin sign-in, /oauth/token lockouts): 48 to 128,
	// default 64, so that one subscriber's /64 is one source. IPv4 (and
	// IPv4-mapped IPv6) clients are keyed by address. Audit events keep
	// the address (audit.source_ip).
	IPv6Prefix int `yaml:"ipv6_prefix"`
}

// PreAuthConfig limits what a source address may spend on failures: after
// Failures failed authentications or unknown routes within Per (a token
// bucket refilling Failures per Per), its requests are answered 429 before
// the credential is looked up, and its failures are audited as one event
// per Per with a count. At most Sources addresses are tracked.
type PreAuthConfig struct {
	Failures int           `yaml:"failures"` // default 20; -1 switches the limit off
	Per      time.Duration `yaml:"per"`      // default 1m
	Sources  int           `yaml:"sources"`  // default 100000
}

// PolicyConfig selects the authorization policy (default: the embedded
// one) and the request headers a policy may read.
type PolicyConfig struct {
	authz.Config `yaml:",inline"`
	Headers      []string `yaml:"headers"`
}

// AuthConfig configures the token service: Gatehouse's own issuer and
// the external issuers whose tokens the gateway trusts.
type AuthConfig struct {
	Issuer          string                 `yaml:"issuer"` // default: http://<listen address>
	Audience        string                 `yaml:"audience"`
	TokenTTL        Duration               `yaml:"token_ttl"`
	SigningAlg      string                 `yaml:"signing_alg"` // EdDSA | ES256
	SigningRotation Duration               `yaml:"signing_key_rotation"`
	ExternalIssuers []authn.ExternalIssuer `yaml:"external_issuers"`
}

// AuditConfig configures the tamper-evident audit log.
type AuditConfig struct {
	Durability string   `yaml:"durability"` // sync (default) | batch
	Retention  Duration `yaml:"retention"`  // default 180d; at least 90d in prod, 30d in dev
	SourceIP   string   `yaml:"source_ip"`  // full (default) | truncate | hash
	Stream     string   `yaml:"stream"`     // "" | stdout | stderr | a file path: JSON lines
	Origin     string   `yaml:"origin"`     // checkpoint origin; default gatehouse/<hostname>, or gatehouse/<database> in postgres
	Dir        string   `yaml:"dir"`        // default <data_dir>/audit; with backend postgres only the signing key lives there
	// Backend is where events are stored: file (segments in Dir, one log
	// per process) or postgres (one log for every replica, in the store's
	// database). Default: postgres when store.driver is postgres.
	Backend            string        `yaml:"backend"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
}

// TLSConfig is TLS on the listeners, and mTLS client authentication.
type TLSConfig struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	MinVersion   string `yaml:"min_version"` // "1.2" (default) or "1.3"
	ClientCAFile string `yaml:"client_ca_file"`
	// Admin serves the admin listener with the same certificate.
	Admin bool `yaml:"admin"`
	// RedirectListen is a plain-HTTP listener that only redirects to HTTPS.
	RedirectListen string `yaml:"redirect_listen"`
	// ClientPrincipals maps verified client certificates to principals.
	ClientPrincipals []authn.CertPrincipal `yaml:"client_principals"`
}

// Enabled reports whether the public listener serves TLS.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" }

// BreakerConfig is a route's circuit breaker (see gatehouse.Breaker).
type BreakerConfig struct {
	ConsecutiveFailures int           `yaml:"consecutive_failures"`
	FailureRatio        float64       `yaml:"failure_ratio"`
	MinRequests         int           `yaml:"min_requests"`
	OpenTimeout         time.Duration `yaml:"open_timeout"`
	HalfOpenRequests    int           `yaml:"half_open_requests"`
}

// UpstreamTLSConfig is TLS to a route's upstream.
type UpstreamTLSConfig struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// LogConfig controls the process log.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // json | text
	Access *bool  `yaml:"access"` // one line per request; default true
}

// RouteConfig is one route as written in the config file.
type RouteConfig struct {
	Name        string        `yaml:"name"`
	Path        string        `yaml:"path"`
	Methods     []string      `yaml:"methods"`
	Upstream    string        `yaml:"upstream"`
	Scopes      []string      `yaml:"scopes"`
	Public      bool          `yaml:"public"`
	StripPrefix bool          `yaml:"strip_prefix"`
	MaxBody     ByteSize      `yaml:"max_body"`
	Timeout     time.Duration `yaml:"timeout"`
	Tool        string        `yaml:"tool"`
	// RateLimit is a route-specific limit on top of the tier limits.
	RateLimit      *ratelimit.Limit   `yaml:"ratelimit"`
	ConnectTimeout time.Duration      `yaml:"connect_timeout"`
	TotalTimeout   time.Duration      `yaml:"total_timeout"`
	TLS            *UpstreamTLSConfig `yaml:"tls"`
	Breaker        BreakerConfig      `yaml:"breaker"`
	JSONSchema     string             `yaml:"json_schema"`
	Redact         bool               `yaml:"redact"` // redact secrets in response bodies
	ContentTypes   []string           `yaml:"content_types"`
	// MethodOverride: Gatehouse applies X-HTTP-Method-Override on POST
	// itself (routed, authorized and forwarded as that method); otherwise
	// the header is removed before proxying.
	MethodOverride bool `yaml:"method_override"`
	// WebSocket admits Upgrade: websocket on GET; other upgrades (h2c)
	// and upgrades on other routes are refused (400).
	WebSocket bool `yaml:"websocket"`
	// KeepServerHeaders passes the upstream's Server and X-Powered-By on.
	KeepServerHeaders bool `yaml:"keep_server_headers"`
	// ReadTimeout and MinRate override limits.read_timeout and
	// limits.min_rate for this route's request bodies.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	MinRate     ByteSize      `yaml:"min_rate"`
	// BufferRequest reads the whole body (at most max_body) before the
	// upstream connection is used, so slow clients never hold one.
	BufferRequest bool `yaml:"buffer_request"`
	// AllowPathParams admits ';' path parameters on this route.
	AllowPathParams bool `yaml:"allow_path_params"`
}

// Default returns the configuration used when no file is given: embedded
// store, loopback listeners and the demo route to the built-in echo upstream.
func Default() *Config {
	c := &Config{
		Routes: []RouteConfig{{
			Name:     "demo",
			Path:     "/demo/",
			Upstream: BuiltinEcho,
			Scopes:   []string{"demo:read"},
		}},
	}
	c.applyDefaults()
	return c
}

func (c *Config) applyDefaults() {
	if c.Mode == "" {
		c.Mode = ModeProd
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.AdminListen == "" {
		c.AdminListen = DefaultAdminListen
	}
	if c.Store.Driver == "" {
		c.Store.Driver = "sqlite"
	}
	if c.Limits.MaxBody == 0 {
		c.Limits.MaxBody = DefaultMaxBody
	}
	if c.Limits.MaxHeaderBytes == 0 {
		c.Limits.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.Limits.MaxHeaders == 0 {
		c.Limits.MaxHeaders = DefaultMaxHeaders
	}
	l := &c.Limits
	if l.PasswordHashWait == 0 {
		l.PasswordHashWait = 2 * time.Second
	}
	if l.ReadHeaderTimeout == 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if l.ReadTimeout == 0 {
		l.ReadTimeout = DefaultReadTimeout
	}
	if l.MinRate == 0 {
		l.MinRate = DefaultMinRate
	}
	if l.PreAuth.Failures == 0 {
		l.PreAuth.Failures = DefaultPreAuthFailures
	}
	if l.PreAuth.Per == 0 {
		l.PreAuth.Per = DefaultPreAuthPer
	}
	if l.PreAuth.Sources == 0 {
		l.PreAuth.Sources = DefaultPreAuthSources
	}
	if l.IPv6Prefix == 0 {
		l.IPv6Prefix = DefaultIPv6Prefix
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}

	if c.Audit.Durability == "" {
		c.Audit.Durability = "sync"
	}
	if c.Audit.Retention == 0 {
		c.Audit.Retention = Duration(180 * 24 * time.Hour)
	}
	if c.Audit.SourceIP == "" {
		c.Audit.SourceIP = "full"
	}
	if c.Audit.CheckpointInterval == 0 {
		c.Audit.CheckpointInterval = 10 * time.Second
	}
	if c.Audit.Backend == "" {
		c.Audit.Backend = "file"
		if c.Store.Driver == "postgres" {
			c.Audit.Backend = "postgres"
		}
	}
	if c.Audit.Origin == "" && c.Audit.Backend == "postgres" {
		// Every replica signs the one log: the origin must not depend
		// on the host.
		if pc, err := pgx.ParseConfig(c.Store.DSN); err == nil && pc.Database != "" {
			c.Audit.Origin = "gatehouse/" + pc.Database
		} else {
			c.Audit.Origin = "gatehouse/audit"
		}
	}
	if c.Audit.Origin == "" {
		host, _ := os.Hostname()
		host = strings.Map(func(r rune) rune {
			if r == ' ' || r == '+' || r == '\t' {
				return '-'
			}
			return r
		}, host)
		c.Audit.Origin = "gatehouse/" + host
	}
	c.Backup.applyDefaults()
	c.Tracing.applyDefaults()
	if c.Auth.Audience == "" {
		c.Auth.Audience = authn.DefaultAudience
	}
	if c.Auth.TokenTTL == 0 {
		c.Auth.TokenTTL = Duration(authn.DefaultTokenTTL)
	}
	if c.Auth.SigningAlg == "" {
		c.Auth.SigningAlg = authn.AlgEdDSA
	}
	if c.Auth.SigningRotation == 0 {
		c.Auth.SigningRotation = Duration(authn.DefaultSigningRotation)
	}
	c.RateLimit = c.RateLimit.WithDefaults()
	c.Secrets.applyDefaults(c)
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.MaxBody == 0 {
			r.MaxBody = c.Limits.MaxBody
		}
		if r.Timeout == 0 {
			r.Timeout = DefaultRouteTimeout
		}
		if r.ReadTimeout == 0 {
			r.ReadTimeout = c.Limits.ReadTimeout
		}
		if r.MinRate == 0 {
			r.MinRate = c.Limits.MinRate
		}
		for j, m := range r.Methods {
			r.Methods[j] = strings.ToUpper(m)
		}
		b := &r.Breaker
		if b.ConsecutiveFailures == 0 {
			b.ConsecutiveFailures = 5
		}
		if b.FailureRatio == 0 {
			b.FailureRatio = 0.5
		}
		if b.MinRequests == 0 {
			b.MinRequests = 20
		}
		if b.OpenTimeout == 0 {
			b.OpenTimeout = 30 * time.Second
		}
		if b.HalfOpenRequests == 0 {
			b.HalfOpenRequests = 1
		}
	}
}

// AccessLog reports whether one log line per request is written.
func (c *Config) AccessLog() bool { return c.Log.Access == nil || *c.Log.Access }

// Load reads the file at path (or the defaults when path is ""), applies the
// environment overrides of DESIGN.md §8 and validates the result.
//
// A config with problems returns them all as Problems, each placed at its
// file and line (or at the environment variable that set the value),
// together with the config as far as it could be read, so that a caller
// can check what it names on disk too (app.Check) and report everything at
// once; such a config must not be served.
func Load(path string, getenv func(string) string) (*Config, error) {
	if path == "" {
		c := Default()
		c.applyEnv(getenv)
		return c.checked(nil)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Problems{{File: path, Message: "cannot read the config file: " + pathError(err)}}
	}
	return parse(path, data, getenv)
}

// Parse decodes and validates a config file's bytes, as Load does without
// the environment. name is used in problems only.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, data, nil)
}

func parse(name string, data []byte, getenv func(string) string) (*Config, error) {
	var root, next yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, Problems{syntaxProblem(name, err)}
	}
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, Problems{{File: name, Line: next.Line, Message: "a config file holds one YAML document; another starts here"}}
	case !errors.Is(err, io.EOF):
		return nil, Problems{syntaxProblem(name, err)}
	}
	c := &Config{}
	d := &decoder{lines: map[string]int{}}
	if len(root.Content) > 0 {
		doc := root.Content[0]
		if d.value(doc, reflect.TypeFor[Config](), "") {
			if err := doc.Decode(c); err != nil {
				// The walk above refuses what YAML cannot decode; this
				// is only a safety net.
				d.add(doc, "", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			}
		}
	}
	c.Source, c.Hash, c.lines = name, hashHex(data), d.lines
	c.applyEnv(getenv)
	c.applyDefaults()
	ps := Problems(d.problems) // placed where the walk found them
	for i := range ps {
		ps[i].File = name
	}
	return c.checked(ps)
}

// checked validates c, whose defaults are applied.
func (c *Config) checked(ps Problems) (*Config, error) {
	if ps = ps.With(c.place(c.validate())); len(ps) > 0 {
		return c, ps
	}
	return c, nil
}

// pathError is an *fs.PathError's reason alone ("no such file or
// directory"), or err's text.
func pathError(err error) string {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

// applyEnv applies the environment overrides and notes which variable set
// which field, for problems with the value.
func (c *Config) applyEnv(getenv func(string) string) {
	if getenv == nil {
		return
	}
	for _, o := range []struct {
		name, path string
		to         *string
	}{
		{"GATEHOUSE_DATA_DIR", "data_dir", &c.DataDir},
		{"GATEHOUSE_LISTEN", "listen", &c.Listen},
		{"GATEHOUSE_ADMIN_LISTEN", "admin_listen", &c.AdminListen},
	} {
		if v := getenv(o.name); v != "" {
			*o.to = v
			if c.env == nil {
				c.env = map[string]string{}
			}
			c.env[o.path] = o.name
		}
	}
}

// ParsePrefix reads a trusted-proxy entry: a CIDR ("10.0.0.0/8") or one
// address ("192.0.2.7", "::1"). A prefix of length 0 is refused: it would
// let any client choose its own address.
func ParsePrefix(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return p, fmt.Errorf("%q is not a CIDR (like 10.0.0.0/8) or an IP address", s)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return p, fmt.Errorf("%q is not a CIDR (like 10.0.0.0/8) or an IP address", s)
		}
		a = a.Unmap()
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
	}
	if p.Bits() == 0 {
		return p, fmt.Errorf("%q trusts every address, so any client could choose its own; list your proxies' networks", s)
	}
	return p.Masked(), nil
}

// ParsePrefixes parses validated trusted-proxy entries.
func ParsePrefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := ParsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func isToolName(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-.:", c)) {
			return false
		}
	}
	return len(s) <= 128
}

func methodsOverlap(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, m := range a {
		if slices.Contains(b, m) {
			return true
		}
	}
	return false
}

func methodsString(m []string) string {
	if len(m) == 0 {
		return "any method on"
	}
	return strings.Join(m, ",")
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("must be host:port, not %q", s)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return fmt.Errorf("host %q must be an IP address or localhost", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q must be a number from 0 to 65535", port)
	}
	return nil
}

func checkRoutePath(p string) error {
	if p == "" {
		return errors.New("is required")
	}
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("must start with /, not %q", p)
	}
	if strings.ContainsAny(p, "%\\?#;\x00") || strings.Contains(p, "//") {
		return fmt.Errorf("%q must be a plain path (no %%, \\, ?, #, ;, or //)", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%q must not contain . or .. segments", p)
		}
	}
	for _, reserved := range []string{"/health", "/oauth", "/.well-known", "/auth/verify", "/v1/authorize"} {
		if p == reserved || strings.HasPrefix(p, reserved+"/") {
			return fmt.Errorf("%q is Gatehouse's own path %s; a route there would never be reached", p, reserved)
		}
	}
	return nil
}

func checkUpstream(s string) error {
	if s == "" {
		return errors.New("is required")
	}
	if s == BuiltinEcho {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an absolute http:// or https:// URL (or %s), not %q", BuiltinEcho, s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q must not carry a query, fragment or user info", s)
	}
	return nil
}

// Route converts the validated route config into the domain form.
func (r *RouteConfig) Route() gatehouse.Route {
	return gatehouse.Route{
		Name:           r.Name,
		PathPrefix:     r.Path,
		Methods:        r.Methods,
		Upstream:       r.Upstream,
		Scopes:         r.Scopes,
		StripPrefix:    r.StripPrefix,
		MaxBody:        int64(r.MaxBody),
		Timeout:        r.Timeout,
		Public:         r.Public,
		Tool:           r.Tool,
		RateLimit:      rateLimit(r.RateLimit),
		ConnectTimeout: r.ConnectTimeout,
		TotalTimeout:   r.TotalTimeout,
		UpstreamTLS:    upstreamTLS(r.TLS),
		Breaker:        gatehouse.Breaker(r.Breaker),
		JSONSchema:     r.JSONSchema,
		Redact:         r.Redact,
		ContentTypes:   r.ContentTypes,

		MethodOverride:    r.MethodOverride,
		WebSocket:         r.WebSocket,
		KeepServerHeaders: r.KeepServerHeaders,
		ReadTimeout:       r.ReadTimeout,
		MinRate:           int64(r.MinRate),
		BufferRequest:     r.BufferRequest,
		AllowPathParams:   r.AllowPathParams,
	}
}

func upstreamTLS(t *UpstreamTLSConfig) *gatehouse.UpstreamTLS {
	if t == nil {
		return nil
	}
	return &gatehouse.UpstreamTLS{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName}
}

func rateLimit(l *ratelimit.Limit) gatehouse.RateLimit {
	if l == nil {
		return gatehouse.RateLimit{}
	}
	return gatehouse.RateLimit{Requests: l.Requests, Per: l.Per}
}

// ResolveDataDir returns the absolute data directory.
func (c *Config) ResolveDataDir() (string, error) {
	d, err := filepath.Abs(c.DataDir)
	if err != nil {
		return "", fmt.Errorf("resolve data_dir %q: %w", c.DataDir, err)
	}
	return d, nil
}
