package app_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/totp"
)

// sessionID is the session cookie p holds for the admin listener, "" if
// none.
func (p *person) sessionID() string {
	u, _ := url.Parse(p.h.admin)
	for _, c := range p.client.Jar.Cookies(u) {
		if c.Name == "gatehouse_session" {
			return c.Value
		}
	}
	return ""
}

// withSession is a person holding the session id (and CSRF token) given,
// as an attacker who copied them would.
func (h *harness) withSession(id, csrf string) *person {
	q := h.newPerson()
	u, _ := url.Parse(h.admin)
	q.client.Jar.SetCookies(u, []*http.Cookie{{Name: "gatehouse_session", Value: id, Path: "/"}})
	q.csrf = csrf
	return q
}

type userSignIn struct {
	Username     string     `json:"username"`
	LastSignInAt *time.Time `json:"last_sign_in_at"`
}

// lastSignIn is the user's last_sign_in_at in GET /v1/users/NAME and in
// the GET /v1/users listing (which must agree).
func (h *harness) lastSignIn(name string) *time.Time {
	h.t.Helper()
	var one userSignIn
	if code := h.adminCall("GET", "/v1/users/"+name, nil, &one); code != 200 {
		h.t.Fatalf("GET /v1/users/%s: %d", name, code)
	}
	var list struct{ Users []userSignIn }
	if code := h.adminCall("GET", "/v1/users?name="+name, nil, &list); code != 200 {
		h.t.Fatalf("GET /v1/users: %d", code)
	}
	for _, u := range list.Users {
		if u.Username == name && !equalTimes(u.LastSignInAt, one.LastSignInAt) {
			h.t.Fatalf("last_sign_in_at of %s: %v listed, %v alone", name, u.LastSignInAt, one.LastSignInAt)
		}
	}
	return one.LastSignInAt
}

func equalTimes(a, b *time.Time) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Equal(*b)
}

// TestLastSignIn: GET /v1/users and /v1/users/NAME show when each user
// last completed a sign-in: a session sign-in and HTTP Basic count; a
// wrong password, a missing code and a session restricted to enrolling a
// second factor do not (until the enrolment is confirmed).
func TestLastSignIn(t *testing.T) {
	h := MustStart(t)
	h.createUser("alice", "admin")
	h.createUser("bob", "security")
	h.createUser("carol", "auditor")
	if at := h.lastSignIn("alice"); at != nil {
		t.Fatalf("alice has never signed in, last_sign_in_at %v", at)
	}
	h.clock.Advance(time.Minute)
	if code, e := h.newPerson().login("alice", alicePW, nil); code != 200 {
		t.Fatalf("sign in: %d %s", code, e.Error.Message)
	}
	first := h.clock.Now()
	if at := h.lastSignIn("alice"); at == nil || !at.Equal(first) {
		t.Fatalf("after a sign-in: last_sign_in_at %v, want %v", at, first)
	}

	// Failures leave it as it was.
	h.clock.Advance(time.Minute)
	if code, _ := h.newPerson().login("alice", "wrong password 1234567", nil); code != 401 {
		t.Fatalf("wrong password: %d", code)
	}
	if at := h.lastSignIn("alice"); at == nil || !at.Equal(first) {
		t.Fatalf("after a wrong password: last_sign_in_at %v, want %v", at, first)
	}
	enrolled := h.clock.Now() // enrolTOTP signs in, then steps the clock
	secret := h.newPerson().enrolTOTP("alice")
	if code, _ := h.newPerson().login("alice", alicePW, nil); code != 401 {
		t.Fatalf("no code: %d", code)
	}
	if at := h.lastSignIn("alice"); at == nil || !at.Equal(enrolled) {
		t.Fatalf("after a missing code: last_sign_in_at %v, want %v", at, enrolled)
	}
	h.clock.Advance(time.Minute)
	code, _ := totp.Code(secret, h.clock.Now())
	if c, e := h.newPerson().login("alice", alicePW, map[string]any{"totp_code": code}); c != 200 {
		t.Fatalf("sign in with a code: %d %s", c, e.Error.Message)
	}
	if at := h.lastSignIn("alice"); at == nil || !at.Equal(h.clock.Now()) {
		t.Fatalf("after a sign-in with a code: last_sign_in_at %v, want %v", at, h.clock.Now())
	}

	// HTTP Basic is a sign-in on every request.
	var s map[string]any
	h.adminCall("GET", "/v1/settings/authentication", nil, &s)
	s["basic_auth"] = true
	s["totp_required_roles"] = []string{"security"}
	if code := h.adminCall("PUT", "/v1/settings/authentication", s, nil); code != 200 {
		t.Fatalf("settings: %d", code)
	}
	h.clock.Advance(time.Minute)
	req, _ := http.NewRequest("GET", h.admin+"/v1/me", nil)
	req.SetBasicAuth("carol", alicePW)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("Basic: %d", res.StatusCode)
	}
	if at := h.lastSignIn("carol"); at == nil || !at.Equal(h.clock.Now()) {
		t.Fatalf("after Basic: last_sign_in_at %v, want %v", at, h.clock.Now())
	}

	// bob's role needs a second factor he lacks: his sign-in is not
	// complete until he confirms one.
	p := h.newPerson()
	if c, e := p.login("bob", alicePW, nil); c != 200 {
		t.Fatalf("bob signs in: %d %s", c, e.Error.Message)
	}
	if at := h.lastSignIn("bob"); at != nil {
		t.Fatalf("restricted session: last_sign_in_at %v, want none", at)
	}
	var enr struct{ Secret string }
	if c := p.call("POST", "/v1/me/totp", map[string]any{"current_password": alicePW}, true, &enr); c != 200 {
		t.Fatalf("enrol: %d", c)
	}
	h.clock.Advance(time.Minute)
	code, _ = totp.Code(enr.Secret, h.clock.Now())
	if c := p.call("POST", "/v1/me/totp/verify", map[string]any{"code": code}, true, nil); c != 200 {
		t.Fatalf("confirm: %d", c)
	}
	if at := h.lastSignIn("bob"); at == nil || !at.Equal(h.clock.Now()) {
		t.Fatalf("after confirming: last_sign_in_at %v, want %v", at, h.clock.Now())
	}
}

