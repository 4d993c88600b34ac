package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/audit"
	pgaudit "github.com/gatehouse/gatehouse/internal/audit/postgres"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/compliance"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/store"
)

// evidence builds the evidence reports of /v1/evidence from this process's
// live state and its audit log.
type evidence struct{ a *App }

// Report gathers the live state, evaluates every check and returns the
// signed report (see compliance.Build), whose status summary it keeps
// for Summary.
func (ev evidence) Report(ctx context.Context, by gatehouse.Actor, req *gatehouse.RequestInfo, period compliance.Period) (*compliance.Report, error) {
	a := ev.a
	log, ok := a.audit.(compliance.Log)
	if !ok {
		return nil, errors.New("the audit log cannot sign reports")
	}
	s, err := a.evidenceState(ctx, period)
	if err != nil {
		return nil, err
	}
	rep, err := compliance.Build(ctx, s, compliance.BuildOptions{Log: log, By: by, Request: req})
	if err == nil && !a.offline {
		a.noteStatus(ctx, compliance.ReportStatus(rep))
	}
	return rep, err
}

// Summary is the newest control status summary: of the newest report
// any caller generated on any replica, or of the newest daily snapshot
// (one store read; see statusSetting). ENOTFOUND before either.
func (ev evidence) Summary(ctx context.Context) (compliance.StatusSummary, error) {
	return ev.a.latestStatus(ctx)
}

