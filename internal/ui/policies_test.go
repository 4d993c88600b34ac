package ui_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// policyDir is a policy directory with the shipped policy and its tests.
func policyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"authz.rego", "authz_test.rego"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "policy", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func reloadEvents(t *testing.T, e *uitest.Env) int {
	t.Helper()
	var page struct{ Entries []any }
	e.API("GET", "/v1/audit?type=admin.policy.reload&limit=100", nil, &page)
	return len(page.Entries)
}

// TestPoliciesJSOff: the serving policy's source, revision and test
// count; reload (POST /v1/policies/reload) by an admin, a refused
// policy's reason shown with the old one still serving; an auditor is
// shown the API's refusal and cannot reload; a form without its CSRF
// token is refused.
func TestPoliciesJSOff(t *testing.T) {
	dir := policyDir(t)
	e := uitest.Start(t, "policy:\n  dir: "+dir+"\n")
	e.CreateUser("alice", "admin")
	e.CreateUser("carol", "auditor")
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)
	res, body := f.get("/ui/policies")
	if res.StatusCode != 200 {
		t.Fatalf("policies: HTTP %d %s", res.StatusCode, body)
	}
	for _, want := range []string{"serving", "<code>dir:" + dir, "Rego test(s) passed at load", "SHA-256", `action="/ui/policies/reload"`} {
		if !strings.Contains(body, want) {
			t.Errorf("policies page lacks %q", want)
		}
	}
	if strings.Contains(body, "Rego test(s) passed at load (the policy has no tests)") {
		t.Error("the shipped policy's tests are not counted")
	}
	tok := token(t, body)
	before := reloadEvents(t, e)

	res, body = f.post("/ui/policies/reload", url.Values{"csrf_token": {tok}})
	if res.StatusCode != 200 || res.Request.URL.RawQuery != "done=reloaded" || !strings.Contains(body, "Policy reloaded") {
		t.Fatalf("reload: HTTP %d at %s: %s", res.StatusCode, res.Request.URL, body)
	}
	if n := reloadEvents(t, e); n != before+1 {
		t.Fatalf("%d policy.reload events after a reload, want %d", n, before+1)
	}

	// A broken policy: the API's 422 with file:line, the old one serves.
	if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte("package gatehouse.authz\n\nallow if {\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, body = f.post("/ui/policies/reload", url.Values{"csrf_token": {tok}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "policy refused, previous policy keeps serving") || !strings.Contains(body, "authz.rego:") {
		t.Fatalf("broken reload: HTTP %d %s", res.StatusCode, body)
	}
	if !strings.Contains(body, "Last failure") || !strings.Contains(body, "serving") {
		t.Errorf("after a refused reload the page does not show the failure and the serving policy")
	}

	// No CSRF token.
	if res, body := f.post("/ui/policies/reload", url.Values{}); res.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF token") {
		t.Fatalf("reload without its token: HTTP %d %s", res.StatusCode, body)
	}

	// The auditor: the API's refusals, shown on the page, never a 500.
	g := newForm(t, e)
	g.signIn("carol", uitest.Password)
	res, body = g.get("/ui/policies")
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "role auditor may not read policies") || strings.Contains(body, `action="/ui/policies/reload"`) {
		t.Fatalf("auditor's policies page: HTTP %d %s", res.StatusCode, body)
	}
	n := reloadEvents(t, e)
	res, body = g.post("/ui/policies/reload", url.Values{"csrf_token": {token(t, body)}})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "role auditor may not change policies") {
		t.Fatalf("auditor's reload: HTTP %d %s", res.StatusCode, body)
	}
	if reloadEvents(t, e) != n {
		t.Fatal("the auditor's refused reload reloaded")
	}
	e.NoCSPReports()
}
