// Package app wires one Gatehouse process together from its config: the
// store, secrets, authentication, the gateway on the public listener and
// the admin API on the admin listener, and shuts them down in order.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/audit"
	pgaudit "github.com/gatehouse/gatehouse/internal/audit/postgres"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/backup"
	"github.com/gatehouse/gatehouse/internal/certs"
	"github.com/gatehouse/gatehouse/internal/compliance"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/httpjson"
	"github.com/gatehouse/gatehouse/internal/lockdown"
	"github.com/gatehouse/gatehouse/internal/logbuf"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/oauth"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/pgauth"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/ratelimit/service"
	"github.com/gatehouse/gatehouse/internal/redact"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/postgres"
	"github.com/gatehouse/gatehouse/internal/store/postgres/notify"
	"github.com/gatehouse/gatehouse/internal/store/sqlite"
	"github.com/gatehouse/gatehouse/internal/tracing"
	"github.com/gatehouse/gatehouse/internal/ui"
)

// Options are the process-level inputs of an App.
type Options struct {
	Getenv  func(string) string // nil: os.Getenv
	Stdout  io.Writer           // where the one-time admin token is printed
	Logger  *slog.Logger        // nil: JSON (or text) to Stderr per config
	Stderr  io.Writer
	Version string
	Clock   gatehouse.Clock
	// Pprof mounts net/http/pprof on the admin listener (admin role only);
	// serve --pprof.
	Pprof bool
	// Offline opens the deployment for an in-process tool (OfflineReport)
	// rather than to serve it: New records no config.loaded or build.scan
	// event, since nothing starts serving that config or binary.
	Offline bool
	// Executable is the serving binary, whose dependency scan
	// (EXECUTABLE.scan.json, scripts/scan.sh --binary) the evidence
	// report cites; "": os.Executable().
	Executable string
}

// App is one running Gatehouse process.
type App struct {
	cfg *config.Config
	// offline is set for an App opened by OfflineReport: the listeners
	// of the config (offlineListen: public, admin) are described, not
	// probed.
	offline       bool
	offlineListen [2]string
	log           *slog.Logger
	store         store.Store
	keys          *authn.Keys
	clients       *authn.Clients
	pats          *authn.PATs
	users         *authn.Users
	console       *ui.UI
	// usage records last use of keys, clients and tokens off the request
	// path; usageWG is its flusher.
	usage   *authn.Usage
	usageWG sync.WaitGroup
	// bus carries invalidations between replicas (postgres only; nil
	// otherwise), applied through inv.
	bus     *notify.Bus
	busWG   sync.WaitGroup // the bus's listener
	inv     *authn.Invalidations
	tokens  *authn.Tokens
	policy  *authz.Engine
	limiter *service.Service
	gateway *gateway.Gateway
	admin   *admin.Server
	// records keeps access reviews and incidents (in the store).
	records *compliance.Records
	// lockdown is incident lockdown mode (kept in the store), which the
	// gateway asks before the policy.
	lockdown *lockdown.Lockdown
	clock    gatehouse.Clock
	metrics  *metrics.Metrics
	// tracing exports the request path's spans (nil: tracing off).
	tracing *tracing.Provider
	stop    context.CancelFunc // ends background work
	// backups makes scheduled backups (nil without backup.dir or
	// backup.url); backupWG is its schedule.
	backups  *backup.Service
	backupWG sync.WaitGroup
	dataDir  string
	// secrets are the server secrets, from the configured provider.
	secrets *Secrets
	// auditKeyMu serializes this process's rotations and reloads of the
	// audit key; the secret's check-and-set serializes replicas.
	auditKeyMu sync.Mutex
	// pepperMu serializes this process's rotations and reloads of the
	// pepper's versions.
	pepperMu sync.Mutex
	// statusCache is the secrets status last computed for readiness,
	// metrics and the daily overdue event.
	statusCache secretStatusCache
	// logBuf queues the process log (nil when the caller gave a Logger).
	logBuf *logbuf.Writer
	audit  auditLog
	// pgAudit is the audit log when it is in PostgreSQL (nil otherwise),
	// for readiness.
	pgAudit *pgaudit.Log
	// auditStream is where audit events are also written as JSON lines.
	auditStream io.Writer
	version     string
	// adminToken is the bootstrap admin token; showToken the newly
	// generated one Start prints once serving (to stdout).
	adminToken *authn.AdminToken
	showToken  string
	stdout     io.Writer

	public, adminSrv, echo, redirect *http.Server
	publicLn, adminLn, redirectLn    net.Listener

	errs chan error
	wg   sync.WaitGroup
}

// auditLog is what a process needs of either storage of the audit log.
type auditLog interface {
	gatehouse.Auditor
	admin.AuditLog
	backup.LiveLog
	// Close flushes, writes a final checkpoint where this process signs
	// them, and releases the log.
	Close(ctx context.Context) error
}

