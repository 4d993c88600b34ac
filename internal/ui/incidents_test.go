package ui_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

var incidentIDRE = regexp.MustCompile(`id=(inc_[a-z0-9]+)`)

func TestIncidentsFormFlowJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("bob", "security")
	var key struct{ ID, Key string }
	if code := e.API("POST", "/v1/keys", map[string]any{"name": "leaked", "scopes": []string{"demo:read"}}, &key); code != 201 {
		t.Fatalf("create key: %d", code)
	}
	f := newForm(t, e)
	f.signIn("bob", uitest.Password)
	res, body := f.get("/ui/incidents")
	if res.StatusCode != 200 {
		t.Fatalf("incidents: HTTP %d %s", res.StatusCode, body)
	}
	tok := token(t, body)

	// Bad input: the API's 400, the form kept.
	res, body = f.post("/ui/incidents", url.Values{"title": {"Key leaked"}, "severity": {"dire"}, "impact": {"x"}, "csrf_token": {tok}})
	if res.StatusCode != 400 || !strings.Contains(body, "severity: must be low, medium, high or critical") || !strings.Contains(body, `value="Key leaked"`) {
		t.Fatalf("bad severity: HTTP %d %s", res.StatusCode, body)
	}
	if res, body := f.post("/ui/incidents", url.Values{"title": {"x"}, "severity": {"low"}, "impact": {"x"}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("open without a token: HTTP %d %s", res.StatusCode, body)
	}
	res, body = f.post("/ui/incidents", url.Values{"title": {"Key <i>leaked</i>"}, "severity": {"high"}, "impact": {"partner traffic"}, "csrf_token": {tok}})
	m := incidentIDRE.FindStringSubmatch(res.Request.URL.RawQuery)
	if res.StatusCode != 200 || m == nil || !strings.Contains(body, "Incident opened.") {
		t.Fatalf("open: HTTP %d at %s %s", res.StatusCode, res.Request.URL, body)
	}
	id := m[1]
	if strings.Contains(body, "<i>leaked") {
		t.Fatal("an incident title's HTML is not escaped")
	}
	post := func(path string, v url.Values) (*http.Response, string) {
		e.Clock.Advance(time.Second) // the server's clock is a fake one: events a second apart
		v.Set("csrf_token", tok)
		return f.post("/ui/incidents/"+id+path, v)
	}

	res, body = post("/notes", url.Values{"text": {"<script>alert(1)</script> seen in logs"}})
	if res.StatusCode != 200 || !strings.Contains(body, "Note added.") {
		t.Fatalf("note: HTTP %d %s", res.StatusCode, body)
	}
	if strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt; seen in logs") {
		t.Fatal("a note's HTML is not escaped")
	}
	if res, body := post("/notes", url.Values{"text": {"  "}}); res.StatusCode != 400 || !strings.Contains(body, "text: required") {
		t.Fatalf("empty note: HTTP %d %s", res.StatusCode, body)
	}

	// Containment asks first; only the confirmed form revokes.
	res, body = post("/contain", url.Values{"action": {"revoke_principal"}, "principal": {"api_key:" + key.ID}})
	if res.StatusCode != 200 || !strings.Contains(body, "Yes, revoke api_key:"+key.ID+" now") {
		t.Fatalf("contain without confirmation: HTTP %d %s", res.StatusCode, body)
	}
	if code := e.Gate("/api/x", key.Key); code != 200 {
		t.Fatalf("key refused before the containment was confirmed: %d", code)
	}
	res, body = post("/contain", url.Values{"action": {"revoke_principal"}, "principal": {"api_key:" + key.ID}, "confirm": {"yes"}})
	if res.StatusCode != 200 || !strings.Contains(body, "Containment recorded.") || !strings.Contains(body, "Contained: revoked api_key:"+key.ID) {
		t.Fatalf("contain: HTTP %d %s", res.StatusCode, body)
	}
	if code := e.Gate("/api/x", key.Key); code != 401 {
		t.Fatalf("contained key: gateway %d, want 401", code)
	}
	for _, tt := range []struct {
		name string
		v    url.Values
		code int
		want string
	}{
		{"bad time", url.Values{"action": {"revoke_before"}, "before": {"yesterday"}, "confirm": {"yes"}}, 400, "revoke_before: must be an RFC 3339 time"},
		{"empty allow", url.Values{"action": {"lockdown"}, "allow": {""}}, 400, "allow: name at least one role or principal"},
		{"unknown allow", url.Values{"action": {"lockdown"}, "allow": {"user:nobody"}, "confirm": {"yes"}}, 400, "no such user"},
		{"no action", url.Values{"action": {"explode"}}, 400, "action: must be revoke_principal, revoke_before or lockdown"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, body := post("/contain", tt.v)
			if res.StatusCode != tt.code || !strings.Contains(body, tt.want) {
				t.Fatalf("HTTP %d, want %d with %q: %s", res.StatusCode, tt.code, tt.want, body)
			}
		})
	}

	// Lockdown: the gateway answers 503 until it is lifted; closing
	// waits for the lift.
	res, body = post("/contain", url.Values{"action": {"lockdown"}, "allow": {"admin"}, "confirm": {"yes"}})
	if res.StatusCode != 200 || !strings.Contains(body, "holds the gateway in lockdown") {
		t.Fatalf("lockdown: HTTP %d %s", res.StatusCode, body)
	}
	var other struct{ Key string }
	e.API("POST", "/v1/keys", map[string]any{"name": "bystander", "scopes": []string{"demo:read"}}, &other)
	if code := e.Gate("/api/x", other.Key); code != 503 {
		t.Fatalf("gateway in lockdown: %d, want 503", code)
	}
	if res, body := post("/close", url.Values{}); res.StatusCode != 409 || !strings.Contains(body, "lift it first") {
		t.Fatalf("close in lockdown: HTTP %d %s", res.StatusCode, body)
	}
	if res, body := post("/lift", url.Values{}); res.StatusCode != 200 || !strings.Contains(body, "Lockdown lifted") {
		t.Fatalf("lift: HTTP %d %s", res.StatusCode, body)
	}
	if code := e.Gate("/api/x", other.Key); code != 200 {
		t.Fatalf("gateway after the lift: %d", code)
	}
	if res, body := post("/review", url.Values{"summary": {"early"}}); res.StatusCode != 409 || !strings.Contains(body, "close it first") {
		t.Fatalf("review while open: HTTP %d %s", res.StatusCode, body)
	}
	res, body = post("/close", url.Values{})
	if res.StatusCode != 200 || !strings.Contains(body, "Incident closed") || !strings.Contains(body, "Post-incident review") {
		t.Fatalf("close: HTTP %d %s", res.StatusCode, body)
	}
	if res, body := post("/notes", url.Values{"text": {"late"}}); res.StatusCode != 409 || !strings.Contains(body, "is closed") {
		t.Fatalf("note on a closed incident: HTTP %d %s", res.StatusCode, body)
	}
	res, body = post("/review", url.Values{"summary": {"Rotated <b>all</b> partner keys."}})
	if res.StatusCode != 200 || !strings.Contains(body, "Post-incident review recorded.") || !strings.Contains(body, "Rotated &lt;b&gt;all&lt;/b&gt;") {
		t.Fatalf("review: HTTP %d %s", res.StatusCode, body)
	}
	if strings.Contains(body, "incident.open") {
		t.Fatal("audit events shown without being asked for")
	}
	res, body = f.get("/ui/incidents?id=" + id + "&events=1")
	if res.StatusCode != 200 {
		t.Fatalf("audit events: HTTP %d %s", res.StatusCode, body)
	}
	for _, want := range []string{"incident.open", "incident.note", "incident.contain", "incident.lift"} {
		if !strings.Contains(body, want) {
			t.Errorf("audit events of the incident lack %s: %s", want, body[strings.Index(body, "<h2>Audit events"):])
		}
	}
	_, body = f.get("/ui/incidents")
	if !strings.Contains(body, "closed, reviewed") {
		t.Fatalf("list after review: %s", body)
	}
	e.NoCSPReports()
}