// evidenceState reads the state the checks decide on.
func (a *App) evidenceState(ctx context.Context, period compliance.Period) (*compliance.State, error) {
	cfg := a.cfg
	now := a.clock.Now().UTC()
	s := &compliance.State{Now: now, Period: period, Mode: cfg.Mode, ConfigSHA256: cfg.Hash,
		AuditRetention: time.Duration(cfg.Audit.Retention)}
	if err := a.usage.Flush(ctx); err != nil {
		a.log.WarnContext(ctx, "evidence: last uses not written", "err", err)
	}
	// The log first: a check must not see state newer than the events.
	if err := a.evidenceEvents(ctx, s); err != nil {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	a.auditHealth(ctx, s)
	for _, rc := range cfg.Routes {
		s.Routes = append(s.Routes, compliance.Route{Name: rc.Name, Path: rc.Path, Methods: rc.Methods, Public: rc.Public, Scopes: rc.Scopes, Redact: rc.Redact})
	}
	if !a.offline {
		a.probeRoutes(ctx, s.Routes)
	}
	st := a.policy.Status()
	s.Policy = compliance.Policy{Ready: st.Ready, Source: st.Source, Revision: st.Revision, SHA256: st.SHA256, Tests: st.Tests, LastError: st.LastError,
		Probes: a.policyProbes(ctx)}
	if err := a.evidenceCredentials(ctx, s); err != nil {
		return nil, err
	}
	for _, k := range a.tokens.SigningKeys() {
		if k.RetiredAt == nil {
			s.SigningKeys = append(s.SigningKeys, compliance.SigningKey{KID: k.KID, CreatedAt: k.CreatedAt, Active: k.Active})
		}
	}
	if a.offline {
		s.Listeners = a.configuredListeners()
	} else {
		s.Listeners = a.probeListeners(ctx)
	}
	settings := a.users.Settings()
	lim := a.limiter.Config().Default
	s.Limits = compliance.Limits{DefaultRequests: lim.Requests, DefaultPer: lim.Per, Backend: cfg.RateLimit.Backend,
		LockoutFailures: settings.Lockout.MaxFailures, LockoutWindow: time.Duration(settings.Lockout.Window),
		PreAuthFailures: cfg.Limits.PreAuth.Failures, SignInPerSource: settings.SignInLimits.PerSource.Requests, MaxBody: int64(cfg.Limits.MaxBody)}
	s.Settings = jsonMap(settings)
	s.SettingsDefault = jsonEqual(settings, authn.DefaultAuthSettings())
	if a.backups != nil {
		b := cfg.Backup
		s.Backup = &compliance.Backup{RPO: time.Duration(b.RPO), RTO: time.Duration(b.RTO), Retention: time.Duration(b.Retention), Schedule: time.Duration(b.Schedule)}
	}
	if list, err := a.SecretsStatus(ctx); err != nil {
		s.SecretsError = err.Error()
	} else {
		s.Secrets = []compliance.Secret{}
		for _, st := range list {
			sc := compliance.Secret{Name: st.Name, Class: st.Class, Provider: st.Provider, Cadence: time.Duration(st.CadenceSeconds) * time.Second,
				Overdue: st.Overdue, Rotate: st.Rotate}
			if st.CreatedAt != nil {
				sc.CreatedAt = *st.CreatedAt
			}
			s.Secrets = append(s.Secrets, sc)
		}
	}
	if a.records != nil {
		var err error
		if s.Reviews, err = a.records.Reviews(ctx); err != nil {
			return nil, err
		}
		if s.Incidents, err = a.records.Incidents(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func jsonMap(v any) map[string]any {
	b, _ := json.Marshal(v)
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// perRequest are the event types of single requests: counted per day for
// the charts, not kept.
var perRequest = []string{"http.request", authz.EventDecision, "request", "oauth.token", "admin.read"}

// evidenceEvents scans the retained log once: security events of the
// period are kept, with the newest of each type outside it (the checks
// of state read the newest config.loaded, backup.verify…); per-request
// events are counted by day.
func (a *App) evidenceEvents(ctx context.Context, s *compliance.State) error {
	before := map[string]audit.Entry{}
	days := map[string]*compliance.DayCount{}
	count := func(t time.Time) *compliance.DayCount {
		d := t.UTC().Format(time.DateOnly)
		if days[d] == nil {
			days[d] = &compliance.DayCount{Day: d}
		}
		return days[d]
	}
	var kept []audit.Entry
	cursor := ""
	for {
		page, err := a.audit.Query(ctx, audit.Filter{}, cursor, 1000)
		if err != nil {
			return err
		}
		for _, e := range page.Entries {
			in := s.Period.Contains(e.Event.Time)
			switch {
			case slices.Contains(perRequest, e.Event.Type):
				if in && e.Event.Type != "admin.read" {
					c := count(e.Event.Time)
					if e.Event.Type == "http.request" || e.Event.Type == "request" {
						c.Requests++
					}
					if e.Event.Outcome == gatehouse.OutcomeDenied && e.Event.Type == authz.EventDecision {
						c.Denied++
					}
				}
			case in:
				kept = append(kept, e)
				switch e.Event.Type {
				case "admin.key.revoke", "admin.client.revoke", "admin.token.revoke", "admin.credential.revoke_descendant":
					count(e.Event.Time).Revocations++
				}
			default:
				before[e.Event.Type] = e
			}
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	for _, e := range before {
		s.Events = append(s.Events, e)
	}
	s.Events = append(s.Events, kept...)
	slices.SortFunc(s.Events, func(x, y audit.Entry) int { return cmpUint(x.Index, y.Index) })
	for d := s.Period.From.UTC().Truncate(24 * time.Hour); d.Before(s.Period.To); d = d.Add(24 * time.Hour) {
		if c := days[d.Format(time.DateOnly)]; c != nil {
			s.Traffic = append(s.Traffic, *c)
		} else if len(days) > 0 {
			s.Traffic = append(s.Traffic, compliance.DayCount{Day: d.Format(time.DateOnly)})
		}
	}
	return nil
}

func cmpUint(x, y uint64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// auditHealth verifies the log (a spot check: it is live) and reads how
// far its newest checkpoint reaches.
func (a *App) auditHealth(ctx context.Context, s *compliance.State) {
	h := compliance.AuditHealth{CheckpointInterval: a.cfg.Audit.CheckpointInterval}
	if h.CheckpointInterval == 0 {
		h.CheckpointInterval = 10 * time.Second
	}
	var (
		res    audit.VerifyResult
		err    error
		latest []byte
		vkey   string
	)
	if a.pgAudit != nil {
		vkey = a.pgAudit.VerifierKey()
		var dsn string
		if dsn, err = a.storeDSN(ctx); err == nil {
			res, err = pgaudit.Verify(ctx, dsn, audit.VerifyOptions{VerifierKey: vkey})
			latest, _ = pgaudit.LatestCheckpoint(ctx, dsn)
		}
	} else if fl, ok := a.audit.(*audit.Log); ok {
		vkey = fl.VerifierKey()
		latest = fl.Checkpoint()
		res, err = audit.Verify(ctx, AuditDir(a.cfg, a.dataDir), audit.VerifyOptions{VerifierKey: vkey})
	}
	h.Verified = true
	if err != nil {
		h.VerifyError = err.Error()
	}
	h.Entries, h.Checkpoints = res.Entries, res.Checkpoints
	if cp, err := audit.OpenCheckpoint(latest, vkey); err == nil {
		h.LatestCheckpoint = cp.Size
		if page, err := a.audit.Query(ctx, audit.Filter{}, strconv.FormatUint(cp.Size, 10), 1); err == nil && len(page.Entries) > 0 {
			h.Uncovered = page.Entries[0].Event.Time
		}
	}
	s.Audit = h
}

// evidenceCredentials lists the active keys, clients, tokens and users.
func (a *App) evidenceCredentials(ctx context.Context, s *compliance.State) error {
	now := s.Now
	live := func(revoked, expires time.Time) bool {
		return revoked.IsZero() && (expires.IsZero() || now.Before(expires))
	}
	keys, err := a.store.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	for _, k := range keys {
		if live(k.RevokedAt, k.ExpiresAt) {
			s.Credentials = append(s.Credentials, compliance.Credential{Kind: "api_key", ID: k.ID, Name: k.Name, Scopes: k.Scopes,
				CreatedAt: k.CreatedAt, CreatedBy: k.CreatedBy, LastUsedAt: k.LastUsedAt, ExpiresAt: k.ExpiresAt, HashLen: macLen(k.Hash)})
		}
	}
	clients, err := a.store.ListClients(ctx)
	if err != nil {
		return fmt.Errorf("list clients: %w", err)
	}
	for _, c := range clients {
		if live(c.RevokedAt, c.ExpiresAt) {
			s.Credentials = append(s.Credentials, compliance.Credential{Kind: "client", ID: c.ID, Name: c.Name, Scopes: c.Scopes,
				CreatedAt: c.CreatedAt, CreatedBy: c.CreatedBy, RotatedAt: c.SecretRotatedAt, LastUsedAt: c.LastUsedAt, ExpiresAt: c.ExpiresAt, HashLen: macLen(c.SecretHash)})
		}
	}
	pats, err := a.store.ListPATs(ctx, "")
	if err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	for _, p := range pats {
		if live(p.RevokedAt, p.ExpiresAt) {
			s.Credentials = append(s.Credentials, compliance.Credential{Kind: "pat", ID: p.ID, Name: p.Name, Owner: p.Username, Scopes: p.Scopes,
				Role: p.Role, CreatedAt: p.CreatedAt, CreatedBy: p.CreatedBy, LastUsedAt: p.LastUsedAt, ExpiresAt: p.ExpiresAt, HashLen: macLen(p.Hash)})
		}
	}
	users, err := a.store.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	for _, u := range users {
		s.Users = append(s.Users, compliance.User{Username: u.Username, Role: u.Role, CreatedAt: u.CreatedAt, CreatedBy: u.CreatedBy,
			Disabled: !u.DisabledAt.IsZero(), TOTP: u.TOTPEnabled})
	}
	return nil
}

// policyProbes asks the serving policy about callers it must refuse.
func (a *App) policyProbes(ctx context.Context) []compliance.PolicyProbe {
	route := &authz.RouteInput{Name: "evidence-probe", Scopes: []string{"evidence:probe"}}
	cases := []struct {
		name string
		in   authz.Input
	}{
		{"anonymous caller on a scoped route", authz.Input{Principal: authz.PrincipalInput{Kind: "anonymous", Scopes: []string{}},
			Request: authz.RequestInput{Method: "GET", Path: "/evidence-probe/"}, Route: route, Action: authz.ActionHTTPRequest, Mode: a.cfg.Mode}},
		{"key without the route's scope", authz.Input{Principal: authz.PrincipalInput{ID: "key_probe", Kind: string(gatehouse.KindAPIKey), Scopes: []string{"other:scope"}},
			Request: authz.RequestInput{Method: "GET", Path: "/evidence-probe/"}, Route: route, Action: authz.ActionHTTPRequest, Mode: a.cfg.Mode}},
		{"tool execution without its scope", authz.Input{Principal: authz.PrincipalInput{ID: "key_probe", Kind: string(gatehouse.KindAPIKey), Scopes: []string{}},
			Action: authz.ActionToolExecute, Resource: "tool:evidence-probe", Mode: a.cfg.Mode}},
	}
	var out []compliance.PolicyProbe
	for _, c := range cases {
		d, err := a.policy.DecideUncached(ctx, &c.in)
		p := compliance.PolicyProbe{Case: c.name, Allowed: d.Allow}
		if err != nil {
			p.Error = err.Error()
		}
		out = append(out, p)
	}
	return out
}

// probeClient asks this process's own listeners. It does not check the
// certificate: it probes what the listener negotiates, and talks only to
// the address this process bound.
func probeClient(maxVersion uint16) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, MaxVersion: maxVersion}, // #nosec G402 -- probing our own listener's TLS versions, not trusting it
		DisableKeepAlives: true,
	}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func loopbackURL(addr string, tlsOn bool) string {
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "http://"
	if tlsOn {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, port)
}

// probeRoutes asks each route not marked public for its path without a
// credential; only the status is kept (nothing reaches an upstream
// unless the route serves anonymous callers, which is the finding).
func (a *App) probeRoutes(ctx context.Context, routes []compliance.Route) {
	base := loopbackURL(a.Addr(), a.cfg.TLS.Enabled())
	c := probeClient(0)
	for i := range routes {
		r := &routes[i]
		if r.Public {
			continue
		}
		method := http.MethodGet
		if len(r.Methods) > 0 {
			method = r.Methods[0]
		}
		req, err := http.NewRequestWithContext(ctx, method, base+r.Path, nil)
		if err != nil {
			continue
		}
		res, err := c.Do(req)
		if err != nil {
			continue
		}
		res.Body.Close()
		r.ProbeStatus = res.StatusCode
	}
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "1.3"
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS11:
		return "1.1"
	case tls.VersionTLS10:
		return "1.0"
	}
	return ""
}

// configuredListeners describes the listeners of the config without
// probing them (offline reports: nothing is serving).
func (a *App) configuredListeners() []compliance.Listener {
	tlsOn := a.cfg.TLS.Enabled()
	min := a.cfg.TLS.MinVersion
	if min == "" {
		min = "1.2"
	}
	list := []compliance.Listener{
		{Name: "public", Address: a.offlineListen[0], TLS: tlsOn, MinVersion: min},
		{Name: "admin", Address: a.offlineListen[1], TLS: tlsOn && a.cfg.TLS.Admin},
	}
	for i := range list {
		l := &list[i]
		if !l.TLS {
			l.MinVersion = ""
		}
		host, _, _ := net.SplitHostPort(l.Address)
		ip := net.ParseIP(host)
		l.Loopback = ip != nil && ip.IsLoopback() || host == "localhost"
	}
	return list
}

// OfflineReport builds the evidence report of a deployment that is not
// running, from its data directory or store (cfg as serve would load it)
// — by an operator on the host, with the audit log's own key. Nothing is
// served: the listeners are described from the config, not probed (the
// checks that need a probe say manual), and no config.loaded event is
// recorded for it. The file audit log is locked by a running server:
// generate over the admin API then.
func OfflineReport(ctx context.Context, cfg *config.Config, opts Options, by gatehouse.Actor, period compliance.Period) (*compliance.Report, error) {
	c := *cfg
	c.Listen, c.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	c.TLS.RedirectListen = ""
	opts.Offline = true
	a, err := New(ctx, &c, opts)
	if err != nil {
		return nil, err
	}
	defer a.close()
	a.offline = true
	a.offlineListen = [2]string{cfg.Listen, cfg.AdminListen}
	return evidence{a}.Report(ctx, by, nil, period)
}

// probeListeners asks /health/live of each listener, and whether it takes
// a TLS 1.1 handshake.
func (a *App) probeListeners(ctx context.Context) []compliance.Listener {
	tlsOn := a.cfg.TLS.Enabled()
	min := a.cfg.TLS.MinVersion
	if min == "" {
		min = "1.2"
	}
	list := []compliance.Listener{
		{Name: "public", Address: a.Addr(), TLS: tlsOn, MinVersion: min},
		{Name: "admin", Address: a.AdminAddr(), TLS: tlsOn && a.cfg.TLS.Admin},
	}
	for i := range list {
		l := &list[i]
		if !l.TLS {
			l.MinVersion = ""
		}
		host, _, _ := net.SplitHostPort(l.Address)
		ip := net.ParseIP(host)
		l.Loopback = ip != nil && ip.IsLoopback()
		l.Probe = probeListener(ctx, loopbackURL(l.Address, l.TLS), l.TLS)
	}
	return list
}

func probeListener(ctx context.Context, base string, tlsOn bool) *compliance.Probe {
	p := &compliance.Probe{Headers: map[string]string{}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health/live", nil)
	if err != nil {
		p.Error = err.Error()
		return p
	}
	res, err := probeClient(0).Do(req)
	if err != nil {
		p.Error = err.Error()
		return p
	}
	res.Body.Close()
	for k := range res.Header {
		p.Headers[k] = res.Header.Get(k)
	}
	if res.TLS != nil {
		p.TLSVersion = tlsVersionName(res.TLS.Version)
	}
	if tlsOn {
		host := strings.TrimPrefix(base, "https://")
		d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}} // #nosec G402 -- probing our own listener
		conn, err := d.DialContext(ctx, "tcp", host)
		if err == nil {
			conn.Close()
		} else {
			p.RefusedTLS11 = true
		}
	}
	return p
}

// drill runs a revocation drill: it creates a canary key, checks that
// this process's public listener and every replica in
// incidents.drill_targets admit it (POST /v1/authorize), revokes it, and
// measures until each of them refuses it (401), at most drillTimeout. The
// drill's figure is the slowest replica's.
func (a *App) drill(ctx context.Context, by gatehouse.Actor) (admin.DrillResult, error) {
	now := a.clock.Now()
	self := loopbackURL(a.Addr(), a.cfg.TLS.Enabled())
	res := admin.DrillResult{Target: self}
	targets := []admin.DrillTarget{{URL: self}}
	for _, t := range a.cfg.Incidents.DrillTargets {
		targets = append(targets, admin.DrillTarget{URL: strings.TrimSuffix(t, "/")})
	}
	k, secret, err := a.keys.Create(ctx, authn.NewKey{Name: "incident-drill-canary", Scopes: []string{"drill:canary"},
		ExpiresAt: now.Add(10 * time.Minute), Lineage: store.Lineage{CreatedBy: by.Kind + ":" + by.ID, CreatedByRoot: by.Kind + ":" + by.ID}})
	if err != nil {
		return res, fmt.Errorf("create the canary key: %w", err)
	}
	res.KeyID = k.ID
	local := probeClient(0) // our own listener: its certificate need not name 127.0.0.1
	remote := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ask := func(i int) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, targets[i].URL+"/v1/authorize", strings.NewReader(`{"action":"drill.canary","resource":"drill:canary"}`))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Content-Type", "application/json")
		c := remote
		if i == 0 {
			c = local
		}
		r, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		r.Body.Close()
		return r.StatusCode, nil
	}
	for i := range targets {
		status, err := ask(i)
		if err == nil && status == http.StatusUnauthorized {
			err = errors.New("it refused the canary key before it was revoked")
		}
		if err != nil {
			a.keys.Revoke(context.WithoutCancel(ctx), k.ID)
			if i == 0 {
				return res, fmt.Errorf("use the canary key: %w", err)
			}
			// A replica of incidents.drill_targets: the operator's to fix.
			return res, gatehouse.Errorf(gatehouse.EBADGATEWAY, "drill target %s: %v; check incidents.drill_targets (the canary key is revoked)", targets[i].URL, err)
		}
		targets[i].BeforeStatus = status
	}
	res.BeforeStatus = targets[0].BeforeStatus
	start := time.Now()
	if _, err := a.keys.Revoke(ctx, k.ID); err != nil {
		return res, fmt.Errorf("revoke the canary key: %w", err)
	}
	var wg sync.WaitGroup
	for i := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < drillTimeout {
				if st, err := ask(i); err == nil && st == http.StatusUnauthorized {
					targets[i].Refused = true
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			targets[i].DurationMS = float64(time.Since(start).Microseconds()) / 1000
		}()
	}
	wg.Wait()
	res.Refused = true
	for _, t := range targets {
		res.Refused = res.Refused && t.Refused
		res.DurationMS = max(res.DurationMS, t.DurationMS)
	}
	res.Targets = targets
	return res, nil
}

// drillTimeout bounds how long a drill waits for the gateway to refuse a
// revoked key.
const drillTimeout = 30 * time.Second

// lockedError is a file audit log held by another process; it unwraps to
// audit.ErrLocked (OfflineReport's callers branch on it).
type lockedError struct{ dir string }

func (e lockedError) Error() string {
	return "audit log " + e.dir + " is in use by another gatehouse process: give each process its own audit.dir, or use audit.backend postgres"
}

func (e lockedError) Unwrap() error { return audit.ErrLocked }

// macLen is the length of the HMAC a stored credential hash holds (32
// for HMAC-SHA-256 under any pepper version), or of the whole stored
// value when it is no credential hash at all.
func macLen(stored []byte) int {
	if _, mac, err := authn.DecodeHash(stored); err == nil {
		return len(mac)
	}
	return len(stored)
}
