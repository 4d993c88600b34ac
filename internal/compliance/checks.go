package compliance

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
)

// Checks returns every check, in a stable order.
func Checks() []Check {
	return []Check{
		{ID: "routes.authenticated", Title: "Every route is authenticated or explicitly public", Run: checkRoutes},
		{ID: "policy.deny_by_default", Title: "Deny-by-default policy loaded with its tests passing", Run: checkPolicy},
		{ID: "credentials.hashed", Title: "Keys, client secrets and tokens stored only as hashes", Run: checkHashed},
		{ID: "credentials.rotation_age", Title: "No credential past its rotation age", Run: checkRotation},
		{ID: "credentials.admin_unused", Title: "No admin credential unused for 90 days", Run: checkAdminUnused},
		{ID: "revocation.propagation", Title: "Revocation propagation measured within its SLA", Run: checkRevocation},
		{ID: "tls.listeners", Title: "TLS 1.2 or later on every listener, HSTS served", Run: checkTLS},
		{ID: "headers.security", Title: "The six security headers served", Run: checkHeaders},
		{ID: "limits.rate_and_lockout", Title: "Rate limits and lockout configured", Run: checkLimits},
		{ID: "redaction.sensitive_routes", Title: "Redaction on for the routes carrying sensitive data", Run: checkRedaction},
		{ID: "audit.verifies", Title: "Audit log verifies", Run: checkAuditVerifies},
		{ID: "audit.checkpoint_fresh", Title: "Newest signed checkpoint is fresh", Run: checkCheckpointFresh},
		{ID: "audit.retention", Title: "Audit retention of at least 90 days", Run: checkRetention},
		{ID: "changes.audited", Title: "Every config, policy and settings change has its audit event", Run: checkChanges},
		{ID: "reviews.current", Title: "Access review completed within 90 days", Run: checkReviews},
		{ID: "incidents.reviewed", Title: "Incidents closed with a post-incident review within 5 business days", Run: checkIncidents},
		{ID: "backup.recent", Title: "Last backup younger than the RPO", Run: checkBackupRecent},
		{ID: "backup.restore_tested", Title: "Restore tested within 30 days and under the RTO", Run: checkRestoreTested},
		{ID: "backup.retention", Title: "Backups pruned by retention", Run: checkBackupRetention},
		{ID: "dependencies.scan", Title: "Dependency scan recent and clear of critical CVEs", Run: checkDependencyScan},
		{ID: "secrets.rotation", Title: "Secrets (Vault token, signing keys, pepper, audit key…) within their rotation cadence", Run: checkSecrets},
	}
}

func days(d time.Duration) string { return strconv.Itoa(int(d/(24*time.Hour))) + " days" }

// latest returns the newest event of one of types, optionally also
// matching keep.
func latest(s *State, keep func(audit.Entry) bool, types ...string) (audit.Entry, bool) {
	for i := len(s.Events) - 1; i >= 0; i-- {
		e := s.Events[i]
		if slices.Contains(types, e.Event.Type) && (keep == nil || keep(e)) {
			return e, true
		}
	}
	return audit.Entry{}, false
}

// inPeriod returns the events of the period of one of types, oldest first.
func inPeriod(s *State, types ...string) []audit.Entry {
	var out []audit.Entry
	for _, e := range s.Events {
		if slices.Contains(types, e.Event.Type) && s.Period.Contains(e.Event.Time) {
			out = append(out, e)
		}
	}
	return out
}

// lastN keeps the newest n entries.
func lastN(es []audit.Entry, n int) []audit.Entry {
	if len(es) > n {
		return es[len(es)-n:]
	}
	return es
}

func detail(e audit.Entry, key string) any {
	if e.Event.Details == nil {
		return nil
	}
	return e.Event.Details[key]
}

func detailString(e audit.Entry, key string) string {
	v, _ := detail(e, key).(string)
	return v
}

func detailBool(e audit.Entry, key string) (bool, bool) {
	v, ok := detail(e, key).(bool)
	return v, ok
}

func detailNumber(e audit.Entry, key string) (float64, bool) {
	switch v := detail(e, key).(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	case int:
		return float64(v), true
	}
	return 0, false
}

// configLoaded is the config.loaded event of the config serving.
func configLoaded(s *State) (audit.Entry, bool) {
	return latest(s, func(e audit.Entry) bool { return detailString(e, "sha256") == s.ConfigSHA256 }, "config.loaded")
}

func checkRoutes(s *State) Finding {
	f := Finding{Remediation: "Mark routes meant for anonymous callers public: true; every other route must answer 401 to a request without credentials."}
	var inventory []map[string]any
	var open []string
	var public []string
	for _, r := range s.Routes {
		inventory = append(inventory, map[string]any{"name": r.Name, "path": r.Path, "public": r.Public, "scopes": r.Scopes})
		if r.Public {
			public = append(public, r.Name)
		}
	}
	for _, p := range routeProbes(s) {
		if p.status < 400 {
			open = append(open, fmt.Sprintf("%s (%d)", p.name, p.status))
		}
	}
	probes := routeProbes(s)
	f.Observed = map[string]any{"routes": inventory, "public": public, "anonymous_probes": probeMap(probes)}
	if e, ok := configLoaded(s); ok {
		f.cite(e)
	}
	switch {
	case len(s.Routes) == 0:
		f.Status, f.Reason = StatusNotApplicable, "no routes are configured"
	case len(open) > 0:
		f.Status, f.Reason = StatusFail, "routes not marked public answered a request without credentials: "+strings.Join(open, ", ")
	case len(probes) < len(s.Routes)-len(public):
		f.Status, f.Reason = StatusManual, "not every authenticated route could be probed"
		f.Provide = "the answer of each route not marked public to a request without credentials"
	default:
		f.Status = StatusPass
		f.Reason = fmt.Sprintf("%d routes: %d public by configuration, %d refused a request without credentials", len(s.Routes), len(public), len(probes))
	}
	return f
}