func TestIncidentsOpenFirstAndAuditorRefused(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("carol", "auditor")
	var a, b struct{ ID string }
	e.API("POST", "/v1/incidents", map[string]string{"title": "first, closed", "severity": "low", "impact": "x"}, &a)
	e.API("POST", "/v1/incidents", map[string]string{"title": "second, open", "severity": "low", "impact": "x"}, &b)
	if code := e.API("POST", "/v1/incidents/"+a.ID+"/close", nil, nil); code != 200 {
		t.Fatalf("close: %d", code)
	}
	f := newForm(t, e)
	f.signIn("carol", uitest.Password)
	res, body := f.get("/ui/incidents")
	if res.StatusCode != 200 {
		t.Fatalf("auditor reads incidents: HTTP %d %s", res.StatusCode, body)
	}
	if i, j := strings.Index(body, "second, open"), strings.Index(body, "first, closed"); i < 0 || j < 0 || i > j {
		t.Fatalf("open incidents not listed first: %d, %d", i, j)
	}
	tok := token(t, body)
	for _, tt := range []struct{ path string }{{"/ui/incidents"}, {"/ui/incidents/" + b.ID + "/notes"}, {"/ui/incidents/" + b.ID + "/close"}} {
		res, body := f.post(tt.path, url.Values{"title": {"x"}, "severity": {"low"}, "impact": {"x"}, "text": {"x"}, "csrf_token": {tok}})
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "role auditor may not change incidents") {
			t.Errorf("auditor POST %s: HTTP %d %s", tt.path, res.StatusCode, body)
		}
	}
	if res, body := f.get("/ui/incidents?id=inc_nope"); res.StatusCode != 404 {
		t.Fatalf("no such incident: HTTP %d %s", res.StatusCode, body)
	}
}
