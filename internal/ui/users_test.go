package ui_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

type apiUser struct {
	Username    string  `json:"username"`
	Role        string  `json:"role"`
	Status      string  `json:"status"`
	TOTPEnabled bool    `json:"totp_enabled"`
	Expired     bool    `json:"password_expired"`
	LockedUntil *string `json:"locked_until"`
	CreatedBy   string  `json:"created_by"`
}

func getUser(t *testing.T, e *uitest.Env, name string) (int, apiUser) {
	t.Helper()
	var u apiUser
	code := e.API("GET", "/v1/users/"+name, nil, &u)
	return code, u
}

// TestUsersFormFlowJSOff: create, disable, enable, change role, unlock,
// reset password (forced change at sign-in), reset TOTP and delete, each
// through the form and the API call behind it.
func TestUsersFormFlowJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)
	res, body := f.get("/ui/users")
	if res.StatusCode != 200 || !strings.Contains(body, `href="/ui/users?user=alice"`) {
		t.Fatalf("users page: HTTP %d %s", res.StatusCode, body)
	}
	tok := token(t, body)
	post := func(path string, v url.Values) (*http.Response, string) {
		t.Helper()
		v.Set("csrf_token", tok)
		return f.post(path, v)
	}

	res, body = post("/ui/users", url.Values{"username": {"dave"}, "role": {"security"}, "password": {uitest.Password}, "password_confirm": {uitest.Password}})
	if res.StatusCode != 200 || res.Request.URL.Query().Get("user") != "dave" || !strings.Contains(body, "User created.") || !strings.Contains(body, "Account dave") {
		t.Fatalf("create: HTTP %d at %s: %s", res.StatusCode, res.Request.URL, body)
	}
	if strings.Contains(body, uitest.Password) {
		t.Fatal("the password is echoed")
	}
	if _, u := getUser(t, e, "dave"); u.Role != "security" || u.CreatedBy != "user:alice" && !strings.Contains(u.CreatedBy, "alice") {
		t.Fatalf("created user: %+v", u)
	}
	if !strings.Contains(body, "alice") {
		t.Error("the account does not say who created it")
	}

	// Bad input: the API's message (escaped), the form kept without the
	// password.
	bad := []struct {
		name string
		v    url.Values
		msg  string
	}{
		{"short password", url.Values{"username": {"erin"}, "role": {"auditor"}, "password": {"short"}, "password_confirm": {"short"}}, "password: too short: at least 12 characters"},
		{"hostile username", url.Values{"username": {"<b>x</b>"}, "role": {"auditor"}, "password": {uitest.Password}, "password_confirm": {uitest.Password}}, "username: 1 to 64 characters: lower-case letters, digits, '.', '_', '-', '@'"},
		{"taken", url.Values{"username": {"dave"}, "role": {"auditor"}, "password": {uitest.Password}, "password_confirm": {uitest.Password}}, ""},
		{"confirmation differs", url.Values{"username": {"erin"}, "role": {"auditor"}, "password": {uitest.Password}, "password_confirm": {"other"}}, "The password and its confirmation differ."},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			res, body := post("/ui/users", tt.v)
			if res.StatusCode < 400 || res.StatusCode >= 500 || !strings.Contains(body, html.EscapeString(tt.msg)) {
				t.Fatalf("HTTP %d, want 4xx and %q: %s", res.StatusCode, tt.msg, body)
			}
			if strings.Contains(body, "<b>x</b>") || strings.Contains(body, uitest.Password) {
				t.Fatal("form value not escaped, or password echoed")
			}
		})
	}

	step := func(path string, v url.Values, done string, check func(apiUser) bool) {
		t.Helper()
		res, body := post(path, v)
		if res.StatusCode != 200 || !strings.Contains(body, done) {
			t.Fatalf("%s: HTTP %d %s", path, res.StatusCode, body)
		}
		if _, u := getUser(t, e, "dave"); !check(u) {
			t.Fatalf("%s: dave is now %+v", path, u)
		}
	}
	step("/ui/users/dave/disable", url.Values{}, "User disabled", func(u apiUser) bool { return u.Status == "disabled" })
	step("/ui/users/dave/enable", url.Values{}, "User enabled.", func(u apiUser) bool { return u.Status == "active" })
	step("/ui/users/dave/role", url.Values{"role": {"auditor"}}, "Role changed.", func(u apiUser) bool { return u.Role == "auditor" })
	if res, body := post("/ui/users/dave/role", url.Values{"role": {"root"}}); res.StatusCode != 400 || !strings.Contains(body, "role: must be one of admin, security, auditor") {
		t.Fatalf("bad role: HTTP %d %s", res.StatusCode, body)
	}

	// Locked by failed sign-ins: shown, then unlocked.
	for range 5 {
		e.API("POST", "/v1/session", map[string]string{"username": "dave", "password": "wrong wrong wrong"}, nil)
	}
	if _, u := getUser(t, e, "dave"); u.LockedUntil == nil {
		t.Fatal("dave not locked after 5 failures")
	}
	if _, body := f.get("/ui/users?status=locked"); !strings.Contains(body, "1 user(s) on this page, matching the filter") || !strings.Contains(body, "locked until") {
		t.Fatalf("locked filter: %s", body)
	}
	step("/ui/users/dave/unlock", url.Values{}, "User unlocked.", func(u apiUser) bool { return u.LockedUntil == nil })

	e.EnrollTOTP("dave")
	if _, body := f.get("/ui/users?user=dave"); !strings.Contains(body, `action="/ui/users/dave/totp-reset"`) {
		t.Fatal("no second-factor reset offered for an enrolled account")
	}
	step("/ui/users/dave/totp-reset", url.Values{}, "Second factor reset", func(u apiUser) bool { return !u.TOTPEnabled })

	const temp = "a temporary passphrase for the reset 4"
	if res, body := post("/ui/users/dave/password", url.Values{"new_password": {temp}, "new_password_confirm": {temp + "x"}}); res.StatusCode != 400 || !strings.Contains(body, "confirmation differ") {
		t.Fatalf("reset with a differing confirmation: HTTP %d", res.StatusCode)
	}
	if res, body := post("/ui/users/dave/password", url.Values{"new_password": {"short"}, "new_password_confirm": {"short"}}); res.StatusCode != 400 || !strings.Contains(body, "password: too short: at least 12 characters") {
		t.Fatalf("reset with a short password: HTTP %d %s", res.StatusCode, body)
	}
	step("/ui/users/dave/password", url.Values{"new_password": {temp}, "new_password_confirm": {temp}}, "Password reset", func(u apiUser) bool { return u.Expired })
	g := newForm(t, e)
	_, lb := g.get("/ui/login")
	if res, body := g.post("/ui/login", url.Values{"username": {"dave"}, "password": {temp}, "csrf_token": {token(t, lb)}}); !strings.Contains(body, "Change your password") {
		t.Fatalf("dave signing in after the reset: HTTP %d %s", res.StatusCode, body)
	}

	// Delete: only with the box ticked; never one's own account.
	if res, body := post("/ui/users/dave/delete", url.Values{}); res.StatusCode != 400 || !strings.Contains(body, "Tick the box to confirm deleting dave.") {
		t.Fatalf("delete unconfirmed: HTTP %d", res.StatusCode)
	}
	if res, body := post("/ui/users/alice/delete", url.Values{"confirm": {"yes"}}); res.StatusCode != 403 || !strings.Contains(body, "you cannot delete your own account") {
		t.Fatalf("deleting oneself: HTTP %d %s", res.StatusCode, body)
	}
	if _, body := f.get("/ui/users?user=alice"); strings.Contains(body, `action="/ui/users/alice/delete"`) {
		t.Error("a delete button on one's own account")
	}
	res, body = post("/ui/users/dave/delete", url.Values{"confirm": {"yes"}})
	if res.StatusCode != 200 || !strings.Contains(body, "User deleted.") {
		t.Fatalf("delete: HTTP %d %s", res.StatusCode, body)
	}
	if code, _ := getUser(t, e, "dave"); code != 404 {
		t.Fatalf("deleted user: HTTP %d", code)
	}
	if res, _ := f.get("/ui/users?user=dave"); res.StatusCode != 404 {
		t.Errorf("a deleted account's page: HTTP %d, want the API's 404", res.StatusCode)
	}
	if res, _ := post("/ui/users/nobody/disable", url.Values{}); res.StatusCode != 404 {
		t.Errorf("disabling an unknown user: HTTP %d", res.StatusCode)
	}

	// Filters are the API's.
	e.CreateUser("bob", "security")
	e.CreateUser("bobby", "auditor")
	for _, tt := range []struct{ q, want string }{{"?q=bob", "2 user(s) on this page, matching the filter"}, {"?role=security", "1 user(s) on this page, matching the filter"}, {"?role=admin&status=active", "1 user(s) on this page, matching the filter"}} {
		if _, body := f.get("/ui/users" + tt.q); !strings.Contains(body, tt.want) {
			t.Errorf("%s: want %q", tt.q, tt.want)
		}
	}
	if res, body := f.get("/ui/users?role=root"); res.StatusCode != 400 || !strings.Contains(body, "role: must be one of admin, security, auditor") {
		t.Errorf("bad role filter: HTTP %d", res.StatusCode)
	}
	e.NoCSPReports()
}

