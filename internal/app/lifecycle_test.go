package app_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestUserLifecycle: enable, set-role and delete, with their audit events
// and what each does to the account's access.
func TestUserLifecycle(t *testing.T) {
	h := MustStart(t)
	h.createUser("alice", "admin")
	h.createUser("bob", "admin", "read:signals")
	alice := h.newPerson()
	if code, e := alice.login("alice", alicePW, nil); code != 200 {
		t.Fatalf("alice signs in: %d %s", code, e.Error.Message)
	}
	bob := h.newPerson()
	bob.login("bob", alicePW, nil)
	var tok struct{ ID, Token string }
	if code := bob.call("POST", "/v1/tokens", map[string]any{"name": "bob's", "role": "admin"}, true, &tok); code != 201 {
		t.Fatalf("bob's token: %d", code)
	}

	// Demotion: bob's admin token and sessions go at once.
	var u struct{ Role, Status string }
	if code := alice.call("PUT", "/v1/users/bob/role", map[string]any{"role": "auditor"}, true, &u); code != 200 || u.Role != "auditor" {
		t.Fatalf("demote bob: %d %+v", code, u)
	}
	if res := h.do("GET", h.admin+"/v1/users", nil, "Authorization: Bearer "+tok.Token); res.StatusCode != 401 {
		t.Errorf("demoted user's admin token on the admin API: %d, want 401", res.StatusCode)
	}
	if code := bob.call("GET", "/v1/me", nil, false, nil); code != 401 {
		t.Errorf("demoted user's session: %d, want 401", code)
	}
	if ev := h.auditEvents("admin.user.role_change"); len(ev) != 1 || ev[0]["details"].(map[string]any)["old"] != "admin" || ev[0]["details"].(map[string]any)["new"] != "auditor" {
		t.Errorf("role change events: %v", ev)
	}
	if ev := h.auditEvents("admin.token.revoke"); len(ev) != 1 || ev[0]["details"].(map[string]any)["because"] != "user.role_change" {
		t.Errorf("token revocation on demotion: %v", ev)
	}

	// Disable and enable.
	if code := alice.call("POST", "/v1/users/bob/disable", nil, true, nil); code != 200 {
		t.Fatalf("disable bob: %d", code)
	}
	if code := alice.call("POST", "/v1/users/bob/enable", nil, true, &u); code != 200 || u.Status != "active" {
		t.Fatalf("enable bob: %d %+v", code, u)
	}
	if code, _ := h.newPerson().login("bob", alicePW, nil); code != 200 {
		t.Errorf("enabled user cannot sign in: %d", code)
	}
	if len(h.auditEvents("admin.user.enable")) != 1 {
		t.Error("enable not audited")
	}

	// Delete: gone, sign-in refused like any unknown name, name free again.
	if code := alice.call("DELETE", "/v1/users/bob", nil, true, nil); code != 204 {
		t.Fatalf("delete bob: %d", code)
	}
	if code := h.adminCall("GET", "/v1/users/bob", nil, nil); code != 404 {
		t.Errorf("deleted user: %d, want 404", code)
	}
	if code, e := h.newPerson().login("bob", alicePW, nil); code != 401 || !strings.Contains(e.Error.Message, "invalid username or password") {
		t.Errorf("deleted user signs in: %d %q", code, e.Error.Message)
	}
	if ev := h.auditEvents("admin.user.delete"); len(ev) != 1 || ev[0]["actor"].(map[string]any)["id"] != "alice" {
		t.Errorf("delete events: %v", ev)
	}
	h.createUser("bob", "auditor")
}

