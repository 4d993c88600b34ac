package app_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/policy"
)

func TestDenialCarriesReasons(t *testing.T) {
	h := MustStart(t)
	k := h.createKey(map[string]any{"name": "w", "scopes": []string{"write:signals"}})
	res := h.do("GET", h.base+"/api/v1/signals/x", nil, "X-API-Key: "+k.Key)
	if res.StatusCode != 403 {
		t.Fatalf("status %d", res.StatusCode)
	}
	var body struct {
		Error struct {
			Code       string   `json:"code"`
			Reasons    []string `json:"reasons"`
			DecisionID string   `json:"decision_id"`
		} `json:"error"`
	}
	json.NewDecoder(res.Body).Decode(&body)
	if body.Error.Code != "forbidden" || len(body.Error.DecisionID) != 26 || strings.Join(body.Error.Reasons, ";") != "missing scope read:signals" {
		t.Errorf("403 body: %+v", body.Error)
	}
}

func TestToolRoute(t *testing.T) {
	h := MustStart(t)
	url := h.base + "/tools/search/q"
	for _, tt := range []struct {
		scopes []string
		status int
	}{
		{[]string{"tools:use"}, 403},
		{[]string{"tools:use", "tools:execute:other"}, 403},
		{[]string{"tools:use", "tools:execute:web_search"}, 200},
		{[]string{"tools:use", "tools:execute:*"}, 200},
		{[]string{"tools:execute:web_search"}, 403},
	} {
		k := h.createKey(map[string]any{"name": "t", "scopes": tt.scopes})
		if res := h.do("GET", url, nil, "X-API-Key: "+k.Key); res.StatusCode != tt.status {
			t.Errorf("scopes %v: %d, want %d", tt.scopes, res.StatusCode, tt.status)
		}
	}
}

