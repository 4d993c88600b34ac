// Package admin serves the admin API on the admin listener: keys, clients,
// signing keys, policies, users, sessions, tokens, settings, the audit log,
// evidence, access reviews, incidents, backups and metrics, described by
// its OpenAPI document (openapi.json). Every call but health and the
// document needs a credential (the bootstrap admin token, a session, HTTP
// Basic, a personal access token or a key with the admin scope) whose role
// may use the area, and every refusal, read and change is an audit event.
package admin

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/compliance"
	"github.com/gatehouse/gatehouse/internal/httpjson"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/ratelimit/memory"
)

// maxBody caps admin request bodies.
const maxBody = 64 << 10

// Config configures the admin API.
type Config struct {
	Keys       *authn.Keys
	Clients    *authn.Clients
	Tokens     *authn.Tokens
	AdminToken *authn.AdminToken
	PATs       *authn.PATs
	Users      *authn.Users
	// Issuer names Gatehouse in TOTP enrolment URIs.
	Issuer  string
	Policy  *authz.Engine
	Audit   AuditLog          // the log behind /v1/audit
	Auditor gatehouse.Auditor // optional
	Logger  *slog.Logger
	Clock   gatehouse.Clock
	// Health serves /health, /health/ready and /health/live with their
	// details (the public listener shows status only); nil: /health/live.
	Health http.Handler
	// Tiers rates rate-limit tiers for the privilege ceilings; nil does
	// not compare tiers.
	Tiers authn.TierRate
	// TierLimits are the configured rate-limit tiers, listed at GET
	// /v1/tiers (for completion and forms); nil: none.
	TierLimits map[string]ratelimit.Limit
	// Usage holds last uses not yet written, for listings; nil: none.
	Usage *authn.Usage
	// SourceIP maps a client address to its form in audit events (see
	// audit.source_ip); nil leaves addresses out.
	SourceIP func(ip string) string
	// IPv6Prefix is how many leading bits of an IPv6 client address the
	// per-source sign-in and refusal limits key on
	// (ratelimit.SourcePrefix); 0: 64.
	IPv6Prefix int
	// Pprof serves the Go runtime profiles (net/http/pprof) under
	// /debug/pprof/, to the admin role only (serve --pprof); false: not
	// mounted.
	Pprof bool
	// Backups serves /v1/backups; nil answers that backups are off.
	Backups Backups
	// Secrets serves /v1/secrets (status and rotation of the server's
	// own secrets); nil answers 409.
	Secrets Secrets
	// Evidence builds the reports of /v1/evidence, and Records keeps the
	// access reviews and incidents of /v1/reviews and /v1/incidents; nil:
	// those endpoints answer 409.
	Evidence Evidence
	Records  *compliance.Records
	// Lockdown is incident lockdown mode (contain with lockdown, lift);
	// nil: those answer 409.
	Lockdown Lockdown
	// Drill runs a revocation drill (POST /v1/incidents/drill); nil: 409.
	Drill func(ctx context.Context, by gatehouse.Actor) (DrillResult, error)
	// Metrics serves GET /metrics (the Prometheus exposition); nil: not
	// mounted. See metrics.go for who may read it.
	Metrics http.Handler
	// MetricsSummary is the last hour of traffic and the audit and
	// backup times of GET /v1/metrics/summary (metrics.Metrics.Summary);
	// nil: not mounted.
	MetricsSummary func() (metrics.Summary, error)
	// ScrapeToken, if set, is the SHA-256 of the dedicated scrape token,
	// a bearer token that reads /metrics and nothing else.
	ScrapeToken []byte
}

// AuditLog is what the admin API reads of the audit log; both its
// storages (audit.Log, audit/postgres.Log) provide it.
type AuditLog interface {
	Query(ctx context.Context, f audit.Filter, cursor string, limit int) (audit.Page, error)
	// Sync returns the latest signed checkpoint, signing one first where
	// the storage can.
	Sync(ctx context.Context) ([]byte, error)
	Proof(ctx context.Context, index uint64) (audit.Proof, error)
	// KeyChain returns the log's checkpoint keys, oldest first, with the
	// tree size of each hand-over (public keys only).
	KeyChain(ctx context.Context) ([]audit.KeyEpoch, error)
}

// Server is the admin API. It is safe for concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
	// routes lists what mux serves, for Routes.
	routes []Route
	// signIn limits sign-in attempts per source and per username.
	signIn *memory.Limiter
	// peopleMu serialises the changes that must leave an enabled admin
	// (see keepAnAdmin).
	peopleMu sync.Mutex
}