// TestUserLifecycleAbuse: the new endpoints keep the privilege ceilings
// and the roles: nobody makes an admin but an admin signed in as a person
// (or the bootstrap token), nobody gains by deleting or enabling, and the
// last admin stays.
func TestUserLifecycleAbuse(t *testing.T) {
	h := MustStart(t)
	h.createUser("alice", "admin")
	h.createUser("sec", "security", "read:signals")
	h.createUser("aud", "auditor")
	sec := h.newPerson()
	sec.login("sec", alicePW, nil)
	alice := h.newPerson()
	alice.login("alice", alicePW, nil)

	// Another role cannot touch accounts at all, its own included.
	for _, c := range []struct{ method, path string }{
		{"PUT", "/v1/users/sec/role"}, {"PUT", "/v1/users/aud/role"}, {"POST", "/v1/users/aud/enable"}, {"DELETE", "/v1/users/aud"}, {"DELETE", "/v1/users/alice"},
	} {
		if code := sec.call(c.method, c.path, map[string]any{"role": "admin"}, true, nil); code != 403 {
			t.Errorf("security %s %s: %d, want 403", c.method, c.path, code)
		}
	}
	// A session without its CSRF token is refused.
	if code := alice.call("PUT", "/v1/users/aud/role", map[string]any{"role": "admin"}, false, nil); code != 403 {
		t.Errorf("role change without CSRF: %d, want 403", code)
	}
	// Machine credentials with role admin cannot grant: an admin key and
	// an admin's personal access token.
	key := h.createKey(map[string]any{"name": "ops", "scopes": []string{"admin"}})
	var tok struct{ Token string }
	if code := alice.call("POST", "/v1/tokens", map[string]any{"name": "t", "role": "admin"}, true, &tok); code != 201 {
		t.Fatalf("alice's token: %d", code)
	}
	for name, cred := range map[string]string{"admin key": key.Key, "admin's token": tok.Token} {
		for _, c := range []struct{ method, path, body string }{
			{"PUT", "/v1/users/aud/role", `{"role":"admin"}`}, {"POST", "/v1/users/aud/enable", ""}, {"DELETE", "/v1/users/aud", ""},
		} {
			res := h.do(c.method, h.admin+c.path, strings.NewReader(c.body), "Authorization: Bearer "+cred, "Content-Type: application/json")
			if res.StatusCode != 403 {
				t.Errorf("%s %s %s: %d, want 403", name, c.method, c.path, res.StatusCode)
			}
		}
	}
	var got struct{ Role string }
	h.adminCall("GET", "/v1/users/aud", nil, &got)
	if got.Role != "auditor" {
		t.Fatalf("aud became %s", got.Role)
	}
	if ev := h.auditEvents("admin.access.denied"); len(ev) < 5 {
		t.Errorf("refusals audited: %d events", len(ev))
	}

	// The last enabled admin can be neither demoted, disabled nor deleted,
	// by themselves or the bootstrap token; nobody deletes themselves.
	var e errorOut
	if code := alice.call("PUT", "/v1/users/alice/role", map[string]any{"role": "security"}, true, &e); code != 409 || !strings.Contains(e.Error.Message, "last enabled admin") {
		t.Errorf("last admin demotes themselves: %d %q", code, e.Error.Message)
	}
	if code := h.adminCall("DELETE", "/v1/users/alice", nil, &e); code != 409 {
		t.Errorf("bootstrap token deletes the last admin: %d", code)
	}
	if code := h.adminCall("PUT", "/v1/users/alice/role", map[string]any{"role": "auditor"}, &e); code != 409 {
		t.Errorf("bootstrap token demotes the last admin: %d", code)
	}
	if code := h.adminCall("POST", "/v1/users/alice/disable", nil, &e); code != 409 || e.Error.Code != "conflict" || !strings.Contains(e.Error.Message, "alice is the last enabled admin") {
		t.Errorf("bootstrap token disables the last admin: %d %+v", code, e.Error)
	}
	if code := alice.call("POST", "/v1/users/alice/disable", nil, true, &e); code != 409 {
		t.Errorf("last admin disables themselves: %d %q", code, e.Error.Message)
	}
	if code := alice.call("DELETE", "/v1/users/alice", nil, true, &e); code != 403 {
		t.Errorf("alice deletes herself: %d %q", code, e.Error.Message)
	}
	// A disabled admin does not count as the other admin.
	h.createUser("zed", "admin")
	h.adminCall("POST", "/v1/users/zed/disable", nil, nil)
	if code := h.adminCall("DELETE", "/v1/users/alice", nil, nil); code != 409 {
		t.Errorf("last enabled admin deleted while another is disabled: %d", code)
	}
	// With a second enabled admin both become possible.
	h.adminCall("POST", "/v1/users/zed/enable", nil, nil)
	if code := alice.call("PUT", "/v1/users/zed/role", map[string]any{"role": "auditor"}, true, nil); code != 200 {
		t.Errorf("demote another admin: %d", code)
	}
	if code := h.adminCall("PUT", "/v1/users/zed/role", map[string]any{"role": "admin"}, nil); code != 200 {
		t.Errorf("bootstrap token makes an admin: %d", code)
	}
	if code := alice.call("PUT", "/v1/users/alice/role", map[string]any{"role": "security"}, true, nil); code != 200 {
		t.Errorf("demote oneself with another admin left: %d", code)
	}
	// Bad input: an unknown role, an unknown field, an unknown user.
	for _, body := range []string{`{"role":"root"}`, `{"role":"auditor","x":1}`, `[]`} {
		res := h.do("PUT", h.admin+"/v1/users/aud/role", strings.NewReader(body), "Authorization: Bearer "+adminToken, "Content-Type: application/json")
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("role body %s: %d, want 400", body, res.StatusCode)
		}
		decodeError(t, res)
	}
	if code := h.adminCall("DELETE", "/v1/users/nobody", nil, nil); code != 404 {
		t.Errorf("delete unknown user: %d", code)
	}
}
