package config

import (
	"errors"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

// validate checks every section of c, defaults applied, and returns all
// the problems found, by field path. It reads no file: what the config
// names on disk is checked by app.Check.
func (c *Config) validate() problems {
	var p problems
	c.validateServer(&p)
	c.validateStore(&p)
	c.validateLimits(&p)
	c.validateLog(&p)
	p.addErr("ratelimit", c.RateLimit.Validate())
	c.validateAuth(&p)
	c.validateAudit(&p)
	c.validateTLS(&p)
	c.validatePolicy(&p)
	c.validateProxies(&p)
	c.validateBackup(&p)
	c.validateSecrets(&p)
	c.validateMetrics(&p)
	c.validateTracing(&p)
	c.validateIncidents(&p)
	c.validateRoutes(&p)
	return p
}

// addErr adds each error joined in err, at the field its text starts
// with when that is path or inside it ("ratelimit.tiers.free: …"), else
// at path.
func (p *problems) addErr(path string, err error) {
	if err == nil {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		if e == ratelimit.ErrInvalidLimit && len(errs) > 1 {
			continue // says only what kind of error the others are
		}
		at, msg := path, e.Error()
		if f, m, ok := strings.Cut(msg, ": "); ok && !strings.Contains(f, " ") && (f == path || strings.HasPrefix(f, path+".")) {
			at, msg = f, m
		}
		p.add(at, "%s", msg)
	}
}

func (c *Config) validateServer(p *problems) {
	if c.Mode != ModeProd && c.Mode != ModeDev {
		p.add("mode", "must be %q or %q, not %q", ModeProd, ModeDev, c.Mode)
	}
	listen, admin := checkHostPort(c.Listen), checkHostPort(c.AdminListen)
	if listen != nil {
		p.add("listen", "%v", listen)
	}
	if admin != nil {
		p.add("admin_listen", "%v", admin)
	}
	if listen == nil && admin == nil && c.Listen == c.AdminListen && !strings.HasSuffix(c.Listen, ":0") {
		p.add("admin_listen", "must differ from listen (%s)", c.Listen)
	}
	if c.ShutdownTimeout < 0 {
		p.add("shutdown_timeout", "must not be negative")
	}
}

func (c *Config) validateStore(p *problems) {
	switch c.Store.Driver {
	case "sqlite":
		if c.Store.DSN != "" {
			p.add("store.dsn", "sqlite keeps its database in data_dir; remove dsn")
		}
	case "postgres":
		if !strings.HasPrefix(c.Store.DSN, "postgres://") && !strings.HasPrefix(c.Store.DSN, "postgresql://") && !strings.Contains(c.Store.DSN, "host=") {
			p.add("store.dsn", "must be a PostgreSQL URL (postgres://user@host:5432/db) or key=value DSN")
		}
	default:
		p.add("store.driver", "must be sqlite or postgres, not %q", c.Store.Driver)
	}
}

func (c *Config) validateLimits(p *problems) {
	l := c.Limits
	if l.MaxHeaders < 0 {
		p.add("limits.max_headers", "must not be negative")
	}
	for _, s := range []setting[time.Duration]{{"password_hash_wait", l.PasswordHashWait}, {"read_header_timeout", l.ReadHeaderTimeout}, {"read_timeout", l.ReadTimeout}} {
		if s.value < 0 {
			p.add("limits."+s.name, "must not be negative")
		}
	}
	if l.PreAuth.Failures < -1 {
		p.add("limits.preauth.failures", "must be at least 1, or -1 to switch the limit off")
	}
	if l.PreAuth.Per < time.Second {
		p.add("limits.preauth.per", "must be at least 1s")
	}
	if l.PreAuth.Sources < 1 {
		p.add("limits.preauth.sources", "must be at least 1")
	}
	if b := l.IPv6Prefix; b < 48 || b > 128 {
		p.add("limits.ipv6_prefix", "must be 48 to 128 (bits of an IPv6 address a per-source limit keys on), not %d", b)
	}
}

func (c *Config) validateLog(p *problems) {
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		p.add("log.level", "must be one of debug, info, warn, error; not %q", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		p.add("log.format", "must be json or text, not %q", c.Log.Format)
	}
}

func (c *Config) validateAuth(p *problems) {
	a := c.Auth
	if a.Issuer != "" {
		if u, err := url.Parse(a.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			p.add("auth.issuer", "must be an http(s) URL, not %q", a.Issuer)
		}
	}
	if a.SigningAlg != authn.AlgEdDSA && a.SigningAlg != authn.AlgES256 {
		p.add("auth.signing_alg", "must be %s or %s, not %q", authn.AlgEdDSA, authn.AlgES256, a.SigningAlg)
	}
	if a.TokenTTL < Duration(time.Minute) || a.TokenTTL > Duration(24*time.Hour) {
		p.add("auth.token_ttl", "must be between 1m and 24h, not %s", time.Duration(a.TokenTTL))
	}
	if a.SigningRotation < Duration(24*time.Hour) {
		p.add("auth.signing_key_rotation", "must be at least 1d")
	}
	for i, e := range a.ExternalIssuers {
		at := item("auth.external_issuers", i)
		if err := e.Validate(c.Mode == ModeDev); err != nil {
			if fe, ok := errors.AsType[*authn.FieldError](err); ok {
				p.add(field(at, fe.Field), "%s", fe.Msg)
			} else {
				p.add(at, "%v", err)
			}
		}
		if slices.ContainsFunc(a.ExternalIssuers[:i], func(prev authn.ExternalIssuer) bool { return prev.Issuer == e.Issuer }) {
			p.add(at+".issuer", "%q is configured twice", e.Issuer)
		}
	}
}

func (c *Config) validateAudit(p *problems) {
	a := c.Audit
	switch {
	case a.Backend != "file" && a.Backend != "postgres":
		p.add("audit.backend", "must be file or postgres, not %q", a.Backend)
	case a.Backend == "postgres" && c.Store.Driver != "postgres":
		p.add("audit.backend", "postgres needs store.driver postgres (the log lives in the store's database)")
	}
	switch {
	case a.Durability != "sync" && a.Durability != "batch":
		p.add("audit.durability", "must be sync or batch, not %q", a.Durability)
	case a.Backend == "postgres" && a.Durability != "sync":
		p.add("audit.durability", "with backend postgres events are always committed before the response (sync); remove durability: %s", a.Durability)
	}
	if err := audit.ValidateRetention(time.Duration(a.Retention), c.Mode == ModeDev); err != nil {
		p.add("audit.retention", "%s", strings.TrimPrefix(err.Error(), "audit.retention "))
	}
	if !slices.Contains([]string{"full", "truncate", "hash"}, a.SourceIP) {
		p.add("audit.source_ip", "must be full, truncate or hash, not %q", a.SourceIP)
	}
	if strings.ContainsAny(a.Origin, " \t\n+") {
		p.add("audit.origin", "must contain no spaces or '+'")
	}
	if a.CheckpointInterval < time.Second {
		p.add("audit.checkpoint_interval", "must be at least 1s")
	}
}

func (c *Config) validateTLS(p *problems) {
	t := c.TLS
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		p.add("tls.key_file", "is required with tls.cert_file")
	case t.CertFile == "" && t.KeyFile != "":
		p.add("tls.cert_file", "is required with tls.key_file")
	case t.CertFile == "":
		for _, s := range []setting[bool]{{"client_ca_file", t.ClientCAFile != ""}, {"redirect_listen", t.RedirectListen != ""}, {"admin", t.Admin}} {
			if s.value {
				p.add("tls."+s.name, "needs tls.cert_file and tls.key_file (TLS on the public listener)")
			}
		}
	}
	if t.MinVersion != "" && t.MinVersion != "1.2" && t.MinVersion != "1.3" {
		p.add("tls.min_version", "must be \"1.2\" or \"1.3\", not %q", t.MinVersion)
	}
	if t.RedirectListen != "" {
		if err := checkHostPort(t.RedirectListen); err != nil {
			p.add("tls.redirect_listen", "%v", err)
		}
	}
	for i, cp := range t.ClientPrincipals {
		at := item("tls.client_principals", i)
		if err := cp.Validate(); err != nil {
			p.add(at, "%v", err)
		}
		if _, ok := c.RateLimit.Tiers[cp.Tier]; cp.Tier != "" && !ok {
			p.add(at+".tier", "tier %q is not in ratelimit.tiers%s", cp.Tier, listed(slices.Sorted(maps.Keys(c.RateLimit.Tiers))))
		}
	}
	if len(t.ClientPrincipals) > 0 && t.ClientCAFile == "" {
		p.add("tls.client_principals", "needs tls.client_ca_file (the CAs client certificates must chain to)")
	}
}

