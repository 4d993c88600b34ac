package compliance_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/compliance"
)

const day = 24 * time.Hour

var now = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// MustOpenLog opens a file audit log in a temporary directory.
func MustOpenLog(tb testing.TB) *audit.Log {
	tb.Helper()
	l, err := audit.Open(context.Background(), audit.Config{Dir: tb.TempDir(), Origin: "gatehouse.test/audit", CheckpointInterval: -1, NoPreallocate: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close(context.Background()) })
	return l
}

// record appends e and returns it as stored.
func record(tb testing.TB, l *audit.Log, e gatehouse.Event) audit.Entry {
	tb.Helper()
	en, err := l.Append(context.Background(), e)
	if err != nil {
		tb.Fatal(err)
	}
	return en
}

// goodState is a deployment every check it can decide passes.
func goodState(tb testing.TB, l *audit.Log) *compliance.State {
	cfg := record(tb, l, gatehouse.Event{Time: now.Add(-day), Type: "config.loaded", Actor: gatehouse.Actor{Kind: "system", ID: "t"},
		Outcome: "success", Details: map[string]any{"sha256": "cfg1", "policy_sha256": "pol1"}})
	bk := record(tb, l, gatehouse.Event{Time: now.Add(-30 * time.Minute), Type: "backup.create", Resource: "backup:b1", Outcome: "success"})
	vf := record(tb, l, gatehouse.Event{Time: now.Add(-2 * day), Type: "backup.verify", Resource: "backup:b0", Outcome: "success",
		Details: map[string]any{"ok": true, "rto_met": true, "duration_ms": 1200}})
	hdr := map[string]string{"Strict-Transport-Security": "max-age=31536000; includeSubDomains", "X-Content-Type-Options": "nosniff",
		"X-Frame-Options": "DENY", "X-Xss-Protection": "0", "Content-Security-Policy": "default-src 'self'", "Referrer-Policy": "strict-origin-when-cross-origin"}
	return &compliance.State{
		Now: now, Period: compliance.Period{From: now.Add(-90 * day), To: now}, Mode: "prod",
		ConfigSHA256: "cfg1",
		Routes:       []compliance.Route{{Name: "api", Path: "/api/", Scopes: []string{"read"}, Redact: true, ProbeStatus: 401}, {Name: "pub", Path: "/pub/", Public: true, Redact: true}},
		Policy:       compliance.Policy{Ready: true, Revision: "r1", SHA256: "pol1", Tests: 12, Probes: []compliance.PolicyProbe{{Case: "anonymous"}, {Case: "no scopes"}}},
		Credentials: []compliance.Credential{
			{Kind: "api_key", ID: "key_a", Scopes: []string{"read"}, CreatedAt: now.Add(-10 * day), HashLen: 32},
			{Kind: "api_key", ID: "key_admin", Scopes: []string{"admin"}, CreatedAt: now.Add(-20 * day), LastUsedAt: now.Add(-day), HashLen: 32},
		},
		SigningKeys: []compliance.SigningKey{{KID: "k1", CreatedAt: now.Add(-30 * day), Active: true}},
		Listeners: []compliance.Listener{
			{Name: "public", Address: "0.0.0.0:443", TLS: true, MinVersion: "1.2", Probe: &compliance.Probe{TLSVersion: "1.3", RefusedTLS11: true, Headers: hdr}},
			{Name: "admin", Address: "127.0.0.1:8081", Loopback: true, Probe: &compliance.Probe{Headers: hdr}},
		},
		Limits:          compliance.Limits{DefaultRequests: 600, DefaultPer: time.Minute, Backend: "memory", LockoutFailures: 5, LockoutWindow: 15 * time.Minute, PreAuthFailures: 20, MaxBody: 1 << 20},
		AuditRetention:  180 * day,
		Audit:           compliance.AuditHealth{Verified: true, Entries: 3, Checkpoints: 1, LatestCheckpoint: 3, CheckpointInterval: 10 * time.Second},
		Backup:          &compliance.Backup{RPO: time.Hour, RTO: 4 * time.Hour, Retention: 30 * day, Schedule: time.Hour},
		Events:          []audit.Entry{cfg, vf, bk},
		Reviews:         []compliance.Review{{ID: "rv1", StartedAt: now.Add(-3 * day), CompletedAt: now.Add(-2 * day), CompletedBy: "user:alice"}},
		SettingsDefault: true,
		Secrets: []compliance.Secret{
			{Name: "pepper", Class: "pepper", Provider: "file", CreatedAt: now.Add(-100 * day), Cadence: 365 * day},
			{Name: "signing-keys", Class: "signing_keys", Provider: "generated", CreatedAt: now.Add(-30 * day), Cadence: 180 * day},
			{Name: "vault-token", Class: "vault_token", Provider: "vault", CreatedAt: now.Add(-2 * day), Cadence: 30 * day},
		},
		Traffic: []compliance.DayCount{{Day: "2026-11-30", Requests: 120, Denied: 3}, {Day: "2026-12-01", Requests: 80, Denied: 9, Revocations: 1}},
	}
}

