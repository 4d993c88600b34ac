package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/totp"
)

const alicePW = "correct horse battery staple 42!"

// person is a browser-like client of the admin API: cookies and CSRF.
type person struct {
	h      *harness
	client *http.Client
	csrf   string
}

func (h *harness) createUser(name, role string, scopes ...string) {
	h.t.Helper()
	var e errorOut
	if code := h.adminCall("POST", "/v1/users", map[string]any{"username": name, "role": role, "scopes": scopes, "password": alicePW}, &e); code != 201 {
		h.t.Fatalf("create user %s: %d %s", name, code, e.Error.Message)
	}
}

func (h *harness) newPerson() *person {
	jar, _ := cookiejar.New(nil)
	return &person{h: h, client: &http.Client{Jar: jar, Transport: h.transport()}}
}

// call sends JSON to the admin API with the session cookie (and the CSRF
// token when csrf is true) and decodes the answer.
func (p *person) call(method, path string, body any, csrf bool, out any) int {
	p.h.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, p.h.admin+path, r)
	req.Header.Set("Content-Type", "application/json")
	if csrf {
		req.Header.Set("X-CSRF-Token", p.csrf)
	}
	res, err := p.client.Do(req)
	if err != nil {
		p.h.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if out != nil {
		json.Unmarshal(data, out)
	}
	return res.StatusCode
}

func (p *person) login(user, pw string, extra map[string]any) (int, errorOut) {
	body := map[string]any{"username": user, "password": pw}
	for k, v := range extra {
		body[k] = v
	}
	var out struct {
		CSRFToken string `json:"csrf_token"`
		errorOut
	}
	code := p.call("POST", "/v1/session", body, false, &out)
	p.csrf = out.CSRFToken
	return code, out.errorOut
}

func TestPasswordPolicyRules(t *testing.T) {
	h := MustStart(t)
	tests := []struct{ pw, want string }{
		{"short1!", "too short"},
		{"alice-alice-alice-2024", "username"},
		{"password1234", "common"},
		{"aaaaaaaaaaaaaaaa", "guessable"},
	}
	for _, tt := range tests {
		var e errorOut
		code := h.adminCall("POST", "/v1/users", map[string]any{"username": "alice", "role": "admin", "password": tt.pw}, &e)
		if code != 400 || !strings.Contains(e.Error.Message, tt.want) {
			t.Errorf("password %q: %d %q, want 400 naming %q", tt.pw, code, e.Error.Message, tt.want)
		}
	}
	h.createUser("alice", "admin")
	// History: not one of the last 5.
	p := h.newPerson()
	if code, _ := p.login("alice", alicePW, nil); code != 200 {
		t.Fatalf("login: %d", code)
	}
	var e errorOut
	if code := p.call("POST", "/v1/me/password", map[string]any{"current_password": alicePW, "new_password": alicePW}, true, &e); code != 400 || !strings.Contains(e.Error.Message, "last") {
		t.Errorf("reuse of the current password: %d %q", code, e.Error.Message)
	}
}

func TestSessionsAndCSRF(t *testing.T) {
	h := MustStart(t)
	h.createUser("alice", "admin", "read:signals")
	p := h.newPerson()
	if code, e := p.login("alice", alicePW, nil); code != 200 || p.csrf == "" {
		t.Fatalf("login: %d %s", code, e.Error.Message)
	}
	var me struct{ Username, Role string }
	if code := p.call("GET", "/v1/me", nil, false, &me); code != 200 || me.Username != "alice" || me.Role != "admin" {
		t.Fatalf("me: %d %+v", code, me)
	}
	if code := p.call("POST", "/v1/keys", map[string]any{"name": "k", "scopes": []string{"x"}}, false, nil); code != 403 {
		t.Fatalf("cookie change without CSRF token: %d, want 403", code)
	}
	if code := p.call("POST", "/v1/keys", map[string]any{"name": "k", "scopes": []string{"x"}}, true, nil); code != 201 {
		t.Fatalf("cookie change with CSRF token: %d", code)
	}
	// Idle timeout (30m).
	h.clock.Advance(31 * time.Minute)
	if code := p.call("GET", "/v1/me", nil, false, nil); code != 401 {
		t.Fatalf("after 31 idle minutes: %d, want 401", code)
	}
	// Absolute timeout (12h), however active.
	p.login("alice", alicePW, nil)
	for i := 0; i < 24; i++ {
		h.clock.Advance(29 * time.Minute)
		if code := p.call("GET", "/v1/me", nil, false, nil); code != 200 {
			t.Fatalf("active session at %d: %d", i, code)
		}
	}
	h.clock.Advance(29 * time.Minute)
	if code := p.call("GET", "/v1/me", nil, false, nil); code != 401 {
		t.Fatalf("after 12h: %d, want 401", code)
	}
	// Sign out.
	p.login("alice", alicePW, nil)
	if code := p.call("DELETE", "/v1/session", nil, true, nil); code != 204 {
		t.Fatalf("sign out: %d", code)
	}
	if code := p.call("GET", "/v1/me", nil, false, nil); code != 401 {
		t.Fatalf("after sign out: %d", code)
	}
}