// listed is " (a, b)" or " (none are defined)".
func listed(names []string) string {
	if len(names) == 0 {
		return " (none are defined)"
	}
	return " (" + strings.Join(names, ", ") + ")"
}

func (c *Config) validatePolicy(p *problems) {
	p.addErr("policy", c.Policy.Validate())
	for i, h := range c.Policy.Headers {
		if h == "" || strings.EqualFold(h, "authorization") || strings.EqualFold(h, "x-api-key") || strings.EqualFold(h, "cookie") {
			p.add(item("policy.headers", i), "%q cannot be shown to the policy (credentials never are)", h)
		}
	}
}

// validateProxies checks trusted_proxies and forward_auth.
func (c *Config) validateProxies(p *problems) {
	for i, s := range c.TrustedProxies {
		if _, err := ParsePrefix(s); err != nil {
			p.add(item("trusted_proxies", i), "%v", err)
		}
	}
	switch c.ForwardAuth.Proxy {
	case "", "nginx", "traefik", "caddy", "envoy":
	default:
		p.add("forward_auth.proxy", "must be nginx, traefik, caddy or envoy, not %q", c.ForwardAuth.Proxy)
	}
	for i, s := range c.ForwardAuth.TrustedProxies {
		if _, err := ParsePrefix(s); err != nil {
			p.add(item("forward_auth.trusted_proxies", i), "%v", err)
		}
	}
	if c.ForwardAuth.Proxy == "" && len(c.ForwardAuth.TrustedProxies) > 0 {
		p.add("forward_auth.proxy", "is required with forward_auth.trusted_proxies (which proxy's headers should be read?)")
	}
}