// New opens the data dir and store, loads or creates the secrets, and
// builds the handlers. Nothing listens until Start.
func New(ctx context.Context, cfg *config.Config, opts Options) (_ *App, err error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.Clock == nil {
		opts.Clock = gatehouse.SystemClock{}
	}
	log := opts.Logger
	var logBuf *logbuf.Writer
	if log == nil {
		// Log lines (the access log above all) are queued and written,
		// through the redactor, off the request path.
		logBuf = logbuf.New(redact.New().Writer(opts.Stderr), 0)
		log = newLogger(cfg, logBuf)
	}
	a := &App{cfg: cfg, log: log, logBuf: logBuf, errs: make(chan error, 3), version: opts.Version, clock: opts.Clock,
		metrics: metrics.New(metrics.Options{Version: opts.Version, Clock: opts.Clock})}
	defer func() {
		if err != nil {
			a.close()
		}
	}()

	dir, err := cfg.ResolveDataDir()
	if err != nil {
		return nil, err
	}
	a.dataDir = dir
	if err := secureDir(dir, cfg.Mode, log); err != nil {
		return nil, err
	}
	if cfg.Audit.Dir != "" {
		if err := secureDir(cfg.Audit.Dir, cfg.Mode, log); err != nil {
			return nil, err
		}
	}
	for _, w := range Warnings(cfg) {
		log.Warn("config works but is discouraged", "warning", w.String())
	}
	// Secrets first: the store DSN and Redis URL may take their
	// passwords from the provider.
	if a.secrets, err = OpenSecrets(ctx, cfg, dir, SecretsOptions{Getenv: opts.Getenv, Logger: log}); err != nil {
		return nil, err
	}
	defer func() { err = a.secrets.explainAuthFailure(err) }()
	pepper, peppers := a.secrets.Pepper, a.secrets.Peppers
	// Listeners are bound now so their addresses (and so the default token
	// issuer URL) are known; nothing is served until Start.
	if a.publicLn, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen on %s (listen): %w", cfg.Listen, err)
	}
	if a.adminLn, err = net.Listen("tcp", cfg.AdminListen); err != nil {
		return nil, fmt.Errorf("listen on %s (admin_listen): %w", cfg.AdminListen, err)
	}
	if cfg.TLS.RedirectListen != "" {
		if a.redirectLn, err = net.Listen("tcp", cfg.TLS.RedirectListen); err != nil {
			return nil, fmt.Errorf("listen on %s (tls.redirect_listen): %w", cfg.TLS.RedirectListen, err)
		}
	}
	// The audit log opens first: every component records into it.
	if a.auditStream, err = openStream(cfg.Audit.Stream, opts.Stdout, opts.Stderr); err != nil {
		return nil, err
	}
	var stream io.Writer
	if a.auditStream != nil {
		stream = redact.New().Writer(a.auditStream)
	}
	if a.audit, err = a.openAudit(ctx, cfg, dir, stream, opts.Clock); err != nil {
		return nil, err
	}
	if a.store, err = openStore(ctx, cfg, dir, a.secrets.storePassword()); err != nil {
		return nil, err
	}
	a.auditRestore(ctx, dir)
	if err := a.openLockdown(ctx); err != nil {
		return nil, err
	}
	if a.backups, err = a.openBackups(ctx, cfg, dir, opts); err != nil {
		return nil, err
	}
	if a.tracing, err = a.openTracing(ctx, cfg); err != nil {
		return nil, err
	}
	a.auditSecretsLoaded(ctx)
	a.inv = &authn.Invalidations{}
	var inv authn.Invalidator = authn.NopInvalidator{}
	if cfg.Store.Driver == "postgres" {
		if a.bus, err = a.openBus(ctx, cfg.Store.DSN); err != nil {
			return nil, err
		}
		inv = busInvalidator{a.bus}
	}
	a.usage = authn.NewUsage(authn.UsageConfig{Store: a.store, Clock: opts.Clock, Logger: log})
	a.keys, err = authn.NewKeys(authn.KeysConfig{Store: a.store, Peppers: peppers, Clock: opts.Clock, Logger: log, Invalidator: inv, Usage: a.usage})
	if err != nil {
		return nil, err
	}
	adminToken, generated, envIgnored, err := authn.BootstrapAdminToken(ctx, a.store, peppers, opts.Getenv("GATEHOUSE_ADMIN_TOKEN"))
	if err != nil {
		return nil, err
	}
	// A generated token is printed by Start, once serving: a start that
	// fails before then leaves it unshown, and the next start makes another.
	a.adminToken, a.showToken, a.stdout = adminToken, generated, opts.Stdout
	a.auditAdminTokenEvents(ctx)
	if envIgnored {
		log.Warn("GATEHOUSE_ADMIN_TOKEN ignored: a bootstrap admin token was already set on first start")
	}

	a.pats = authn.NewPATs(authn.KeysConfig{Store: a.store, Peppers: peppers, Clock: opts.Clock, Logger: log, Invalidator: inv, Usage: a.usage})
	hasher := password.NewHasher(password.HasherConfig{MemoryBudget: int64(cfg.Limits.PasswordHashMemory), QueueWait: cfg.Limits.PasswordHashWait})
	a.users, err = authn.NewUsers(ctx, authn.UsersConfig{Store: a.store, Pepper: pepper, Peppers: peppers, Clock: opts.Clock, Logger: log, PATs: a.pats, Invalidator: inv, Hasher: hasher})
	if err != nil {
		return nil, err
	}
	a.clients, err = authn.NewClients(ctx, authn.KeysConfig{Store: a.store, Peppers: peppers, Clock: opts.Clock, Logger: log, Invalidator: inv, Usage: a.usage, IPv6Prefix: cfg.Limits.IPv6Prefix})
	if err != nil {
		return nil, err
	}
	*a.inv = authn.Invalidations{Keys: a.keys, Clients: a.clients, PATs: a.pats, Users: a.users}
	if a.bus != nil {
		// Until the listener is up, changes made elsewhere may go unheard.
		a.inv.Disconnected()
	}
	issuer := cfg.Auth.Issuer
	if issuer == "" {
		scheme := "http://"
		if cfg.TLS.Enabled() {
			scheme = "https://"
		}
		issuer = scheme + a.publicLn.Addr().String()
	}
	a.tokens, err = authn.NewTokens(ctx, authn.TokensConfig{
		Issuer:   issuer,
		Audience: cfg.Auth.Audience,
		TTL:      time.Duration(cfg.Auth.TokenTTL),
		Alg:      cfg.Auth.SigningAlg,
		Rotation: time.Duration(cfg.Auth.SigningRotation),
		Keys:     a.secrets.SigningKeys(),
		// Replicas sharing the key set follow each other's rotations.
		ReloadEvery: a.secrets.reloadEvery(cfg),
		Clients:     a.clients,
		External:    cfg.Auth.ExternalIssuers,
		Auditor:     a.audit,
		Clock:       opts.Clock,
		Logger:      log,

		// Dev mode may fetch external keys over plain http beyond loopback.
		AllowPlainHTTP: cfg.Mode == config.ModeDev,
	})
	if err != nil {
		return nil, err
	}
	oauthSrv := oauth.New(oauth.Config{Clients: a.clients, Tokens: a.tokens, Logger: log, Clock: opts.Clock, Auditor: a.metrics.Auditor(a.audit)})

	a.policy, err = authz.New(ctx, cfg.Policy.Config, authz.Options{Logger: log, Clock: opts.Clock, Auditor: a.audit})
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}

	lopts := service.Options{Clock: opts.Clock, Logger: log, Auditor: a.audit}
	if r := a.secrets.RedisPassword; r != nil {
		lopts.RedisPassword = r.Password
	}
	a.limiter, err = service.New(ctx, cfg.RateLimit, lopts)
	if err != nil {
		return nil, fmt.Errorf("start rate limiter: %w", err)
	}

	routes, err := a.routes(cfg)
	if err != nil {
		return nil, err
	}
	var scrapeToken []byte
	if f := cfg.Metrics.TokenFile; f != "" {
		if scrapeToken, err = readScrapeToken(f); err != nil {
			return nil, err
		}
	}
	a.gateway, err = gateway.New(gateway.Config{
		Routes:         routes,
		Authenticator:  &authn.Authenticator{Keys: a.keys, Tokens: a.tokens, PATs: a.pats},
		Certs:          authn.NewCertPrincipals(cfg.TLS.ClientPrincipals),
		Auditor:        a.metrics.Auditor(a.audit),
		Metrics:        a.metrics,
		SourceIP:       cfg.Audit.SourceIP,
		SourceIPKey:    pepper,
		Endpoints:      oauthSrv.Endpoints(),
		Authorizer:     a.policy,
		Gate:           a.lockdown,
		RateLimiter:    a.limiter,
		Mode:           cfg.Mode,
		PolicyHeaders:  cfg.Policy.Headers,
		Logger:         log,
		Clock:          opts.Clock,
		AccessLog:      cfg.AccessLog(),
		MaxHeaders:     cfg.Limits.MaxHeaders,
		MaxHeaderBytes: int(cfg.Limits.MaxHeaderBytes),
		Version:        opts.Version,
		Ready:          a.readiness(),
		TrustedProxies: config.ParsePrefixes(cfg.TrustedProxies),
		ForwardAuth:    gateway.ForwardAuth{Proxy: cfg.ForwardAuth.Proxy, TrustedProxies: config.ParsePrefixes(cfg.ForwardAuth.TrustedProxies)},
		PreAuth:        preAuthConfig(cfg.Limits.PreAuth),
		IPv6Prefix:     cfg.Limits.IPv6Prefix,
		ReadTimeout:    cfg.Limits.ReadTimeout,
		MinRate:        int64(cfg.Limits.MinRate),

		AccessLogWriter: a.accessLogWriter(),
		Tracer:          a.tracer(),
	})
	if err != nil {
		return nil, err
	}
	a.records = compliance.NewRecords(a.store, opts.Clock)
	a.admin = admin.New(admin.Config{Evidence: evidence{a}, Records: a.records, Lockdown: lockdownAPI{a}, Drill: a.drill, Keys: a.keys, Clients: a.clients, Tokens: a.tokens, AdminToken: adminToken, Policy: a.policy,
		PATs: a.pats, Users: a.users, Issuer: "Gatehouse", Auditor: a.audit, Audit: a.audit, Logger: log, Clock: opts.Clock,
		Health: a.gateway.HealthHandler(), Tiers: tierRate(a.limiter.Config()), TierLimits: a.limiter.Config().Tiers, Usage: a.usage, SourceIP: a.gateway.AuditIP,
		IPv6Prefix: cfg.Limits.IPv6Prefix, Pprof: opts.Pprof, Backups: a.backupAPI(), Secrets: secretsAPI{a},
		Metrics: a.metrics.Handler(), MetricsSummary: a.metrics.Summary, ScrapeToken: scrapeToken})

	a.public = a.newServer(a.gateway)
	// The gateway checks header sizes itself on every request and answers
	// the JSON 431; net/http's own cap, which answers before any handler,
	// is set above it so that only gross excess meets it (and that answer
	// too is rewritten to JSON on plaintext listeners: serve).
	a.public.MaxHeaderBytes = 2 * int(cfg.Limits.MaxHeaderBytes)
	console, err := ui.New(ui.Config{API: a.admin, CSRFToken: a.users.CSRFToken, Session: a.users.CheckSession,
		CSPReport: a.metrics.CSPReport, Logger: log, Clock: opts.Clock})
	if err != nil {
		return nil, fmt.Errorf("admin console: %w", err)
	}
	a.console = console
	// The admin listener: the console (HTML, not part of the API's
	// OpenAPI document) under /ui/, the admin API everywhere else.
	adminMux := http.NewServeMux()
	adminMux.Handle(ui.Prefix, console)
	adminMux.Handle("/", a.admin)
	a.adminSrv = a.newServer(gateway.ReadLimits(adminMux, cfg.Limits.ReadTimeout, int64(cfg.Limits.MinRate)))
	if cfg.TLS.Enabled() {
		tc, err := certs.NewServerConfig(certs.ServerConfig{
			CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile, MinVersion: cfg.TLS.MinVersion, ClientCAFile: cfg.TLS.ClientCAFile,
		}, log)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		a.public.TLSConfig = tc
		if cfg.TLS.Admin {
			a.adminSrv.TLSConfig = tc.Clone()
			a.adminSrv.TLSConfig.ClientAuth, a.adminSrv.TLSConfig.ClientCAs = 0, nil
		}
		tlsConfigs := map[string]*tls.Config{"public": a.public.TLSConfig}
		if cfg.TLS.Admin {
			tlsConfigs["admin"] = a.adminSrv.TLSConfig
		}
		a.metricSources(tlsConfigs)
		if a.redirectLn != nil {
			a.redirect = a.newServer(redirectHandler(a.publicLn.Addr().String()))
		}
	} else {
		a.metricSources(nil)
		if cfg.Mode == config.ModeProd {
			log.Warn("TLS IS OFF in prod mode: the public listener serves plain HTTP; set tls.cert_file and tls.key_file")
		}
	}
	log.Info("config loaded", "source", sourceName(cfg), "sha256", cfg.Hash, "mode", cfg.Mode, "routes", len(cfg.Routes), "data_dir", dir)
	if !opts.Offline {
		pst := a.policy.Status()
		a.system(ctx, "config.loaded", map[string]any{"source": sourceName(cfg), "sha256": cfg.Hash, "mode": cfg.Mode, "routes": len(cfg.Routes),
			"policy_source": pst.Source, "policy_revision": pst.Revision, "policy_sha256": pst.SHA256, "policy_tests": pst.Tests})
		a.recordBuildScan(ctx, opts.Executable)
	}
	if cfg.Mode == config.ModeDev {
		log.Warn("running in dev mode: the debug scope is honoured; do not use dev mode in production")
	}
	return a, nil
}

