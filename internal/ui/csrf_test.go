package ui_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/ui"
	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// TestEveryFormRefusesForgery: every form the console serves — each
// page's actions from the registry, so a form added later is covered
// too, and sign-out — is refused with 403 when posted by a signed-in
// admin without the session's CSRF token, with a wrong one, or with the
// right one from another origin; and none of those posts changes
// anything: no audit entry is written and the session still works.
func TestEveryFormRefusesForgery(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)
	_, body := f.get("/ui/keys")
	tok := token(t, body)

	param := regexp.MustCompile(`\{[^}]+\}`)
	paths := []string{"/ui/logout"}
	for _, p := range ui.ActionPatterns(e.App.Console()) {
		paths = append(paths, param.ReplaceAllString(p, "x1"))
	}
	if len(paths) < 30 {
		t.Fatalf("only %d form actions: %q", len(paths), paths)
	}
	aliceEntries := func() int {
		var page struct {
			Entries []json.RawMessage `json:"entries"`
		}
		if code := e.API("GET", "/v1/audit?actor=user:alice&limit=1000", nil, &page); code != http.StatusOK {
			t.Fatalf("GET /v1/audit: HTTP %d", code)
		}
		return len(page.Entries)
	}
	before := aliceEntries()
	if before == 0 {
		t.Fatal("no audit entry of alice's sign-in: the count below would prove nothing")
	}
	forged := []struct {
		name    string
		v       url.Values
		headers []string
	}{
		{"no token", url.Values{"name": {"x"}, "confirm": {"yes"}}, nil},
		{"wrong token", url.Values{"name": {"x"}, "confirm": {"yes"}, "csrf_token": {tok[:len(tok)-1] + "A"}}, nil},
		{"cross site", url.Values{"name": {"x"}, "confirm": {"yes"}, "csrf_token": {tok}}, []string{"Sec-Fetch-Site: cross-site"}},
		{"foreign Origin", url.Values{"name": {"x"}, "confirm": {"yes"}, "csrf_token": {tok}}, []string{"Origin: https://evil.example"}},
	}
	for _, p := range paths {
		for _, tt := range forged {
			t.Run(strings.TrimPrefix(p, "/ui/")+"/"+tt.name, func(t *testing.T) {
				res, body := f.post(p, tt.v, tt.headers...)
				if res.StatusCode != http.StatusForbidden {
					t.Fatalf("HTTP %d, want 403: %.300s", res.StatusCode, body)
				}
				if want := "CSRF token"; tt.headers == nil && !strings.Contains(body, want) {
					t.Errorf("refusal does not name the %s: %.300s", want, body)
				}
			})
		}
	}
	if after := aliceEntries(); after != before {
		t.Errorf("the forged posts wrote %d audit entries as alice", after-before)
	}
	// Still signed in: sign-out was refused each time.
	if res, body := f.get("/ui/keys"); res.StatusCode != http.StatusOK || res.Request.URL.Path != "/ui/keys" {
		t.Fatalf("after the forged posts /ui/keys: HTTP %d at %s: %.200s", res.StatusCode, res.Request.URL, body)
	}
}
