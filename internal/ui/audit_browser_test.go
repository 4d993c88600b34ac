package ui_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// ScreenshotsEnv names a directory (relative to the module root, or
// absolute) the browser tests copy their documentation screenshots to:
//
//	GATEHOUSE_UI_SCREENSHOTS=docs/screenshots go test ./internal/ui -run TestBrowserAuditViewer
//
// writes docs/screenshots/audit.png and docs/screenshots/audit-entry.png.
const ScreenshotsEnv = "GATEHOUSE_UI_SCREENSHOTS"

// docScreenshot takes a PNG of the page and, with $GATEHOUSE_UI_SCREENSHOTS
// set, copies it there as name.png.
func docScreenshot(t *testing.T, b *uitest.Browser, name string) {
	t.Helper()
	p := b.Screenshot(name)
	dir := os.Getenv(ScreenshotsEnv)
	if dir == "" || p == "" {
		return
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", "..", dir) // from internal/ui to the module root
	}
	png, err := os.ReadFile(p) // #nosec G304 -- the screenshot this test just wrote
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("%s is not a PNG", p)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil { // #nosec G306 -- documentation, committed
		t.Fatal(err)
	}
}

// TestBrowserAuditViewer: in Chromium, sign in, create a key in the UI
// and use it at the gateway, revoke it in the UI and see the gateway
// refuse it, then find both events in the audit viewer, each with its
// inclusion proof verified; axe-core clean, no CSP report.
func TestBrowserAuditViewer(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	b := uitest.NewBrowser(t, e)
	b.SignIn("alice", uitest.Password, "")

	b.Visit("/ui/keys")
	b.Fill(map[string]string{"name": "audit <demo>", "scopes": "demo:read"})
	b.Submit(`form[method="post"][action="/ui/keys"] button[type="submit"]`)
	key := uitest.Eval[string](b, `document.getElementById("secret").value`)
	if code := e.Gate("/api/x", key); code != 200 {
		t.Fatalf("gateway with the key made in the UI: %d", code)
	}
	b.Visit("/ui/keys")
	b.Submit(`form[action$="/revoke"] button[type="submit"]`)
	if code := e.Gate("/api/x", key); code != 401 {
		t.Fatalf("gateway with the key revoked in the UI: %d, want 401", code)
	}

	b.Visit("/ui/audit")
	b.Fill(map[string]string{"type": "admin.key.*"})
	b.Submit(`form[action="/ui/audit"] button[type="submit"]`)
	rows := uitest.Eval[[]string](b, `[...document.querySelectorAll("table.audit tbody tr")].map(tr => tr.cells[2].textContent + " " + tr.cells[0].querySelector("a").getAttribute("href"))`)
	links := map[string]string{}
	for _, r := range rows {
		typ, href, _ := strings.Cut(r, " ")
		links[typ] = href
	}
	if links["admin.key.create"] == "" || links["admin.key.revoke"] == "" || len(rows) != 2 {
		t.Fatalf("audit rows %q: want one key create and one revoke", rows)
	}
	b.Axe()
	docScreenshot(t, b, "audit")

	for _, typ := range []string{"admin.key.revoke", "admin.key.create"} {
		b.Visit(links[typ])
		if v := b.Text("main p[role=status]"); !strings.HasPrefix(v, "✔ Verified") && !strings.Contains(v, "Verified:") {
			t.Fatalf("%s: %q", typ, v)
		}
		if txt := b.Text("main"); !strings.Contains(txt, typ) || !strings.Contains(txt, "tree size") || strings.Contains(txt, "NOT verified") {
			t.Fatalf("%s detail: %s", typ, txt)
		}
		b.Axe()
	}
	if txt := b.Text("main"); !strings.Contains(txt, "audit <demo>") {
		t.Errorf("the key's name is not shown as text: %s", txt)
	}
	docScreenshot(t, b, "audit-entry")
	e.NoCSPReports()
}