// RouteProbe is the answer of a route to an anonymous request.
type routeProbe struct {
	name   string
	status int
}

// ProbeStatus, set by the app on Route, is the HTTP status a request
// without credentials got; 0: not probed.
func routeProbes(s *State) []routeProbe {
	var out []routeProbe
	for _, r := range s.Routes {
		if !r.Public && r.ProbeStatus != 0 {
			out = append(out, routeProbe{r.Name, r.ProbeStatus})
		}
	}
	return out
}

func probeMap(ps []routeProbe) map[string]int {
	m := map[string]int{}
	for _, p := range ps {
		m[p.name] = p.status
	}
	return m
}

func checkPolicy(s *State) Finding {
	p := s.Policy
	f := Finding{Remediation: "Load a policy whose default is deny (default allow := false) with Rego tests (gatehouse policy test) and reload it."}
	f.Observed = map[string]any{"ready": p.Ready, "source": p.Source, "revision": p.Revision, "sha256": p.SHA256, "tests_passed": p.Tests, "probes": p.Probes}
	if e, ok := latest(s, func(e audit.Entry) bool {
		return detailString(e, "policy_sha256") == p.SHA256 || detailString(e, "sha256") == p.SHA256
	}, "config.loaded", "admin.policy.reload", "policy.reloaded"); ok && p.SHA256 != "" {
		f.cite(e)
	}
	var allowed []string
	for _, pr := range p.Probes {
		if pr.Allowed || pr.Error != "" {
			allowed = append(allowed, pr.Case)
		}
	}
	switch {
	case !p.Ready:
		f.Status, f.Reason = StatusFail, "no policy is serving: "+p.LastError
	case len(allowed) > 0:
		f.Status, f.Reason = StatusFail, "the policy did not deny: "+strings.Join(allowed, ", ")
	case len(p.Probes) == 0:
		f.Status, f.Reason = StatusManual, "the policy was not probed"
		f.Provide = "decisions of the serving policy for an anonymous caller and a caller without scopes"
	case p.Tests == 0:
		f.Status, f.Reason = StatusFail, "the serving policy has no Rego tests"
		f.Remediation = "Add Rego tests (*_test.rego) beside the policy; gatehouse policy test runs them and serve refuses a policy whose tests fail."
	default:
		f.Status = StatusPass
		f.Reason = fmt.Sprintf("policy %s (revision %q) denies %d probe callers and passed %d tests at load", short(p.SHA256), p.Revision, len(p.Probes), p.Tests)
	}
	return f
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func checkHashed(s *State) Finding {
	f := Finding{Remediation: "Re-issue any credential whose stored secret is not a 32-byte HMAC-SHA-256 and revoke the old one."}
	counts := map[string]int{}
	var bad []string
	for _, c := range s.Credentials {
		counts[c.Kind]++
		if c.HashLen != 32 {
			bad = append(bad, c.Kind+":"+c.ID)
		}
	}
	f.Observed = map[string]any{"credentials": counts, "hash": "HMAC-SHA-256 under the server pepper (32 bytes)", "not_hashed": bad}
	f.cite(lastN(inPeriod(s, "admin.key.create", "admin.client.create", "admin.token.create", "admin.key.rotate", "admin.client.rotate_secret"), 5)...)
	switch {
	case len(s.Credentials) == 0:
		f.Status, f.Reason = StatusNotApplicable, "no active credentials"
	case len(bad) > 0:
		f.Status, f.Reason = StatusFail, "stored secrets that are not 32-byte hashes: "+strings.Join(bad, ", ")
	default:
		f.Status = StatusPass
		f.Reason = fmt.Sprintf("all %d active credentials are stored as 32-byte HMAC-SHA-256 hashes; the store has no column for a secret", len(s.Credentials))
	}
	return f
}

func checkRotation(s *State) Finding {
	t := s.Thresholds
	f := Finding{Remediation: "Rotate the credentials listed (gatehouse keys rotate ID, clients rotate ID, signing-keys rotate) or revoke those no longer needed."}
	var old []string
	for _, c := range s.Credentials {
		since := c.CreatedAt
		if c.RotatedAt.After(since) {
			since = c.RotatedAt
		}
		if s.Now.Sub(since) > t.KeyRotation {
			old = append(old, fmt.Sprintf("%s:%s (%s old)", c.Kind, c.ID, days(s.Now.Sub(since))))
		}
	}
	signingOld := []string{}
	for _, k := range s.SigningKeys {
		if k.Active && s.Now.Sub(k.CreatedAt) > t.SigningKeyRotation {
			sk := fmt.Sprintf("signing_key:%s (%s old)", k.KID, days(s.Now.Sub(k.CreatedAt)))
			old = append(old, sk)
			signingOld = append(signingOld, sk)
		}
	}
	f.Observed = map[string]any{"credentials": len(s.Credentials), "signing_keys": len(s.SigningKeys),
		"max_age_credentials": days(t.KeyRotation), "max_age_signing_keys": days(t.SigningKeyRotation), "past_rotation_age": old,
		"signing_keys_past_rotation_age": signingOld}
	f.cite(lastN(inPeriod(s, "admin.key.rotate", "admin.client.rotate_secret", "admin.signing_key.rotate", "signing_key.rotated"), 5)...)
	switch {
	case len(old) > 0:
		f.Status, f.Reason = StatusFail, "past rotation age: "+strings.Join(old, ", ")
	case len(s.Credentials) == 0 && len(s.SigningKeys) == 0:
		f.Status, f.Reason = StatusNotApplicable, "no active credentials or signing keys"
	default:
		f.Status = StatusPass
		f.Reason = fmt.Sprintf("%d credentials within %s and %d signing keys within %s", len(s.Credentials), days(t.KeyRotation), len(s.SigningKeys), days(t.SigningKeyRotation))
	}
	return f
}

func checkAdminUnused(s *State) Finding {
	t := s.Thresholds
	f := Finding{Remediation: "Revoke admin credentials nobody uses (gatehouse keys revoke ID, tokens revoke ID); grant admin only to those who need it."}
	var admins, unused []string
	for _, c := range s.Credentials {
		if !c.Admin() {
			continue
		}
		admins = append(admins, c.Kind+":"+c.ID)
		last := c.LastUsedAt
		if last.IsZero() {
			last = c.CreatedAt
		}
		if s.Now.Sub(last) > t.AdminUnused {
			unused = append(unused, fmt.Sprintf("%s:%s (last used %s)", c.Kind, c.ID, usedWhen(c.LastUsedAt)))
		}
	}
	f.Observed = map[string]any{"admin_credentials": admins, "unused": unused, "max_unused": days(t.AdminUnused)}
	f.cite(lastN(inPeriod(s, "admin.key.create", "admin.token.create", "admin.key.revoke", "admin.token.revoke"), 5)...)
	switch {
	case len(unused) > 0:
		f.Status, f.Reason = StatusFail, "admin credentials unused for more than "+days(t.AdminUnused)+": "+strings.Join(unused, ", ")
	case len(admins) == 0:
		f.Status, f.Reason = StatusNotApplicable, "no credential carries admin power (the bootstrap admin token aside)"
	default:
		f.Status = StatusPass
		f.Reason = fmt.Sprintf("%d admin credentials, each used within %s", len(admins), days(t.AdminUnused))
	}
	return f
}

func usedWhen(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.DateOnly)
}

