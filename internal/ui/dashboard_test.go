package ui_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// traffic sends n requests through the gateway with key (200s) and
// denied ones without a key (401s), then steps the server's clock a
// minute and takes a sample, so the next minute starts.
func traffic(t *testing.T, e *uitest.Env, key string, ok, denied int) {
	t.Helper()
	for range ok {
		e.Gate("/api/x", key)
	}
	for range denied {
		e.Gate("/api/x", "gk_wrong")
	}
	if err := e.App.SampleMetrics(); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(time.Minute)
}

func mustKey(t *testing.T, e *uitest.Env) string {
	t.Helper()
	var k struct{ Key string }
	if code := e.API("POST", "/v1/keys", map[string]any{"name": "traffic", "scopes": []string{"demo:read"}}, &k); code != 201 {
		t.Fatalf("create key: HTTP %d", code)
	}
	return k.Key
}

// TestDashboardJSOff: the charts hold the traffic the gateway served,
// each part reads its API, and a part without its API (no backup
// destination) says so in place.
func TestDashboardJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	key := mustKey(t, e)
	e.App.SampleMetrics()
	traffic(t, e, key, 7, 2)
	traffic(t, e, key, 3, 0)
	if code := e.API("POST", "/v1/incidents", map[string]any{"title": "<b>leaked</b> key", "severity": "high", "impact": "one key"}, nil); code != 201 {
		t.Fatalf("open incident: HTTP %d", code)
	}
	e.API("GET", "/v1/audit/checkpoint", nil, nil) // signs one
	f := newForm(t, e)
	body := f.signIn("alice", uitest.Password)
	for _, want := range []string{
		`<svg class="chart-svg"`, `aria-labelledby="chart-requests-t chart-requests-d"`,
		"Requests per minute, last hour from", "12 request(s), 2 denied (401/403), 0 rate-limited (429)",
		"Denials (401 and 403) per minute", "Rate-limited (429) per minute", "p99 latency per minute",
		"Backups</a></h2>", "Not available: backups are not configured on this server",
		"Latest signed checkpoint", "No control status yet", "<strong>1</strong> open.", "&lt;b&gt;leaked&lt;/b&gt; key",
		"No access review completed yet", `href="/ui/evidence"`, `href="/ui/reviews"`, `href="/ui/incidents?id=`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	for _, bad := range []string{"style=", "<style", "<script>", "onload", "NaN"} {
		if strings.Contains(body, bad) {
			t.Errorf("dashboard contains %q", bad)
		}
	}
	// The bars: the minutes with traffic (and the current one).
	if n := strings.Count(body, `class="chart-bar"`); n < 6 {
		t.Errorf("%d bars, want the minutes of three charts", n)
	}
	// The control status is the newest report's or snapshot's: a view
	// makes no report. The day's snapshot shows, with its age.
	if n := reportsMade(t, e); n != 0 {
		t.Errorf("dashboard views made %d report(s)", n)
	}
	if ok, err := e.App.Snapshot(t.Context()); err != nil || !ok {
		t.Fatalf("snapshot: %v %v", ok, err)
	}
	_, body = f.get("/ui/")
	day := e.Clock.Now().UTC().Format(time.DateOnly)
	for _, want := range []string{`<li class="status-fail"><strong>`, "Failing: <code>", "(just now), from the daily snapshot of " + day + ".", `<a href="/ui/evidence">Evidence page</a>`} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard after the snapshot lacks %q", want)
		}
	}
	if n := reportsMade(t, e); n != 0 {
		t.Errorf("dashboard views made %d report(s)", n)
	}
	e.NoCSPReports()
}

// TestDashboardRoles: an auditor sees the traffic, and in place of the
// parts its role may not read, the API's refusal; the page is a 200.
func TestDashboardRoles(t *testing.T) {
	e := uitest.Start(t, uitest.BackupConfig(t))
	e.CreateUser("carol", "auditor")
	e.CreateUser("alice", "admin")
	f := newForm(t, e)
	body := f.signIn("carol", uitest.Password)
	if !strings.Contains(body, `<svg class="chart-svg"`) {
		t.Error("auditor: no charts")
	}
	if !regexp.MustCompile(`Backups</a></h2>\s*<p class="error">Not available: role auditor may not read backups`).MatchString(body) {
		t.Errorf("auditor: backups part does not show the refusal:\n%s", body)
	}
	g := newForm(t, e)
	body = g.signIn("alice", uitest.Password)
	if !strings.Contains(body, "Last passing restore test") {
		t.Errorf("admin with backups: no restore test line:\n%s", body)
	}
	res, _ := g.get("/ui/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("dashboard: HTTP %d", res.StatusCode)
	}
}