func (c *Config) validateRoutes(p *problems) {
	names := map[string]int{}
	for i := range c.Routes {
		r := &c.Routes[i]
		at := item("routes", i)
		if j, dup := names[r.Name]; dup && r.Name != "" {
			p.add(at+".name", "duplicate route name %q (also routes[%d])", r.Name, j)
		} else {
			names[r.Name] = i
		}
		r.validate(p, at)
		for _, o := range c.Routes[:i] {
			if o.Path == r.Path && r.Path != "" && methodsOverlap(o.Methods, r.Methods) {
				p.add(at+".path", "duplicate route: %s %s is already served by route %q", methodsString(r.Methods), r.Path, o.Name)
				break
			}
		}
	}
}

// validate checks one route on its own, at path at.
func (r *RouteConfig) validate(p *problems, at string) {
	if r.Name == "" {
		p.add(at+".name", "is required")
	}
	if err := checkRoutePath(r.Path); err != nil {
		p.add(at+".path", "%v", err)
	}
	for j, m := range r.Methods {
		if !slices.Contains(httpMethods, m) {
			p.add(item(at+".methods", j), "unknown HTTP method %q (use one of %s)", m, strings.Join(httpMethods, ", "))
		}
	}
	if err := checkUpstream(r.Upstream); err != nil {
		p.add(at+".upstream", "%v", err)
	}
	if r.Tool != "" && !isToolName(r.Tool) {
		p.add(at+".tool", "%q must be letters, digits, '_', '-', '.' or ':'", r.Tool)
	}
	switch {
	case r.Public && len(r.Scopes) > 0:
		p.add(at+".scopes", "a public route takes no scopes; remove scopes or public: true")
	case !r.Public && len(r.Scopes) == 0:
		p.add(at+".scopes", "at least one scope is required (or mark the route public: true to allow anonymous callers)")
	}
	for j, s := range r.Scopes {
		// The same rule as for every credential's scopes: a route scope
		// no credential could hold would lock the route for good.
		if authn.ValidateScope(s) != nil {
			p.add(item(at+".scopes", j), "scope %q must be 1 to 128 printable ASCII characters without spaces, commas, quotes or backslashes", s)
		}
	}
	for _, s := range []setting[time.Duration]{{"timeout", r.Timeout}, {"read_timeout", r.ReadTimeout}, {"connect_timeout", r.ConnectTimeout}, {"total_timeout", r.TotalTimeout}} {
		if s.value < 0 {
			p.add(field(at, s.name), "must not be negative")
		}
	}
	if r.BufferRequest && r.MaxBody <= 0 {
		p.add(at+".buffer_request", "needs a max_body to bound the buffer")
	}
	r.Breaker.validate(p, at+".breaker")
	if r.TLS != nil && !strings.HasPrefix(r.Upstream, "https://") {
		p.add(at+".tls", "set only for an https:// upstream")
	}
	if r.TLS != nil && (r.TLS.CertFile == "") != (r.TLS.KeyFile == "") {
		p.add(at+".tls", "cert_file and key_file go together")
	}
	if r.RateLimit != nil {
		p.addErr(at+".ratelimit", r.RateLimit.Validate())
	}
}

func (b BreakerConfig) validate(p *problems, at string) {
	if b.ConsecutiveFailures < 1 {
		p.add(at+".consecutive_failures", "must be at least 1")
	}
	if b.FailureRatio <= 0 || b.FailureRatio > 1 {
		p.add(at+".failure_ratio", "must be more than 0 and at most 1, not %g", b.FailureRatio)
	}
	if b.MinRequests < 1 {
		p.add(at+".min_requests", "must be at least 1")
	}
	if b.OpenTimeout < time.Second {
		p.add(at+".open_timeout", "must be at least 1s")
	}
	if b.HalfOpenRequests < 1 {
		p.add(at+".half_open_requests", "must be at least 1")
	}
}

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// setting is a named value, for checks that read several alike.
type setting[T any] struct {
	name  string
	value T
}

func (c *Config) validateMetrics(p *problems) {
	if f := c.Metrics.TokenFile; f != "" && strings.TrimSpace(f) != f {
		p.add("metrics.token_file", "%q has leading or trailing spaces", f)
	}
}