// SecretFile is the server secret's file in the data dir: the HMAC pepper
// of every stored key, token and secret hash.
const SecretFile = "server.secret"

// OpenStore opens the store cfg names: PostgreSQL, or SQLite in dataDir
// (created 0600 first, so its WAL and shm files are private too). Offline
// commands open it the same way serve does.
func OpenStore(ctx context.Context, cfg *config.Config, dataDir string) (store.Store, error) {
	return openStore(ctx, cfg, dataDir, nil)
}

// openStore is OpenStore with the password of each new PostgreSQL
// connection read from pw (nil: the DSN's own).
func openStore(ctx context.Context, cfg *config.Config, dataDir string, pw pgauth.Password) (store.Store, error) {
	if cfg.Store.Driver == "postgres" {
		return postgres.OpenConfig(ctx, postgres.Config{DSN: cfg.Store.DSN, Password: pw})
	}
	dbPath := filepath.Join(dataDir, "gatehouse.db")
	if err := createPrivate(dbPath); err != nil {
		return nil, err
	}
	return sqlite.Open(ctx, dbPath)
}

func sourceName(cfg *config.Config) string {
	if cfg.Source == "" {
		return "built-in defaults"
	}
	return cfg.Source
}

// routes resolves the config's routes, starting the built-in echo upstream
// on a loopback port if a route uses it.
func (a *App) routes(cfg *config.Config) ([]gatehouse.Route, error) {
	var out []gatehouse.Route
	for i := range cfg.Routes {
		r := cfg.Routes[i].Route()
		if r.Upstream == config.BuiltinEcho {
			if a.echo == nil {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					return nil, fmt.Errorf("start built-in echo upstream: %w", err)
				}
				a.echo = &http.Server{Handler: gateway.EchoHandler(), ReadHeaderTimeout: 10 * time.Second}
				a.wg.Add(1)
				go func() {
					defer a.wg.Done()
					a.echo.Serve(ln)
				}()
				a.echo.Addr = ln.Addr().String()
			}
			r.Upstream = "http://" + a.echo.Addr
		}
		out = append(out, r)
	}
	return out, nil
}

