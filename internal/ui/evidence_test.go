package ui_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// TestEvidenceJSOff: the report with its status counts and each control's
// findings under its anchor; the three downloads through the session (a
// signed JSON, the HTML page and OSCAL carrying it); a bad period is the
// API's 400 on the page, never a 500. An auditor reads it too.
func TestEvidenceJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("carol", "auditor")
	f := newForm(t, e)
	f.signIn("carol", uitest.Password)
	res, body := f.get("/ui/evidence")
	if res.StatusCode != 200 {
		t.Fatalf("evidence: HTTP %d %s", res.StatusCode, body)
	}
	for _, want := range []string{"Report <code>", `<li class="status-fail"><strong>`, `href="#control-CC6.1"`, `<details class="ev-control" id="control-CC6.1">`,
		"Cited audit entries", `href="/ui/evidence?format=html"`, `href="/ui/evidence?format=json"`, `href="/ui/evidence?format=oscal"`} {
		if !strings.Contains(body, want) {
			t.Errorf("evidence page lacks %q", want)
		}
	}
	for _, bad := range []string{"style=", "<script>"} {
		if strings.Contains(body, bad) {
			t.Errorf("evidence page contains %q", bad)
		}
	}
	if regexp.MustCompile(`Report <code>[^<]+</code>`).FindString(body) == "" {
		t.Error("no report id")
	}

	tests := []struct {
		format, ctype, ext string
		check              func(t *testing.T, b string)
	}{
		{"json", "application/json", ".json", func(t *testing.T, b string) {
			var r struct {
				ID, Signature string
				Controls      []any
			}
			if err := json.Unmarshal([]byte(b), &r); err != nil || r.Signature == "" || len(r.Controls) == 0 {
				t.Fatalf("not a signed report (%v): %.200s", err, b)
			}
		}},
		{"html", "text/html; charset=utf-8", ".html", func(t *testing.T, b string) {
			if !strings.Contains(b, `<pre hidden id="gatehouse-report">`) {
				t.Fatalf("HTML report without its signed JSON: %.200s", b)
			}
		}},
		{"oscal", "application/json", ".oscal.json", func(t *testing.T, b string) {
			var d map[string]any
			if err := json.Unmarshal([]byte(b), &d); err != nil || d["assessment-results"] == nil {
				t.Fatalf("not OSCAL assessment results (%v): %.200s", err, b)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			res, b := f.get("/ui/evidence?format=" + tt.format + "&period=2026-01-01..2026-12-31")
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != tt.ctype {
				t.Fatalf("HTTP %d %s: %.200s", res.StatusCode, res.Header.Get("Content-Type"), b)
			}
			cd := res.Header.Get("Content-Disposition")
			if !strings.HasPrefix(cd, `attachment; filename="evidence-`) || !strings.HasSuffix(cd, tt.ext+`"`) {
				t.Fatalf("Content-Disposition %q", cd)
			}
			if res.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", res.Header.Get("Cache-Control"))
			}
			tt.check(t, b)
		})
	}

	for _, tc := range []struct{ path, want string }{
		{"/ui/evidence?period=yesterday", "period: must be FROM..TO"},
		{"/ui/evidence?format=pdf", "format: must be html, json or oscal"},
		{"/ui/evidence?format=json&period=2026-12-31..2026-01-01", "period: FROM must be before TO"},
		{"/ui/evidence?control=x", "control: unknown parameter"},
	} {
		res, b := f.get(tc.path)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(b, tc.want) || strings.Contains(res.Header.Get("Content-Disposition"), "attachment") {
			t.Errorf("%s: HTTP %d, want 400 with %q: %.300s", tc.path, res.StatusCode, tc.want, b)
		}
	}
	// Signed out, a download is the sign-in page, not the report.
	g := newForm(t, e)
	g.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if res, _ := g.get("/ui/evidence?format=json"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("signed out download: HTTP %d", res.StatusCode)
	}
	e.NoCSPReports()
}

// TestEvidenceReportKept: a report reads the whole audit log, so the page
// keeps the session's report: a reload and the downloads show the same
// one (no new compliance.report), "Make a new report" makes another and
// lands back on the plain address, and another session gets its own.
func TestEvidenceReportKept(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("carol", "auditor")
	f := newForm(t, e)
	f.signIn("carol", uitest.Password)
	reports := func() int {
		t.Helper()
		var page struct{ Entries []any }
		e.API("GET", "/v1/audit?type=compliance.report&limit=1000", nil, &page)
		return len(page.Entries)
	}
	id := func(body string) string {
		t.Helper()
		m := regexp.MustCompile(`Report <code>([^<]+)</code>`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no report id in %.300s", body)
		}
		return m[1]
	}
	_, body := f.get("/ui/evidence")
	first, n := id(body), reports()
	if n < 1 {
		t.Fatalf("%d compliance.report events after the first view", n)
	}
	_, body = f.get("/ui/evidence")
	if got := id(body); got != first || reports() != n {
		t.Errorf("a reload made a new report (%s, was %s; %d reports, was %d)", got, first, reports(), n)
	}
	_, dl := f.get("/ui/evidence?format=json")
	if !strings.Contains(dl, first) || reports() != n {
		t.Errorf("the JSON download is not the report shown (%s)", first)
	}
	res, body := f.get("/ui/evidence?fresh=1")
	if res.Request.URL.String() != e.Admin+"/ui/evidence" {
		t.Errorf("a new report lands on %s, want the plain address", res.Request.URL)
	}
	if got := id(body); got == first || reports() != n+1 {
		t.Errorf("Make a new report: %s (was %s), %d reports (was %d)", got, first, reports(), n)
	}
	g := newForm(t, e)
	g.signIn("carol", uitest.Password)
	g.get("/ui/evidence")
	if reports() != n+2 {
		t.Errorf("another session was shown the first session's report")
	}
}
