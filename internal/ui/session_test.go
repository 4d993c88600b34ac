package ui_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// auditOf is the resources of the audit events of type typ by actor.
func auditOf(t *testing.T, e *uitest.Env, typ, actor string) []string {
	t.Helper()
	var page struct {
		Entries []struct {
			Event struct {
				Resource string `json:"resource"`
			} `json:"event"`
		} `json:"entries"`
	}
	if code := e.API("GET", "/v1/audit?limit=1000&type="+typ+"&actor="+url.QueryEscape(actor), nil, &page); code != 200 {
		t.Fatalf("GET /v1/audit: %d", code)
	}
	var out []string
	for _, en := range page.Entries {
		out = append(out, en.Event.Resource)
	}
	return out
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

// TestPageViewSessionCheck: a page view checks its session in process
// (no GET /v1/me of its own in the audit log) while the page's own API
// calls stay audited; and each of the ways a session ends — the account
// disabled, the session signed out, the idle timeout, the account's
// password reset — is refused at the very next view, that refusal
// audited by the API as before.
func TestPageViewSessionCheck(t *testing.T) {
	tests := []struct {
		name string
		end  func(t *testing.T, e *uitest.Env, f *form)
	}{
		{"user disabled", func(t *testing.T, e *uitest.Env, f *form) {
			if code := e.API("POST", "/v1/users/bob/disable", nil, nil); code != 200 {
				t.Fatalf("disable: %d", code)
			}
		}},
		{"signed out elsewhere", func(t *testing.T, e *uitest.Env, f *form) {
			_, body := f.get("/ui/keys")
			if res, _ := f.post("/ui/logout", url.Values{"csrf_token": {token(t, body)}}); res.Request.URL.Path != "/ui/login" {
				t.Fatalf("sign out: at %s", res.Request.URL.Path)
			}
		}},
		{"idle timeout", func(t *testing.T, e *uitest.Env, f *form) {
			e.Clock.Advance(31 * time.Minute)
		}},
		{"password reset", func(t *testing.T, e *uitest.Env, f *form) {
			if code := e.API("POST", "/v1/users/bob/password", map[string]any{"new_password": "a temporary one from the admin 12"}, nil); code != 200 {
				t.Fatalf("reset: %d", code)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := uitest.Start(t, "")
			e.CreateUser("alice", "admin")
			e.CreateUser("bob", "security")
			f := newForm(t, e)
			f.signIn("bob", uitest.Password)
			// The copy of the cookie an attacker kept, replayed after.
			stolen := newForm(t, e)
			stolen.setSession(sessionCookie(t, f))
			for range 3 {
				if res, body := f.get("/ui/keys"); res.StatusCode != 200 || !strings.Contains(body, "bob") {
					t.Fatalf("keys page: HTTP %d", res.StatusCode)
				}
			}
			reads := auditOf(t, e, "admin.read", "user:bob")
			if n := count(reads, "/v1/me"); n != 0 {
				t.Errorf("%d reads of /v1/me recorded for page views, want 0", n)
			}
			if n := count(reads, "/v1/keys"); n < 3 {
				t.Errorf("%d reads of /v1/keys recorded for 3 views of the keys page, want 3 or more: %v", n, reads)
			}

			tt.end(t, e, f)
			for _, g := range []*form{f, stolen} {
				res, _ := g.get("/ui/keys")
				if res.Request.URL.Path != "/ui/login" {
					t.Fatalf("next view after the session ended: HTTP %d at %s, want /ui/login", res.StatusCode, res.Request.URL.Path)
				}
			}
			if n := count(auditOf(t, e, "admin.auth.failure", ""), "/v1/me"); n == 0 {
				t.Error("the refused view is not in the audit log")
			}
		})
	}
}