// preAuthConfig is limits.preauth for the gateway (failures -1: off).
func preAuthConfig(c config.PreAuthConfig) gateway.PreAuthConfig {
	if c.Failures < 0 {
		return gateway.PreAuthConfig{}
	}
	return gateway.PreAuthConfig{Failures: c.Failures, Per: c.Per, Sources: c.Sources}
}

func (a *App) newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: a.cfg.Limits.ReadHeaderTimeout, // slowloris: headers that never finish
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    int(a.cfg.Limits.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
}

// Start serves both listeners (bound by New) in the background.
func (a *App) Start() error {
	var ctx context.Context
	ctx, a.stop = context.WithCancel(context.Background())
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.policy.Run(ctx)
	}()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.tokens.Run(ctx)
	}()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.gateway.Run(ctx) // aggregated pre-authentication audit events
	}()
	if a.bus != nil {
		a.busWG.Add(1)
		go func() {
			defer a.busWG.Done()
			a.bus.Run(ctx)
		}()
	}
	a.usageWG.Add(1)
	go func() {
		defer a.usageWG.Done()
		a.usage.Run(ctx) // flushes once more when ctx ends
	}()
	a.runBackups(ctx, a.dataDir)
	a.runMetricsSampler(ctx)
	a.runLockdownPoll(ctx)
	a.runSecretsStatus(ctx)
	a.runRefs(ctx)
	a.runAuditKeyWatch(ctx)
	a.runPepperWatch(ctx)
	a.serve(a.public, a.publicLn)
	a.serve(a.adminSrv, a.adminLn)
	if a.redirect != nil {
		a.serve(a.redirect, a.redirectLn)
	}
	a.runSnapshots(ctx)
	a.system(context.Background(), "system.startup", map[string]any{"listen": a.Addr(), "admin_listen": a.AdminAddr(), "version": a.version})
	a.log.Info("gatehouse started", "listen", a.Addr(), "admin_listen", a.AdminAddr())
	a.printAdminToken()
	return nil
}