// New returns the admin API handler.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = gatehouse.SystemClock{}
	}
	s := &Server{cfg: cfg, log: cfg.Logger.WithGroup("admin"), mux: http.NewServeMux(), signIn: newSignInLimiter(cfg.Clock)}
	s.handle("/v1/keys", areaKeys, methods{http.MethodGet: s.listKeys, http.MethodPost: s.createKey})
	s.handle("/v1/keys/{id}", areaKeys, methods{http.MethodGet: s.getKey})
	s.handle("/v1/keys/{id}/revoke", areaKeys, methods{http.MethodPost: noBody(s.revokeKey)})
	s.handle("/v1/keys/{id}/rotate", areaKeys, methods{http.MethodPost: s.rotateKey})
	s.handle("/v1/clients", areaClients, methods{http.MethodGet: s.listClients, http.MethodPost: s.createClient})
	s.handle("/v1/clients/{id}", areaClients, methods{http.MethodGet: s.getClient})
	s.handle("/v1/clients/{id}/revoke", areaClients, methods{http.MethodPost: noBody(s.revokeClient)})
	s.handle("/v1/clients/{id}/rotate", areaClients, methods{http.MethodPost: noBody(s.rotateClient)})
	s.handle("/v1/clients/{id}/unlock", areaClients, methods{http.MethodPost: noBody(s.unlockClient)})
	s.handle("/v1/tiers", areaKeys, methods{http.MethodGet: s.listTiers})
	s.handle("/v1/signing-keys", areaSigningKeys, methods{http.MethodGet: s.listSigningKeys})
	s.handle("/v1/signing-keys/rotate", areaSigningKeys, methods{http.MethodPost: noBody(s.rotateSigningKey)})
	s.handle("/v1/policies", areaPolicies, methods{http.MethodGet: s.policyStatus})
	s.handle("/v1/policies/reload", areaPolicies, methods{http.MethodPost: noBody(s.reloadPolicy)})
	s.people()
	s.adminTokenRoutes()
	if cfg.Pprof {
		s.mountPprof()
	}
	s.route("/v1/openapi.json", http.HandlerFunc(s.serveOpenAPI), http.MethodGet, http.MethodHead)
	if cfg.Metrics != nil {
		s.metricsRoute()
	}
	if cfg.MetricsSummary != nil {
		s.handle("/v1/metrics/summary", areaMetrics, methods{http.MethodGet: s.metricsSummary})
	}
	s.backupRoutes()
	s.secretRoutes()
	s.complianceRoutes()
	if cfg.Audit != nil {
		s.handle("/v1/audit", areaAudit, methods{http.MethodGet: s.queryAudit})
		s.handle("/v1/audit/checkpoint", areaAudit, methods{http.MethodGet: s.auditCheckpoint})
		s.handle("/v1/audit/proof", areaAudit, methods{http.MethodGet: s.auditProof})
		s.handle("/v1/audit/keys", areaAudit, methods{http.MethodGet: s.auditKeys})
	}
	if cfg.Health != nil {
		// Not authenticated, like the public probes: readiness details
		// name dependencies and their state, never a secret, and the admin
		// listener is an operator's network.
		for _, p := range []string{"/health", "/health/live", "/health/ready"} {
			s.route(p, cfg.Health, http.MethodGet, http.MethodHead)
		}
	} else {
		s.route("/health/live", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
		}), http.MethodGet, http.MethodHead)
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpjson.WriteError(w, r, s.log, gatehouse.Errorf(gatehouse.ENOTFOUND, "no admin endpoint %s", r.URL.Path))
	})
	return s
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error

// methods maps an HTTP method to its handler for one path.
type methods map[string]handlerFunc

// Route is one path the admin API serves and the methods it answers
// (others get 405).
type Route struct {
	// Pattern is the path, with {name} for a path segment (the form of
	// net/http patterns and of OpenAPI path templates alike).
	Pattern string
	Methods []string // sorted
}

// Routes lists every path the server serves, in registration order: what
// the OpenAPI document (GET /v1/openapi.json) must describe.
func (s *Server) Routes() []Route { return slices.Clone(s.routes) }

// route serves pattern with h, which answers methods.
func (s *Server) route(pattern string, h http.Handler, methods ...string) {
	slices.Sort(methods)
	s.routes = append(s.routes, Route{Pattern: pattern, Methods: methods})
	s.mux.Handle(pattern, h)
}

func (s *Server) handle(pattern string, a area, m methods) {
	h, allow := s.handler(a, m)
	s.route(pattern, h, allow...)
}

