package main_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestUsageErrorsExit2 covers what a script sees when it calls a command
// wrongly: exit 2, a message naming the problem (a suggestion, the usage
// line), and nothing sent to a server.
func TestUsageErrorsExit2(t *testing.T) {
	env := []string{"GATEHOUSE_ADDR=http://127.0.0.1:1", "GATEHOUSE_TOKEN=x"}
	tests := []struct {
		name string
		args []string
		want []string // lines of stderr, each a prefix
	}{
		{"unknown subcommand suggests", []string{"keys", "lsit"}, []string{`gatehouse: unknown command "lsit" for "gatehouse keys"; did you mean "list"?`}},
		{"unknown top-level command suggests", []string{"vesion"}, []string{`gatehouse: unknown command "vesion" for "gatehouse"; did you mean "version"?`}},
		{"unknown nested subcommand", []string{"users", "frob"}, []string{`gatehouse: unknown command "frob" for "gatehouse users" (see 'gatehouse users --help')`}},
		{"missing argument prints the usage line", []string{"keys", "get"}, []string{"gatehouse: gatehouse keys get: accepts 1 arg(s), received 0", "Usage: gatehouse keys get ID"}},
		{"extra argument", []string{"keys", "list", "extra"}, []string{"gatehouse: gatehouse keys list: unknown command \"extra\"", "Usage: gatehouse keys list"}},
		{"set-role needs two", []string{"users", "set-role", "bob"}, []string{"gatehouse: gatehouse users set-role: accepts 2 arg(s), received 1", "Usage: gatehouse users set-role USERNAME"}},
		{"bad role is local validation", []string{"users", "set-role", "bob", "root"}, []string{`gatehouse: role "root": must be one of admin, security, auditor`}},
		{"bad flag value", []string{"audit", "proof", "--index", "x"}, []string{`gatehouse: invalid argument "x" for "--index"`}},
		// A misspelt type would match nothing and look like an empty log.
		{"unknown event type lists the known ones", []string{"audit", "export", "--data-dir", "/nonexistent", "--type", "auth.failure"}, []string{`gatehouse: unknown event type "auth.failure" (known: admin.access.denied, admin.admin_token.disable, `}},
		{"event type prefix matching none", []string{"audit", "export", "--data-dir", "/nonexistent", "--type", "authn*x*"}, []string{`gatehouse: unknown event type "authn*x*" (known: `}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := run(t, env, tt.args...)
			if code != 2 || stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and no output", code, stdout, stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if tt.want != nil && len(lines) != len(tt.want) {
				t.Fatalf("stderr %q: want %d lines", stderr, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("stderr line %d = %q, want prefix %q", i+1, lines[i], w)
				}
			}
		})
	}
}

