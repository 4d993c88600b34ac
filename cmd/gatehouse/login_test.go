package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func runIn(t *testing.T, env []string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return o.String(), e.String(), code
}

func TestLoginLogout(t *testing.T) {
	s := startServer(t, "")
	pw := "correct horse battery staple 42!\n"
	if _, e, code := runIn(t, s.env(), pw, "users", "create", "alice", "--role", "admin", "--password-stdin"); code != 0 {
		t.Fatalf("users create: %d %s", code, e)
	}
	if _, e, code := runIn(t, s.env(), "weak\n", "users", "create", "bob", "--role", "admin", "--password-stdin"); code != 1 || !strings.Contains(e, "too short") {
		t.Fatalf("weak password: %d %q", code, e)
	}
	home := t.TempDir()
	env := []string{"GATEHOUSE_ADDR=" + s.admin, "GATEHOUSE_TOKEN=", "GATEHOUSE_CONFIG_DIR=" + home}
	if _, e, code := runIn(t, env, "wrong password here\n", "login", "--username", "alice", "--password-stdin"); code != 1 || !strings.Contains(e, "invalid username or password") {
		t.Fatalf("login with a wrong password: %d %q", code, e)
	}
	out, e, code := runIn(t, env, pw, "login", "--username", "alice", "--password-stdin")
	if code != 0 || !strings.Contains(out, "Signed in as alice (admin)") {
		t.Fatalf("login: %d %q %q", code, out, e)
	}
	fi, err := os.Stat(filepath.Join(home, "credentials.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stored credentials: %v %v", err, fi)
	}
	// Later commands use the stored token.
	if out, e, code := runIn(t, env, "", "tokens", "list"); code != 0 || !strings.Contains(out, "gatehouse CLI on") {
		t.Fatalf("tokens list with the stored token: %d %q %q", code, out, e)
	}
	if _, e, code := runIn(t, env, "", "keys", "list"); code != 0 {
		t.Fatalf("keys list with the stored token: %d %q", code, e)
	}
	if out, e, code := runIn(t, env, "", "logout"); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("logout: %d %q %q", code, out, e)
	}
	if _, e, code := runIn(t, env, "", "keys", "list"); code != 2 || !strings.Contains(e, "gatehouse login") {
		t.Fatalf("after logout: %d %q", code, e)
	}
}
