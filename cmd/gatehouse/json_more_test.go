package main_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestJSONOutputOfTheRest covers the resource-printing commands
// TestJSONOutput leaves out — tokens create|list|revoke, keys and
// clients rotate, signing-keys rotate, users set-role, unlock,
// reset-password and reset-totp: with --json each prints one JSON object
// on stdout holding the resource, and nothing else.
func TestJSONOutputOfTheRest(t *testing.T) {
	s := startServer(t, "routes:\n  - name: demo\n    path: /demo/\n    upstream: builtin:echo\n    scopes: [demo:read]\n")
	pw := "correct horse battery staple 42!\n"
	for _, u := range []string{"alice", "bob"} {
		if _, e, code := runIn(t, s.env(), pw, "users", "create", u, "--role", "admin", "--scopes", "demo:read", "--password-stdin"); code != 0 {
			t.Fatalf("users create %s: %d %s", u, code, e)
		}
	}
	// Tokens are a person's: sign in as alice.
	alice := []string{"GATEHOUSE_ADDR=" + s.admin, "GATEHOUSE_TOKEN=", "GATEHOUSE_CONFIG_DIR=" + t.TempDir()}
	if _, e, code := runIn(t, alice, pw, "login", "--username", "alice", "--password-stdin"); code != 0 {
		t.Fatalf("login: %d %s", code, e)
	}
	jsonOf := func(t *testing.T, env []string, args ...string) map[string]any {
		t.Helper()
		out, stderr, code := runIn(t, env, "a temporary passphrase 17 long\n", append(args, "--json")...)
		var v map[string]any
		if code != 0 || stderr != "" || json.Unmarshal([]byte(out), &v) != nil {
			t.Fatalf("%v --json: exit %d, stdout %q, stderr %q", args, code, out, stderr)
		}
		return v
	}
	str := func(v map[string]any, k string) string { s, _ := v[k].(string); return s }

	tok := jsonOf(t, alice, "tokens", "create", "--name", "ci", "--scopes", "demo:read", "--expires", "1h")
	tid := str(tok, "id")
	if tid == "" || !strings.HasPrefix(str(tok, "token"), "gpat_") {
		t.Fatalf("tokens create --json: %v", tok)
	}
	k := jsonOf(t, s.env(), "keys", "create", "--name", "ci", "--scopes", "demo:read")
	cl := jsonOf(t, s.env(), "clients", "create", "--name", "svc", "--scopes", "demo:read")

	tests := []struct {
		env  []string
		args []string
		key  string // a field the answer has
		want string // its value, when not ""
	}{
		{alice, []string{"tokens", "list"}, "tokens", ""},
		{s.env(), []string{"keys", "rotate", str(k, "id"), "--grace", "1m"}, "key", ""},
		{s.env(), []string{"clients", "rotate", str(cl, "client_id")}, "client_secret", ""},
		{s.env(), []string{"signing-keys", "rotate"}, "keys", ""},
		{s.env(), []string{"users", "set-role", "bob", "security"}, "role", "security"},
		{s.env(), []string{"users", "unlock", "bob"}, "username", "bob"},
		{s.env(), []string{"users", "reset-totp", "bob"}, "username", "bob"},
		{s.env(), []string{"users", "reset-password", "bob", "--password-stdin"}, "username", "bob"},
		{alice, []string{"tokens", "revoke", tid}, "status", "revoked"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[:2], " "), func(t *testing.T) {
			v := jsonOf(t, tt.env, tt.args...)
			got, ok := v[tt.key]
			if !ok {
				t.Fatalf("%v --json has no %q: %v", tt.args, tt.key, v)
			}
			if s, _ := got.(string); tt.want != "" && s != tt.want {
				t.Errorf("%s = %v, want %q", tt.key, got, tt.want)
			}
		})
	}
}