// TestGroupWithoutSubcommandPrintsHelp: `gatehouse keys` alone is help,
// exit 0.
func TestGroupWithoutSubcommandPrintsHelp(t *testing.T) {
	out, _, code := run(t, nil, "keys")
	if code != 0 || !strings.Contains(out, "Available Commands:") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

type jsonError struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		Status    int    `json:"status"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

func decodeJSONError(t *testing.T, stderr string) jsonError {
	t.Helper()
	var e jsonError
	dec := json.NewDecoder(strings.NewReader(stderr))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || dec.More() || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("stderr is not one JSON error: %q (%v)", stderr, err)
	}
	return e
}

func TestJSONErrors(t *testing.T) {
	s := startServer(t, "")
	tests := []struct {
		name   string
		env    []string
		args   []string
		exit   int
		code   string
		status int
		msg    string
	}{
		{"not found", s.env(), []string{"keys", "get", "key_doesnotexist", "--json"}, 1, "not_found", 404, `key "key_doesnotexist" not found`},
		{"refused credential", []string{"GATEHOUSE_ADDR=" + s.admin, "GATEHOUSE_TOKEN=wrong-token-123456"}, []string{"--json", "users", "list"}, 1, "unauthenticated", 401, "invalid admin credential"},
		{"server refuses the value", s.env(), []string{"settings", "set", "lockout.max_failures=-1", "--json"}, 1, "invalid", 400, ""},
		{"usage", s.env(), []string{"keys", "get", "--json"}, 2, "usage", 0, "gatehouse keys get: accepts 1 arg(s), received 0"},
		{"unknown subcommand", s.env(), []string{"keys", "lsit", "--json"}, 2, "usage", 0, `unknown command "lsit"`},
		{"unknown setting, checked against the server's", s.env(), []string{"settings", "set", "lockout.max_failure=3", "--json"}, 2, "usage", 0, `unknown setting "lockout.max_failure"; known here: lockout.duration, lockout.max_failures, lockout.window`},
		{"unknown flag", s.env(), []string{"keys", "list", "--nope", "--json"}, 2, "usage", 0, "unknown flag: --nope"},
		{"unreachable", []string{"GATEHOUSE_ADDR=http://127.0.0.1:1", "GATEHOUSE_TOKEN=x"}, []string{"keys", "list", "--json"}, 1, "unreachable", 0, "cannot reach the admin API"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := run(t, tt.env, tt.args...)
			if code != tt.exit || stdout != "" {
				t.Fatalf("exit %d, stdout %q; want exit %d and no output (stderr %q)", code, stdout, tt.exit, stderr)
			}
			e := decodeJSONError(t, stderr)
			if e.Error.Code != tt.code || e.Error.Status != tt.status || !strings.Contains(e.Error.Message, tt.msg) {
				t.Errorf("error %+v; want code %s, status %d, message with %q", e.Error, tt.code, tt.status, tt.msg)
			}
			if tt.status != 0 && e.Error.RequestID == "" {
				t.Errorf("an API error without its request id: %+v", e.Error)
			}
		})
	}
}

// TestJSONOutput: every command that prints a resource prints it as JSON
// with --json, with the fields the API documents.
func TestJSONOutput(t *testing.T) {
	s := startServer(t, "routes:\n  - name: demo\n    path: /demo/\n    upstream: builtin:echo\n    scopes: [demo:read]\n")
	jsonOf := func(t *testing.T, args ...string) map[string]any {
		t.Helper()
		out, stderr, code := run(t, s.env(), append(args, "--json")...)
		var v map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", args, code, out, stderr)
		}
		return v
	}
	k := jsonOf(t, "keys", "create", "--name", "ci", "--scopes", "demo:read")
	id, _ := k["id"].(string)
	cl := jsonOf(t, "clients", "create", "--name", "svc", "--scopes", "demo:read")
	cid, _ := cl["client_id"].(string)
	if _, e, code := runIn(t, s.env(), "correct horse battery staple 42!\n", "users", "create", "carol", "--role", "auditor", "--password-stdin"); code != 0 {
		t.Fatalf("users create: %d %s", code, e)
	}
	tests := []struct {
		args []string
		key  string // a field the answer has
		want any    // its value, when not nil
	}{
		{[]string{"keys", "get", id}, "id", id},
		{[]string{"keys", "list"}, "keys", nil},
		{[]string{"clients", "get", cid}, "client_id", cid},
		{[]string{"clients", "list"}, "clients", nil},
		{[]string{"clients", "unlock", cid}, "client_id", cid},
		{[]string{"users", "get", "carol"}, "username", "carol"},
		{[]string{"users", "list"}, "users", nil},
		{[]string{"users", "disable", "carol"}, "status", "disabled"},
		{[]string{"users", "enable", "carol"}, "status", "active"},
		{[]string{"signing-keys", "list"}, "keys", nil},
		{[]string{"settings", "get"}, "lockout", nil},
		{[]string{"settings", "set", "lockout.max_failures=7"}, "lockout", map[string]any{"max_failures": 7.0, "window": "15m0s", "duration": "15m0s"}},
		{[]string{"keys", "revoke", id}, "status", "revoked"},
		{[]string{"clients", "revoke", cid}, "status", "revoked"},
		{[]string{"users", "delete", "carol"}, "status", "deleted"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[:2], " "), func(t *testing.T) {
			v := jsonOf(t, tt.args...)
			got, ok := v[tt.key]
			if !ok {
				t.Fatalf("%v --json has no %q: %v", tt.args, tt.key, v)
			}
			if tt.want != nil {
				gb, _ := json.Marshal(got)
				wb, _ := json.Marshal(tt.want)
				if string(gb) != string(wb) {
					t.Errorf("%s = %s, want %s", tt.key, gb, wb)
				}
			}
		})
	}
}