func TestLockoutAndNoEnumeration(t *testing.T) {
	h := MustStart(t)
	h.createUser("alice", "admin")
	p := h.newPerson()
	var known, unknown []time.Duration
	for i := 0; i < 5; i++ {
		start := time.Now()
		c1, e1 := p.login("alice", "wrong password "+string(rune('a'+i)), nil)
		known = append(known, time.Since(start))
		start = time.Now()
		c2, e2 := p.login("nobody", "wrong password", nil)
		unknown = append(unknown, time.Since(start))
		if c1 != 401 || c2 != 401 || e1.Error.Message != e2.Error.Message {
			t.Fatalf("attempt %d: known %d %q, unknown %d %q", i, c1, e1.Error.Message, c2, e2.Error.Message)
		}
	}
	if code, _ := p.login("alice", alicePW, nil); code != 401 {
		t.Fatalf("locked account accepted the right password: %d", code)
	}
	var sk, su time.Duration
	for i := range known {
		sk, su = sk+known[i], su+unknown[i]
	}
	// Both paths run one argon2id verification (the unknown name against
	// a dummy hash); one that skipped it would answer ~100 times faster.
	// The bound catches that, not scheduling noise on a loaded machine.
	if ratio := float64(sk) / float64(su); ratio < 0.2 || ratio > 5 {
		t.Errorf("known/unknown username timing ratio %.2f (known %v, unknown %v): reveals existence", ratio, sk, su)
	}
	h.clock.Advance(16 * time.Minute)
	if code, _ := p.login("alice", alicePW, nil); code != 200 {
		t.Fatalf("after the lockout: %d", code)
	}
}

func TestExpiredPasswordForcesChange(t *testing.T) {
	h := MustStart(t)
	h.createUser("alice", "admin")
	h.clock.Advance(91 * 24 * time.Hour)
	p := h.newPerson()
	code, e := p.login("alice", alicePW, nil)
	if code != 403 || !strings.Contains(e.Error.Message, "expired") {
		t.Fatalf("expired password: %d %q", code, e.Error.Message)
	}
	if code, e := p.login("alice", alicePW, map[string]any{"new_password": "a whole new passphrase 77"}); code != 200 {
		t.Fatalf("change at sign-in: %d %q", code, e.Error.Message)
	}
	if code, _ := h.newPerson().login("alice", "a whole new passphrase 77", nil); code != 200 {
		t.Fatal("new password does not work")
	}
}

