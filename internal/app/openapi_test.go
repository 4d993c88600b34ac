package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/backup"
	"github.com/gatehouse/gatehouse/internal/compliance"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/httpjson"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/oauth"
	"github.com/gatehouse/gatehouse/internal/secrets"
	"github.com/gatehouse/gatehouse/internal/totp"
)

// TestOpenAPIServed: GET /v1/openapi.json is the document in the repo,
// without a credential.
func TestOpenAPIServed(t *testing.T) {
	h := MustStart(t)
	want, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	res := h.do("GET", h.admin+"/v1/openapi.json", nil)
	got, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || !bytes.Equal(got, want) {
		t.Fatalf("GET /v1/openapi.json: %d %q, %d bytes; want 200 application/json, the %d bytes of %s", res.StatusCode, res.Header.Get("Content-Type"), len(got), len(want), openAPIFile)
	}
	if res := h.do("POST", h.admin+"/v1/openapi.json", strings.NewReader("{}")); res.StatusCode != 405 || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /v1/openapi.json: %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
}

// TestOpenAPIDescribesEveryRoute walks what both listeners register: every
// admin route with exactly its methods, every path the public listener
// answers itself, and nothing the listeners do not serve. Each method a
// path does not list must answer 405.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	h := MustStart(t)
	doc, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	adminRoutes, publicPaths := h.app.Routes()
	documented := map[string]map[string]*contractPath{"admin": {}, "public": {}}
	for _, p := range doc.paths {
		for _, l := range p.listeners {
			documented[l][p.template] = p
		}
	}
	for _, r := range adminRoutes {
		p := documented["admin"][r.Pattern]
		if p == nil {
			t.Errorf("admin route %s %v is not in %s", r.Pattern, r.Methods, openAPIFile)
			continue
		}
		if got := slices.Sorted(maps.Keys(p.ops)); !slices.Equal(got, r.Methods) {
			t.Errorf("admin route %s answers %v; %s lists %v", r.Pattern, r.Methods, openAPIFile, got)
		}
		delete(documented["admin"], r.Pattern)
	}
	for _, path := range publicPaths {
		if documented["public"][path] == nil {
			t.Errorf("public listener path %s is not in %s", path, openAPIFile)
		}
		delete(documented["public"], path)
	}
	for l, left := range documented {
		for tmpl := range left {
			t.Errorf("%s lists %s on the %s listener, which does not serve it", openAPIFile, tmpl, l)
		}
	}
	// Methods a path does not list: 405 (checked by the contract
	// transport). With a credential: the decision API authenticates first.
	key := h.createKey(map[string]any{"name": "probe", "scopes": []string{"read:signals"}})
	for _, p := range doc.paths {
		if p.anyMethod {
			continue
		}
		path := strings.NewReplacer("{id}", "x", "{name}", "x").Replace(p.template)
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
			if p.ops[m] != nil {
				continue
			}
			for _, l := range p.listeners {
				base := h.admin
				if l == "public" {
					base = h.base
				}
				h.do(m, base+path, nil, "Authorization: Bearer "+key.Key)
			}
		}
	}
}

