package ui_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// TestBrowserEveryPage: every page of the console — each page of the
// nav (read from the dashboard's nav, so a page added later is covered),
// an audit entry with its proof, an incident, a review, an account, a
// secret shown once, the error page and the sign-in page — is axe-clean
// in light and in dark mode (with the dark palette applied) and at 360
// px wide, where the page does not scroll sideways and a list that turns
// into cards (keys, clients, users, tokens, audit) shows cards that fit; no page raises a CSP report.
func TestBrowserEveryPage(t *testing.T) {
	e := uitest.Start(t, "policy:\n  dir: "+policyDir(t)+"\n"+uitest.BackupConfig(t))
	e.CreateUser("alice", "admin")
	e.CreateUser("a-rather-long-username@example.com", "auditor")
	if code := e.API("POST", "/v1/keys", map[string]any{"name": "a partner key with a rather long name", "scopes": []string{"demo:read", "demo:write"}}, nil); code != 201 {
		t.Fatalf("create key: HTTP %d", code)
	}
	var in, rv struct{ ID string }
	if code := e.API("POST", "/v1/incidents", map[string]any{"title": "Partner key leaked", "severity": "high", "impact": "partner traffic"}, &in); code != 201 {
		t.Fatalf("open incident: HTTP %d", code)
	}
	if code := e.API("POST", "/v1/reviews", nil, &rv); code != 201 {
		t.Fatalf("start review: HTTP %d", code)
	}
	e.API("POST", "/v1/backups", nil, nil)
	if code := e.API("POST", "/v1/clients", map[string]any{"name": "a service client with a long name", "scopes": []string{"demo:read"}}, nil); code != 201 {
		t.Fatalf("create client: HTTP %d", code)
	}

	b := uitest.NewBrowser(t, e)
	var cardLists map[string]bool
	check := func(what string) {
		t.Helper()
		b.Axe()
		b.Do(colorScheme("dark"))
		if bg := uitest.Eval[string](b, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(18, 18, 18)" {
			t.Errorf("%s: dark mode background %q", what, bg)
		}
		b.Axe()
		b.Do(colorScheme("light"), chromedp.EmulateViewport(360, 800))
		time.Sleep(50 * time.Millisecond)
		if w := uitest.Eval[int](b, `document.documentElement.scrollWidth`); w > 360 {
			wide := uitest.Eval[string](b, `[...document.querySelectorAll("body *")].filter(el => el.getBoundingClientRect().right > 360).slice(-3).map(el => el.outerHTML.slice(0, 120)).join(" | ")`)
			t.Errorf("%s is %d px wide at 360 px: %s", what, w, wide)
		}
		if wide := uitest.Eval[string](b, `[...document.querySelectorAll("table.cards")].filter(tb => tb.parentElement.scrollWidth > tb.parentElement.clientWidth + 1).map(tb => tb.querySelector("caption").textContent).join(", ")`); wide != "" {
			t.Errorf("%s at 360 px: the list(s) %s scroll sideways instead of showing cards", what, wide)
		}
		if cardLists[what] {
			if display := uitest.Eval[string](b, `getComputedStyle(document.querySelector("main table tbody td")).display`); display != "block" {
				t.Errorf("%s at 360 px: the list's cells are %q, want cards (block)", what, display)
			}
		}
		b.Axe()
		b.Do(chromedp.EmulateViewport(1280, 900))
	}
	// The lists that show as cards on a narrow screen (each has a row).
	cardLists = map[string]bool{"/ui/keys": true, "/ui/clients": true, "/ui/users": true, "/ui/tokens": true, "/ui/audit": true}

	b.Visit("/ui/login")
	check("sign-in")
	b.SignIn("alice", uitest.Password, "")
	nav := uitest.Eval[[]string](b, `[...document.querySelectorAll("nav a")].map(a => a.getAttribute("href"))`)
	if len(nav) < 12 {
		t.Fatalf("the nav links to %d pages: %q", len(nav), nav)
	}
	for _, p := range nav {
		b.Visit(p)
		if h := b.Text("main h1"); h == "Error" {
			t.Errorf("%s: an error page: %s", p, b.Text("main"))
		}
		check(p)
	}

	b.Visit("/ui/audit?type=admin.key.create")
	href := uitest.Eval[string](b, `(document.querySelector("table.audit tbody a") || {getAttribute: () => ""}).getAttribute("href")`)
	if !regexp.MustCompile(`^/ui/audit/[0-9]+$`).MatchString(href) {
		t.Fatalf("no entry link on the audit page: %q", href)
	}
	extra := []string{href, "/ui/incidents?id=" + in.ID, "/ui/reviews?id=" + rv.ID,
		"/ui/users?user=a-rather-long-username@example.com", "/ui/no-such-page"}
	for _, p := range extra {
		b.Visit(p)
		check(p)
	}

	// A secret shown once.
	b.Visit("/ui/keys")
	b.Fill(map[string]string{"name": "shown once", "scopes": "demo:read"})
	b.Submit(`form[method="post"][action="/ui/keys"] button[type="submit"]`)
	if h := b.Text("main h1"); !strings.HasPrefix(h, "Key created") {
		t.Fatalf("after creating a key: %q: %s", h, b.Text("main"))
	}
	check("key created")
	e.NoCSPReports()
}