// TestUsersRefusedJSOff: a security user gets the API's 403 for reading
// and changing users (not a 500); forms without their CSRF token are
// refused and change nothing.
func TestUsersRefusedJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	e.CreateUser("bob", "security")
	f := newForm(t, e)
	f.signIn("bob", uitest.Password)
	res, body := f.get("/ui/users")
	if res.StatusCode != 403 || !strings.Contains(body, "role security may not read users") {
		t.Fatalf("security's users page: HTTP %d %s", res.StatusCode, body)
	}
	tok := token(t, body)
	for _, p := range []string{"/ui/users", "/ui/users/alice/disable", "/ui/users/alice/role", "/ui/users/alice/password", "/ui/users/alice/unlock", "/ui/users/alice/totp-reset"} {
		res, body := f.post(p, url.Values{"username": {"x"}, "role": {"admin"}, "password": {uitest.Password}, "password_confirm": {uitest.Password},
			"new_password": {uitest.Password + "x"}, "new_password_confirm": {uitest.Password + "x"}, "csrf_token": {tok}})
		if res.StatusCode != 403 || !strings.Contains(body, "role security may not change users") {
			t.Errorf("security POST %s: HTTP %d", p, res.StatusCode)
		}
	}
	if res, _ := f.post("/ui/users/alice/delete", url.Values{"confirm": {"yes"}, "csrf_token": {tok}}); res.StatusCode != 403 {
		t.Errorf("security deleting alice: HTTP %d", res.StatusCode)
	}

	g := newForm(t, e)
	g.signIn("alice", uitest.Password)
	for _, p := range []string{"/ui/users", "/ui/users/bob/disable", "/ui/users/bob/role", "/ui/users/bob/delete"} {
		if res, _ := g.post(p, url.Values{"username": {"x"}, "role": {"admin"}, "confirm": {"yes"}, "password": {uitest.Password}, "password_confirm": {uitest.Password}}); res.StatusCode != 403 {
			t.Errorf("POST %s without its token: HTTP %d", p, res.StatusCode)
		}
	}
	if code, u := getUser(t, e, "bob"); code != 200 || u.Status != "active" || u.Role != "security" {
		t.Fatalf("refused forms changed bob: %d %+v", code, u)
	}
	if code, _ := getUser(t, e, "x"); code != 404 {
		t.Fatal("a refused form created a user")
	}
}

