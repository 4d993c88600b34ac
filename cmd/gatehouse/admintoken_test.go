package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
)

// TestAdminTokenRotateAndDisable: `admin-token rotate --data-dir` makes a
// new token offline (the old one stops at once, also on the running
// server), audited at the next start; `admin-token disable` is refused
// until an enabled admin user exists, then works through the API or
// offline.
func TestAdminTokenRotateAndDisable(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	s := startServerWith(t, serverOpts{dataDir: dataDir})
	t1 := s.token
	with := func(token string) []string { return []string{"GATEHOUSE_ADDR=" + s.admin, "GATEHOUSE_TOKEN=" + token} }

	if _, e, code := run(t, with(t1), "admin-token", "disable"); code != 1 || !strings.Contains(e, "role admin") {
		t.Fatalf("disable with no admin user: %d %q", code, e)
	}
	if _, e, code := run(t, nil, "admin-token", "rotate", "--data-dir", filepath.Join(t.TempDir(), "nothing")); code != 2 || !strings.Contains(e, "server.secret") {
		t.Fatalf("rotate on a dir that is no data dir: %d %q", code, e)
	}
	out, e, code := run(t, nil, "admin-token", "rotate", "--data-dir", dataDir)
	m := regexp.MustCompile(`GATEHOUSE_TOKEN=(gadm_\S+)`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("rotate: %d %q %q", code, out, e)
	}
	t2 := m[1]
	if _, _, code := run(t, with(t1), "keys", "list"); code != 1 {
		t.Errorf("the old token after rotate: exit %d, want 1", code)
	}
	if _, e, code := run(t, with(t2), "keys", "list"); code != 0 {
		t.Fatalf("the new token: %d %q", code, e)
	}

	// Restart: the rotation is audited.
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop")
	}
	s = startServerWith(t, serverOpts{dataDir: dataDir, env: []string{"GATEHOUSE_ADMIN_TOKEN=ignored-after-first-start-0000"}})
	s.token = t2
	req, _ := http.NewRequest("GET", s.admin+"/v1/audit?type=admin_token.rotate", nil)
	req.Header.Set("Authorization", "Bearer "+t2)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Entries []struct {
			Event struct {
				Actor   map[string]any `json:"actor"`
				Details map[string]any `json:"details"`
			} `json:"event"`
		} `json:"entries"`
	}
	json.NewDecoder(res.Body).Decode(&page)
	res.Body.Close()
	if len(page.Entries) != 1 || page.Entries[0].Event.Details["via"] != "cli" {
		t.Fatalf("rotate events after restart: %+v", page.Entries)
	}

	// With an admin user, disable works offline, at once on the running server.
	if _, e, code := runIn(t, s.env(), "a long enough passphrase 42\n", "users", "create", "alice", "--role", "admin", "--password-stdin"); code != 0 {
		t.Fatalf("create admin: %d %q", code, e)
	}
	if out, e, code := run(t, nil, "admin-token", "disable", "--data-dir", dataDir); code != 0 || !strings.Contains(out, "Disabled") {
		t.Fatalf("offline disable: %d %q %q", code, out, e)
	}
	if _, _, code := run(t, s.env(), "keys", "list"); code != 1 {
		t.Errorf("the disabled token on the running server: exit %d, want 1", code)
	}
}

// TestUsersUnlockAndResetTOTPCommands: `users unlock` ends a lockout and
// `users reset-totp` removes a second factor, both through the admin API.
func TestUsersUnlockAndResetTOTPCommands(t *testing.T) {
	s := startServer(t, "")
	const pw = "a long enough passphrase 42"
	if _, e, code := runIn(t, s.env(), pw+"\n", "users", "create", "alice", "--role", "auditor", "--password-stdin"); code != 0 {
		t.Fatalf("create: %d %q", code, e)
	}
	login := func(password string) int {
		res, err := http.Post(s.admin+"/v1/session", "application/json", strings.NewReader(`{"username":"alice","password":"`+password+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for range 5 {
		login("wrong")
	}
	if code := login(pw); code != 401 {
		t.Fatalf("locked account: %d", code)
	}
	if out, e, code := run(t, s.env(), "users", "unlock", "alice"); code != 0 || !strings.Contains(out, "Unlocked user alice") {
		t.Fatalf("users unlock: %d %q %q", code, out, e)
	}
	if code := login(pw); code != 200 {
		t.Fatalf("after unlock: %d", code)
	}
	if out, e, code := run(t, s.env(), "users", "reset-totp", "alice"); code != 0 || !strings.Contains(out, "Removed the second factor of alice") {
		t.Fatalf("users reset-totp: %d %q %q", code, out, e)
	}
	if _, e, code := run(t, s.env(), "users", "unlock", "nobody"); code != 1 || !strings.Contains(e, "not found") {
		t.Fatalf("unlock of an unknown user: %d %q", code, e)
	}
}

// TestAdminTokenRotateOnPostgres: offline rotation against the PostgreSQL
// store (--store) takes effect at once on the running server.
func TestAdminTokenRotateOnPostgres(t *testing.T) {
	dsn := pgtest.MustCreateDatabase(t)
	data := filepath.Join(t.TempDir(), "data")
	const t1 = "first-admin-token-0123456789"
	s := startServerWith(t, serverOpts{config: fmt.Sprintf("store: {driver: postgres, dsn: %q}\n", dsn), dataDir: data, env: []string{"GATEHOUSE_ADMIN_TOKEN=" + t1}})
	out, e, code := run(t, nil, "admin-token", "rotate", "--data-dir", data, "--store", dsn)
	m := regexp.MustCompile(`GATEHOUSE_TOKEN=(gadm_\S+)`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("rotate: %d %q %q", code, out, e)
	}
	env := func(token string) []string { return []string{"GATEHOUSE_ADDR=" + s.admin, "GATEHOUSE_TOKEN=" + token} }
	if _, _, code := run(t, env(t1), "keys", "list"); code != 1 {
		t.Errorf("the old token after rotate: exit %d, want 1", code)
	}
	if _, e, code := run(t, env(m[1]), "keys", "list"); code != 0 {
		t.Errorf("the new token: %d %q", code, e)
	}
}