func TestDecisionAPI(t *testing.T) {
	h := MustStart(t)
	agent := h.createKey(map[string]any{"name": "agent", "scopes": []string{"tools:execute:web_search"}})
	auth := "Authorization: Bearer " + agent.Key
	type answer struct {
		Allow      bool     `json:"allow"`
		Reasons    []string `json:"reasons"`
		DecisionID string   `json:"decision_id"`
	}
	ask := func(body string, headers ...string) (int, answer, string) {
		res := h.do("POST", h.base+"/v1/authorize", strings.NewReader(body), headers...)
		data, _ := io.ReadAll(res.Body)
		var a answer
		json.Unmarshal(data, &a)
		return res.StatusCode, a, string(data)
	}
	code, a, raw := ask(`{"action":"tool.execute","resource":"tool:web_search"}`, auth)
	if code != 200 || !a.Allow || len(a.DecisionID) != 26 {
		t.Errorf("allowed tool: %d %s", code, raw)
	}
	code, a, raw = ask(`{"action":"tool.execute","resource":"tool:shell"}`, auth)
	if code != 200 || a.Allow || len(a.Reasons) == 0 || !strings.Contains(a.Reasons[0], "tools:execute:shell") {
		t.Errorf("denied tool: %d %s", code, raw)
	}
	for _, tt := range []struct {
		name, body string
		headers    []string
		status     int
		want       string
	}{
		{"no credential", `{"action":"tool.execute","resource":"tool:x"}`, nil, 401, "authentication required"},
		{"invalid JSON", `{"action":`, []string{auth}, 400, "invalid JSON body"},
		{"missing action", `{"resource":"tool:x"}`, []string{auth}, 400, "action: is required"},
		{"missing resource", `{"action":"tool.execute"}`, []string{auth}, 400, "resource: is required"},
		{"unknown field", `{"action":"a","resource":"b","extra":1}`, []string{auth}, 400, `unknown field \"extra\"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, raw := ask(tt.body, tt.headers...)
			if code != tt.status || !strings.Contains(raw, tt.want) {
				t.Errorf("%d %s; want %d containing %q", code, raw, tt.status, tt.want)
			}
		})
	}
	if res := h.do("GET", h.base+"/v1/authorize", nil, auth); res.StatusCode != 405 || res.Header.Get("Allow") != "POST" {
		t.Errorf("GET /v1/authorize: %d Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
}

func TestForwardAuth(t *testing.T) {
	h := MustStartWith(t, "forward_auth: {proxy: traefik}\n")
	reader := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})
	tests := []struct {
		name    string
		headers []string
		status  int
	}{
		{"allowed (traefik headers)", []string{"X-API-Key: " + reader.Key, "X-Forwarded-Method: GET", "X-Forwarded-Uri: /api/v1/signals/x?y=1"}, 200},
		{"allowed (bearer)", []string{"Authorization: Bearer " + reader.Key, "X-Forwarded-Method: GET", "X-Forwarded-Uri: /api/v1/signals/x"}, 200},
		{"public route, anonymous", []string{"X-Forwarded-Method: GET", "X-Forwarded-Uri: /public/x"}, 200},
		{"unauthenticated", []string{"X-Forwarded-Method: GET", "X-Forwarded-Uri: /api/v1/signals/x"}, 401},
		{"wrong method for scope", []string{"X-API-Key: " + reader.Key, "X-Forwarded-Method: POST", "X-Forwarded-Uri: /api/v1/signals/x"}, 403},
		{"admin subtree", []string{"X-API-Key: " + reader.Key, "X-Forwarded-Method: GET", "X-Forwarded-Uri: /api/v1/signals/admin/x"}, 403},
		{"traversal", []string{"X-API-Key: " + reader.Key, "X-Forwarded-Method: GET", "X-Forwarded-Uri: /api/v1/signals/../signals/admin/x"}, 403},
		{"unknown route", []string{"X-API-Key: " + reader.Key, "X-Forwarded-Method: GET", "X-Forwarded-Uri: /nowhere"}, 403},
		{"no forwarded headers", []string{"X-API-Key: " + reader.Key}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do("GET", h.base+"/auth/verify", nil, append(tt.headers, "X-Forwarded-Host: app.example")...)
			if res.StatusCode != tt.status {
				b, _ := io.ReadAll(res.Body)
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.status, b)
			}
			if tt.status == 200 && strings.Contains(tt.name, "allowed") {
				if res.Header.Get("X-Gatehouse-Principal") != reader.ID || res.Header.Get("X-Gatehouse-Scopes") != "read:signals" {
					t.Errorf("headers: %v", res.Header)
				}
			}
		})
	}
	if got, _ := h.up.lastRequest(); got != nil {
		t.Errorf("forward-auth reached the upstream: %s", got.URL.Path)
	}
}

func TestPolicyReloadRefusesBrokenPolicy(t *testing.T) {
	dir := t.TempDir()
	src, err := policyFile("authz.rego")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "authz.rego"), src, 0o644)
	h := MustStartWith(t, "policy:\n  dir: "+dir+"\n")
	reader := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})
	get := func() int { return h.do("GET", h.base+"/api/v1/signals/x", nil, "X-API-Key: "+reader.Key).StatusCode }
	if get() != 200 {
		t.Fatal("default policy from dir does not allow")
	}
	// The admin /health/ready policy check says what serves
	// (docs/policy.md), and after a refused load, why and that the
	// previous policy keeps serving.
	policyCheck := func() (bool, string) {
		t.Helper()
		_, checks := readiness(t, h)
		c, ok := checks["policy"]
		if !ok {
			t.Fatal("no policy check on /health/ready")
		}
		return c.OK, c.Detail
	}
	if ok, d := policyCheck(); !ok || !strings.HasPrefix(d, "dir:"+dir+" revision sha256:") || !strings.Contains(d, " tests passed, decisions cached") || strings.Contains(d, "failed") {
		t.Errorf("policy check before the reload: ok=%v detail %q", ok, d)
	}
	os.WriteFile(filepath.Join(dir, "authz.rego"), []byte("package gatehouse.authz\n\nallow if {\n"), 0o644)
	var e errorOut
	if code := h.adminCall("POST", "/v1/policies/reload", nil, &e); code != 422 || !strings.Contains(e.Error.Message, "authz.rego:") {
		t.Fatalf("reload of broken policy: %d %q", code, e.Error.Message)
	}
	if get() != 200 {
		t.Fatal("old policy stopped serving after a refused reload")
	}
	if ok, d := policyCheck(); !ok || !strings.Contains(d, "; the last load failed (1 in a row)") || !strings.Contains(d, "the policy above keeps serving: ") || !strings.Contains(d, "authz.rego:") {
		t.Errorf("policy check after a refused reload: ok=%v detail %q", ok, d)
	}
	// A valid policy that denies everything takes effect at once.
	os.WriteFile(filepath.Join(dir, "authz.rego"), []byte("package gatehouse.authz\n\ndefault allow := false\n\nreasons contains \"closed for maintenance\"\n"), 0o644)
	if code := h.adminCall("POST", "/v1/policies/reload", nil, nil); code != 200 {
		t.Fatalf("reload of valid policy: %d", code)
	}
	if get() != 403 {
		t.Fatal("new policy not in force")
	}
}

func policyFile(name string) ([]byte, error) {
	f, err := policy.FS().Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// TestPolicyReloadUnchangedIsLogged: a reload (SIGHUP) that finds the same
// policy says so, with the revision serving, instead of logging nothing.
func TestPolicyReloadUnchangedIsLogged(t *testing.T) {
	h := MustStart(t)
	if err := h.app.ReloadPolicy(context.Background()); err != nil {
		t.Fatal(err)
	}
	var st struct {
		Revision string `json:"revision"`
	}
	if code := h.adminCall("GET", "/v1/policies", nil, &st); code != 200 || st.Revision == "" {
		t.Fatalf("GET /v1/policies: %d, revision %q", code, st.Revision)
	}
	for line := range strings.Lines(h.logs.String()) {
		var rec struct {
			Msg      string `json:"msg"`
			Level    string `json:"level"`
			Revision string `json:"revision"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "policy unchanged" {
			if rec.Level != "INFO" || rec.Revision != st.Revision {
				t.Errorf("logged %s %q revision %q, want INFO, revision %q", rec.Level, rec.Msg, rec.Revision, st.Revision)
			}
			return
		}
	}
	t.Errorf("a reload of the same policy logged no \"policy unchanged\":\n%s", h.logs.String())
}