func checkRevocation(s *State) Finding {
	sla := s.Thresholds.RevocationSLA
	f := Finding{Remediation: "Run gatehouse incident drill, which revokes a canary key and measures until every replica refuses it."}
	e, ok := latest(s, nil, "admin.incident.drill")
	if !ok {
		f.Status, f.Reason = StatusManual, "no revocation drill is on record"
		f.Provide = "a revocation drill's measured propagation time (gatehouse incident drill)"
		f.Observed = map[string]any{"sla_ms": sla.Milliseconds()}
		return f
	}
	f.cite(e)
	ms, _ := detailNumber(e, "duration_ms")
	ok2, _ := detailBool(e, "refused")
	f.Observed = map[string]any{"drill": e.Event.ID, "at": e.Event.Time, "duration_ms": ms, "sla_ms": sla.Milliseconds(), "refused": ok2}
	switch {
	case !ok2:
		f.Status, f.Reason = StatusFail, "the last drill's canary key was not refused everywhere"
	case time.Duration(ms)*time.Millisecond > sla:
		f.Status, f.Reason = StatusFail, fmt.Sprintf("revocation took %.0f ms, over the %d ms SLA", ms, sla.Milliseconds())
	default:
		f.Status, f.Reason = StatusPass, fmt.Sprintf("the drill of %s measured %.0f ms, within the %d ms SLA", e.Event.Time.UTC().Format(time.DateOnly), ms, sla.Milliseconds())
	}
	return f
}

func tlsAtLeast12(v string) bool { return v == "1.2" || v == "1.3" || v == "" }

