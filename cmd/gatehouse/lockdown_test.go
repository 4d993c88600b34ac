package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIncidentLockdownCommands: contain --lockdown and lift through the
// real binary. Usage mistakes exit 2 before anything is sent; a refusal
// by the server exits 1 naming it; a lockdown refuses a non-admin key
// with 503 and admits the allowed one, survives a restart of the
// server, and lift restores the gateway.
func TestIncidentLockdownCommands(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	const token = "lockdown-test-admin-token-0123456789"
	opts := serverOpts{dataDir: dataDir, env: []string{"GATEHOUSE_ADMIN_TOKEN=" + token},
		config: "routes:\n  - name: demo\n    path: /demo/\n    upstream: builtin:echo\n    scopes: [demo:read]\n"}
	s := startServerWith(t, opts)
	key := func(name string) (id, secret string) {
		out, e, code := run(t, s.env(), "keys", "create", "--name", name, "--scopes", "demo:read", "--json")
		var k struct{ ID, Key string }
		if code != 0 || json.Unmarshal([]byte(out), &k) != nil {
			t.Fatalf("keys create: %d %s", code, e)
		}
		return k.ID, k.Key
	}
	_, svc := key("svc")
	opsID, ops := key("ops")
	get := func(base, key string) (int, string) {
		req, _ := http.NewRequest("GET", base+"/demo/hello", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	out, e, code := run(t, s.env(), "incident", "open", "--severity", "critical", "--title", "leak", "--impact", "all", "--json")
	var in struct{ ID string }
	if code != 0 || json.Unmarshal([]byte(out), &in) != nil || in.ID == "" {
		t.Fatalf("incident open: %d %s %s", code, out, e)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"lockdown without allow", []string{"--lockdown"}, 2, "--allow"},
		{"allow without lockdown", []string{"--allow", "admin"}, 2, "--allow goes with --lockdown"},
		{"lockdown and a revocation", []string{"--lockdown", "--allow", "admin", "--revoke-principal", "api_key:" + opsID}, 2, "exactly one"},
		{"malformed entry", []string{"--lockdown", "--allow", "root"}, 2, "root"},
		{"unknown principal", []string{"--lockdown", "--allow", "api_key:key_doesnotexist"}, 1, "no such api key"},
	} {
		_, e, code := run(t, s.env(), append([]string{"incident", "contain", in.ID}, tc.args...)...)
		if code != tc.code || !strings.Contains(e, tc.want) {
			t.Errorf("%s: exit %d %q, want %d naming %q", tc.name, code, e, tc.code, tc.want)
		}
	}
	if code, _ := get(s.base, svc); code != 200 {
		t.Fatalf("svc before the lockdown: %d", code)
	}
	out, e, code = run(t, s.env(), "incident", "contain", in.ID, "--lockdown", "--allow", "api_key:"+opsID, "--allow", "admin", "--json")
	if code != 0 || !strings.Contains(out, `"lockdown"`) {
		t.Fatalf("contain --lockdown: %d %s %s", code, out, e)
	}
	check := func(base, when string) {
		t.Helper()
		code, body := get(base, svc)
		if code != 503 || !strings.Contains(body, `"code":"lockdown"`) || !strings.Contains(body, in.ID) {
			t.Errorf("%s: svc got %d %s, want 503 lockdown naming %s", when, code, body, in.ID)
		}
		if code, body := get(base, ops); code != 200 {
			t.Errorf("%s: the allowed key got %d %s", when, code, body)
		}
	}
	check(s.base, "in lockdown")
	if out, e, code := run(t, s.env(), "incident", "show", in.ID); code != 0 || !strings.Contains(out, "LOCKDOWN in force") || !strings.Contains(out, "api_key:"+opsID) {
		t.Errorf("incident show during the lockdown: %d %q %s", code, out, e)
	}

	// A restart keeps the lockdown.
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("server did not stop in 15s")
	}
	s = startServerWith(t, opts)
	check(s.base, "after a restart")

	if _, e, code := run(t, s.env(), "incident", "close", in.ID); code != 1 || !strings.Contains(e, "lift") {
		t.Errorf("close during the lockdown: exit %d %q, want 1 saying lift it first", code, e)
	}
	if _, e, code := run(t, s.env(), "incident", "lift"); code != 2 {
		t.Errorf("lift without ID: exit %d %q, want 2", code, e)
	}
	if out, e, code := run(t, s.env(), "incident", "lift", in.ID); code != 0 {
		t.Fatalf("lift: %d %s %s", code, out, e)
	}
	if code, body := get(s.base, svc); code != 200 {
		t.Errorf("svc after the lift: %d %s", code, body)
	}
	if _, e, code := run(t, s.env(), "incident", "lift", in.ID); code != 1 || !strings.Contains(e, "not in lockdown") {
		t.Errorf("lift twice: exit %d %q, want 1 saying not in lockdown", code, e)
	}
}
