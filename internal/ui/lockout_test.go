package ui_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// TestSignInLockoutUndisclosedJSOff: the sign-in page answers a locked
// account — with its right password or a wrong one — exactly as it
// answers an unknown username or a wrong password: the same status, the
// same headers that matter and the same page (but for the username
// echoed in its field and the form's token), so the page never tells
// whether an account exists or is locked. The locked account's right
// password does not sign it in.
func TestSignInLockoutUndisclosedJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("dave", "auditor")
	e.CreateUser("erin", "auditor")
	for range 5 { // the default lockout: 5 failures
		e.API("POST", "/v1/session", map[string]string{"username": "dave", "password": "wrong wrong wrong"}, nil)
	}
	var dave struct {
		LockedUntil *string `json:"locked_until"`
	}
	if e.API("GET", "/v1/users/dave", nil, &dave); dave.LockedUntil == nil {
		t.Fatal("dave not locked after 5 failures")
	}

	normal := regexp.MustCompile(`name="csrf_token" value="[^"]*"|name="username" autocomplete="username" required value="[^"]*"`)
	type answer struct {
		status                  int
		retryAfter, cookie, loc string
		page                    string
	}
	attempt := func(user, pw string) answer {
		t.Helper()
		f := newForm(t, e)
		_, body := f.get("/ui/login")
		res, body := f.post("/ui/login", url.Values{"username": {user}, "password": {pw}, "csrf_token": {token(t, body)}})
		var session string
		for _, c := range f.client.Jar.Cookies(res.Request.URL) {
			if c.Name != "gatehouse_ui_login" {
				session += c.Name + ";"
			}
		}
		return answer{status: res.StatusCode, retryAfter: res.Header.Get("Retry-After"), cookie: session, loc: res.Request.URL.Path,
			page: normal.ReplaceAllString(body, "")}
	}
	tests := []struct{ name, user, pw string }{
		{"locked, right password", "dave", uitest.Password},
		{"locked, wrong password", "dave", "not the password 1"},
		{"unknown user", "nobody-at-all", uitest.Password},
		{"wrong password", "erin", "not the password 1"},
	}
	var first answer
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := attempt(tt.user, tt.pw)
			if got.status != http.StatusUnauthorized || got.loc != "/ui/login" || got.cookie != "" {
				t.Fatalf("HTTP %d at %s with cookies %q, want 401 on /ui/login and no session: %.300s", got.status, got.loc, got.cookie, got.page)
			}
			if !strings.Contains(got.page, "or the account is locked") {
				t.Errorf("the refusal does not say a locked account is refused alike: %.500s", got.page)
			}
			if i == 0 {
				first = got
				return
			}
			if got != first {
				t.Errorf("answer differs from %q's:\n got %+v\nwant %+v", tests[0].name, got, first)
			}
		})
	}
}