func checkTLS(s *State) Finding {
	f := Finding{Remediation: "Set tls.cert_file and tls.key_file (min_version 1.2 or 1.3); keep the admin listener on loopback or set tls.admin."}
	var problems []string
	observed := []map[string]any{}
	probed := 0
	for _, l := range s.Listeners {
		o := map[string]any{"name": l.Name, "address": l.Address, "tls": l.TLS, "min_version": l.MinVersion, "loopback": l.Loopback}
		if l.Probe != nil {
			probed++
			o["negotiated"] = l.Probe.TLSVersion
			o["refused_tls11"] = l.Probe.RefusedTLS11
			o["hsts"] = l.Probe.Headers["Strict-Transport-Security"]
			if l.Probe.Error != "" {
				o["probe_error"] = l.Probe.Error
			}
		}
		observed = append(observed, o)
		switch {
		case !l.TLS && l.Name == "admin" && l.Loopback:
			// Loopback only: nothing crosses a network.
		case !l.TLS:
			problems = append(problems, l.Name+" listener serves plain HTTP")
		case !tlsAtLeast12(l.MinVersion):
			problems = append(problems, l.Name+" listener allows TLS "+l.MinVersion)
		case l.Probe == nil:
			// Not probed (an offline report): decided by the probe count.
		case l.Probe.Error != "":
			problems = append(problems, l.Name+" listener could not be probed")
		case !l.Probe.RefusedTLS11:
			problems = append(problems, l.Name+" listener accepted a TLS 1.1 handshake")
		case !strings.Contains(l.Probe.Headers["Strict-Transport-Security"], "max-age=31536000"):
			problems = append(problems, l.Name+" listener did not send HSTS with max-age=31536000")
		}
	}
	f.Observed = map[string]any{"listeners": observed, "mode": s.Mode}
	if e, ok := configLoaded(s); ok {
		f.cite(e)
	}
	switch {
	case len(s.Listeners) == 0:
		f.Status, f.Reason = StatusManual, "no listener was described"
		f.Provide = "the TLS configuration of every listener"
	case len(problems) > 0 && s.Mode == "dev":
		f.Status, f.Reason = StatusNotApplicable, "dev mode (not a production system): "+strings.Join(problems, "; ")
	case len(problems) > 0:
		f.Status, f.Reason = StatusFail, strings.Join(problems, "; ")
	case probed < len(s.Listeners):
		f.Status, f.Reason = StatusManual, fmt.Sprintf("%d of %d listeners were probed (an offline report probes none)", probed, len(s.Listeners))
		f.Provide = "a TLS handshake with each listener, and its HSTS header"
	default:
		f.Status, f.Reason = StatusPass, "every listener off loopback serves TLS 1.2 or later, refuses TLS 1.1 and sends HSTS (probed)"
	}
	return f
}

// SecurityHeaders are the headers every response must carry, with a
// substring their value must contain.
var securityHeaders = [][2]string{
	{"Strict-Transport-Security", "max-age="},
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "DENY"},
	{"X-Xss-Protection", ""},
	{"Content-Security-Policy", "default-src"},
	{"Referrer-Policy", "strict-origin-when-cross-origin"},
}

func checkHeaders(s *State) Finding {
	f := Finding{Remediation: "Gatehouse sets the six headers itself on every response; a proxy in front must not strip them."}
	var missing []string
	served := map[string]map[string]string{}
	for _, l := range s.Listeners {
		if l.Probe == nil || l.Probe.Error != "" {
			continue
		}
		served[l.Name] = l.Probe.Headers
		for _, h := range securityHeaders {
			v, ok := l.Probe.Headers[h[0]]
			if !ok || !strings.Contains(v, h[1]) {
				missing = append(missing, l.Name+": "+h[0])
			}
		}
	}
	f.Observed = map[string]any{"served": served}
	if e, ok := configLoaded(s); ok {
		f.cite(e)
	}
	switch {
	case len(served) == 0:
		f.Status, f.Reason = StatusManual, "no listener answered a probe"
		f.Provide = "the response headers of each listener"
	case len(missing) > 0:
		f.Status, f.Reason = StatusFail, "missing or wrong: "+strings.Join(missing, ", ")
	default:
		f.Status, f.Reason = StatusPass, fmt.Sprintf("the six headers were served by %d listeners (probed)", len(served))
	}
	return f
}

func checkLimits(s *State) Finding {
	l := s.Limits
	f := Finding{Remediation: "Set ratelimit.default, limits.preauth and Settings → Authentication → lockout (max_failures, window)."}
	f.Observed = map[string]any{"default_requests": l.DefaultRequests, "default_per": l.DefaultPer.String(), "backend": l.Backend,
		"lockout_max_failures": l.LockoutFailures, "lockout_window": l.LockoutWindow.String(), "preauth_failures": l.PreAuthFailures,
		"sign_in_per_source": l.SignInPerSource, "max_body": l.MaxBody}
	if e, ok := configLoaded(s); ok {
		f.cite(e)
	}
	if e, ok := latest(s, nil, "admin.settings.change"); ok {
		f.cite(e)
	}
	var problems []string
	if l.DefaultRequests <= 0 || l.DefaultPer <= 0 {
		problems = append(problems, "no default rate limit")
	}
	if l.LockoutFailures <= 0 || l.LockoutWindow <= 0 {
		problems = append(problems, "no sign-in lockout")
	}
	if l.PreAuthFailures < 0 {
		problems = append(problems, "the pre-authentication failure limit is off")
	}
	if l.MaxBody <= 0 {
		problems = append(problems, "no request body limit")
	}
	if len(problems) > 0 {
		f.Status, f.Reason = StatusFail, strings.Join(problems, "; ")
		return f
	}
	f.Status = StatusPass
	f.Reason = fmt.Sprintf("%d requests per %s by default (%s), lockout after %d failures in %s, pre-authentication limit %d failures",
		l.DefaultRequests, l.DefaultPer, l.Backend, l.LockoutFailures, l.LockoutWindow, l.PreAuthFailures)
	return f
}

