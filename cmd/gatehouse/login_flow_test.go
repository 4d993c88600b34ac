package main_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/totp"
)

// session signs in to the admin API over HTTP (as the web UI would) and
// calls it with the session's CSRF token.
type session struct {
	t      *testing.T
	base   string
	client *http.Client
	csrf   string
}

func signIn(t *testing.T, base string, body map[string]any) *session {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	s := &session{t: t, base: base, client: &http.Client{Jar: jar}}
	var out struct {
		CSRFToken string `json:"csrf_token"`
	}
	if code := s.call("POST", "/v1/session", body, &out); code != 200 {
		t.Fatalf("sign in: %d", code)
	}
	s.csrf = out.CSRFToken
	return s
}

func (s *session) call(method, path string, in, out any) int {
	s.t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(method, s.base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", s.csrf)
	res, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	if out != nil {
		json.NewDecoder(res.Body).Decode(out)
	}
	return res.StatusCode
}

// TestLoginReplacesAResetPassword: after an administrator's reset, the
// sign-in sets the user's own password (from the second line of stdin in a
// script); without a new one it says how to give it.
func TestLoginReplacesAResetPassword(t *testing.T) {
	s := startServer(t, "")
	pw := "correct horse battery staple 42!"
	if _, e, code := runIn(t, s.env(), pw+"\n", "users", "create", "dave", "--role", "security", "--password-stdin"); code != 0 {
		t.Fatalf("users create: %d %s", code, e)
	}
	temp := "temporary passphrase from the admin 9"
	if _, e, code := runIn(t, s.env(), temp+"\n", "users", "reset-password", "dave", "--password-stdin"); code != 0 {
		t.Fatalf("reset-password: %d %s", code, e)
	}
	env := []string{"GATEHOUSE_ADDR=" + s.admin, "GATEHOUSE_TOKEN=", "GATEHOUSE_CONFIG_DIR=" + t.TempDir()}

	_, e, code := runIn(t, env, temp+"\n", "login", "--username", "dave", "--password-stdin")
	if code != 1 || !strings.Contains(e, "password expired") || !strings.Contains(e, "--new-password-stdin") {
		t.Fatalf("login with the reset password and no new one: exit %d %q", code, e)
	}
	_, e, code = runIn(t, env, temp+"\n", "login", "--username", "dave", "--new-password-stdin")
	if code != 2 || !strings.Contains(e, "--password-stdin") {
		t.Errorf("--new-password-stdin alone: exit %d %q", code, e)
	}
	_, e, code = runIn(t, env, temp+"\nweak\n", "login", "--username", "dave", "--password-stdin", "--new-password-stdin", "--json")
	if code != 1 || decodeJSONError(t, e).Error.Code != "invalid" {
		t.Errorf("a new password the policy refuses: exit %d %q", code, e)
	}
	next := "a passphrase he chose all by himself 31"
	out, e, code := runIn(t, env, temp+"\n"+next+"\n", "login", "--username", "dave", "--password-stdin", "--new-password-stdin", "--json")
	var res struct {
		Username string `json:"username"`
		Role     string `json:"role"`
		TokenID  string `json:"token_id"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Username != "dave" || res.Role != "security" || res.TokenID == "" {
		t.Fatalf("login with a new password: exit %d %q %q", code, out, e)
	}
	if _, e, code := runIn(t, env, next+"\n", "login", "--username", "dave", "--password-stdin"); code != 0 {
		t.Errorf("the new password does not work: %d %q", code, e)
	}
	if _, _, code := runIn(t, env, temp+"\n", "login", "--username", "dave", "--password-stdin"); code != 1 {
		t.Errorf("the temporary password still works: %d", code)
	}
}

// TestLoginWithTOTP: an account with a second factor signs in with
// --totp; without it, or with a used code, the sign-in is refused (exit 1).
func TestLoginWithTOTP(t *testing.T) {
	s := startServer(t, "")
	pw := "correct horse battery staple 42!"
	if _, e, code := runIn(t, s.env(), pw+"\n", "users", "create", "erin", "--role", "admin", "--password-stdin"); code != 0 {
		t.Fatalf("users create: %d %s", code, e)
	}
	se := signIn(t, s.admin, map[string]any{"username": "erin", "password": pw})
	var enr struct{ Secret string }
	if code := se.call("POST", "/v1/me/totp", map[string]any{"current_password": pw}, &enr); code != 200 {
		t.Fatalf("enrol: %d", code)
	}
	now := time.Now()
	first, _ := totp.Code(enr.Secret, now)
	if code := se.call("POST", "/v1/me/totp/verify", map[string]any{"code": first}, nil); code != 204 {
		t.Fatalf("confirm: %d", code)
	}
	env := []string{"GATEHOUSE_ADDR=" + s.admin, "GATEHOUSE_TOKEN=", "GATEHOUSE_CONFIG_DIR=" + t.TempDir()}
	_, e, code := runIn(t, env, pw+"\n", "login", "--username", "erin", "--password-stdin")
	if code != 1 || !strings.Contains(e, "one-time code") {
		t.Fatalf("login without a code: exit %d %q", code, e)
	}
	_, e, code = runIn(t, env, pw+"\n", "login", "--username", "erin", "--password-stdin", "--totp", first)
	if code != 1 {
		t.Fatalf("login with the used code: exit %d %q", code, e)
	}
	// The next step's code is within the accepted skew and not used yet.
	code2, _ := totp.Code(enr.Secret, now.Add(totp.Period))
	out, e, code := runIn(t, env, pw+"\n", "login", "--username", "erin", "--password-stdin", "--totp", code2)
	if code != 0 || !strings.Contains(out, "Signed in as erin (admin)") {
		t.Fatalf("login with a fresh code: exit %d %q %q", code, out, e)
	}
	if out, e, code := runIn(t, env, "", "users", "get", "erin", "--json"); code != 0 || !strings.Contains(out, `"totp_enabled": true`) {
		t.Errorf("the stored token does not work: %d %q %q", code, out, e)
	}
}

// TestUsersLastSignIn: `users list` and `users get` show each user's last
// complete sign-in, "never" before the first; `gatehouse login` is one.
func TestUsersLastSignIn(t *testing.T) {
	s := startServer(t, "")
	pw := "correct horse battery staple 42!"
	if _, e, code := runIn(t, s.env(), pw+"\n", "users", "create", "frank", "--role", "auditor", "--password-stdin"); code != 0 {
		t.Fatalf("users create: %d %s", code, e)
	}
	row := func() []string {
		t.Helper()
		out, e, code := run(t, s.env(), "users", "list")
		if code != 0 {
			t.Fatalf("users list: %d %s", code, e)
		}
		lines := strings.Split(out, "\n")
		if !strings.Contains(lines[0], "LAST SIGN-IN") {
			t.Fatalf("users list header: %q", lines[0])
		}
		for _, l := range lines[1:] {
			if f := strings.Fields(l); len(f) > 4 && f[0] == "frank" {
				return f
			}
		}
		t.Fatalf("no frank in %s", out)
		return nil
	}
	if f := row(); f[4] != "never" {
		t.Fatalf("LAST SIGN-IN before any sign-in: %q", f[4])
	}
	env := []string{"GATEHOUSE_ADDR=" + s.admin, "GATEHOUSE_TOKEN=", "GATEHOUSE_CONFIG_DIR=" + t.TempDir()}
	before := time.Now().Add(-time.Second)
	if _, e, code := runIn(t, env, pw+"\n", "login", "--username", "frank", "--password-stdin"); code != 0 {
		t.Fatalf("login: %d %s", code, e)
	}
	at, err := time.Parse(time.RFC3339, row()[4])
	if err != nil || at.Before(before.Truncate(time.Second)) || at.After(time.Now().Add(time.Second)) {
		t.Fatalf("LAST SIGN-IN after login: %v %v", at, err)
	}
	out, e, code := run(t, s.env(), "users", "get", "frank")
	if code != 0 || !strings.Contains(out, "Last sign-in") || !strings.Contains(out, at.Format(time.RFC3339)) {
		t.Fatalf("users get: %d %q %q", code, out, e)
	}
}