// printAdminToken prints a newly generated bootstrap admin token, once the
// listeners serve, and records that it was shown.
func (a *App) printAdminToken() {
	if a.showToken == "" {
		return
	}
	t := a.showToken
	a.showToken = ""
	fmt.Fprintf(a.stdout, "\nGatehouse bootstrap admin token (shown once; it is stored only as a hash):\n\n    %s\n\n"+
		"Use it with the CLI:  export GATEHOUSE_TOKEN=%s\n\n", t, t)
	if err := a.adminToken.Shown(context.Background()); err != nil {
		a.log.Error("could not record that the admin token was shown; the next start makes a new one", "err", err)
	}
}

// auditAdminTokenEvents records the offline changes of the bootstrap admin
// token (gatehouse admin-token rotate/disable) made since the last start.
func (a *App) auditAdminTokenEvents(ctx context.Context) {
	events, err := authn.TakeAdminTokenEvents(ctx, a.store)
	if err != nil {
		a.log.Error("could not read the admin token's offline changes", "err", err)
		return
	}
	for _, e := range events {
		a.system(ctx, e.Action, map[string]any{"at": e.At, "via": e.Via})
	}
}

func (a *App) serve(s *http.Server, ln net.Listener) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		serve := s.Serve
		if s.TLSConfig != nil {
			serve = func(ln net.Listener) error { return s.ServeTLS(ln, "", "") }
		} else {
			ln = httpjson.NewListener(ln, int(a.cfg.Limits.MaxHeaderBytes))
		}
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.errs <- err
		}
	}()
}

// Addr is the public listener's address.
func (a *App) Addr() string { return a.publicLn.Addr().String() }

// AdminHandler is the admin listener's handler, for tests that must
// present client addresses this host cannot connect from (the peers of
// one IPv6 network).
func (a *App) AdminHandler() http.Handler { return a.adminSrv.Handler }

// PublicHandler is the public listener's handler, for tests that must
// control the request's context (a client that hangs up).
func (a *App) PublicHandler() http.Handler { return a.public.Handler }

// Routes lists what the admin listener serves and the paths the public
// listener answers itself (beside the configured routes): what the
// OpenAPI document must describe.
func (a *App) Routes() (adminRoutes []admin.Route, publicPaths []string) {
	return a.admin.Routes(), a.gateway.Paths()
}

// AdminAddr is the admin listener's address.
func (a *App) AdminAddr() string { return a.adminLn.Addr().String() }