// handler is the handler of a path in area a with the methods m: each
// call authenticated, authorized against the caller's role and audited.
// It returns the methods allowed, sorted.
func (s *Server) handler(a area, m methods) (http.Handler, []string) {
	allow := slices.Sorted(maps.Keys(m))
	allowHeader := strings.Join(allow, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := m[r.Method]
		if h == nil {
			w.Header().Set("Allow", allowHeader)
			httpjson.WriteError(w, r, s.log, gatehouse.Errorf(gatehouse.EMETHOD, "use %s on %s", allowHeader, r.URL.Path))
			return
		}
		info := infoFrom(r.Context())
		if info == nil { // not through ServeHTTP
			info = &requestInfo{method: r.Method, path: r.URL.Path}
			r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))
		}
		info.area = a
		p, err := s.authenticate(r)
		switch {
		case err != nil:
			s.recordRefusal(r, info, err)
		default:
			info.actor = p
			if err = s.authorize(p, a, r.Method); err != nil {
				s.recordRefusal(r, info, err)
			} else if err = h(w, r, p); err != nil {
				// Refusals decided inside a handler (not a person, a
				// ceiling, a wrong current password) are decisions too.
				switch gatehouse.ErrorCode(err) {
				case gatehouse.EUNAUTHORIZED, gatehouse.EFORBIDDEN, gatehouse.ERATELIMITED:
					s.recordRefusal(r, info, err)
				}
			}
		}
		if err == nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			// Changes record their own events; reads are recorded here.
			s.record(r.Context(), p, "read", r.URL.Path, map[string]any{"query": r.URL.RawQuery})
		}
		if err != nil {
			httpjson.WriteError(w, r, s.log, err)
		}
	}), allow
}

// ServeHTTP serves the admin API with the security headers and request ids
// every listener carries.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	httpjson.SetSecurityHeaders(w.Header())
	rid := httpjson.RequestID(r)
	w.Header().Set("X-Request-Id", rid)
	ctx := httpjson.NewContextWithRequestID(r.Context(), rid)
	r = r.WithContext(context.WithValue(ctx, requestInfoKey{}, &requestInfo{method: r.Method, path: r.URL.Path, source: sourceAddr(r)}))
	s.mux.ServeHTTP(w, r)
}

var errAdminAuth = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "admin API needs a session (POST /v1/session), HTTP Basic, or Authorization: Bearer <personal access token, admin token or key with the admin scope>")

func (s *Server) authenticate(r *http.Request) (*gatehouse.Principal, error) {
	auth := r.Header.Get("Authorization")
	if auth == "" && s.cfg.Users != nil {
		return s.sessionPrincipal(r)
	}
	if user, pass, ok := r.BasicAuth(); ok && s.cfg.Users != nil {
		return s.basicPrincipal(r, user, pass)
	}
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || token == "" {
		return nil, errAdminAuth
	}
	if strings.HasPrefix(token, authn.PrefixAPIKey) {
		p, err := s.cfg.Keys.Authenticate(r.Context(), token)
		if err != nil {
			return nil, err
		}
		if info := infoFrom(r.Context()); info != nil {
			info.actor = p
		}
		if !p.HasScope(gatehouse.ScopeAdmin) {
			return nil, gatehouse.Errorf(gatehouse.EFORBIDDEN, "key %s lacks the admin scope", p.ID)
		}
		return withRole(p, authn.RoleAdmin), nil
	}
	if strings.HasPrefix(token, authn.PrefixPAT) && s.cfg.PATs != nil {
		p, err := s.cfg.PATs.Authenticate(r.Context(), token)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	if s.cfg.AdminToken != nil && s.cfg.AdminToken.Verify(r.Context(), token) {
		return withRole(authn.AdminPrincipal(), authn.RoleAdmin), nil
	}
	return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid admin credential")
}

// decode reads a JSON body strictly (see httpjson.Decode).
func decode(r *http.Request, v any) error { return httpjson.Decode(r, v, maxBody) }

// decodeOptional is decode for a body that may be left out: an empty (or
// blank) body leaves v as it is.
func decodeOptional(r *http.Request, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return gatehouse.Errorf(gatehouse.EINVALID, "could not read the request body")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(data))
	return decode(r, v)
}

// noBody wraps the handler of a change that takes nothing in its body: no
// body, or {}. Anything else is refused like an unknown field of any
// other body, rather than ignored.
func noBody(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
		if err := decodeOptional(r, &struct{}{}); err != nil {
			return err
		}
		return h(w, r, p)
	}
}

// record writes an audit event for a successful admin action.
func (s *Server) record(ctx context.Context, p *gatehouse.Principal, action, resource string, details map[string]any) {
	s.recordOutcome(ctx, gatehouse.Actor{Kind: string(p.Kind), ID: p.ID}, action, resource, gatehouse.OutcomeSuccess, details)
}