func checkRedaction(s *State) Finding {
	var on, off []string
	for _, r := range s.Routes {
		if r.Redact {
			on = append(on, r.Name)
		} else {
			off = append(off, r.Name)
		}
	}
	f := Finding{Observed: map[string]any{"redacting": on, "not_redacting": off},
		Remediation: "Set redact: true on every route whose responses may carry secrets or personal data."}
	if e, ok := configLoaded(s); ok {
		f.cite(e)
	}
	switch {
	case len(s.Routes) == 0:
		f.Status, f.Reason = StatusNotApplicable, "no routes are configured"
	case len(off) == 0:
		f.Status, f.Reason = StatusPass, fmt.Sprintf("every route (%d) redacts secrets in responses", len(on))
	default:
		// Which data is sensitive is not in the config: a person says.
		f.Status = StatusManual
		f.Reason = fmt.Sprintf("%d routes redact, %d do not; the config does not say which routes carry sensitive data", len(on), len(off))
		f.Provide = "the data classification of the routes not redacting (" + strings.Join(off, ", ") + "): none carries sensitive data, or turn redaction on"
	}
	return f
}

func checkAuditVerifies(s *State) Finding {
	a := s.Audit
	f := Finding{Remediation: "Run gatehouse audit verify, find the entry named, and restore the log from a backup; treat it as an incident."}
	f.Observed = map[string]any{"verified": a.Verified, "entries": a.Entries, "checkpoints": a.Checkpoints}
	if a.VerifyError != "" {
		f.Observed["error"] = a.VerifyError
	}
	switch {
	case !a.Verified && a.VerifyError == "":
		f.Status, f.Reason = StatusManual, "the audit log was not verified"
		f.Provide = "the output of gatehouse audit verify against the log"
	case a.VerifyError != "":
		f.Status, f.Reason = StatusFail, "verification failed: "+a.VerifyError
	default:
		f.Status, f.Reason = StatusPass, fmt.Sprintf("recomputed %d entries and checked %d signed checkpoints", a.Entries, a.Checkpoints)
	}
	return f
}

func checkCheckpointFresh(s *State) Finding {
	a := s.Audit
	limit := 3 * a.CheckpointInterval
	if limit <= 0 {
		limit = 30 * time.Second
	}
	f := Finding{Remediation: "Check that the process signing checkpoints (the PostgreSQL sequencer leader) is running; see /health/ready."}
	f.Observed = map[string]any{"latest_checkpoint_size": a.LatestCheckpoint, "entries": a.Entries, "checkpoint_interval": a.CheckpointInterval.String()}
	switch {
	case a.LatestCheckpoint == 0 && a.Entries == 0:
		f.Status, f.Reason = StatusManual, "no checkpoint was read"
		f.Provide = "the newest signed checkpoint (gatehouse audit checkpoint)"
	case a.Uncovered.IsZero():
		f.Status, f.Reason = StatusPass, fmt.Sprintf("the newest checkpoint covers all %d entries", a.LatestCheckpoint)
	case s.Now.Sub(a.Uncovered) > limit:
		f.Observed["oldest_uncovered"] = a.Uncovered
		f.Status, f.Reason = StatusFail, fmt.Sprintf("an entry of %s is not covered by any checkpoint (more than %s old)", a.Uncovered.UTC().Format(time.RFC3339), limit)
	default:
		f.Observed["oldest_uncovered"] = a.Uncovered
		f.Status, f.Reason = StatusPass, fmt.Sprintf("entries not yet covered are under %s old", limit)
	}
	return f
}

func checkRetention(s *State) Finding {
	min := s.Thresholds.AuditRetention
	f := Finding{Remediation: "Set audit.retention to 90d or more (default 180d)."}
	f.Observed = map[string]any{"retention": s.AuditRetention.String(), "minimum": min.String()}
	if e, ok := configLoaded(s); ok {
		f.cite(e)
	}
	switch {
	case s.AuditRetention == 0:
		f.Status, f.Reason = StatusPass, "audit entries are kept forever"
	case s.AuditRetention < min:
		f.Status, f.Reason = StatusFail, fmt.Sprintf("audit.retention is %s, under %s", days(s.AuditRetention), days(min))
	default:
		f.Status, f.Reason = StatusPass, fmt.Sprintf("audit entries are kept %s and pruned after", days(s.AuditRetention))
	}
	return f
}

// changeTypes are the audit event types of changes (CC8.1's population).
func isChange(t string) bool {
	if t == "config.loaded" || t == "policy.reloaded" || t == "signing_key.rotated" {
		return true
	}
	a, ok := strings.CutPrefix(t, "admin.")
	if !ok {
		return false
	}
	switch a {
	case "read", "access.denied", "auth.failure", "rate_limited", "audit.suppressed", "login.success", "login.failure", "login.lockout", "logout":
		return false
	}
	return true
}

