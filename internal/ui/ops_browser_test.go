package ui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// TestBrowserIncidentReviewBackup: in real Chromium at 360 px wide, open
// an incident, add a note, contain it (revoking a key, confirmed) and
// close it; start an access review and revoke an item (confirmed); run a
// backup and a restore test. Each page axe-clean, none wider than the
// screen, no CSP report.
func TestBrowserIncidentReviewBackup(t *testing.T) {
	e := uitest.Start(t, uitest.BackupConfig(t))
	e.CreateUser("alice", "admin")
	e.CreateUser("bob", "security")
	var key struct{ ID, Key string }
	if code := e.API("POST", "/v1/keys", map[string]any{"name": "leaked", "scopes": []string{"demo:read"}}, &key); code != 201 {
		t.Fatalf("create key: %d", code)
	}
	b := uitest.NewBrowser(t, e)
	b.Do(chromedp.EmulateViewport(360, 800))
	b.SignIn("alice", uitest.Password, "")
	check := func(what string) {
		t.Helper()
		b.Axe()
		if w := uitest.Eval[float64](b, `document.documentElement.scrollWidth - document.documentElement.clientWidth`); w > 0 {
			wide := uitest.Eval[string](b, `[...document.querySelectorAll("body *")].filter(e => e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().right > document.documentElement.clientWidth).slice(0, 8).map(e => e.tagName + "." + e.className + " " + e.scrollWidth + "/" + e.clientWidth + " " + e.textContent.slice(0, 30)).join("; ")`)
			t.Errorf("%s: %v px wider than the 360 px screen: %s", what, w, wide)
		}
	}
	okText := func(want string) {
		t.Helper()
		if got := b.Text("main p.ok"); !strings.HasPrefix(got, want) {
			t.Fatalf("at %s: %q, want %q…; page: %s", b.Location(), got, want, b.Text("main"))
		}
	}

	// Incident: open, note, contain, close.
	b.Visit("/ui/incidents")
	check("incidents")
	b.Fill(map[string]string{"title": "Partner key leaked", "severity": "high", "impact": "partner traffic at risk"})
	b.Submit(`form[action="/ui/incidents"] button[type="submit"]`)
	okText("Incident opened.")
	check("incident")
	b.Fill(map[string]string{"text": `<img src=x onerror="alert(1)"> found in a paste`})
	b.Submit(`form[action$="/notes"] button[type="submit"]`)
	okText("Note added.")
	if tl := b.Text("main .ops-timeline"); !strings.Contains(tl, `<img src=x onerror="alert(1)"> found in a paste`) {
		t.Fatalf("note not shown as text: %q", tl)
	}
	b.Fill(map[string]string{"principal": "api_key:" + key.ID})
	b.Submit(`#contain-principal button[type="submit"]`)
	if txt := b.Text("main .warning"); !strings.Contains(txt, "takes effect at once") {
		t.Fatalf("no confirmation before containment: %q", txt)
	}
	check("containment confirmation")
	if code := e.Gate("/api/x", key.Key); code != 200 {
		t.Fatalf("key refused before the containment was confirmed: %d", code)
	}
	b.Submit(`form button.danger[type="submit"]`)
	okText("Containment recorded.")
	if code := e.Gate("/api/x", key.Key); code != 401 {
		t.Fatalf("key contained in the UI: gateway %d, want 401", code)
	}
	e.Clock.Advance(time.Second) // the fake clock: the close after the events, so that its window holds them
	b.Submit(`form[action$="/close"] button[type="submit"]`)
	okText("Incident closed")
	check("closed incident")
	b.Submit(`a[href*="events=1"]`)
	if txt := b.Text("main table"); !strings.Contains(txt, "incident.contain") {
		t.Fatalf("the incident's audit events lack its containment: %q", txt)
	}
	check("incident audit events")

	// Access review: start, revoke bob's access.
	b.Visit("/ui/reviews")
	check("reviews")
	b.Submit(`form[action="/ui/reviews"] button[type="submit"]`)
	okText("Review started")
	check("review")
	action := uitest.Eval[string](b, `(() => { const f = [...document.querySelectorAll("form.ops-decide")].find(f => f.textContent.includes("user:bob")); if (!f) return ""; f.querySelector("select").value = "revoke"; f.querySelector("input[name=reason]").value = "left the team"; return f.getAttribute("action") })()`)
	if action == "" {
		t.Fatalf("no decision form for user:bob: %s", b.Text("main"))
	}
	b.Submit(`form[action="` + action + `"] button[type="submit"]`)
	if btn := b.Text("main button.danger"); btn != "Yes, revoke user:bob now" {
		t.Fatalf("confirmation button %q", btn)
	}
	b.Submit(`form button.danger[type="submit"]`)
	okText("Decision recorded.")
	var bob struct {
		DisabledAt string `json:"disabled_at"`
	}
	e.API("GET", "/v1/users/bob", nil, &bob)
	if bob.DisabledAt == "" {
		t.Fatal("bob not disabled by the revocation decided in the UI")
	}

	// Backups: run one, restore-test it.
	b.Visit("/ui/backups")
	check("backups")
	e.Clock.Advance(time.Minute) // newer than serve's first scheduled backup
	b.Submit(`form[action="/ui/backups"] button[type="submit"]`)
	okText("Backup ")
	b.Submit(`.ops-actions form[action$="/verify"] button[type="submit"]`)
	if h := b.Text("main h2"); h != "Restore test just run" {
		t.Fatalf("after the restore test: %q: %s", h, b.Text("main"))
	}
	okText("Passed")
	check("restore test")
	e.NoCSPReports()
}