func TestPATsAndDisabledUsers(t *testing.T) {
	h := MustStart(t)
	h.createUser("alice", "security", "read:signals", "write:signals")
	p := h.newPerson()
	p.login("alice", alicePW, nil)
	var tok struct {
		ID, Token string
	}
	if code := p.call("POST", "/v1/tokens", map[string]any{"name": "x", "scopes": []string{"admin"}}, true, nil); code != 403 {
		t.Fatalf("PAT with a scope the user lacks: %d, want 403", code)
	}
	if code := p.call("POST", "/v1/tokens", map[string]any{"name": "x", "role": "admin"}, true, nil); code != 403 {
		t.Fatalf("PAT with a role above the user's: %d, want 403", code)
	}
	if code := p.call("POST", "/v1/tokens", map[string]any{"name": "x", "scopes": []string{"read:signals"}, "role": "security", "expires_in": "2y"}, true, nil); code != 400 {
		t.Fatalf("PAT beyond a year: %d, want 400", code)
	}
	if code := p.call("POST", "/v1/tokens", map[string]any{"name": "x", "scopes": []string{"read:signals"}, "role": "security"}, true, &tok); code != 201 || !strings.HasPrefix(tok.Token, "gpat_") {
		t.Fatalf("create PAT: %d %+v", code, tok)
	}
	// At the gateway, with exactly its scopes.
	if res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+tok.Token); res.StatusCode != 200 {
		t.Fatalf("PAT at the gateway: %d", res.StatusCode)
	}
	if res := h.do("POST", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+tok.Token); res.StatusCode != 403 {
		t.Fatalf("PAT used beyond its scopes: %d", res.StatusCode)
	}
	// On the admin API, with its role: security may list keys, not users.
	if res := h.do("GET", h.admin+"/v1/keys", nil, "Authorization: Bearer "+tok.Token); res.StatusCode != 200 {
		t.Fatalf("PAT on the admin API: %d", res.StatusCode)
	}
	if res := h.do("GET", h.admin+"/v1/users", nil, "Authorization: Bearer "+tok.Token); res.StatusCode != 403 {
		t.Fatalf("security role listing users: %d, want 403", res.StatusCode)
	}
	// Disabling alice ends her session and PAT on the next request.
	if code := h.adminCall("POST", "/v1/users/alice/disable", nil, nil); code != 200 {
		t.Fatalf("disable: %d", code)
	}
	if res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+tok.Token); res.StatusCode != 401 {
		t.Fatalf("disabled user's PAT at the gateway: %d", res.StatusCode)
	}
	if code := p.call("GET", "/v1/me", nil, false, nil); code != 401 {
		t.Fatalf("disabled user's session: %d", code)
	}
}

