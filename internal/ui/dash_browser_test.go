package ui_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// colorScheme emulates prefers-color-scheme (light or dark).
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		return err
	})
}

// TestBrowserDashboardPolicyEvidence: in real Chromium, with traffic
// through the gateway over a few minutes, the dashboard's charts, the
// policies page (reload) and the evidence page (before a report, then
// Generate report and a control's drill-down) are axe-clean in light and dark mode, raise no CSP report and fit 360
// px without scrolling sideways. With $GATEHOUSE_UI_SCREENSHOTS set the
// dashboard's screenshot is saved there as dashboard.png.
func TestBrowserDashboardPolicyEvidence(t *testing.T) {
	e := uitest.Start(t, "policy:\n  dir: "+policyDir(t)+"\n"+uitest.BackupConfig(t))
	e.CreateUser("alice", "admin")
	key := mustKey(t, e)
	e.App.SampleMetrics()
	// A dozen minutes of uneven traffic: 200s, denials, and 429s from a
	// burst with no key (the pre-auth limit) are not needed: 401s do.
	for m := range 12 {
		traffic(t, e, key, 5+(m*7)%17, m%4)
	}
	if code := e.API("POST", "/v1/incidents", map[string]any{"title": "Partner key leaked", "severity": "high", "impact": "partner traffic"}, nil); code != 201 {
		t.Fatalf("open incident: HTTP %d", code)
	}
	e.API("POST", "/v1/backups", nil, nil)
	e.API("GET", "/v1/audit/checkpoint", nil, nil)

	b := uitest.NewBrowser(t, e)
	b.SignIn("alice", uitest.Password, "")
	if n := uitest.Eval[int](b, `document.querySelectorAll("svg.chart-svg[role=img]").length`); n != 4 {
		t.Fatalf("%d charts on the dashboard, want 4: %s", n, b.Text("main"))
	}
	if n := uitest.Eval[int](b, `document.querySelectorAll("svg.chart-svg rect.chart-bar").length`); n < 12 {
		t.Errorf("%d bars, want the minutes of traffic", n)
	}
	if lbl := uitest.Eval[string](b, `document.querySelector("#chart-requests-t").textContent`); lbl != "Requests per minute, last hour" {
		t.Errorf("chart title %q", lbl)
	}
	// The bars are drawn with the stylesheet's colour, not black.
	if fill := uitest.Eval[string](b, `getComputedStyle(document.querySelector("rect.chart-bar")).fill`); fill == "rgb(0, 0, 0)" || fill == "" {
		t.Errorf("bar fill %q: ui.css not applied to the chart", fill)
	}
	docScreenshot(t, b, "dashboard") // GATEHOUSE_UI_SCREENSHOTS=docs/screenshots: docs/screenshots/dashboard.png

	check := func(what string) {
		t.Helper()
		for _, scheme := range []string{"light", "dark"} {
			b.Do(colorScheme(scheme))
			if scheme == "dark" {
				// The dark palette is in force (the page's background).
				if bg := uitest.Eval[string](b, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(18, 18, 18)" {
					t.Errorf("%s: dark mode background %q", what, bg)
				}
			}
			b.Axe()
		}
		b.Do(colorScheme("light"), chromedp.EmulateViewport(360, 800))
		time.Sleep(50 * time.Millisecond)
		if w := uitest.Eval[int](b, `document.documentElement.scrollWidth`); w > 360 {
			wide := uitest.Eval[string](b, `[...document.querySelectorAll("main *")].filter(el => el.getBoundingClientRect().right > 360).slice(-3).map(el => el.outerHTML.slice(0, 120)).join(" | ")`)
			t.Errorf("%s is %d px wide at 360 px: %s", what, w, wide)
		}
		b.Do(chromedp.EmulateViewport(1280, 900))
	}
	b.Visit("/ui/")
	check("dashboard")

	b.Visit("/ui/policies")
	check("policies")
	b.Submit(`form[action="/ui/policies/reload"] button[type="submit"]`)
	if msg := b.Text("main p.ok"); !strings.HasPrefix(msg, "Policy reloaded") {
		t.Fatalf("after reload: %q", msg)
	}

	// The evidence page makes no report until asked: the form, then the
	// report (a POST with the session's token, as with JS off).
	b.Visit("/ui/evidence")
	check("evidence without a report")
	b.Submit(`form[action="/ui/evidence"] button[type="submit"]`)
	if txt := b.Text("main"); !strings.Contains(txt, "Report ") || !strings.Contains(txt, "generated") {
		t.Fatalf("after Generate report: %q", txt)
	}
	check("evidence")
	b.Visit("/ui/")
	if txt := b.Text("main"); !strings.Contains(txt, "from report") {
		t.Errorf("dashboard does not name the report: %q", txt)
	}
	b.Do(chromedp.Navigate(e.Admin+"/ui/evidence#control-CC6.1"), chromedp.WaitReady(chromedp.CSS("main")))
	b.Do(chromedp.Evaluate[chromedp.Void](`document.querySelector("#control-CC6\\.1 summary").click()`))
	if open := uitest.Eval[bool](b, `document.getElementById("control-CC6.1").open`); !open {
		t.Error("the control's drill-down does not open")
	}
	if txt := b.Text("#control-CC6\\.1"); !strings.Contains(txt, "finding(s)") {
		t.Errorf("drill-down: %q", txt)
	}
	b.Axe()
	e.NoCSPReports()
}
