package main_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestClientsUnlockCommand: `gatehouse clients unlock ID` lifts a client's
// lockout after failed authentications.
func TestClientsUnlockCommand(t *testing.T) {
	s := startServer(t, "routes:\n  - name: demo\n    path: /demo/\n    upstream: builtin:echo\n    scopes: [demo:read]\n")
	out, errOut, code := run(t, s.env(), "clients", "create", "--name", "svc", "--scopes", "demo:read", "--json")
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	token := func(secret string) int {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {secret}}
		res, err := http.Post(s.base+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	wrong := c.ClientSecret[:len(c.ClientSecret)-8] + "AAAAAAAA"
	for i := 0; i < 5; i++ {
		token(wrong)
	}
	if got := token(c.ClientSecret); got != http.StatusTooManyRequests {
		t.Fatalf("locked client: %d, want 429", got)
	}
	if out, _, _ := run(t, s.env(), "clients", "list"); !strings.Contains(out, "active, locked until ") {
		t.Errorf("clients list does not show the lockout:\n%s", out)
	}
	if out, _, _ := run(t, s.env(), "clients", "get", c.ClientID, "--json"); !strings.Contains(out, `"locked_until"`) {
		t.Errorf("clients get --json has no locked_until:\n%s", out)
	}
	out, errOut, code = run(t, s.env(), "clients", "unlock", c.ClientID)
	if code != 0 || !strings.Contains(out, "Unlocked client "+c.ClientID) {
		t.Fatalf("unlock: exit %d: %q %q", code, out, errOut)
	}
	if got := token(c.ClientSecret); got != http.StatusOK {
		t.Errorf("after unlock: %d, want 200", got)
	}
	if _, _, code := run(t, s.env(), "clients", "unlock", "cl_0000000000000000"); code == 0 {
		t.Errorf("unlock of an unknown client exited 0")
	}
}

// TestLockedUserListing: a locked account shows "locked until …" in the
// listing until an administrator unlocks it.
func TestLockedUserListing(t *testing.T) {
	s := startServer(t, "")
	if _, e, code := runIn(t, s.env(), "correct horse battery staple 42!\n", "users", "create", "hal", "--role", "auditor", "--password-stdin"); code != 0 {
		t.Fatalf("users create: %d %s", code, e)
	}
	env := []string{"GATEHOUSE_ADDR=" + s.admin, "GATEHOUSE_TOKEN=", "GATEHOUSE_CONFIG_DIR=" + t.TempDir()}
	for i := 0; i < 5; i++ {
		runIn(t, env, "not the password at all\n", "login", "--username", "hal", "--password-stdin")
	}
	if out, _, _ := run(t, s.env(), "users", "list"); !strings.Contains(out, "active, locked until ") {
		t.Fatalf("users list does not show the lockout:\n%s", out)
	}
	if _, e, code := run(t, s.env(), "users", "unlock", "hal"); code != 0 {
		t.Fatalf("unlock: %d %s", code, e)
	}
	if out, _, _ := run(t, s.env(), "users", "list"); strings.Contains(out, "locked until") {
		t.Errorf("still shown locked after unlock:\n%s", out)
	}
}