// TestEnrolmentLiftsRestrictedSession: a session restricted to enrolling
// a second factor may do nothing else; a wrong code does not lift it; the
// confirmed enrolment replaces it with a full session under a new id and
// CSRF token, and the old id (and any other session made without the
// factor) is refused from then on.
func TestEnrolmentLiftsRestrictedSession(t *testing.T) {
	h := MustStart(t)
	h.createUser("alice", "admin")
	h.createUser("bob", "security")
	var s map[string]any
	h.adminCall("GET", "/v1/settings/authentication", nil, &s)
	s["totp_required_roles"] = []string{"security"}
	if code := h.adminCall("PUT", "/v1/settings/authentication", s, nil); code != 200 {
		t.Fatalf("settings: %d", code)
	}
	p := h.newPerson()
	var sess struct {
		CSRF       string `json:"csrf_token"`
		Restricted string `json:"restricted"`
	}
	if c := p.call("POST", "/v1/session", map[string]any{"username": "bob", "password": alicePW}, false, &sess); c != 200 || sess.Restricted != "totp_enrollment" {
		t.Fatalf("sign in: %d restricted %q", c, sess.Restricted)
	}
	p.csrf = sess.CSRF
	oldID, oldCSRF := p.sessionID(), p.csrf
	other := h.newPerson() // a second restricted session of bob's
	if c, _ := other.login("bob", alicePW, nil); c != 200 {
		t.Fatalf("second sign-in: %d", c)
	}

	// Only enrolment is open to the restricted session.
	refused := []struct {
		method, path string
		body         any
	}{
		{"GET", "/v1/keys", nil},
		{"GET", "/v1/users", nil},
		{"GET", "/v1/audit", nil},
		{"POST", "/v1/tokens", map[string]any{"name": "escape", "expires_in": "1d"}},
		{"POST", "/v1/me/password", map[string]any{"current_password": alicePW, "new_password": "a brand new passphrase 77"}},
		{"GET", "/v1/settings/authentication", nil},
	}
	for _, r := range refused {
		if c := p.call(r.method, r.path, r.body, true, nil); c != 403 {
			t.Errorf("restricted session: %s %s = %d, want 403", r.method, r.path, c)
		}
	}
	// Confirming before enrolling, or with wrong codes, lifts nothing.
	var e errorOut
	if c := p.call("POST", "/v1/me/totp/verify", map[string]any{"code": "123456"}, true, &e); c != 409 {
		t.Fatalf("confirm before enrolling: %d %s", c, e.Error.Message)
	}
	var enr struct{ Secret string }
	if c := p.call("POST", "/v1/me/totp", map[string]any{"current_password": alicePW}, true, &enr); c != 200 {
		t.Fatalf("enrol: %d", c)
	}
	for i, code := range []string{wrongCode(enr.Secret, h.clock.Now(), 1), "", "12345x", "1234567"} {
		if c := p.call("POST", "/v1/me/totp/verify", map[string]any{"code": code}, true, nil); c < 400 || c >= 500 {
			t.Fatalf("wrong code %d (%q): %d", i, code, c)
		}
		if c := p.call("GET", "/v1/keys", nil, false, nil); c != 403 {
			t.Fatalf("after wrong code %d the session is lifted: GET /v1/keys %d", i, c)
		}
		if p.sessionID() != oldID {
			t.Fatalf("wrong code %d changed the session id", i)
		}
	}
	// Without the CSRF token the confirmation is refused outright.
	code, _ := totp.Code(enr.Secret, h.clock.Now())
	if c := p.call("POST", "/v1/me/totp/verify", map[string]any{"code": code}, false, nil); c != 403 {
		t.Fatalf("confirm without the CSRF token: %d", c)
	}

	var lifted struct {
		User struct {
			Username    string `json:"username"`
			TOTPEnabled bool   `json:"totp_enabled"`
		} `json:"user"`
		CSRF       string    `json:"csrf_token"`
		ExpiresAt  time.Time `json:"expires_at"`
		Restricted string    `json:"restricted"`
	}
	if c := p.call("POST", "/v1/me/totp/verify", map[string]any{"code": code}, true, &lifted); c != 200 {
		t.Fatalf("confirm: %d", c)
	}
	if lifted.User.Username != "bob" || !lifted.User.TOTPEnabled || lifted.Restricted != "" || lifted.CSRF == "" || lifted.CSRF == oldCSRF || !lifted.ExpiresAt.After(h.clock.Now()) {
		t.Fatalf("confirm answered %+v", lifted)
	}
	if id := p.sessionID(); id == "" || id == oldID {
		t.Fatalf("session id after the lift: %q, want a new one", id)
	}
	// The new session is full, with the new CSRF token only.
	if c := p.call("GET", "/v1/keys", nil, false, nil); c != 200 {
		t.Fatalf("GET /v1/keys after the lift: %d", c)
	}
	tok := map[string]any{"name": "after the lift", "role": "auditor", "expires_in": "1d"}
	if c := p.call("POST", "/v1/tokens", tok, true, nil); c != 403 {
		t.Fatalf("a change with the old CSRF token: %d, want 403", c)
	}
	p.csrf = lifted.CSRF
	if c := p.call("POST", "/v1/tokens", tok, true, &e); c != 201 {
		t.Fatalf("a change with the new CSRF token: %d %s", c, e.Error.Message)
	}

	// The old id is refused everywhere, even for enrolment and sign-out,
	// and so is bob's other session (made without the second factor).
	for _, q := range []*person{h.withSession(oldID, oldCSRF), other} {
		for _, r := range []struct{ method, path string }{{"GET", "/v1/me"}, {"GET", "/v1/keys"}, {"POST", "/v1/me/totp/verify"}, {"DELETE", "/v1/session"}} {
			if c := q.call(r.method, r.path, map[string]any{"code": code}, true, nil); c != 401 {
				t.Errorf("replayed session %s %s: %d, want 401", r.method, r.path, c)
			}
		}
	}

	// A full session confirming an optional enrolment keeps its id and
	// gets 204 (alice's role needs no second factor).
	a := h.newPerson()
	if c, _ := a.login("alice", alicePW, nil); c != 200 {
		t.Fatalf("alice signs in: %d", c)
	}
	aliceID := a.sessionID()
	if c := a.call("POST", "/v1/me/totp", map[string]any{"current_password": alicePW}, true, &enr); c != 200 {
		t.Fatalf("alice enrols: %d", c)
	}
	code, _ = totp.Code(enr.Secret, h.clock.Now())
	if c := a.call("POST", "/v1/me/totp/verify", map[string]any{"code": code}, true, nil); c != 204 {
		t.Fatalf("alice confirms: %d", c)
	}
	if a.sessionID() != aliceID {
		t.Fatal("a full session's id changed on enrolment")
	}

	// The audit log says the session was renewed.
	var renewed int
	for _, ev := range h.auditEvents("admin.user.totp_confirm") {
		if d, _ := ev["details"].(map[string]any); d != nil && d["session_renewed"] == true {
			renewed++
		}
	}
	if renewed != 1 {
		t.Errorf("%d admin.user.totp_confirm events with session_renewed, want 1", renewed)
	}
}

