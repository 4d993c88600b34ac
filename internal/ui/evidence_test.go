package ui_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// reportsMade counts the compliance.report events: each is one report
// the API generated.
func reportsMade(t *testing.T, e *uitest.Env) int {
	t.Helper()
	var page struct{ Entries []any }
	e.API("GET", "/v1/audit?type=compliance.report&limit=1000", nil, &page)
	return len(page.Entries)
}

// reportID is the id of the report a page shows.
func reportID(t *testing.T, body string) string {
	t.Helper()
	m := regexp.MustCompile(`Report <code>([^<]+)</code>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no report id in %.600s", body)
	}
	return m[1]
}

// TestEvidenceJSOff: a view makes no report; the page says there is none
// yet and offers the Generate report form (POST with the session's CSRF
// token, JS off), which makes one through GET /v1/evidence and lands back
// on the page: the status counts, each control's findings under its
// anchor, the three downloads through the session (a signed JSON, the
// HTML page and OSCAL carrying it). Bad input is the API's 400 on the
// page, never a 500. An auditor reads and generates it too.
func TestEvidenceJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("carol", "auditor")
	f := newForm(t, e)
	dash := f.signIn("carol", uitest.Password)
	if !strings.Contains(dash, "No control status yet") || !strings.Contains(dash, `<a href="/ui/evidence">Generate a report</a>`) {
		t.Errorf("dashboard before any report or snapshot:\n%s", dash)
	}
	res, body := f.get("/ui/evidence")
	if res.StatusCode != 200 {
		t.Fatalf("evidence: HTTP %d %s", res.StatusCode, body)
	}
	for _, want := range []string{`<form method="post" action="/ui/evidence"`, `name="csrf_token"`, "Generate report", "No control status yet"} {
		if !strings.Contains(body, want) {
			t.Errorf("evidence page without a report lacks %q", want)
		}
	}
	if strings.Contains(body, "Report <code>") || reportsMade(t, e) != 0 {
		t.Fatalf("a view made a report (%d compliance.report events)", reportsMade(t, e))
	}
	// No report yet: a download says so and makes none.
	if res, b := f.get("/ui/evidence?format=json"); res.StatusCode != http.StatusNotFound || !strings.Contains(b, "generate one on the evidence page first") || reportsMade(t, e) != 0 {
		t.Errorf("download before a report: HTTP %d: %.300s", res.StatusCode, b)
	}

	res, body = f.post("/ui/evidence", url.Values{"csrf_token": {token(t, body)}, "period": {""}})
	if res.StatusCode != 200 || res.Request.URL.String() != e.Admin+"/ui/evidence" {
		t.Fatalf("generate: HTTP %d at %s: %.300s", res.StatusCode, res.Request.URL, body)
	}
	for _, want := range []string{"Report <code>", `<li class="status-fail"><strong>`, `href="#control-CC6.1"`, `<details class="ev-control" id="control-CC6.1">`,
		"Cited audit entries", `href="/ui/evidence?format=html"`, `href="/ui/evidence?format=json"`, `href="/ui/evidence?format=oscal"`, "Generate report"} {
		if !strings.Contains(body, want) {
			t.Errorf("evidence page lacks %q", want)
		}
	}
	for _, bad := range []string{"style=", "<script>"} {
		if strings.Contains(body, bad) {
			t.Errorf("evidence page contains %q", bad)
		}
	}
	id := reportID(t, body)
	if n := reportsMade(t, e); n != 1 {
		t.Fatalf("%d compliance.report events after one Generate report", n)
	}
	// The dashboard shows the report's summary, with its id and age.
	_, dash = f.get("/ui/")
	if !regexp.MustCompile(`As of [0-9-]+ [0-9:]+ UTC \(just now\), from report <code>` + id + `</code>`).MatchString(dash) {
		t.Errorf("dashboard does not show report %s's summary:\n%s", id, dash)
	}

	// A report of another period: its page, its downloads.
	const period = "2026-01-01..2026-12-31"
	res, body = f.post("/ui/evidence", url.Values{"csrf_token": {token(t, body)}, "period": {period}})
	if res.StatusCode != 200 || res.Request.URL.Query().Get("period") != period || reportID(t, body) == id {
		t.Fatalf("generate for %s: HTTP %d at %s", period, res.StatusCode, res.Request.URL)
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
			res, b := f.get("/ui/evidence?format=" + tt.format + "&period=" + period)
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

	made := reportsMade(t, e)
	for _, tc := range []struct{ path, want string }{
		{"/ui/evidence?period=yesterday", "period: must be FROM..TO"},
		{"/ui/evidence?format=pdf", "format: must be html, json or oscal"},
		{"/ui/evidence?format=json&period=2026-12-31..2026-01-01", "period: FROM must be before TO"},
		{"/ui/evidence?control=x", "control: unknown parameter"},
		{"/ui/evidence?fresh=1", "fresh: unknown parameter"},
	} {
		res, b := f.get(tc.path)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(b, tc.want) || strings.Contains(res.Header.Get("Content-Disposition"), "attachment") {
			t.Errorf("%s: HTTP %d, want 400 with %q: %.300s", tc.path, res.StatusCode, tc.want, b)
		}
	}
	// A bad period sent to Generate report: the API's 400 on the page,
	// with what was typed kept.
	_, body = f.get("/ui/evidence")
	res, body = f.post("/ui/evidence", url.Values{"csrf_token": {token(t, body)}, "period": {"2026-12-31..2026-01-01"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "period: FROM must be before TO") || !strings.Contains(body, `value="2026-12-31..2026-01-01"`) {
		t.Errorf("generate with a bad period: HTTP %d: %.500s", res.StatusCode, body)
	}
	if n := reportsMade(t, e); n != made {
		t.Errorf("bad input made %d report(s)", n-made)
	}
	// Signed out, a download is the sign-in page, not the report.
	g := newForm(t, e)
	g.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if res, _ := g.get("/ui/evidence?format=json"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("signed out download: HTTP %d", res.StatusCode)
	}
	if res, _ := g.post("/ui/evidence", url.Values{}); res.StatusCode != http.StatusSeeOther || reportsMade(t, e) != made {
		t.Errorf("signed out generate: HTTP %d", res.StatusCode)
	}
	e.NoCSPReports()
}

// TestEvidenceGenerateRefused: Generate report without the session's
// CSRF token, with another session's, or from another origin is refused
// before any report is made, whatever the role.
func TestEvidenceGenerateRefused(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("carol", "auditor")
	e.CreateUser("sam", "security")
	other := newForm(t, e)
	other.signIn("sam", uitest.Password)
	_, otherPage := other.get("/ui/evidence")
	for _, user := range []string{"carol", "sam"} {
		f := newForm(t, e)
		f.signIn(user, uitest.Password)
		_, page := f.get("/ui/evidence")
		for _, tc := range []struct {
			name    string
			form    url.Values
			headers []string
		}{
			{"no token", url.Values{"period": {""}}, nil},
			{"empty token", url.Values{"csrf_token": {""}}, nil},
			{"another session's token", url.Values{"csrf_token": {token(t, otherPage)}}, nil},
			{"cross-origin", url.Values{"csrf_token": {token(t, page)}}, []string{"Sec-Fetch-Site: cross-site", "Origin: https://evil.example"}},
		} {
			t.Run(user+"/"+tc.name, func(t *testing.T) {
				res, body := f.post("/ui/evidence", tc.form, tc.headers...)
				if res.StatusCode != http.StatusForbidden || strings.Contains(body, "Report <code>") {
					t.Errorf("HTTP %d: %.300s", res.StatusCode, body)
				}
			})
		}
	}
	if n := reportsMade(t, e); n != 0 {
		t.Errorf("%d report(s) made by refused forms", n)
	}
	// The roles that read evidence generate one with the token.
	for _, user := range []string{"carol", "sam"} {
		f := newForm(t, e)
		f.signIn(user, uitest.Password)
		_, page := f.get("/ui/evidence")
		if res, body := f.post("/ui/evidence", url.Values{"csrf_token": {token(t, page)}}); res.StatusCode != 200 || !strings.Contains(body, "Report <code>") {
			t.Errorf("%s generates: HTTP %d: %.300s", user, res.StatusCode, body)
		}
	}
	if n := reportsMade(t, e); n != 2 {
		t.Errorf("%d reports, want 2", n)
	}
}

// TestEvidenceReportKept: a report reads the whole audit log, so the page
// keeps the session's report: a reload and the downloads show the same
// one (no new compliance.report), Generate report makes another, and
// another session gets none of it (it sees the newest status summary,
// any caller's, and generates its own).
func TestEvidenceReportKept(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("carol", "auditor")
	f := newForm(t, e)
	f.signIn("carol", uitest.Password)
	_, page := f.get("/ui/evidence")
	_, body := f.post("/ui/evidence", url.Values{"csrf_token": {token(t, page)}})
	first, n := reportID(t, body), reportsMade(t, e)
	if n != 1 {
		t.Fatalf("%d compliance.report events after one Generate report", n)
	}
	_, body = f.get("/ui/evidence")
	if got := reportID(t, body); got != first || reportsMade(t, e) != n {
		t.Errorf("a reload made a new report (%s, was %s; %d reports, was %d)", got, first, reportsMade(t, e), n)
	}
	_, dl := f.get("/ui/evidence?format=json")
	if !strings.Contains(dl, first) || reportsMade(t, e) != n {
		t.Errorf("the JSON download is not the report shown (%s)", first)
	}
	res, body := f.post("/ui/evidence", url.Values{"csrf_token": {token(t, body)}})
	if res.Request.URL.String() != e.Admin+"/ui/evidence" {
		t.Errorf("a new report lands on %s, want the plain address", res.Request.URL)
	}
	second := reportID(t, body)
	if second == first || reportsMade(t, e) != n+1 {
		t.Errorf("Generate report: %s (was %s), %d reports (was %d)", second, first, reportsMade(t, e), n)
	}
	g := newForm(t, e)
	g.signIn("carol", uitest.Password)
	_, body = g.get("/ui/evidence")
	if strings.Contains(body, "Report <code>") || reportsMade(t, e) != n+1 {
		t.Errorf("another session was shown the first session's report, or made one")
	}
	if !strings.Contains(body, "No report of this period in this session") || !strings.Contains(body, "from report <code>"+second+"</code>") {
		t.Errorf("another session's page does not show the newest summary (report %s):\n%s", second, body)
	}
	if res, _ := g.get("/ui/evidence?format=json"); res.StatusCode != http.StatusNotFound {
		t.Errorf("another session downloads the first session's report: HTTP %d", res.StatusCode)
	}
}

// TestEvidenceObservedCut: a finding that observed a long list (here the
// hashes of 1,000 keys that are not the server's) shows its first 16 KiB
// on the page and says so; the download carries it whole.
func TestEvidenceObservedCut(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("carol", "auditor")
	st := e.App.Store()
	now := time.Now().UTC()
	const n = 1000
	for i := range n {
		k := &store.Key{ID: fmt.Sprintf("key_cut%08d", i), Name: fmt.Sprintf("cut-%d", i), Scopes: []string{"demo:read"},
			CreatedAt: now, Hash: []byte(rand.Text())}
		if err := st.CreateKey(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
	f := newForm(t, e)
	f.signIn("carol", uitest.Password)
	_, page := f.get("/ui/evidence")
	_, body := f.post("/ui/evidence", url.Values{"csrf_token": {token(t, page)}})
	last := fmt.Sprintf("key_cut%08d", n-1)
	if !regexp.MustCompile(`The first 16 KiB of [0-9]+ KiB observed; the downloads carry it whole.`).MatchString(body) {
		t.Errorf("the page does not say an observed list was cut")
	}
	for _, pre := range regexp.MustCompile(`(?s)<pre class="ev-observed"[^>]*>(.*?)</pre>`).FindAllStringSubmatch(body, -1) {
		if shown := html.UnescapeString(pre[1]); len(shown) > 16<<10 || strings.Contains(shown, last) {
			t.Errorf("observed data of %d bytes shown whole", len(shown))
		}
	}
	if _, dl := f.get("/ui/evidence?format=json"); !strings.Contains(dl, last) {
		t.Errorf("the JSON download lacks %s", last)
	}
}