// TestOpenAPISchemasMatchTypes compares each object schema's properties
// with the JSON fields of the Go type behind it, and, for responses, its
// required list with the fields always present (no omitempty), so that a
// field added to a type without the document fails here even before a
// test sends it.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	raw, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
				Required   []string                   `json:"required"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		schema   string
		value    any
		response bool // required = the fields always written
	}{
		{"Error", httpjson.ErrorBody{}, true},
		{"Key", admin.Key{}, true},
		{"CreateKeyRequest", admin.CreateKeyRequest{}, false},
		{"RotateKeyRequest", admin.RotateKeyRequest{}, false},
		{"Client", admin.Client{}, true},
		{"CreateClientRequest", admin.CreateClientRequest{}, false},
		{"SigningKey", authn.SigningKeyInfo{}, true},
		{"Tier", admin.Tier{}, true},
		{"PolicyStatus", authz.Status{}, true},
		{"User", admin.User{}, true},
		{"CreateUserRequest", admin.CreateUserRequest{}, false},
		{"RoleRequest", admin.RoleRequest{}, false},
		{"PasswordRequest", admin.PasswordRequest{}, false},
		{"TOTPRequest", admin.TOTPRequest{}, false},
		{"Token", admin.Token{}, true},
		{"CreateTokenRequest", admin.CreateTokenRequest{}, false},
		{"LoginRequest", admin.LoginRequest{}, false},
		{"Session", admin.SessionResponse{}, true},
		{"AuthSettings", authn.AuthSettings{}, true},
		{"AuthSettingsUpdate", authn.AuthSettings{}, false},
		{"PasswordPolicy", authn.DefaultAuthSettings().Password, false},
		{"Argon2Params", authn.DefaultAuthSettings().Argon2, false},
		{"LockoutSettings", authn.LockoutSettings{}, false},
		{"SessionSettings", authn.SessionSettings{}, false},
		{"SignInLimits", authn.SignInLimits{}, false},
		{"SecretRotation", authn.SecretRotation{}, false},
		{"Event", gatehouse.Event{}, true},
		{"Actor", gatehouse.Actor{}, true},
		{"RequestInfo", gatehouse.RequestInfo{}, true},
		{"AuditEntry", audit.Entry{}, true},
		{"AuditPage", audit.Page{}, true},
		{"AuditProof", audit.Proof{}, true},
		{"TokenResponse", oauth.TokenResponse{}, true},
		{"OAuthError", oauth.ErrorResponse{}, true},
		{"Discovery", oauth.Discovery{}, true},
		{"AuthorizeRequest", gateway.AuthorizeRequest{}, false},
		{"AuthorizeResponse", gateway.AuthorizeResponse{}, true},
		{"Backup", backup.Info{}, true},
		{"BackupVerifyResult", backup.VerifyResult{}, true},
		{"StoreCheck", backup.StoreCheck{}, true},
		{"Review", compliance.Review{}, true},
		{"ReviewItem", compliance.ReviewItem{}, true},
		{"ReviewSummary", compliance.ReviewSummary{}, true},
		{"ReviewPage", admin.ReviewPage{}, true},
		{"Incident", compliance.Incident{}, true},
		{"DecideRequest", admin.DecideRequest{}, false},
		{"OpenIncidentRequest", admin.OpenIncidentRequest{}, false},
		{"NoteRequest", admin.NoteRequest{}, false},
		{"ContainRequest", admin.ContainRequest{}, false},
		{"ReviewIncidentRequest", admin.ReviewIncidentRequest{}, false},
		{"EvidenceRef", compliance.Ref{}, true},
		{"EvidenceFinding", compliance.Finding{}, true},
		{"EvidenceReport", compliance.Report{}, true},
		{"EvidenceStatusSummary", compliance.StatusSummary{}, true},
		{"DrillResult", admin.DrillResult{}, true},
		{"SecretStatus", secrets.Status{}, true},
		{"RotateSecretResult", admin.RotateSecretResult{}, true},
		{"MetricsSummary", metrics.Summary{}, true},
		{"MetricsMinute", metrics.Minute{}, true},
		{"BackupTimes", metrics.BackupTimes{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.schema, func(t *testing.T) {
			s, ok := doc.Components.Schemas[tt.schema]
			if !ok {
				t.Fatalf("no components.schemas.%s", tt.schema)
			}
			fields, always := jsonFields(reflect.TypeOf(tt.value))
			if got := slices.Sorted(maps.Keys(s.Properties)); !slices.Equal(got, fields) {
				t.Errorf("properties %v; the Go type has %v", got, fields)
			}
			if tt.response {
				if got := slices.Sorted(slices.Values(s.Required)); !slices.Equal(got, always) {
					t.Errorf("required %v; the Go type always writes %v", got, always)
				}
			}
		})
	}
}

// jsonFields lists a struct's JSON field names, and those without
// omitempty or omitzero, sorted.
func jsonFields(t reflect.Type) (all, always []string) {
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			// encoding/json lifts an untagged embedded struct's fields.
			a, w := jsonFields(f.Type)
			all, always = append(all, a...), append(always, w...)
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		all = append(all, name)
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
			always = append(always, name)
		}
	}
	slices.Sort(all)
	slices.Sort(always)
	return all, always
}

// expect sends a request (body: nil, a string, or a value sent as JSON)
// and fails unless it gets status want; it returns the body.
func (h *harness) expect(want int, method, url string, body any, headers ...string) []byte {
	h.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		r = bytes.NewReader(data)
	}
	res := h.do(method, url, r, headers...)
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		h.t.Fatalf("%s %s: %d, want %d: %s", method, url, res.StatusCode, want, data)
	}
	return data
}

// TestOpenAPIContract calls every operation of the document, through the
// contract transport (which checks each status and body, of the request
// and the response), and fails if one was never reached.
func TestOpenAPIContract(t *testing.T) {
	backups := filepath.Join(t.TempDir(), "backups")
	h := MustStartWith(t, backupConfig(t, backups))
	auth, js := "Authorization: Bearer "+adminToken, "Content-Type: application/json"
	call := func(want int, method, path string, body any, out any) {
		t.Helper()
		data := h.expect(want, method, h.admin+path, body, auth, js)
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
		}
	}
	var id struct {
		ID       string `json:"id"`
		Key      string `json:"key"`
		ClientID string `json:"client_id"`
		Secret   string `json:"client_secret"`
		Token    string `json:"token"`
	}

	// Keys.
	call(201, "POST", "/v1/keys", map[string]any{"name": "svc", "scopes": []string{"read:signals"}, "expires_in": "30d"}, &id)
	call(200, "GET", "/v1/keys", nil, nil)
	call(200, "GET", "/v1/keys/"+id.ID, nil, nil)
	call(404, "GET", "/v1/keys/key_nope", nil, nil)
	call(400, "POST", "/v1/keys", map[string]any{"name": "x"}, nil)
	var rotated struct{ ID string }
	call(201, "POST", "/v1/keys/"+id.ID+"/rotate", map[string]any{"grace": "1h"}, &rotated)
	call(409, "POST", "/v1/keys/"+id.ID+"/rotate", nil, nil)
	call(200, "POST", "/v1/keys/"+rotated.ID+"/revoke", map[string]any{}, nil)
	call(201, "POST", "/v1/keys", map[string]any{"name": "caller", "scopes": []string{"read:signals"}}, &id)
	key := id.Key

	// Clients, and the token endpoint.
	call(201, "POST", "/v1/clients", map[string]any{"name": "svc", "scopes": []string{"read:signals"}}, &id)
	client := id.ClientID
	call(200, "GET", "/v1/clients", nil, nil)
	call(200, "GET", "/v1/clients/"+client, nil, nil)
	call(200, "POST", "/v1/clients/"+client+"/rotate", nil, &id)
	call(200, "POST", "/v1/clients/"+client+"/unlock", nil, nil)
	form := "Content-Type: application/x-www-form-urlencoded"
	h.expect(200, "POST", h.base+"/oauth/token", "grant_type=client_credentials&client_id="+client+"&client_secret="+id.Secret, form)
	h.expect(401, "POST", h.base+"/oauth/token", "grant_type=client_credentials&client_id="+client+"&client_secret=wrong", form)
	h.expect(400, "POST", h.base+"/oauth/token", "grant_type=password", form)
	h.expect(405, "GET", h.base+"/oauth/token", nil)
	call(200, "POST", "/v1/clients/"+client+"/revoke", nil, nil)

	// Signing keys, policies, the public auth endpoints.
	call(200, "GET", "/v1/tiers", nil, nil)
	call(200, "GET", "/v1/signing-keys", nil, nil)
	call(200, "POST", "/v1/signing-keys/rotate", nil, nil)
	for _, p := range []string{"/.well-known/jwks.json", "/.well-known/openid-configuration"} {
		h.expect(200, "GET", h.base+p, nil)
		h.expect(200, "HEAD", h.base+p, nil)
	}
	call(200, "GET", "/v1/policies", nil, nil)
	call(200, "POST", "/v1/policies/reload", nil, nil)
	h.expect(200, "POST", h.base+"/v1/authorize", map[string]any{"action": "tool.execute", "resource": "tool:web_search"}, "Authorization: Bearer "+key, js)
	h.expect(400, "POST", h.base+"/v1/authorize", map[string]any{"action": "tool.execute"}, "Authorization: Bearer "+key, js)
	h.expect(401, "POST", h.base+"/v1/authorize", map[string]any{"action": "a", "resource": "b"}, "Authorization: Bearer gh_nope", js)
	h.expect(403, "GET", h.base+"/auth/verify", nil, "Authorization: Bearer "+key)

	// Users and a person's own account.
	call(201, "POST", "/v1/users", map[string]any{"username": "alice", "role": "admin", "scopes": []string{"read:signals"}, "password": alicePW}, nil)
	call(409, "POST", "/v1/users", map[string]any{"username": "alice", "role": "admin", "password": alicePW}, nil)
	call(201, "POST", "/v1/users", map[string]any{"username": "bob", "role": "auditor", "password": alicePW}, nil)
	call(200, "GET", "/v1/users", nil, nil)
	call(200, "GET", "/v1/users/alice", nil, nil)
	call(404, "GET", "/v1/users/nobody", nil, nil)
	call(200, "POST", "/v1/users/bob/password", map[string]any{"new_password": "an0ther horse battery staple!"}, nil)
	call(200, "POST", "/v1/users/bob/unlock", nil, nil)
	call(200, "POST", "/v1/users/bob/totp/reset", nil, nil)
	call(200, "POST", "/v1/users/bob/disable", nil, nil)
	call(200, "POST", "/v1/users/bob/enable", nil, nil)
	call(200, "PUT", "/v1/users/bob/role", map[string]any{"role": "security"}, nil)
	call(400, "PUT", "/v1/users/bob/role", map[string]any{"role": "root"}, nil)
	call(204, "DELETE", "/v1/users/bob", nil, nil)
	call(404, "DELETE", "/v1/users/bob", nil, nil)

	p := h.newPerson()
	if code, e := p.login("alice", alicePW, nil); code != 200 {
		t.Fatalf("sign in: %d %s", code, e.Error.Message)
	}
	if code, _ := h.newPerson().login("alice", "wrong password, clearly", nil); code != 401 {
		t.Fatalf("sign in with a wrong password: %d", code)
	}
	if code := p.call("GET", "/v1/me", nil, false, nil); code != 200 {
		t.Fatalf("GET /v1/me: %d", code)
	}
	var enr struct{ Secret string }
	if code := p.call("POST", "/v1/me/totp", map[string]any{"current_password": alicePW}, true, &enr); code != 200 {
		t.Fatalf("enrol TOTP: %d", code)
	}
	code, _ := totp.Code(enr.Secret, h.clock.Now())
	if c := p.call("POST", "/v1/me/totp/verify", map[string]any{"code": code}, true, nil); c != 204 {
		t.Fatalf("confirm TOTP: %d", c)
	}
	h.clock.Advance(30 * time.Second)
	code, _ = totp.Code(enr.Secret, h.clock.Now())
	if c := p.call("DELETE", "/v1/me/totp", map[string]any{"current_password": alicePW, "code": code}, true, nil); c != 204 {
		t.Fatalf("remove TOTP: %d", c)
	}
	newPW := "a different horse battery staple 7"
	if c := p.call("POST", "/v1/me/password", map[string]any{"current_password": alicePW, "new_password": newPW}, true, nil); c != 204 {
		t.Fatalf("change password: %d", c)
	}
	var tok struct {
		ID string
		errorOut
	}
	if c := p.call("POST", "/v1/tokens", map[string]any{"name": "laptop", "scopes": []string{"read:signals"}, "expires_in": "7d"}, true, &tok); c != 201 {
		t.Fatalf("create token: %d %s", c, tok.Error.Message)
	}
	if c := p.call("GET", "/v1/tokens", nil, false, nil); c != 200 {
		t.Fatalf("list tokens: %d", c)
	}
	call(200, "GET", "/v1/tokens?all=true", nil, nil)
	call(200, "POST", "/v1/tokens/"+tok.ID+"/revoke", nil, nil)

	// Settings, audit, the admin token, probes.
	call(200, "GET", "/v1/settings/authentication", nil, nil)
	call(200, "PUT", "/v1/settings/authentication", map[string]any{"lockout": map[string]any{"max_failures": 7}}, nil)
	call(400, "PUT", "/v1/settings/authentication", map[string]any{"lockout": map[string]any{"max_failures": 0}}, nil)
	call(200, "GET", "/v1/audit?limit=5&type=admin.key.create", nil, nil)
	call(400, "GET", "/v1/audit?limit=0", nil, nil)
	h.expect(200, "GET", h.admin+"/v1/audit/checkpoint", nil, auth)
	call(200, "GET", "/v1/audit/proof?index=0", nil, nil)
	call(400, "GET", "/v1/audit/proof?index=x", nil, nil)
	call(200, "GET", "/v1/audit/keys", nil, nil)
	var b struct{ ID, Location string }
	call(201, "POST", "/v1/backups", nil, &b)
	call(200, "GET", "/v1/backups", nil, nil)
	call(200, "POST", "/v1/backups/"+b.ID+"/verify", nil, nil)
	call(404, "POST", "/v1/backups/20990101T000000.000Z-abcdef/verify", nil, nil)
	call(400, "POST", "/v1/backups/not-an-id/verify", nil, nil)
	file, err := os.ReadFile(b.Location)
	if err != nil {
		t.Fatal(err)
	}
	h.expect(200, "POST", h.admin+"/v1/backups/verify", string(file), auth, "Content-Type: application/octet-stream")
	h.expect(415, "POST", h.admin+"/v1/backups/verify", string(file), auth, js)
	call(200, "POST", "/v1/backups/prune", nil, nil)

	// The server's secrets.
	call(200, "GET", "/v1/secrets", nil, nil)
	call(200, "POST", "/v1/secrets/signing-keys/rotate", nil, nil)
	call(404, "POST", "/v1/secrets/nope/rotate", nil, nil)
	call(200, "POST", "/v1/secrets/pepper/rotate", nil, nil)
	call(409, "POST", "/v1/secrets/api-keys/rotate", nil, nil)
	call(400, "POST", "/v1/secrets/Not-A-Name/rotate", nil, nil)

	// Evidence, access reviews, incidents.
	call(404, "GET", "/v1/evidence/summary", nil, nil)
	call(200, "GET", "/v1/evidence?period=2025-12-01..2026-01-31", nil, nil)
	call(200, "GET", "/v1/evidence/summary", nil, nil)
	call(400, "GET", "/v1/evidence/summary?period=2025-12-01..2026-01-31", nil, nil)
	call(400, "GET", "/v1/evidence?period=nonsense", nil, nil)
	var rv struct {
		ID    string
		Items []struct{ ID string }
	}
	call(201, "POST", "/v1/reviews", nil, &rv)
	call(200, "GET", "/v1/reviews", nil, nil)
	call(200, "GET", "/v1/reviews/"+rv.ID, nil, nil)
	call(200, "GET", "/v1/reviews?items=true", nil, nil)
	call(400, "GET", "/v1/reviews?items=maybe", nil, nil)
	call(200, "GET", "/v1/reviews/"+rv.ID+"?limit=1&undecided=true", nil, nil)
	call(400, "GET", "/v1/reviews/"+rv.ID+"?limit=0", nil, nil)
	call(400, "GET", "/v1/reviews/"+rv.ID+"?cursor=nonsense", nil, nil)
	call(404, "GET", "/v1/reviews/"+rv.ID+"?item=item_nope", nil, nil)
	call(404, "GET", "/v1/reviews/rev_nope", nil, nil)
	call(409, "POST", "/v1/reviews/"+rv.ID+"/complete", nil, nil)
	call(400, "POST", "/v1/reviews/"+rv.ID+"/items/"+rv.Items[0].ID, map[string]any{"decision": "approve"}, nil)
	for _, it := range rv.Items {
		call(200, "POST", "/v1/reviews/"+rv.ID+"/items/"+it.ID, map[string]any{"decision": "change", "reason": "narrow scopes"}, nil)
	}
	call(200, "POST", "/v1/reviews/"+rv.ID+"/complete", nil, nil)
	var inc struct{ ID string }
	call(201, "POST", "/v1/incidents", map[string]any{"title": "t", "severity": "low", "impact": "none"}, &inc)
	call(400, "POST", "/v1/incidents", map[string]any{"title": "t", "severity": "odd", "impact": "none"}, nil)
	call(200, "GET", "/v1/incidents", nil, nil)
	call(200, "GET", "/v1/incidents/"+inc.ID, nil, nil)
	call(404, "GET", "/v1/incidents/inc_nope", nil, nil)
	call(200, "POST", "/v1/incidents/"+inc.ID+"/notes", map[string]any{"text": "seen"}, nil)
	call(200, "POST", "/v1/incidents/"+inc.ID+"/contain", map[string]any{"revoke_before": "2000-01-01T00:00:00Z"}, nil)
	call(409, "POST", "/v1/incidents/"+inc.ID+"/review", map[string]any{"summary": "s"}, nil)
	call(400, "POST", "/v1/incidents/"+inc.ID+"/contain", map[string]any{"lockdown": true, "allow": []string{"api_key:key_nope"}}, nil)
	call(200, "POST", "/v1/incidents/"+inc.ID+"/contain", map[string]any{"lockdown": true, "allow": []string{"admin"}}, nil)
	call(200, "GET", "/v1/incidents/"+inc.ID, nil, nil)
	h.expect(503, "POST", h.base+"/v1/authorize", map[string]any{"action": "tool.execute", "resource": "tool:web_search"}, "Authorization: Bearer "+key, js)
	call(409, "POST", "/v1/incidents/"+inc.ID+"/close", nil, nil)
	call(200, "POST", "/v1/incidents/"+inc.ID+"/lift", nil, nil)
	call(409, "POST", "/v1/incidents/"+inc.ID+"/lift", nil, nil)
	call(200, "POST", "/v1/incidents/"+inc.ID+"/close", nil, nil)
	call(200, "POST", "/v1/incidents/"+inc.ID+"/review", map[string]any{"summary": "s"}, nil)
	call(200, "POST", "/v1/incidents/drill", nil, nil)
	h.expect(200, "GET", h.admin+"/v1/openapi.json", nil)
	h.expect(200, "HEAD", h.admin+"/v1/openapi.json", nil)
	h.expect(200, "GET", h.admin+"/metrics", nil, auth)
	h.expect(200, "HEAD", h.admin+"/metrics", nil, auth)
	call(200, "GET", "/v1/metrics/summary", nil, nil)
	call(400, "GET", "/v1/metrics/summary?minutes=5", nil, nil)
	for _, base := range []string{h.admin, h.base} {
		for _, path := range []string{"/health", "/health/live", "/health/ready"} {
			h.expect(200, "GET", base+path, nil)
			h.expect(200, "HEAD", base+path, nil)
		}
	}
	call(200, "GET", "/v1/admin-token", nil, nil)
	call(200, "POST", "/v1/admin-token/disable", nil, nil)
	h.expect(401, "GET", h.admin+"/v1/keys", nil, auth)
	if c := p.call("DELETE", "/v1/session", nil, true, nil); c != 204 {
		t.Fatalf("sign out: %d", c)
	}

	if left := h.contract.unseen(); len(left) > 0 {
		t.Errorf("operations of %s no request reached (add them to this test):\n%s", openAPIFile, strings.Join(left, "\n"))
	}
}
