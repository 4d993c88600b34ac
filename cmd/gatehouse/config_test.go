package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheck: `gatehouse config check` reports every problem of a
// config, each on a line of its own as FILE:LINE: field: message, and
// exits 2; a valid config exits 0 with one "ok" line. Neither creates
// anything.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	env := []string{"GATEHOUSE_DATA_DIR=" + data}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("mode: staging\nlisten: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\npolicy: {dir: "+filepath.Join(dir, "nowhere")+"}\nroutes:\n  - name: a\n    path: /a/\n    upstreem: http://127.0.0.1:9000\n    scopes: [x]\n    timeout: 30\n"), 0o644)
	stdout, stderr, code := run(t, env, "config", "check", "--config", bad)
	if code != 2 || stdout != "" {
		t.Fatalf("exit %d, stdout %q; want 2 and nothing", code, stdout)
	}
	want := []string{
		bad + `:1: mode: must be "prod" or "dev", not "staging"`,
		bad + ":4: policy.dir: cannot read " + filepath.Join(dir, "nowhere") + ": no such file or directory",
		bad + ":6: routes[0].upstream: is required",
		bad + `:8: routes[0].upstreem: unknown key (did you mean "upstream"?)`,
		bad + ":10: routes[0].timeout: must be a duration such as 30s, not 30",
		"gatehouse: invalid config: 5 problems",
	}
	if got := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, strings.Join(want, "\n"))
	}

	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\n"), 0o644)
	stdout, stderr, code = run(t, env, "config", "check", "-c", good)
	if code != 0 || stdout != good+": ok\n" || stderr != "" {
		t.Errorf("valid config: exit %d, stdout %q, stderr %q; want 0 and one ok line", code, stdout, stderr)
	}
	stdout, _, code = run(t, append(env, "GATEHOUSE_CONFIG="+good), "config", "check")
	if code != 0 || stdout != good+": ok\n" {
		t.Errorf("GATEHOUSE_CONFIG: exit %d, stdout %q", code, stdout)
	}

	// With --json: the result on stdout, the problems in one error object.
	stdout, stderr, code = run(t, env, "config", "check", "-c", good, "--json")
	var ok struct {
		Config string `json:"config"`
		OK     bool   `json:"ok"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &ok) != nil || ok.Config != good || !ok.OK || stderr != "" {
		t.Errorf("--json, valid: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	stdout, stderr, code = run(t, env, "config", "check", "-c", bad, "--json")
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if code != 2 || stdout != "" || json.Unmarshal([]byte(stderr), &e) != nil || e.Error.Code != "usage" || e.Error.Message != strings.Join(want[:len(want)-1], "\n") {
		t.Errorf("--json, invalid: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(data); err == nil {
		t.Error("config check created the data dir")
	}
}

// TestServeChecksTheConfigFirst: serve refuses a config whose policy dir
// is missing before it creates the data dir or makes an admin token.
func TestServeChecksTheConfigFirst(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "g.yaml")
	os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\npolicy:\n  dir: ./nowhere\n"), 0o644)
	stdout, stderr, code := run(t, []string{"GATEHOUSE_DATA_DIR=" + data}, "serve", "--config", cfg)
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr %q", code, stderr)
	}
	if want := cfg + ":4: policy.dir: cannot read ./nowhere: no such file or directory\ngatehouse: invalid config: 1 problem\n"; stderr != want {
		t.Errorf("stderr %q\nwant %q", stderr, want)
	}
	if stdout != "" {
		t.Errorf("stdout %q: nothing (no admin token) should be printed", stdout)
	}
	if _, err := os.Stat(data); err == nil {
		t.Error("data dir created although the config was refused")
	}
}