func checkChanges(s *State) Finding {
	f := Finding{Remediation: "Make every change through the admin API or a restart with the new config (each audited); a policy changed by a bundle poll or SIGHUP shows here until a change is recorded for it."}
	population := map[string]int{}
	var changes []audit.Entry
	for _, e := range s.Events {
		if s.Period.Contains(e.Event.Time) && isChange(e.Event.Type) {
			population[e.Event.Type]++
			changes = append(changes, e)
		}
	}
	var missing []string
	if e, ok := configLoaded(s); ok {
		f.cite(e)
	} else {
		missing = append(missing, "the config serving (sha256 "+short(s.ConfigSHA256)+") has no config.loaded event")
	}
	if s.Policy.SHA256 != "" {
		if e, ok := latest(s, func(e audit.Entry) bool {
			return detailString(e, "policy_sha256") == s.Policy.SHA256 || detailString(e, "sha256") == s.Policy.SHA256
		}, "config.loaded", "admin.policy.reload", "policy.reloaded"); ok {
			f.cite(e)
		} else {
			missing = append(missing, "the policy serving (sha256 "+short(s.Policy.SHA256)+") has no load or reload event")
		}
	}
	if s.Settings != nil {
		if e, ok := latest(s, nil, "admin.settings.change"); ok {
			f.cite(e)
			if canonicalString(detail(e, "new")) != canonicalString(s.Settings) {
				missing = append(missing, "the authentication settings in force differ from the last recorded change")
			}
		} else if !s.SettingsDefault {
			missing = append(missing, "the authentication settings differ from the defaults but no change is recorded")
		}
	}
	f.cite(lastN(changes, 10)...)
	types := make([]string, 0, len(population))
	for t := range population {
		types = append(types, t)
	}
	sort.Strings(types)
	f.Observed = map[string]any{"population": population, "changes": len(changes), "unrecorded": missing}
	if len(missing) > 0 {
		f.Status, f.Reason = StatusFail, strings.Join(missing, "; ")
		return f
	}
	f.Status = StatusPass
	f.Reason = fmt.Sprintf("%d changes in the period, each an audit event (%s); the config, policy and settings in force match their latest recorded change", len(changes), strings.Join(types, ", "))
	return f
}

func checkReviews(s *State) Finding {
	every := s.Thresholds.ReviewEvery
	f := Finding{Remediation: "Run an access review: gatehouse review start, decide every item, gatehouse review complete."}
	var last *Review
	for i := range s.Reviews {
		r := &s.Reviews[i]
		if r.CompletedAt.IsZero() {
			continue
		}
		if last == nil || r.CompletedAt.After(last.CompletedAt) {
			last = r
		}
	}
	f.Observed = map[string]any{"reviews": len(s.Reviews), "every": days(every)}
	if last == nil {
		f.Status, f.Reason = StatusFail, "no access review has been completed"
		return f
	}
	f.Observed["last_review"] = last.ID
	f.Observed["completed_at"] = last.CompletedAt
	f.Observed["items"] = len(last.Items)
	if e, ok := latest(s, func(e audit.Entry) bool { return e.Event.Resource == "review:"+last.ID }, "admin.review.complete"); ok {
		f.cite(e)
	}
	if age := s.Now.Sub(last.CompletedAt); age > every {
		f.Status, f.Reason = StatusFail, fmt.Sprintf("the last access review (%s) was completed %s ago, over %s", last.ID, days(age), days(every))
		return f
	}
	f.Status, f.Reason = StatusPass, fmt.Sprintf("access review %s of %d items completed %s by %s", last.ID, len(last.Items), last.CompletedAt.UTC().Format(time.DateOnly), last.CompletedBy)
	return f
}

// lockdownsOf lists an incident's lockdowns (containment action
// lockdown, and the lift that ended each): when, who, whom they let
// through, and how long the gateway was locked down ("" while it is).
func lockdownsOf(in Incident) []map[string]any {
	var out []map[string]any
	var open map[string]any
	var since time.Time
	for _, c := range in.Actions {
		switch c.Action {
		case "lockdown":
			if open == nil {
				since = c.At
				open = map[string]any{"incident": in.ID, "since": c.At.UTC().Format(time.RFC3339), "by": c.By, "lifted": ""}
				out = append(out, open)
			}
			open["allow"] = c.Allow
		case "lift_lockdown":
			if open != nil {
				open["lifted"] = c.At.UTC().Format(time.RFC3339)
				open["duration_s"] = int64(c.At.Sub(since).Seconds())
				open = nil
			}
		}
	}
	return out
}