func TestChecksPassAndFail(t *testing.T) {
	tests := []struct {
		name  string
		check string
		mod   func(s *compliance.State)
		want  compliance.Status
	}{
		{"tls on", "tls.listeners", nil, compliance.StatusPass},
		{"tls off in prod", "tls.listeners", func(s *compliance.State) { s.Listeners[0].TLS = false }, compliance.StatusFail},
		{"tls 1.1 accepted", "tls.listeners", func(s *compliance.State) { s.Listeners[0].Probe.RefusedTLS11 = false }, compliance.StatusFail},
		{"tls off in dev", "tls.listeners", func(s *compliance.State) { s.Listeners[0].TLS = false; s.Mode = "dev" }, compliance.StatusNotApplicable},
		{"admin off loopback plain", "tls.listeners", func(s *compliance.State) { s.Listeners[1].Loopback = false }, compliance.StatusFail},
		{"headers served", "headers.security", nil, compliance.StatusPass},
		{"header missing", "headers.security", func(s *compliance.State) { delete(s.Listeners[0].Probe.Headers, "X-Frame-Options") }, compliance.StatusFail},
		{"old admin key unused", "credentials.admin_unused", func(s *compliance.State) {
			s.Credentials[1].CreatedAt, s.Credentials[1].LastUsedAt = now.Add(-200*day), now.Add(-91*day)
		}, compliance.StatusFail},
		{"admin key used", "credentials.admin_unused", nil, compliance.StatusPass},
		{"key past rotation age", "credentials.rotation_age", func(s *compliance.State) { s.Credentials[0].CreatedAt = now.Add(-91 * day) }, compliance.StatusFail},
		{"signing key past rotation age", "credentials.rotation_age", func(s *compliance.State) { s.SigningKeys[0].CreatedAt = now.Add(-181 * day) }, compliance.StatusFail},
		{"keys in rotation", "credentials.rotation_age", nil, compliance.StatusPass},
		{"hashed", "credentials.hashed", nil, compliance.StatusPass},
		{"not hashed", "credentials.hashed", func(s *compliance.State) { s.Credentials[0].HashLen = 40 }, compliance.StatusFail},
		{"route answers anonymous", "routes.authenticated", func(s *compliance.State) { s.Routes[0].ProbeStatus = 200 }, compliance.StatusFail},
		{"routes authenticated", "routes.authenticated", nil, compliance.StatusPass},
		{"route not probed", "routes.authenticated", func(s *compliance.State) { s.Routes[0].ProbeStatus = 0 }, compliance.StatusManual},
		{"policy denies", "policy.deny_by_default", nil, compliance.StatusPass},
		{"policy allows anonymous", "policy.deny_by_default", func(s *compliance.State) { s.Policy.Probes[0].Allowed = true }, compliance.StatusFail},
		{"policy without tests", "policy.deny_by_default", func(s *compliance.State) { s.Policy.Tests = 0 }, compliance.StatusFail},
		{"policy not loaded", "policy.deny_by_default", func(s *compliance.State) { s.Policy.Ready = false }, compliance.StatusFail},
		{"limits", "limits.rate_and_lockout", nil, compliance.StatusPass},
		{"no lockout", "limits.rate_and_lockout", func(s *compliance.State) { s.Limits.LockoutFailures = 0 }, compliance.StatusFail},
		{"retention 180d", "audit.retention", nil, compliance.StatusPass},
		{"retention 30d", "audit.retention", func(s *compliance.State) { s.AuditRetention = 30 * day }, compliance.StatusFail},
		{"audit verifies", "audit.verifies", nil, compliance.StatusPass},
		{"audit tampered", "audit.verifies", func(s *compliance.State) { s.Audit.VerifyError = "entry 2: leaf hash mismatch" }, compliance.StatusFail},
		{"audit not verified", "audit.verifies", func(s *compliance.State) { s.Audit.Verified = false }, compliance.StatusManual},
		{"checkpoint stale", "audit.checkpoint_fresh", func(s *compliance.State) { s.Audit.Uncovered = now.Add(-time.Hour) }, compliance.StatusFail},
		{"checkpoint fresh", "audit.checkpoint_fresh", nil, compliance.StatusPass},
		{"changes audited", "changes.audited", nil, compliance.StatusPass},
		{"config change unaudited", "changes.audited", func(s *compliance.State) { s.ConfigSHA256 = "cfg2" }, compliance.StatusFail},
		{"policy change unaudited", "changes.audited", func(s *compliance.State) { s.Policy.SHA256 = "pol2" }, compliance.StatusFail},
		{"settings changed unaudited", "changes.audited", func(s *compliance.State) { s.Settings = map[string]any{"basic_auth": false}; s.SettingsDefault = false }, compliance.StatusFail},
		{"review current", "reviews.current", nil, compliance.StatusPass},
		{"review overdue", "reviews.current", func(s *compliance.State) { s.Reviews[0].CompletedAt = now.Add(-100 * day) }, compliance.StatusFail},
		{"no review", "reviews.current", func(s *compliance.State) { s.Reviews = nil }, compliance.StatusFail},
		{"no incidents", "incidents.reviewed", nil, compliance.StatusNotApplicable},
		{"incident review overdue", "incidents.reviewed", func(s *compliance.State) {
			s.Incidents = []compliance.Incident{{ID: "inc1", OpenedAt: now.Add(-20 * day), ClosedAt: now.Add(-19 * day), ReviewDue: now.Add(-12 * day)}}
		}, compliance.StatusFail},
		{"incident reviewed", "incidents.reviewed", func(s *compliance.State) {
			s.Incidents = []compliance.Incident{{ID: "inc1", OpenedAt: now.Add(-20 * day), ClosedAt: now.Add(-19 * day), ReviewDue: now.Add(-12 * day), ReviewedAt: now.Add(-15 * day)}}
		}, compliance.StatusPass},
		{"backup recent", "backup.recent", nil, compliance.StatusPass},
		{"backup older than RPO", "backup.recent", func(s *compliance.State) { s.Backup.RPO = 10 * time.Minute }, compliance.StatusFail},
		{"backups not configured", "backup.recent", func(s *compliance.State) { s.Backup = nil }, compliance.StatusManual},
		{"restore tested", "backup.restore_tested", nil, compliance.StatusPass},
		{"restore test old", "backup.restore_tested", func(s *compliance.State) { s.Now = now.Add(40 * day); s.Period.To = s.Now }, compliance.StatusFail},
		{"no drill", "revocation.propagation", nil, compliance.StatusManual},
		{"dependency scan", "dependencies.scan", nil, compliance.StatusManual},
		{"secrets within cadence", "secrets.rotation", nil, compliance.StatusPass},
		{"vault token overdue", "secrets.rotation", func(s *compliance.State) { s.Secrets[2].CreatedAt, s.Secrets[2].Overdue = now.Add(-40*day), true }, compliance.StatusFail},
		{"secret age unknown", "secrets.rotation", func(s *compliance.State) { s.Secrets[0].Provider, s.Secrets[0].CreatedAt = "env", time.Time{} }, compliance.StatusManual},
		{"secrets not read", "secrets.rotation", func(s *compliance.State) { s.Secrets, s.SecretsError = nil, "vault: permission denied" }, compliance.StatusManual},
	}
	l := MustOpenLog(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := goodState(t, l)
			if tc.mod != nil {
				tc.mod(s)
			}
			f := compliance.Evaluate(s)[tc.check]
			if f.Status != tc.want {
				t.Fatalf("%s: %s (%s), want %s", tc.check, f.Status, f.Reason, tc.want)
			}
			if f.Reason == "" {
				t.Error("no reason")
			}
			if f.Status == compliance.StatusManual && f.Provide == "" {
				t.Error("manual without what a person must provide")
			}
			if f.Status == compliance.StatusFail && f.Remediation == "" {
				t.Error("fail without remediation")
			}
		})
	}
}

