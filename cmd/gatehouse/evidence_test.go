package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/defenseunicorns/go-oscal/src/pkg/validation"
)

// TestEvidenceCommands: a report written by `gatehouse evidence` verifies
// offline with the key `gatehouse audit pubkey` prints; an edited one
// exits 1 naming what changed; reviews and incidents run from the CLI.
func TestEvidenceCommands(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	s := startServerWith(t, serverOpts{dataDir: dataDir, config: "routes:\n  - name: demo\n    path: /demo/\n    upstream: builtin:echo\n    scopes: [demo:read]\n"})
	dir := t.TempDir()
	key, e, code := run(t, nil, "audit", "pubkey", "--data-dir", dataDir)
	if code != 0 {
		t.Fatalf("audit pubkey: %d %s", code, e)
	}
	key = strings.TrimSpace(key)

	// An incident, a drill and a review first, so the report has them.
	out, e, code := run(t, s.env(), "incident", "open", "--severity", "high", "--title", "test", "--impact", "none", "--json")
	var in struct{ ID string }
	if code != 0 || json.Unmarshal([]byte(out), &in) != nil || in.ID == "" {
		t.Fatalf("incident open: %d %s %s", code, out, e)
	}
	if _, e, code := run(t, s.env(), "incident", "close", in.ID, "--json"); code != 0 {
		t.Fatalf("incident close: %d %s", code, e)
	}
	out, e, code = run(t, s.env(), "incident", "drill", "--json")
	if code != 0 || !strings.Contains(out, `"duration_ms"`) {
		t.Fatalf("incident drill: %d %s %s", code, out, e)
	}
	out, e, code = run(t, s.env(), "review", "start", "--json")
	var rv struct {
		ID    string
		Items []struct{ ID string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &rv) != nil {
		t.Fatalf("review start: %d %s %s", code, out, e)
	}
	for _, it := range rv.Items {
		if _, e, code := run(t, s.env(), "review", "decide", rv.ID, it.ID, "--decision", "approve", "--reason", "needed"); code != 0 {
			t.Fatalf("review decide: %d %s", code, e)
		}
	}
	if _, e, code := run(t, s.env(), "review", "complete", rv.ID); code != 0 {
		t.Fatalf("review complete: %d %s", code, e)
	}

	for _, format := range []string{"json", "html", "oscal", "md"} {
		f := filepath.Join(dir, "report."+format)
		if _, e, code := run(t, s.env(), "evidence", "--format", format, "--out", f); code != 0 {
			t.Fatalf("evidence --format %s: %d %s", format, code, e)
		}
		if format == "md" {
			continue
		}
		if format == "oscal" {
			// The report of a running server, as the NIST OSCAL schema
			// of its version sees it.
			doc, _ := os.ReadFile(f)
			v, err := validation.NewValidator(doc)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Validate(); err != nil {
				t.Fatalf("the OSCAL %s schema refuses the report: %v", v.GetSchemaVersion(), err)
			}
		}
		out, e, code := run(t, nil, "evidence", "verify", f, "--key", key)
		if code != 0 || !strings.Contains(out, "evidence report OK") {
			t.Fatalf("verify %s: %d %s %s", format, code, out, e)
		}
		t.Logf("%s: %s", format, strings.TrimSpace(out))
	}
	// Tamper: a finding's status.
	data, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	edited := strings.Replace(string(data), `"status": "fail"`, `"status": "pass"`, 1)
	if edited == string(data) {
		t.Fatal("no failing finding to edit")
	}
	f := filepath.Join(dir, "edited.json")
	os.WriteFile(f, []byte(edited), 0o644)
	out, _, code = run(t, nil, "evidence", "verify", f, "--key", key)
	if code != 1 || !strings.Contains(out, "FAIL signature") {
		t.Fatalf("edited report: exit %d %s", code, out)
	}
	if _, _, code := run(t, nil, "evidence", "verify", filepath.Join(dir, "missing.json")); code != 2 {
		t.Fatalf("missing file: exit %d, want 2", code)
	}
	if _, _, code := run(t, s.env(), "evidence", "--period", "last-week"); code != 2 {
		t.Fatalf("bad period: exit %d, want 2", code)
	}
	if _, _, code := run(t, s.env(), "evidence", "--period", "2026-12-31..2026-01-01"); code != 1 {
		t.Fatalf("reversed period: exit %d, want 1 (the server refuses it)", code)
	}
}

// TestEvidenceOffline: gatehouse evidence --data-dir builds and signs the
// report of a stopped server on the host, which verifies offline; the
// listeners are described, not probed; a running server's locked log and
// a directory that never served are refused.
func TestEvidenceOffline(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	conf := "routes:\n  - name: demo\n    path: /demo/\n    upstream: builtin:echo\n    scopes: [demo:read]\n"
	s := startServerWith(t, serverOpts{dataDir: dataDir, config: conf})
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "g.yaml")
	// The bytes serve loaded: the same config hash as its config.loaded.
	if err := os.WriteFile(cfgFile, []byte("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\n"+conf), 0o600); err != nil {
		t.Fatal(err)
	}
	key, e, code := run(t, nil, "audit", "pubkey", "--data-dir", dataDir)
	if code != 0 {
		t.Fatalf("audit pubkey: %d %s", code, e)
	}
	f := filepath.Join(dir, "offline.json")
	if _, e, code := run(t, nil, "evidence", "--data-dir", dataDir, "--config", cfgFile, "--out", f); code != 1 || !strings.Contains(e, "held by a running server") {
		t.Fatalf("an offline report over a serving server's log: exit %d %s", code, e)
	}
	s.stop(t)

	if _, e, code := run(t, nil, "evidence", "--data-dir", dataDir, "--config", cfgFile, "--format", "json", "--out", f); code != 0 {
		t.Fatalf("evidence --data-dir: %d %s", code, e)
	}
	out, e, code := run(t, nil, "evidence", "verify", f, "--key", strings.TrimSpace(key))
	if code != 0 || !strings.Contains(out, "evidence report OK") {
		t.Fatalf("verify: %d %s %s", code, out, e)
	}
	data, _ := os.ReadFile(f)
	var r struct {
		GeneratedBy string `json:"generated_by"`
		Controls    []struct {
			Findings []struct {
				Check, Status, Reason string
			}
		}
	}
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if r.GeneratedBy != "system:evidence-offline" {
		t.Errorf("generated_by %q", r.GeneratedBy)
	}
	want := map[string]string{
		"routes.authenticated": "manual", // not probed offline
		"headers.security":     "manual",
		"tls.listeners":        "fail", // prod without TLS, from the config
		"changes.audited":      "pass", // the config given is the one serve recorded
		"audit.verifies":       "pass",
	}
	for _, c := range r.Controls {
		for _, fd := range c.Findings {
			if w, ok := want[fd.Check]; ok {
				if fd.Status != w {
					t.Errorf("%s: %s (%s), want %s", fd.Check, fd.Status, fd.Reason, w)
				}
				delete(want, fd.Check)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("no finding of %v", want)
	}

	empty := filepath.Join(t.TempDir(), "never-served")
	if _, e, code := run(t, nil, "evidence", "--data-dir", empty, "--out", f); code != 2 || !strings.Contains(e, "no audit log") {
		t.Fatalf("a data dir that never served: exit %d %s", code, e)
	}
}