func checkIncidents(s *State) Finding {
	f := Finding{Remediation: "Record the post-incident review of every closed incident (gatehouse incident review ID --summary TEXT) within 5 business days of closing."}
	var overdue []string
	lockdowns := []map[string]any{}
	n := 0
	for _, in := range s.Incidents {
		if !s.Period.Contains(in.OpenedAt) && (in.ClosedAt.IsZero() || !s.Period.Contains(in.ClosedAt)) {
			continue
		}
		n++
		if e, ok := latest(s, func(e audit.Entry) bool { return e.Event.Resource == "incident:"+in.ID }, "admin.incident.review", "admin.incident.close"); ok {
			f.cite(e)
		}
		lockdowns = append(lockdowns, lockdownsOf(in)...)
		if len(in.Actions) > 0 {
			// The containment taken: its audit events (lockdowns and
			// their lifts among them).
			if e, ok := latest(s, func(e audit.Entry) bool { return e.Event.Resource == "incident:"+in.ID }, "admin.incident.lift", "admin.incident.contain"); ok {
				f.cite(e)
			}
		}
		switch {
		case in.ClosedAt.IsZero():
		case in.ReviewedAt.IsZero() && s.Now.After(in.ReviewDue):
			overdue = append(overdue, in.ID+" (review due "+in.ReviewDue.UTC().Format(time.DateOnly)+")")
		case !in.ReviewedAt.IsZero() && in.ReviewedAt.After(in.ReviewDue):
			overdue = append(overdue, in.ID+" (reviewed late)")
		}
	}
	f.Observed = map[string]any{"incidents": n, "overdue_reviews": overdue, "review_days": s.Thresholds.IncidentReviewDays, "lockdowns": lockdowns}
	switch {
	case n == 0:
		f.Status, f.Reason = StatusNotApplicable, "no incident in the period"
	case len(overdue) > 0:
		f.Status, f.Reason = StatusFail, "post-incident reviews overdue: "+strings.Join(overdue, ", ")
	default:
		f.Status, f.Reason = StatusPass, fmt.Sprintf("%d incidents; every closed one reviewed within %d business days", n, s.Thresholds.IncidentReviewDays)
	}
	return f
}

func noBackups(f Finding) Finding {
	f.Status, f.Reason = StatusManual, "backups are not configured on this server"
	f.Provide = "evidence of the deployment's backups from the system that makes them, or set backup.dir / backup.url (docs/recovery.md)"
	f.Observed = map[string]any{"configured": false}
	return f
}

func checkBackupRecent(s *State) Finding {
	f := Finding{Remediation: "Check the backup schedule (gatehouse backup list; the backup.create events' errors) and the destination."}
	if s.Backup == nil {
		return noBackups(f)
	}
	rpo := s.Backup.RPO
	e, ok := latest(s, func(e audit.Entry) bool { return e.Event.Outcome == "success" }, "backup.create")
	f.Observed = map[string]any{"rpo": rpo.String(), "schedule": s.Backup.Schedule.String()}
	if !ok {
		f.Status, f.Reason = StatusFail, "no backup is on record"
		return f
	}
	f.cite(e)
	age := s.Now.Sub(e.Event.Time)
	f.Observed["last_backup"] = e.Event.Resource
	f.Observed["age"] = age.Round(time.Second).String()
	if age > rpo {
		f.Status, f.Reason = StatusFail, fmt.Sprintf("the last backup is %s old, over the RPO of %s", age.Round(time.Minute), rpo)
		return f
	}
	f.Status, f.Reason = StatusPass, fmt.Sprintf("the last backup is %s old, within the RPO of %s", age.Round(time.Second), rpo)
	return f
}

func checkRestoreTested(s *State) Finding {
	every := s.Thresholds.RestoreTestEvery
	f := Finding{Remediation: "Restore-test the newest backup (gatehouse backup verify ID); serve does it every backup.verify_schedule."}
	if s.Backup == nil {
		return noBackups(f)
	}
	e, ok := latest(s, nil, "backup.verify")
	f.Observed = map[string]any{"rto": s.Backup.RTO.String(), "every": days(every)}
	if !ok {
		f.Status, f.Reason = StatusFail, "no restore test is on record"
		return f
	}
	f.cite(e)
	okv, _ := detailBool(e, "ok")
	met, _ := detailBool(e, "rto_met")
	ms, _ := detailNumber(e, "duration_ms")
	f.Observed["last_test"] = e.Event.Time
	f.Observed["ok"] = okv
	f.Observed["duration_ms"] = ms
	f.Observed["rto_met"] = met
	switch {
	case !okv:
		f.Status, f.Reason = StatusFail, "the last restore test failed: "+detailString(e, "error")
	case s.Now.Sub(e.Event.Time) > every:
		f.Status, f.Reason = StatusFail, fmt.Sprintf("the last restore test was %s ago, over %s", days(s.Now.Sub(e.Event.Time)), days(every))
	case !met:
		f.Status, f.Reason = StatusFail, fmt.Sprintf("the last restore test took %.0f ms, over the RTO of %s", ms, s.Backup.RTO)
	default:
		f.Status, f.Reason = StatusPass, fmt.Sprintf("restore test of %s passed in %.0f ms, within the RTO of %s", e.Event.Time.UTC().Format(time.DateOnly), ms, s.Backup.RTO)
	}
	return f
}

func checkBackupRetention(s *State) Finding {
	f := Finding{Remediation: "Set backup.retention; serve prunes after every scheduled backup (gatehouse backup prune)."}
	if s.Backup == nil {
		return noBackups(f)
	}
	deletes := inPeriod(s, "backup.delete")
	f.Observed = map[string]any{"retention": s.Backup.Retention.String(), "deleted_in_period": len(deletes)}
	f.cite(lastN(deletes, 5)...)
	if e, ok := configLoaded(s); ok {
		f.cite(e)
	}
	if s.Backup.Retention <= 0 {
		f.Status, f.Reason = StatusFail, "backups are kept forever: no disposal"
		return f
	}
	f.Status, f.Reason = StatusPass, fmt.Sprintf("backups older than %s are deleted (%d deletions in the period)", days(s.Backup.Retention), len(deletes))
	return f
}