// TestUsersLastSignInJSOff: the users list and an account's panel show
// when each user last signed in, "never" for one who has not.
func TestUsersLastSignInJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	e.CreateUser("bob", "auditor")
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)
	signedIn := e.Clock.Now().UTC().Format("2006-01-02 15:04 UTC")
	lastSignIn := regexp.MustCompile(`<a href="/ui/users\?user=(\w+)"[^>]*>\w+</a></td>\s*<td data-label="Role">\w+</td>\s*<td data-label="Status">[^<]*</td>\s*<td data-label="Second factor">\w+</td>\s*<td data-label="Last sign-in">([^<]*)</td>`)
	_, body := f.get("/ui/users")
	got := map[string]string{}
	for _, m := range lastSignIn.FindAllStringSubmatch(body, -1) {
		got[m[1]] = m[2]
	}
	if got["alice"] != signedIn || got["bob"] != "never" {
		t.Fatalf("last sign-in column: %v, want alice %s and bob never: %s", got, signedIn, body)
	}
	tests := []struct{ user, want string }{
		{"alice", "<dt>Last sign-in</dt><dd>" + signedIn + " (just now)</dd>"},
		{"bob", "<dt>Last sign-in</dt><dd>never</dd>"},
	}
	for _, tt := range tests {
		if _, body := f.get("/ui/users?user=" + tt.user); !strings.Contains(body, tt.want) {
			t.Errorf("account %s: no %q in %s", tt.user, tt.want, body)
		}
	}
	e.NoCSPReports()
}
