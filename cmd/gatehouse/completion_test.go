package main_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestCompletion: the completion scripts generate, and the values they
// offer for ids and enums come from the server.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out, e, code := run(t, nil, "completion", shell)
		if code != 0 || !strings.Contains(out, "gatehouse") || !strings.Contains(out, "__complete") {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", shell, code, len(out), e)
		}
	}
	if _, e, code := run(t, nil, "completion", "tcsh"); code != 2 {
		t.Errorf("completion tcsh: exit %d %q, want 2", code, e)
	}

	s := startServer(t, "ratelimit:\n  tiers: {free: {requests: 60, per: 1m}, gold: {requests: 6000, per: 1m}}\nroutes:\n  - name: demo\n    path: /demo/\n    upstream: builtin:echo\n    scopes: [demo:read]\n")
	out, _, _ := run(t, s.env(), "keys", "create", "--name", "ci-key", "--scopes", "demo:read", "--json")
	var k struct{ ID string }
	json.Unmarshal([]byte(out), &k)
	out, _, _ = run(t, s.env(), "clients", "create", "--name", "svc", "--scopes", "demo:read", "--json")
	var c struct {
		ClientID string `json:"client_id"`
	}
	json.Unmarshal([]byte(out), &c)
	if _, e, code := runIn(t, s.env(), "correct horse battery staple 42!\n", "users", "create", "gail", "--role", "auditor", "--password-stdin"); code != 0 {
		t.Fatalf("users create: %d %s", code, e)
	}
	if k.ID == "" || c.ClientID == "" {
		t.Fatal("setup failed")
	}
	complete := func(args ...string) []string {
		t.Helper()
		out, e, code := run(t, s.env(), append([]string{"__complete"}, args...)...)
		if code != 0 {
			t.Fatalf("__complete %v: exit %d %q", args, code, e)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
			t.Fatalf("__complete %v: no directive line: %q", args, out)
		}
		return lines[:len(lines)-1]
	}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"keys", "get", ""}, []string{k.ID + "\tci-key"}},
		{[]string{"keys", "revoke", "key_"}, []string{k.ID + "\tci-key"}},
		{[]string{"clients", "unlock", ""}, []string{c.ClientID + "\tsvc"}},
		{[]string{"users", "set-role", ""}, []string{"gail\tauditor"}},
		{[]string{"users", "set-role", "gail", ""}, []string{"admin", "security", "auditor"}},
		{[]string{"users", "create", "x", "--role", ""}, []string{"admin", "security", "auditor"}},
		{[]string{"keys", "create", "--tier", ""}, []string{"free", "gold"}},
		{[]string{"clients", "create", "--tier", ""}, []string{"free", "gold"}},
		{[]string{"settings", "get", ""}, []string{"lockout.max_failures", "session.idle_timeout"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got := complete(tt.args...)
			for _, w := range tt.want {
				found := false
				for _, g := range got {
					found = found || g == w
				}
				if !found {
					t.Errorf("completions %q lack %q", got, w)
				}
			}
		})
	}
	// The bootstrap token is no person: tokens come from everyone's list.
	if _, e, code := runIn(t, s.env(), "", "tokens", "list", "--all"); code != 0 {
		t.Fatalf("tokens list --all: %d %s", code, e)
	}
	// Without a server, completion offers nothing and fails nothing.
	out, _, code := run(t, []string{"GATEHOUSE_ADDR=http://127.0.0.1:1", "GATEHOUSE_TOKEN=x"}, "__complete", "keys", "get", "")
	if code != 0 || strings.TrimSpace(out) != ":4" {
		t.Errorf("completion without a server: exit %d %q", code, out)
	}
}

// TestCompletionOfEventTypes: audit export --type completes to the event
// types (offline; docs/audit.md's table), each with what records it.
func TestCompletionOfEventTypes(t *testing.T) {
	out, e, code := run(t, nil, "__complete", "audit", "export", "--type", "")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	for _, want := range []string{"authn.failure\tA gateway request refused", "admin.key.create\t", "policy.reloaded\t", "\n:4\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("completion of --type lacks %q:\n%s", want, out)
		}
	}
}
