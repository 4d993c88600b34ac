package ui_test

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/ui"
	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// cspCounter is gatehouse_ui_csp_reports_total as the admin listener's
// /metrics shows it.
func cspCounter(t *testing.T, e *uitest.Env) float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", e.Admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+uitest.AdminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("/metrics: HTTP %d", res.StatusCode)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "gatehouse_ui_csp_reports_total "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("counter %q: %v", v, err)
			}
			return f
		}
	}
	t.Fatal("gatehouse_ui_csp_reports_total is not exposed")
	return 0
}

// failRecorder is a testing.TB that records failures instead of failing.
type failRecorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *failRecorder) Helper() {}
func (r *failRecorder) Errorf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
}

// TestBrowserCSPViolationIsReported: a console page in Chromium that
// breaks the CSP (an image from elsewhere, an inline style) makes the
// browser send a report, which the console counts in
// gatehouse_ui_csp_reports_total and logs without the URL's query; and
// NoCSPReports then fails.
func TestBrowserCSPViolationIsReported(t *testing.T) {
	e := uitest.Start(t, "")
	b := uitest.NewBrowser(t, e)
	b.Visit("/ui/login")
	e.NoCSPReports() // none yet, after waiting for the browser's queue
	before := cspCounter(t, e)

	start := time.Now()
	b.Do(chromedp.Evaluate[chromedp.Void](`(() => {
		const i = document.createElement("img");
		i.src = "https://example.invalid/pixel.png?secret=hunter2";
		i.alt = "";
		document.body.append(i);
		document.body.setAttribute("style", "color: red");
	})()`))
	for e.App.Console().CSPReports() == 0 {
		if time.Since(start) > 2*uitest.ReportDelay {
			t.Fatalf("no CSP report within %v of the violation", 2*uitest.ReportDelay)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("first report after %v", time.Since(start).Round(time.Millisecond))
	time.Sleep(uitest.ReportDelay) // the rest of the batch
	if got := cspCounter(t, e); got < before+1 {
		t.Fatalf("gatehouse_ui_csp_reports_total %v, want at least %v", got, before+1)
	}
	logs := e.Logs.String()
	if !strings.Contains(logs, "https://example.invalid/pixel.png") || !strings.Contains(logs, "img-src") {
		t.Errorf("the report's blocked URL and directive are not logged:\n%s", logs)
	}
	if strings.Contains(logs, "hunter2") {
		t.Error("the blocked URL's query was logged")
	}
	rec := &failRecorder{TB: t}
	e.CheckNoCSPReports(rec)
	if !rec.failed {
		t.Fatal("NoCSPReports passed with a report received")
	}
}

// TestCSPReportAbuse: bodies the endpoint must refuse with a 4xx (never a
// 5xx), what it logs of a report (no query, fragment, user info or
// sample), and a flood refused with 429 past the minute's budget.
func TestCSPReportAbuse(t *testing.T) {
	e := uitest.Start(t, "")
	post := func(ct, body string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", e.Admin+ui.CSPReportPath, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Cookie", "gatehouse_session=cookie-secret-value")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	tests := []struct {
		name, ct, body string
		want           int
	}{
		{"huge", "application/reports+json", `[{"type":"csp-violation","body":{"documentURL":"` + strings.Repeat("a", 1<<20) + `"}}]`, 413},
		{"not json", "application/csp-report", "\x00\xffnot json at all", 400},
		{"json, no report", "application/reports+json", `[{"type":"deprecation","body":{}}]`, 400},
		{"wrong shape", "application/reports+json", `{"csp-report": 7}`, 400},
		{"no content type", "", `{}`, 415},
		{"html form", "application/x-www-form-urlencoded", `a=b`, 415},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := post(tt.ct, tt.body); got != tt.want {
				t.Fatalf("HTTP %d, want %d", got, tt.want)
			}
		})
	}
	if res, err := http.Get(e.Admin + ui.CSPReportPath); err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %v %v", res, err)
	}

	legacy := `{"csp-report":{"document-uri":"http://u:pw@x/ui/keys?token=sekrit#frag","violated-directive":"img-src",` +
		`"blocked-uri":"https://evil.example/p?k=sekrit2","script-sample":"sample-sekrit3","referrer":"http://x/?ref=sekrit4"}}`
	if got := post("application/csp-report", legacy); got != 204 {
		t.Fatalf("legacy report: HTTP %d", got)
	}
	logs := e.Logs.String()
	for _, secret := range []string{"sekrit", "pw@", "frag", "cookie-secret-value"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logged %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, `"document":"http://x/ui/keys"`) || !strings.Contains(logs, `"blocked":"https://evil.example/p"`) {
		t.Errorf("report not logged as scheme, host and path:\n%s", logs)
	}

	// A flood: past the minute's budget, 429 and not counted.
	one := `[{"type":"csp-violation","body":{"documentURL":"http://x/ui/","effectiveDirective":"img-src","blockedURL":"data"}}]`
	codes := map[int]int{}
	for range 700 {
		codes[post("application/reports+json", one)]++
	}
	if codes[204] == 0 || codes[429] == 0 || len(codes) != 2 {
		t.Fatalf("flood answers %v, want 204s then 429s", codes)
	}
	if n := e.App.Console().CSPReports(); n > 600 {
		t.Fatalf("%d reports counted in a minute, want at most 600", n)
	}
	if got := cspCounter(t, e); got != float64(e.App.Console().CSPReports()) {
		t.Fatalf("metric %v, console %d", got, e.App.Console().CSPReports())
	}
	if strings.Count(e.Logs.String(), "refused for the rest of the minute") != 1 {
		t.Error("the refusal is not logged once")
	}
}