func TestRolesOnAdminAPI(t *testing.T) {
	h := MustStart(t)
	h.createUser("carol", "auditor")
	basic := func(method, path string) int {
		req, _ := http.NewRequest(method, h.admin+path, strings.NewReader(`{"name":"k","scopes":["x"]}`))
		req.SetBasicAuth("carol", alicePW)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := basic("GET", "/v1/settings/authentication"); code != 200 {
		t.Errorf("auditor reads settings over Basic: %d", code)
	}
	if code := basic("POST", "/v1/keys"); code != 403 {
		t.Errorf("auditor creates a key: %d, want 403", code)
	}
	if code := basic("GET", "/v1/keys"); code != 403 {
		t.Errorf("auditor lists keys: %d, want 403", code)
	}
	// Basic switched off in settings.
	var s map[string]any
	h.adminCall("GET", "/v1/settings/authentication", nil, &s)
	s["basic_auth"] = false
	if code := h.adminCall("PUT", "/v1/settings/authentication", s, nil); code != 200 {
		t.Fatalf("switch Basic off: %d", code)
	}
	if code := basic("GET", "/v1/settings/authentication"); code != 401 {
		t.Errorf("Basic after switching it off: %d, want 401", code)
	}
}

func TestAuthSettingsValidation(t *testing.T) {
	h := MustStart(t)
	var s map[string]any
	h.adminCall("GET", "/v1/settings/authentication", nil, &s)
	pol := s["password_policy"].(map[string]any)
	pol["min_length"] = 7
	var e errorOut
	if code := h.adminCall("PUT", "/v1/settings/authentication", s, &e); code != 400 || !strings.Contains(e.Error.Message, "min_length") || !strings.Contains(e.Error.Message, "8") {
		t.Fatalf("min_length 7: %d %q", code, e.Error.Message)
	}
}

func TestTOTP(t *testing.T) {
	h := MustStart(t)
	h.createUser("alice", "admin")
	// Require a second factor for admins.
	var s map[string]any
	h.adminCall("GET", "/v1/settings/authentication", nil, &s)
	s["totp_required_roles"] = []string{"admin"}
	if code := h.adminCall("PUT", "/v1/settings/authentication", s, nil); code != 200 {
		t.Fatal("require TOTP")
	}
	p := h.newPerson()
	var sess struct{ Restricted string }
	p.call("POST", "/v1/session", map[string]any{"username": "alice", "password": alicePW}, false, &sess)
	if sess.Restricted != "totp_enrollment" {
		t.Fatalf("session of an admin without TOTP: restricted %q", sess.Restricted)
	}
	p.login("alice", alicePW, nil)
	if code := p.call("GET", "/v1/keys", nil, false, nil); code != 403 {
		t.Fatalf("restricted session used the API: %d", code)
	}
	var enr struct {
		Secret     string `json:"secret"`
		OtpauthURI string `json:"otpauth_uri"`
	}
	if code := p.call("POST", "/v1/me/totp", map[string]any{"current_password": alicePW}, true, &enr); code != 200 || !strings.HasPrefix(enr.OtpauthURI, "otpauth://totp/") {
		t.Fatalf("enrol: %d %+v", code, enr)
	}
	code, _ := totp.Code(enr.Secret, h.clock.Now())
	// The restricted session is replaced by a full one (see
	// TestEnrolmentLiftsRestrictedSession).
	if c := p.call("POST", "/v1/me/totp/verify", map[string]any{"code": code}, true, nil); c != 200 {
		t.Fatalf("confirm: %d", c)
	}
	if c := p.call("GET", "/v1/keys", nil, false, nil); c != 200 {
		t.Fatalf("GET /v1/keys after confirming: %d", c)
	}
	h.clock.Advance(30 * time.Second)
	q := h.newPerson()
	if c, e := q.login("alice", alicePW, nil); c != 401 || !strings.Contains(e.Error.Message, "totp_code") {
		t.Fatalf("login without a code: %d %q", c, e.Error.Message)
	}
	code, _ = totp.Code(enr.Secret, h.clock.Now())
	if c, _ := q.login("alice", alicePW, map[string]any{"totp_code": code}); c != 200 {
		t.Fatalf("login with a code: %d", c)
	}
	if c, _ := h.newPerson().login("alice", alicePW, map[string]any{"totp_code": code}); c != 401 {
		t.Fatalf("replayed code: %d, want 401", c)
	}
	if code := q.call("GET", "/v1/keys", nil, false, nil); code != 200 {
		t.Fatalf("full session after TOTP: %d", code)
	}
}

// auditEvents queries the audit log through the admin API.
func (h *harness) auditEvents(typ string) []map[string]any {
	h.t.Helper()
	var page struct {
		Entries []struct {
			Event map[string]any `json:"event"`
		} `json:"entries"`
	}
	if code := h.adminCall("GET", "/v1/audit?limit=1000&type="+typ, nil, &page); code != 200 {
		h.t.Fatalf("GET /v1/audit: %d", code)
	}
	var out []map[string]any
	for _, e := range page.Entries {
		out = append(out, e.Event)
	}
	return out
}

func TestPeopleEventsAreAudited(t *testing.T) {
	h := MustStart(t)
	h.createUser("alice", "admin")
	p := h.newPerson()
	for i := 0; i < 5; i++ {
		p.login("alice", "wrong password", nil)
	}
	h.clock.Advance(16 * time.Minute)
	p.login("alice", alicePW, nil)
	h.auditEvents("admin.read") // this query is itself a read
	if reads := h.auditEvents("admin.read"); len(reads) == 0 || reads[0]["resource"] != "/v1/audit" || reads[0]["actor"].(map[string]any)["kind"] != "admin_token" {
		t.Errorf("admin reads not audited with who and what: %v", reads)
	}
	for typ, want := range map[string]int{"admin.login.failure": 5, "admin.login.lockout": 1, "admin.login.success": 1, "admin.user.create": 1} {
		if got := len(h.auditEvents(typ)); got != want {
			t.Errorf("%s events: %d, want %d", typ, got, want)
		}
	}
	var s map[string]any
	h.adminCall("GET", "/v1/settings/authentication", nil, &s)
	s["basic_auth"] = false
	if code := p.call("PUT", "/v1/settings/authentication", s, true, nil); code != 200 {
		t.Fatalf("change settings: %d", code)
	}
	ev := h.auditEvents("admin.settings.change")
	if len(ev) != 1 {
		t.Fatalf("settings change events: %d", len(ev))
	}
	d := ev[0]["details"].(map[string]any)
	actor := ev[0]["actor"].(map[string]any)
	if d["old"].(map[string]any)["basic_auth"] != true || d["new"].(map[string]any)["basic_auth"] != false || actor["id"] != "alice" || actor["kind"] != "user" {
		t.Errorf("settings change event: actor %v details %v", actor, d)
	}
}