// Tokens returns the token service (for tests and in-process tools).
func (a *App) Tokens() *authn.Tokens { return a.tokens }

// Store returns the store (for tests and in-process tools).
func (a *App) Store() store.Store { return a.store }

// Keys returns the key service (for tests and in-process tools).
func (a *App) Keys() *authn.Keys { return a.keys }

// FlushUsage writes the last-use times noted so far (for tests and
// in-process tools; the background flusher does it every minute).
func (a *App) FlushUsage(ctx context.Context) error { return a.usage.Flush(ctx) }

// tierRate rates a tier as the rate limiter does (the default limit for
// unknown tiers), for the privilege ceilings; c is the limiter's own
// configuration, defaults applied.
func tierRate(c ratelimit.Config) authn.TierRate {
	return func(tier string) (int, time.Duration) {
		_, l := c.LimitFor(tier)
		return l.Requests, l.Per
	}
}

// Err reports a listener that failed while serving.
func (a *App) Err() <-chan error { return a.errs }

// Shutdown stops accepting connections, lets in-flight requests finish
// until ctx ends, then closes the store.
func (a *App) Shutdown(ctx context.Context) error {
	a.log.Info("shutting down: draining in-flight requests")
	a.gateway.SetDraining()
	servers := []*http.Server{a.public, a.adminSrv}
	if a.redirect != nil {
		servers = append(servers, a.redirect)
	}
	errs := make([]error, len(servers), len(servers)+1)
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Shutdown(ctx); err != nil {
				errs[i] = fmt.Errorf("drain: %w", err)
				s.Close()
			}
		}()
	}
	wg.Wait()
	a.gateway.FlushPreAuth(context.WithoutCancel(ctx))
	a.system(ctx, "system.shutdown", nil)
	if err := a.close(); err != nil {
		errs = append(errs, err)
	}
	a.wg.Wait()
	a.log.Info("gatehouse stopped")
	return errors.Join(errs...)
}

// openAudit opens the audit log first, so every component can record into
// it: segment files in the data dir (one log per process), or PostgreSQL
// (one log for every replica; the checkpoint signing key stays in the
// audit dir, which every replica must share).
func (a *App) openAudit(ctx context.Context, cfg *config.Config, dataDir string, stream io.Writer, clock gatehouse.Clock) (auditLog, error) {
	auditDir := cfg.Audit.Dir
	if auditDir == "" {
		auditDir = filepath.Join(dataDir, "audit")
	}
	if cfg.Audit.Backend == "postgres" {
		l, err := pgaudit.Open(ctx, pgaudit.Config{
			DSN:                cfg.Store.DSN,
			Password:           a.secrets.storePassword(),
			Origin:             cfg.Audit.Origin,
			KeyDir:             auditDir,
			Signer:             a.secrets.AuditSigner,
			VerifierKey:        a.secrets.AuditVKey,
			Previous:           a.secrets.AuditKeys().Previous,
			CheckpointInterval: cfg.Audit.CheckpointInterval,
			Retention:          time.Duration(cfg.Audit.Retention),
			Clock:              clock,
			Logger:             a.log,
			Stream:             stream,
		})
		if err != nil {
			return nil, fmt.Errorf("open audit log in postgres: %w", err)
		}
		a.pgAudit = l
		return l, nil
	}
	l, err := audit.Open(ctx, audit.Config{
		Dir:                auditDir,
		Origin:             cfg.Audit.Origin,
		Signer:             a.secrets.AuditSigner,
		VerifierKey:        a.secrets.AuditVKey,
		Previous:           a.secrets.AuditKeys().Previous,
		Durability:         audit.Durability(cfg.Audit.Durability),
		CheckpointInterval: cfg.Audit.CheckpointInterval,
		Retention:          time.Duration(cfg.Audit.Retention),
		Clock:              clock,
		Logger:             a.log,
		Stream:             stream,
	})
	if errors.Is(err, audit.ErrLocked) {
		return nil, lockedError{auditDir}
	}
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return l, nil
}