// TestLastSignInAcrossReplicas: two replicas on one PostgreSQL database,
// B's clock ahead of A's: a sign-in on B, then one on A (earlier by A's
// clock), leaves B's time as the last sign-in; both replicas show it.
func TestLastSignInAcrossReplicas(t *testing.T) {
	r := MustStartReplicas(t)
	r.a.createUser("alice", "admin")
	r.clock.Advance(time.Hour) // B's clock only
	b := r.a.newPerson()
	b.h = &harness{t: t, admin: "http://" + r.b.AdminAddr(), clock: r.clock}
	if c, e := b.login("alice", alicePW, nil); c != 200 {
		t.Fatalf("sign in on B: %d %s", c, e.Error.Message)
	}
	onB := r.clock.Now()
	if c, e := r.a.newPerson().login("alice", alicePW, nil); c != 200 {
		t.Fatalf("sign in on A: %d %s", c, e.Error.Message)
	}
	if at := r.a.lastSignIn("alice"); at == nil || !at.Equal(onB) {
		t.Fatalf("last_sign_in_at on A after sign-ins on B then A: %v, want B's %v", at, onB)
	}
	var u userSignIn
	if c := b.call("GET", "/v1/users/alice", nil, false, &u); c != 200 || u.LastSignInAt == nil || !u.LastSignInAt.Equal(onB) {
		t.Fatalf("last_sign_in_at on B: %d %v, want %v", c, u.LastSignInAt, onB)
	}
}