// requestInfo is what the admin API knows of a request while deciding it,
// for its audit events.
type requestInfo struct {
	method, path string
	source       string // client address (the listener's peer)
	area         area
	actor        *gatehouse.Principal // once known (authentication may fail after)
	// restricted is what a session credential is restricted to ("" for
	// a full session and for every other credential).
	restricted string
	// recorded: the failure was audited already (a sign-in attempt).
	recorded bool
}

type requestInfoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	i, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return i
}

// recordRefusal audits an admin request refused by authentication (401),
// a role or another access decision (403) or a limit (429): who as far as
// known (never the presented secret), the area and the path.
func (s *Server) recordRefusal(r *http.Request, info *requestInfo, err error) {
	if info == nil {
		info = &requestInfo{}
	}
	if info.recorded {
		return
	}
	action, outcome := "access.denied", gatehouse.OutcomeDenied
	switch gatehouse.ErrorCode(err) {
	case gatehouse.EUNAUTHORIZED:
		action, outcome = "auth.failure", gatehouse.OutcomeFailure
	case gatehouse.ERATELIMITED:
		// One event per source a minute: a flood must not fill the log.
		d, err := s.signIn.Allow(r.Context(), "audit|"+s.sourceKey(r), ratelimit.Limit{Requests: 1, Per: time.Minute})
		if err != nil || !d.Allowed {
			return
		}
		action = "rate_limited"
	case gatehouse.EFORBIDDEN:
	default:
		return
	}
	actor := presentedActor(r)
	if info.actor != nil {
		actor = gatehouse.Actor{Kind: string(info.actor.Kind), ID: info.actor.ID}
	}
	if action != "rate_limited" && !s.refusalAuditAllowed(r, info.actor) {
		return
	}
	details := map[string]any{"area": string(info.area), "reason": gatehouse.ErrorMessage(err)}
	if id := presentedCredentialID(r); id != "" {
		details["credential_id"] = id
	}
	s.recordOutcome(r.Context(), actor, action, r.URL.Path, outcome, details)
}

// refusalsAudited is how many refused admin requests a minute one client
// address gets recorded one by one; beyond, one admin.audit.suppressed
// event a minute says so, so that a flood of bad credentials cannot fill
// the audit log (the flood itself stays on record).
const refusalsAudited = 60

// A refusal whose actor is known (the credential verified; a role or
// another decision refused it) is not counted against the address — junk
// credentials from the same address (or proxy) must not hide it — but
// against that actor alone, so one credential can only mute itself.
func (s *Server) refusalAuditAllowed(r *http.Request, actor *gatehouse.Principal) bool {
	if actor != nil {
		who := string(actor.Kind) + ":" + actor.ID
		return s.refusalBudget(r, "refusal-actor|"+who, "suppressed-actor|"+who,
			gatehouse.Actor{Kind: string(actor.Kind), ID: actor.ID}, "by this credential")
	}
	src := s.sourceKey(r)
	return s.refusalBudget(r, "refusal|"+src, "suppressed|"+src, gatehouse.Actor{Kind: "anonymous"}, "from this address")
}

// refusalBudget counts one refusal under key (refusalsAudited a minute)
// and reports whether it is recorded one by one; beyond the budget, one
// admin.audit.suppressed event a minute (counted under suppressedKey), by
// actor, says that refusals whom (a phrase) are no longer recorded.
func (s *Server) refusalBudget(r *http.Request, key, suppressedKey string, actor gatehouse.Actor, whom string) bool {
	d, err := s.signIn.Allow(r.Context(), key, ratelimit.Limit{Requests: refusalsAudited, Per: time.Minute})
	if err != nil || d.Allowed {
		return true
	}
	if n, err := s.signIn.Allow(r.Context(), suppressedKey, ratelimit.Limit{Requests: 1, Per: time.Minute}); err == nil && n.Allowed {
		s.recordOutcome(r.Context(), actor, "audit.suppressed", r.URL.Path, gatehouse.OutcomeDenied, map[string]any{
			"reason": fmt.Sprintf("more than %d refused admin requests a minute %s: further ones are not recorded one by one for %s", refusalsAudited, whom, d.RetryAfter.Round(time.Second)),
		})
	}
	return false
}