// TestCatalog: the criteria the issue names are all there, each decided by
// known checks, and the corrections name the five common mislabels.
func TestCatalog(t *testing.T) {
	checks := map[string]bool{}
	for _, c := range compliance.Checks() {
		checks[c.ID] = true
	}
	ids := map[string]bool{}
	for _, c := range compliance.Catalog() {
		ids[c.ID] = true
		for _, ch := range c.Checks {
			if !checks[ch] {
				t.Errorf("%s: unknown check %s", c.ID, ch)
			}
		}
	}
	for _, id := range strings.Fields("CC6.1 CC6.2 CC6.3 CC6.5 CC6.6 CC6.7 CC6.8 CC7.1 CC7.2 CC7.3 CC7.4 CC7.5 CC8.1 A1.1 A1.2 A1.3 C1.1 C1.2 PI1.1 PI1.2 PI1.3 PI1.4 PI1.5") {
		if !ids[id] {
			t.Errorf("criterion %s missing", id)
		}
	}
	got := map[string]string{}
	for _, c := range compliance.Corrections() {
		got[c.Mislabel] = strings.Join(c.Criteria, ",")
	}
	want := map[string]string{"CC7.2": "CC8.1", "CC8.1": "CC7.1,CC7.2", "CC9.2": "CC7.1", "CC6.7": "CC6.5,C1.2", "A1.3": "A1.2"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("correction of %s: %q, want %q", k, got[k], v)
		}
	}
}

