package audit

import (
	"fmt"
	"strings"
)

// EventType is one type of audit event: the value of Event.Type and when
// Gatehouse records one.
type EventType struct {
	Name string `json:"name"`
	// Doc says when an event of this type is recorded.
	Doc string `json:"doc"`
}

// EventTypes returns every event type Gatehouse records, sorted by name.
// TestEventTypesAreTheCodes holds it to the types the code can record,
// and docs/audit.md's table to it.
func EventTypes() []EventType {
	return []EventType{
		{"admin.access.denied", "An admin API request refused by its role or another access decision (403): area, path, reason."},
		{"admin.admin_token.disable", "The bootstrap admin token switched off through the admin API."},
		{"admin.audit.suppressed", "More than 60 refused admin requests a minute from one address (or by one credential): the further refusals of that minute are not recorded one by one."},
		{"admin.auth.failure", "An admin API request with no, a wrong, a revoked or an expired credential (401): the actor as far as the credential's form tells, its public id, never the secret."},
		{"admin.client.create", "A service client registered."},
		{"admin.client.revoke", "A service client revoked."},
		{"admin.client.rotate_secret", "A service client given a new secret."},
		{"admin.client.unlock", "A client's lockouts after failed authentications lifted."},
		{"admin.credential.revoke_descendant", "A key, client or token revoked because the credential (or user) that created it, directly or up its chain, was revoked or disabled."},
		{"admin.incident.close", "An incident closed; its post-incident review is due."},
		{"admin.incident.contain", "A containment action of an incident: a principal revoked, every credential created before a time, or the gateway put in lockdown (action lockdown, allow: the roles and principals that still pass)."},
		{"admin.incident.drill", "A revocation drill: canary key created, admitted, revoked, and the time until the gateway refused it (duration_ms, within_sla)."},
		{"admin.incident.lift", "An incident's lockdown lifted: the gateway admits every caller its policy allows again (allow, since, set_by, duration_s)."},
		{"admin.incident.note", "A note added to an open incident."},
		{"admin.incident.open", "An incident opened."},
		{"admin.incident.review", "The post-incident review of a closed incident recorded."},
		{"admin.key.create", "An API key created (never the key)."},
		{"admin.key.revoke", "An API key revoked."},
		{"admin.key.rotate", "An API key replaced by a new one; the old one works for the grace period."},
		{"admin.login.failure", "A failed sign-in (session or HTTP Basic): wrong password or code, disabled or locked account; the same for unknown usernames."},
		{"admin.login.lockout", "An account locked after too many failed sign-ins."},
		{"admin.login.success", "A complete sign-in."},
		{"admin.logout", "A session ended by its user."},
		{"admin.policy.reload", "A policy reload asked for through the admin API, with the revision serving after it and whether it was accepted."},
		{"admin.rate_limited", "An admin API request refused by a rate limit (429); at most one a minute per address."},
		{"admin.read", "An authorized read of the admin API (audit, evidence, settings, /metrics by an admin-API credential, …): path and query."},
		{"admin.review.complete", "An access review completed, with the SHA-256 of its decisions."},
		{"admin.review.decide", "One item of an access review decided: approve, revoke (at once) or change, with the reason."},
		{"admin.review.start", "An access review started: a snapshot of every active principal."},
		{"admin.secret.rotate", "A server secret rotated through the admin API (gatehouse secrets rotate): name, class, provider, versions and creation times before and after (never a value)."},
		{"admin.settings.change", "Settings → Authentication changed, with the old and new values."},
		{"admin.signing_key.rotate", "A JWT signing key rotation asked for through the admin API."},
		{"admin.token.create", "A personal access token created (never the token)."},
		{"admin.token.revoke", "A personal access token revoked (by its owner, an admin, or a cascade: because)."},
		{"admin.user.create", "A user created."},
		{"admin.user.delete", "A user deleted."},
		{"admin.user.disable", "A user disabled: sessions and tokens stop at once."},
		{"admin.user.enable", "A disabled user enabled again."},
		{"admin.user.password_change", "A user changed their own password (other sessions ended; tokens revoked when asked)."},
		{"admin.user.password_reset", "An administrator set a temporary password for a user."},
		{"admin.user.role_change", "A user's role changed (a demotion also revokes their tokens and sessions)."},
		{"admin.user.totp_confirm", "A user confirmed a new second factor with a first code."},
		{"admin.user.totp_enroll", "A user began enrolling a second factor."},
		{"admin.user.totp_remove", "A user removed their own second factor."},
		{"admin.user.totp_reset", "An administrator removed a user's second factor (their sessions end)."},
		{"admin.user.unlock", "An administrator ended a user's sign-in lockout."},
		{"admin_token.disable", "The bootstrap admin token switched off offline (gatehouse admin-token disable --data-dir), recorded at the next start."},
		{"admin_token.rotate", "A new bootstrap admin token made offline (gatehouse admin-token rotate), recorded at the next start."},
		{"audit.key.rotate", "The audit checkpoint key rotated (gatehouse secrets rotate audit-key): the old and new key ids and verifier keys, whether the hand-over checkpoint signed by both is written and its tree size, the secret versions (never a private key)."},
		{"audit.recovered", "At start, a torn record at the end of the log cut after a crash: what was cut."},
		{"authn.failure", "A gateway request refused for its credential (401): missing on a route that is not public, unknown, revoked or expired, or a client certificate that maps to no principal."},
		{"authz.decision", "A decision of POST /v1/authorize (allowed or denied, with the reasons, decision id and policy revision)."},
		{"authz.denied", "A gateway request refused by the policy (403), with its reasons and decision id."},
		{"backup.create", "A backup made (scheduled or asked for), or its failure: id, location, size, SHA-256."},
		{"backup.delete", "A backup deleted by retention (prune)."},
		{"backup.restored", "At the first start after an offline restore (gatehouse backup restore): which backup."},
		{"backup.verify", "A restore test of a backup: ok, duration (RTO) and RPO, entries lost."},
		{"breaker.state_changed", "An upstream's circuit breaker changed state (closed, open, half-open)."},
		{"build.scan", "At start: the dependency scan beside the binary (BINARY.scan.json from scripts/scan.sh --binary): scanner, database version, SBOM and binary SHA-256, whether it is of this binary, reachable vulnerabilities."},
		{"compliance.evaluated", "An evidence evaluation: every check's status and the SHA-256 of what it observed."},
		{"compliance.report", "A signed evidence report issued: its SHA-256 and the evaluation it rests on."},
		{"compliance.snapshot", "Once a UTC day (for all replicas on one store), recorded by serve: every control's and every check's status that day; a report's timeline over its period is made of these."},
		{"config.loaded", "At start: the config's source and SHA-256, mode, routes and the policy serving."},
		{"forward_auth", "A forward-auth check (GET /auth/verify) not covered by a more specific type: the checked method and path, and the status answered."},
		{"forward_auth.refused", "A forward-auth check refused (403) before any credential: forward_auth.proxy not set, a caller outside forward_auth.trusted_proxies, a missing, repeated or disagreeing forwarded header, an inbound X-Gatehouse-* header."},
		{"http.request", "A request through the gateway that reached an upstream or was answered by Gatehouse (every status not covered by a more specific type)."},
		{"lockdown.refused", "A gateway request (a route, forward-auth or the decision API) refused with 503 because an incident holds the gateway in lockdown and the caller is not allowed through: the incident in the reason."},
		{"oauth.token", "A client-credentials token request at POST /oauth/token: issued or refused, and why."},
		{"policy.loaded", "A policy compiled, its tests passed, and it serves: source, revision, SHA-256."},
		{"policy.refused", "A policy that did not compile or whose tests failed; the previous one keeps serving."},
		{"policy.reloaded", "A reload on SIGHUP: the policy serving after it."},
		{"preauth.limited", "Requests refused (429) before any credential was looked up: too many failed authentications or unknown routes from one address; one event per address and window."},
		{"ratelimit.degraded", "The shared rate-limit backend (Redis) became unreachable; the process falls back as on_redis_failure says."},
		{"ratelimit.recovered", "The shared rate-limit backend is reachable again."},
		{"ratelimit.refused", "A gateway request refused by a rate limit (429)."},
		{"secrets.overdue", "Once a UTC day (for all replicas on one store) while a secret is past its rotation cadence: each such secret's name, class, provider, age, cadence and due date (never a value)."},
		{"secrets.read", "At start: the secrets provider, and each secret the process read or generated: name, provider, where, version (never a value)."},
		{"secrets.reload", "A secret reference (store.password_secret, ratelimit.redis_password_secret) read again with a new value, which new connections use: name, what it is for, provider, where, version (never a value)."},
		{"signing_key.rotated", "A JWT signing key rotated (scheduled or asked for): the new kid and the retired one."},
		{"system.shutdown", "A clean shutdown began."},
		{"system.startup", "The gateway is serving: listen addresses and version."},
	}
}

// CheckTypeFilter reports an error naming the known types when pattern
// (an event type, or a prefix ending in "*" as Filter.Type takes) matches
// none of them: a misspelt --type would otherwise match nothing and look
// like an empty log.
func CheckTypeFilter(pattern string) error {
	if pattern == "" {
		return nil
	}
	prefix, isPrefix := strings.CutSuffix(pattern, "*")
	var names []string
	for _, t := range EventTypes() {
		if t.Name == pattern || isPrefix && strings.HasPrefix(t.Name, prefix) {
			return nil
		}
		names = append(names, t.Name)
	}
	return fmt.Errorf("unknown event type %q (known: %s; a trailing * matches a prefix, e.g. admin.*)", pattern, strings.Join(names, ", "))
}