// readiness lists what /health/ready checks: the store (SQLite or
// PostgreSQL, pinged), the policy, the limiter, Redis when the limiter
// uses it (pinged), TLS, cross-replica invalidation, the log lines
// dropped by the asynchronous log writer and the audit log (in files: its
// write counters; in PostgreSQL: which replica sequences it).
func (a *App) readiness() []gateway.ReadinessCheck {
	checks := []gateway.ReadinessCheck{
		{Name: "store", Check: func(ctx context.Context) error { return a.store.Ping(ctx) }, Critical: true,
			Detail: func() string { return a.cfg.Store.Driver }},
		{Name: "policy", Check: a.policyReady, Critical: true, Detail: a.policyDetail},
		{Name: "ratelimit", Check: a.limiterReady, Critical: a.cfg.RateLimit.OnRedisFailure == "deny"},
		{Name: "tls", Check: a.tlsReady},
		{Name: "invalidation", Check: a.invalidationReady},
		a.secretsReady(),
	}
	if a.cfg.RateLimit.Backend == "redis" {
		// Not critical unless the limiter denies without Redis: replicas
		// serve on local limits meanwhile.
		checks = append(checks, gateway.ReadinessCheck{Name: "redis", Check: a.limiter.Ping, Critical: a.cfg.RateLimit.OnRedisFailure == "deny"})
	}
	checks = append(checks, a.externalIssuersReady()...)
	if a.logBuf != nil {
		// Never failing: a dropped log line costs no request, but the
		// operator should see that lines were lost.
		checks = append(checks, gateway.ReadinessCheck{Name: "log", Check: func(context.Context) error { return nil },
			Detail: func() string { return fmt.Sprintf("%d lines dropped since start", a.logBuf.Dropped()) }})
	}
	if fl, ok := a.audit.(*audit.Log); ok {
		checks = append(checks, gateway.ReadinessCheck{Name: "audit", Critical: true,
			Check: func(context.Context) error { return fl.Err() },
			Detail: func() string {
				s := fl.Stats()
				return fmt.Sprintf("file (%s): %d events in %d fsyncs, %d commit batches, %d bytes",
					a.cfg.Audit.Durability, s.Events, s.Fsyncs, s.Batches, s.Bytes)
			}})
	}
	if a.pgAudit != nil {
		checks = append(checks, gateway.ReadinessCheck{Name: "audit", Critical: true,
			Check: func(ctx context.Context) error {
				if ok, _, detail := a.pgAudit.Healthy(); !ok {
					return errors.New(detail)
				}
				return nil
			},
			Detail: func() string {
				_, leader, detail := a.pgAudit.Healthy()
				role := "postgres: appending; another replica sequences"
				if leader {
					role = "postgres: appending; this replica sequences and signs checkpoints"
				}
				if detail != "" {
					role += "; sequencer: " + detail
				}
				return role
			}})
	}
	return checks
}

// externalIssuersReady is one check per external issuer,
// "external_issuer:<issuer>": failing while its key set has never been
// loaded or its last refresh failed. Not critical: the instance still
// serves every other credential (and this issuer's tokens with the keys it
// holds), and taking every replica out of the load balancer because an
// IdP is down would turn its outage into Gatehouse's.
func (a *App) externalIssuersReady() []gateway.ReadinessCheck {
	var checks []gateway.ReadinessCheck
	for i, e := range a.cfg.Auth.ExternalIssuers {
		status := func() authn.ExternalIssuerStatus { return a.tokens.ExternalStatus()[i] }
		checks = append(checks, gateway.ReadinessCheck{Name: "external_issuer:" + e.Issuer,
			Check: func(ctx context.Context) error {
				st := status()
				switch {
				case st.Keys == 0 && st.Err != nil:
					return fmt.Errorf("JWKS not loaded: %v", st.Err)
				case st.Keys == 0:
					return errors.New("JWKS not loaded yet")
				case st.Err != nil:
					return fmt.Errorf("JWKS refresh failed, verifying with the %d keys loaded %s: %v", st.Keys, st.LoadedAt.UTC().Format(time.RFC3339), st.Err)
				}
				return nil
			},
			Detail: func() string {
				st := status()
				d := fmt.Sprintf("%d keys", st.Keys)
				if st.JWKSURL != "" {
					d += " from " + st.JWKSURL
				}
				if !st.LoadedAt.IsZero() {
					d += ", loaded " + st.LoadedAt.UTC().Format(time.RFC3339)
				}
				return d
			}})
	}
	return checks
}

func (a *App) policyReady(ctx context.Context) error {
	if st := a.policy.Status(); !st.Ready {
		if st.LastError != "" {
			return fmt.Errorf("policy not loaded: %s", st.LastError)
		}
		return errors.New("policy not loaded yet")
	}
	return nil
}

// policyDetail is the policy check's detail: what serves, and the last
// failure while the previous policy keeps serving (a bundle URL that
// stopped answering, a refused reload). The full status is GET /v1/policies.
func (a *App) policyDetail() string {
	st := a.policy.Status()
	var b strings.Builder
	b.WriteString(st.Source)
	if st.Ready {
		fmt.Fprintf(&b, " revision %s, %d tests passed", st.Revision, st.Tests)
		if st.Cache {
			b.WriteString(", decisions cached")
		} else if st.CacheDisabled != "" {
			b.WriteString(", decisions not cached: " + st.CacheDisabled)
		}
	}
	if st.LastError != "" {
		fmt.Fprintf(&b, "; the last load failed (%d in a row", st.Failures)
		if !st.NextRetry.IsZero() {
			b.WriteString(", next retry " + st.NextRetry.UTC().Format(time.RFC3339))
		}
		b.WriteString(")")
		if st.Ready {
			b.WriteString(", the policy above keeps serving: " + st.LastError)
		}
	}
	return b.String()
}

// limiterReady reports a degraded rate limiter (Redis unreachable). With
// on_redis_failure: local the instance still serves on per-instance limits,
// so this check is not critical.
func (a *App) limiterReady(ctx context.Context) error {
	if ok, detail := a.limiter.Healthy(); !ok {
		return errors.New(detail)
	}
	return nil
}