// buildReport builds a signed report over a real log.
func buildReport(t *testing.T) (*audit.Log, []byte) {
	t.Helper()
	l := MustOpenLog(t)
	s := goodState(t, l)
	r, err := compliance.Build(context.Background(), s, compliance.BuildOptions{Log: l, By: gatehouse.Actor{Kind: "user", ID: "auditor"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := compliance.MarshalReport(r)
	if err != nil {
		t.Fatal(err)
	}
	return l, b
}

// verifyInclusion is an RFC 9162 §2.1.3.2 inclusion proof check written
// here from the RFC, independent of the code that made the proofs.
func verifyInclusion(index, size uint64, leafHash []byte, path [][]byte, root []byte) bool {
	if index >= size {
		return false
	}
	node := func(l, r []byte) []byte {
		h := sha256.New()
		h.Write([]byte{1})
		h.Write(l)
		h.Write(r)
		return h.Sum(nil)
	}
	fn, sn := index, size-1
	r := leafHash
	for _, p := range path {
		if sn == 0 {
			return false
		}
		if fn&1 == 1 || fn == sn {
			r = node(p, r)
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			r = node(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	return sn == 0 && bytes.Equal(r, root)
}

func TestReportProofsVerifyIndependently(t *testing.T) {
	_, b := buildReport(t)
	var r compliance.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	cp, err := audit.ParseCheckpoint(strings.SplitN(r.Checkpoint, "\n\n", 2)[0] + "\n")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range r.Controls {
		for _, f := range c.Findings {
			if len(f.Evidence) == 0 {
				t.Fatalf("%s/%s: no evidence", c.ID, f.Check)
			}
			for _, e := range f.Evidence {
				leaf := sha256.Sum256(append([]byte{0}, e.Entry...))
				if !bytes.Equal(leaf[:], e.LeafHash) {
					t.Fatalf("%s/%s: leaf hash of entry %d", c.ID, f.Check, e.Index)
				}
				if !verifyInclusion(e.Index, cp.Size, e.LeafHash, e.Proof, cp.Root) {
					t.Fatalf("%s/%s: proof of entry %d does not verify", c.ID, f.Check, e.Index)
				}
				n++
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d proofs", n)
	}
	res, err := compliance.Verify(b, r.AuditPublicKey)
	if err != nil || !res.OK() {
		t.Fatalf("verify: %v %v", err, res.Problems)
	}
	t.Logf("%d controls, %d findings, %d proofs against a tree of %d", res.Controls, res.Findings, res.Proofs, res.TreeSize)
}

// TestTamperDetected: every edit of a saved report is detected and named.
func TestTamperDetected(t *testing.T) {
	l, b := buildReport(t)
	key := l.VerifierKey()
	edit := func(t *testing.T, fn func(r map[string]any)) []byte {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		fn(m)
		out, _ := json.Marshal(m)
		return out
	}
	firstFinding := func(m map[string]any) map[string]any {
		return m["controls"].([]any)[0].(map[string]any)["findings"].([]any)[0].(map[string]any)
	}
	firstRef := func(m map[string]any) map[string]any {
		return firstFinding(m)["evidence"].([]any)[0].(map[string]any)
	}
	flip := func(s string) string {
		raw, _ := base64.StdEncoding.DecodeString(s)
		raw[0] ^= 1
		return base64.StdEncoding.EncodeToString(raw)
	}
	tests := []struct {
		name string
		fn   func(m map[string]any)
		want string
	}{
		{"finding status", func(m map[string]any) { firstFinding(m)["status"] = "fail" }, "signature"},
		{"entry", func(m map[string]any) { firstRef(m)["entry"] = flip(firstRef(m)["entry"].(string)) }, "leaf_hash"},
		{"proof hash", func(m map[string]any) {
			p := firstRef(m)["proof"].([]any)
			p[0] = flip(p[0].(string))
		}, "inclusion proof"},
		{"checkpoint", func(m map[string]any) {
			m["checkpoint"] = strings.Replace(m["checkpoint"].(string), "\n", "\n1", 1)
		}, "checkpoint"},
		{"observed data", func(m map[string]any) { firstFinding(m)["observed"] = map[string]any{"routes": "all fine"} }, "observed data differs"},
		{"removed signature", func(m map[string]any) { delete(m, "signature") }, "signature: missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := compliance.Verify(edit(t, tc.fn), key)
			if err != nil {
				t.Fatal(err)
			}
			if res.OK() {
				t.Fatal("tampered report verified")
			}
			if !strings.Contains(strings.Join(res.Problems, "\n"), tc.want) {
				t.Fatalf("problems %q do not name %q", res.Problems, tc.want)
			}
		})
	}
	t.Run("other key", func(t *testing.T) {
		other := MustOpenLog(t)
		res, _ := compliance.Verify(b, other.VerifierKey())
		if res.OK() {
			t.Fatal("verified with another log's key")
		}
	})
}

// TestNoPassWithoutData: a check that observed nothing cannot pass, and a
// report claiming one (re-signed by the log's own key) is refused.
func TestNoPassWithoutData(t *testing.T) {
	l := MustOpenLog(t)
	s := goodState(t, l)
	r, err := compliance.Build(context.Background(), s, compliance.BuildOptions{Log: l, By: gatehouse.Actor{Kind: "user", ID: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	f := &r.Controls[0].Findings[0]
	if f.Status != compliance.StatusPass {
		t.Fatalf("%s: %s", f.Check, f.Status)
	}
	f.Observed = nil
	sum, _ := compliance.Hash(r)
	sig, _ := l.SignReport(sum)
	r.Signature = string(sig)
	b, _ := compliance.MarshalReport(r)
	res, _ := compliance.Verify(b, l.VerifierKey())
	if res.OK() || !strings.Contains(strings.Join(res.Problems, "\n"), "claims pass with no observed data") {
		t.Fatalf("problems: %q", res.Problems)
	}
}

func TestRenderers(t *testing.T) {
	_, b := buildReport(t)
	var r compliance.Report
	json.Unmarshal(b, &r)
	r.Incidents = []compliance.Incident{{ID: "inc1", Title: `<script>alert(1)</script>`, Severity: "high"}}
	var html bytes.Buffer
	if err := compliance.RenderHTML(&html, &r, b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html.String(), "<script>alert") || !strings.Contains(html.String(), "&lt;script&gt;alert") {
		t.Fatal("incident title not escaped")
	}
	for _, want := range []string{"CC6.1", "Corrections of commonly mislabelled criteria", "<svg", "gatehouse evidence verify"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	// The HTML carries the signed JSON, which verifies.
	res, err := compliance.Verify(compliance.ExtractJSON(html.Bytes()), r.AuditPublicKey)
	if err != nil || !res.OK() {
		t.Fatalf("embedded report: %v %v", err, res.Problems)
	}
	var md bytes.Buffer
	if err := compliance.RenderMarkdown(&md, &r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(md.String(), "<script>") || !strings.Contains(md.String(), "| CC8.1 |") {
		t.Fatal("markdown: not escaped or no controls")
	}
}

func TestBusinessDays(t *testing.T) {
	fri := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	if got := compliance.BusinessDaysAfter(fri, 5); got.Format(time.DateOnly) != "2026-12-11" {
		t.Fatalf("5 business days after Friday 4 Dec: %s", got)
	}
}

// TestDependencyScanCheck: CC7.1's scan check decides on the build.scan
// event serve records from the summary beside its binary.
func TestDependencyScanCheck(t *testing.T) {
	good := map[string]any{"scanned_at": now.Add(-2 * day).Format(time.RFC3339), "scanner": "govulncheck v1.9.0",
		"database": "golang.org/x/vulndb@v0.0.0-20261105234957-e22db6528018", "go_version": "go1.27.3",
		"sbom_sha256": "ab12", "binary_sha256": "cd34", "binary_matches": true, "reachable_count": 0, "blocking_count": 0}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name    string
		details map[string]any // nil: no scan on record
		want    compliance.Status
		reason  string
	}{
		{"no scan", nil, compliance.StatusManual, "no dependency scan"},
		{"clean and recent", good, compliance.StatusPass, "no reachable vulnerability"},
		{"other build", with("binary_matches", false), compliance.StatusFail, "another build"},
		{"old", with("scanned_at", now.Add(-8*day).Format(time.RFC3339)), compliance.StatusFail, "8 days ago"},
		{"reachable stdlib", with("reachable_count", 2), compliance.StatusFail, "2 vulnerabilities reachable"},
		{"no date", with("scanned_at", "yesterday"), compliance.StatusFail, "no valid date"},
	}
	l := MustOpenLog(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := goodState(t, l)
			var e audit.Entry
			if tc.details != nil {
				e = record(t, l, gatehouse.Event{Time: now.Add(-time.Hour), Type: "build.scan", Actor: gatehouse.Actor{Kind: "system", ID: "t"},
					Outcome: "success", Details: tc.details})
				s.Events = append(s.Events, e)
			}
			f := compliance.Evaluate(s)["dependencies.scan"]
			if f.Status != tc.want || !strings.Contains(f.Reason, tc.reason) {
				t.Fatalf("%s (%s), want %s containing %q", f.Status, f.Reason, tc.want, tc.reason)
			}
			if f.Remediation == "" {
				t.Error("no remediation")
			}
			if tc.details != nil && f.Observed["database"] != good["database"] {
				t.Errorf("observed = %v: the database version is not evidence", f.Observed)
			}
		})
	}
}