func checkDependencyScan(s *State) Finding {
	every := s.Thresholds.ScanEvery
	f := Finding{Remediation: "Build with scripts/build.sh and scan the build with scripts/scan.sh --binary BINARY (govulncheck, offline database); deploy BINARY.scan.json beside the binary and restart.",
		Observed: map[string]any{"scan_every": days(every)}}
	e, ok := latest(s, nil, "build.scan")
	if !ok {
		f.Status, f.Reason = StatusManual, "no dependency scan of the serving binary is on record (no BINARY.scan.json beside it at start)"
		f.Provide = "the newest dependency scan of the deployed build (scripts/scan.sh --binary, or a container image scan), its date (within " + days(every) + ") and that it lists no reachable vulnerability"
		return f
	}
	f.cite(e)
	for _, k := range []string{"scanned_at", "scanner", "go_version", "database", "database_modified", "sbom_sha256", "binary_sha256"} {
		f.Observed[k] = detailString(e, k)
	}
	matches, _ := detailBool(e, "binary_matches")
	reachable, _ := detailNumber(e, "reachable_count")
	blocking, _ := detailNumber(e, "blocking_count")
	f.Observed["binary_matches"] = matches
	f.Observed["reachable"] = reachable
	f.Observed["blocking"] = blocking
	scanned, err := time.Parse(time.RFC3339, detailString(e, "scanned_at"))
	switch {
	case err != nil:
		f.Status, f.Reason = StatusFail, "the recorded scan has no valid date"
	case !matches:
		f.Status, f.Reason = StatusFail, "the scan on record is of another build than the binary serving (SHA-256 differs)"
	case s.Now.Sub(scanned) > every:
		f.Status, f.Reason = StatusFail, fmt.Sprintf("the serving binary was last scanned %s ago, over %s", days(s.Now.Sub(scanned)), days(every))
	case reachable > 0:
		f.Status, f.Reason = StatusFail, fmt.Sprintf("the scan found %.0f vulnerabilities reachable from Gatehouse's code (%.0f in modules, the rest in the Go standard library: build with the Go release that fixes them)", reachable, blocking)
	default:
		f.Status, f.Reason = StatusPass, fmt.Sprintf("the serving binary was scanned %s by %s against %s; no reachable vulnerability", scanned.Format(time.DateOnly), detailString(e, "scanner"), detailString(e, "database"))
	}
	return f
}

func checkSecrets(s *State) Finding {
	f := Finding{Remediation: "Rotate the secrets listed: gatehouse secrets status says how for each, gatehouse secrets rotate NAME rotates those it can (signing-keys, vault-token)."}
	f.cite(lastN(inPeriod(s, "admin.secret.rotate", "secrets.overdue"), 5)...)
	if s.Secrets == nil {
		f.Status, f.Reason = StatusManual, "the deployment's secrets were not read"
		if s.SecretsError != "" {
			f.Reason += ": " + s.SecretsError
			f.Observed = map[string]any{"error": s.SecretsError}
		}
		f.Provide = "when each secret the deployment uses (pepper, token signing keys, audit key, Vault token or AppRole secret-id) was last rotated, against its cadence"
		return f
	}
	var listed []map[string]any
	var overdue, unknown, within []string
	for _, sc := range s.Secrets {
		o := map[string]any{"name": sc.Name, "class": sc.Class, "provider": sc.Provider, "cadence": days(sc.Cadence), "overdue": sc.Overdue}
		switch {
		case sc.CreatedAt.IsZero():
			unknown = append(unknown, sc.Name+" ("+sc.Provider+")")
		case sc.Overdue:
			o["created_at"] = sc.CreatedAt.UTC()
			overdue = append(overdue, fmt.Sprintf("%s (%s old, cadence %s)", sc.Name, days(s.Now.Sub(sc.CreatedAt)), days(sc.Cadence)))
		default:
			o["created_at"] = sc.CreatedAt.UTC()
			within = append(within, sc.Name)
		}
		listed = append(listed, o)
	}
	f.Observed = map[string]any{"secrets": listed, "overdue": overdue, "age_unknown": unknown}
	switch {
	case len(overdue) > 0:
		f.Status, f.Reason = StatusFail, "past their rotation cadence: "+strings.Join(overdue, ", ")
	case len(unknown) > 0:
		f.Status = StatusManual
		f.Reason = fmt.Sprintf("%d secrets within their cadence (%s); the provider cannot tell the age of %s", len(within), strings.Join(within, ", "), strings.Join(unknown, ", "))
		f.Provide = "when each of " + strings.Join(unknown, ", ") + " was last rotated (its provider does not say), within its cadence"
	case len(s.Secrets) == 0:
		f.Status, f.Reason = StatusNotApplicable, "the deployment lists no secrets"
	default:
		f.Status, f.Reason = StatusPass, fmt.Sprintf("all %d secrets within their rotation cadence: %s", len(within), strings.Join(within, ", "))
	}
	return f
}