// system records a process event in the audit log.
func (a *App) system(ctx context.Context, typ string, details map[string]any) {
	err := a.audit.Record(ctx, gatehouse.Event{
		Time: time.Now().UTC(), Type: typ, Actor: gatehouse.Actor{Kind: "system", ID: a.cfg.Audit.Origin},
		Action: typ, Outcome: gatehouse.OutcomeSuccess, Details: details,
	})
	if err != nil {
		a.log.Error("audit record failed", "type", typ, "err", err)
	}
}

// openStream opens audit.stream: stdout, stderr or a file (appended).
func openStream(s string, stdout, stderr io.Writer) (io.Writer, error) {
	switch s {
	case "":
		return nil, nil
	case "stdout":
		return stdout, nil
	case "stderr":
		return stderr, nil
	}
	f, err := os.OpenFile(s, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit.stream %s: %w", s, err)
	}
	return f, nil
}

// tlsReady notes, without failing readiness, a prod instance serving plain
// HTTP.
func (a *App) tlsReady(ctx context.Context) error {
	if !a.cfg.TLS.Enabled() && a.cfg.Mode == config.ModeProd {
		return errors.New("TLS is off in prod mode: traffic to the public listener is not encrypted")
	}
	return nil
}

// RedirectAddr is the plain-HTTP redirect listener's address, or "".
func (a *App) RedirectAddr() string {
	if a.redirectLn == nil {
		return ""
	}
	return a.redirectLn.Addr().String()
}

// redirectHandler answers every plain-HTTP request with a 308 to the same
// path on the HTTPS listener.
func redirectHandler(httpsAddr string) http.Handler {
	_, port, _ := net.SplitHostPort(httpsAddr)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" {
			host = "localhost"
		}
		if port != "443" {
			host = net.JoinHostPort(host, port)
		}
		httpjson.SetSecurityHeaders(w.Header())
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect) // #nosec G710 -- HTTP to HTTPS on the host the client asked for, as every TLS redirect does; path and query kept
	})
}

// ReloadPolicy re-reads the policy source (SIGHUP). A policy that fails to
// compile or to pass its tests is refused and the running one keeps serving.
func (a *App) ReloadPolicy(ctx context.Context) error {
	before := a.policy.Status().Generation
	err := a.policy.Reload(ctx)
	if st := a.policy.Status(); err == nil && st.Generation != before {
		// A policy changed by a signal is a change like any other.
		a.system(ctx, "policy.reloaded", map[string]any{"via": "SIGHUP", "source": st.Source, "revision": st.Revision, "sha256": st.SHA256, "tests": st.Tests})
	} else if err == nil && st.Generation == before {
		// The engine logs a new policy and a refused one; say so too
		// when the signal found nothing to load.
		a.log.InfoContext(ctx, "policy unchanged", "source", st.Source, "revision", st.Revision, "sha256", st.SHA256)
	}
	return err
}

func (a *App) close() error {
	if a.logBuf != nil {
		// Whatever happens below, what was logged reaches the operator
		// before the process exits; later lines are written directly.
		defer a.logBuf.Close()
	}
	if a.stop != nil {
		a.stop()
	}
	a.usageWG.Wait()  // the last flush of last-use times, before the store closes
	a.backupWG.Wait() // a backup under way stops (its partial file removed) before the log closes
	if a.audit != nil {
		// Flushes, writes the final checkpoint and releases the log.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := a.audit.Close(ctx)
		cancel()
		if err != nil {
			a.log.Error("close audit log", "err", err)
		}
	}
	if c, ok := a.auditStream.(io.Closer); ok && a.auditStream != io.Writer(os.Stdout) && a.auditStream != io.Writer(os.Stderr) {
		c.Close()
	}
	if a.tracing != nil {
		// The spans of the last requests, after the servers drained.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := a.tracing.Shutdown(ctx); err != nil {
			a.log.Warn("flush traces", "err", err)
		}
		cancel()
	}
	if a.echo != nil {
		a.echo.Close()
	}
	if a.limiter != nil {
		a.limiter.Close()
	}
	if a.bus != nil {
		a.busWG.Wait() // a.stop above ends the listener
		a.bus.Close()
	}
	for _, ln := range []net.Listener{a.publicLn, a.adminLn, a.redirectLn} {
		if ln != nil {
			ln.Close()
		}
	}
	if a.secrets != nil {
		a.secrets.Close()
	}
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			return fmt.Errorf("close store: %w", err)
		}
	}
	return nil
}

// NewLogger returns the process logger the config asks for. Everything it
// writes passes through the secret redactor.
func NewLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	return newLogger(cfg, redact.New().Writer(w))
}

// accessLogWriter is where the gateway writes its access lines itself, in
// the JSON newLogger's handler would: the log's queue when the log is
// that JSON handler; nil (through the logger) otherwise.
func (a *App) accessLogWriter() io.Writer {
	if a.logBuf == nil || a.cfg.Log.Format == "text" {
		return nil
	}
	return a.logBuf.Deferred()
}

// newLogger is NewLogger on a writer that already redacts.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Console is the admin console served under /ui/ of the admin listener.
func (a *App) Console() *ui.UI { return a.console }