// presentedActor is who a request claims to be, from the form of its
// credential alone (the credential did not verify, or not yet).
func presentedActor(r *http.Request) gatehouse.Actor {
	auth := r.Header.Get("Authorization")
	if user, _, ok := r.BasicAuth(); ok {
		return gatehouse.Actor{Kind: string(gatehouse.KindUser), ID: user}
	}
	token, ok := strings.CutPrefix(auth, "Bearer ")
	switch {
	case auth == "":
		if _, err := r.Cookie(authn.SessionCookie); err == nil {
			return gatehouse.Actor{Kind: "session"}
		}
		return gatehouse.Actor{Kind: "anonymous"}
	case !ok:
		return gatehouse.Actor{Kind: "unknown"}
	case strings.HasPrefix(token, authn.PrefixAPIKey):
		return gatehouse.Actor{Kind: string(gatehouse.KindAPIKey)}
	case strings.HasPrefix(token, authn.PrefixPAT):
		return gatehouse.Actor{Kind: string(gatehouse.KindPAT)}
	case strings.HasPrefix(token, authn.PrefixAdminToken):
		return gatehouse.Actor{Kind: string(gatehouse.KindAdmin), ID: authn.AdminPrincipal().ID}
	}
	return gatehouse.Actor{Kind: "unknown"}
}

// presentedCredentialID is the public id part of a well-formed key or
// token presented in the request ("" if none): which credential failed,
// without its secret.
func presentedCredentialID(r *http.Request) string {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	if part, ok := authn.ParseToken(authn.PrefixAPIKey, token); ok {
		return authn.KeyIDPrefix + part
	}
	if part, ok := authn.ParseToken(authn.PrefixPAT, token); ok {
		return authn.PATIDPrefix + part
	}
	return ""
}

// recordOutcome writes an audit event for an admin decision.
func (s *Server) recordOutcome(ctx context.Context, actor gatehouse.Actor, action, resource, outcome string, details map[string]any) {
	if s.cfg.Auditor == nil {
		return
	}
	e := gatehouse.Event{
		Time:     s.cfg.Clock.Now().UTC(),
		Type:     "admin." + action,
		Actor:    actor,
		Action:   action,
		Resource: resource,
		Outcome:  outcome,
		Details:  details,
		Request:  s.requestInfo(ctx),
	}
	// Recorded whatever the client does: one that hangs up while its
	// answer is sent must neither lose the event nor log a failure.
	if err := s.cfg.Auditor.Record(context.WithoutCancel(ctx), e); err != nil {
		s.log.ErrorContext(ctx, "audit record failed", "action", action, "err", fmt.Sprint(err))
	}
}

// requestInfo is the request of ctx as audit events show it.
func (s *Server) requestInfo(ctx context.Context) *gatehouse.RequestInfo {
	ri := &gatehouse.RequestInfo{RequestID: httpjson.RequestIDFromContext(ctx)}
	if r := infoFrom(ctx); r != nil {
		ri.Method, ri.Path = r.method, r.path
		if s.cfg.SourceIP != nil && r.source != "" {
			ri.SourceIP = s.cfg.SourceIP(r.source)
		}
	}
	return ri
}

func (s *Server) policyStatus(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	httpjson.Write(w, http.StatusOK, s.cfg.Policy.Status())
	return nil
}

// reloadPolicy re-reads the policy source. A refused policy is a 422 with
// the reason (file:line for syntax errors); the old policy keeps serving.
func (s *Server) reloadPolicy(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	err := s.cfg.Policy.Reload(r.Context())
	st := s.cfg.Policy.Status()
	s.record(r.Context(), p, "policy.reload", "policy:"+st.Source, map[string]any{"revision": st.Revision, "sha256": st.SHA256, "ok": err == nil})
	if err != nil {
		return gatehouse.Errorf(gatehouse.EUNPROCESSABLE, "policy refused, previous policy keeps serving: %v", err)
	}
	httpjson.Write(w, http.StatusOK, st)
	return nil
}

// Tier is the JSON form of a configured rate-limit tier.
type Tier struct {
	Name     string `json:"name"`
	Requests int    `json:"requests"`
	Per      string `json:"per"`
}

// listTiers lists the configured rate-limit tiers by name (the default
// limit, which a key without a tier gets, is not a tier).
func (s *Server) listTiers(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	names := slices.Sorted(maps.Keys(s.cfg.TierLimits))
	writeList(w, "tiers", names, func(n string) Tier {
		l := s.cfg.TierLimits[n]
		return Tier{Name: n, Requests: l.Requests, Per: l.Per.String()}
	})
	return nil
}

// writeList answers {"<name>": [conv(item)…]} (an empty array, never null).
func writeList[T, J any](w http.ResponseWriter, name string, items []T, conv func(T) J) {
	out := make([]J, 0, len(items))
	for _, it := range items {
		out = append(out, conv(it))
	}
	httpjson.Write(w, http.StatusOK, map[string]any{name: out})
}
