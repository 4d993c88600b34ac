package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAdminAPIValidation(t *testing.T) {
	h := MustStart(t)
	auth := "Authorization: Bearer " + adminToken
	tests := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		want                     string // in the error message
	}{
		{"no token", "GET", "/v1/keys", "", nil, 401, "admin API needs a session"},
		{"wrong token", "GET", "/v1/keys", "", []string{"Authorization: Bearer nope-nope-nope-nope"}, 401, "invalid admin credential"},
		{"invalid JSON", "POST", "/v1/keys", "{", []string{auth}, 400, "invalid JSON body"},
		{"empty body", "POST", "/v1/keys", "", []string{auth}, 400, "request body is empty"},
		{"unknown field", "POST", "/v1/keys", `{"name":"a","scopes":["x"],"scope":"y"}`, []string{auth}, 400, `unknown field "scope"`},
		{"wrong type", "POST", "/v1/keys", `{"name":"a","scopes":"x"}`, []string{auth}, 400, "scopes: must be an array"},
		{"missing name", "POST", "/v1/keys", `{"scopes":["x"]}`, []string{auth}, 400, "name: is required"},
		{"missing scopes", "POST", "/v1/keys", `{"name":"a"}`, []string{auth}, 400, "scopes: at least one scope"},
		{"bad expiry", "POST", "/v1/keys", `{"name":"a","scopes":["x"],"expires_in":"soon"}`, []string{auth}, 400, "expires_in:"},
		{"both expiries", "POST", "/v1/keys", `{"name":"a","scopes":["x"],"expires_in":"1d","expires_at":"2030-01-01T00:00:00Z"}`, []string{auth}, 400, "give one, not both"},
		{"wrong content type", "POST", "/v1/keys", `{"name":"a","scopes":["x"]}`, []string{auth, "Content-Type: text/plain"}, 400, "Content-Type must be application/json"},
		{"trailing data", "POST", "/v1/keys", `{"name":"a","scopes":["x"]} {}`, []string{auth}, 400, "more than one JSON value"},
		{"unknown key", "GET", "/v1/keys/key_nope", "", []string{auth}, 404, `key "key_nope" not found`},
		{"revoke unknown", "POST", "/v1/keys/key_nope/revoke", "", []string{auth}, 404, "not found"},
		{"bad grace", "POST", "/v1/keys/key_nope/rotate", `{"grace":"-1h"}`, []string{auth}, 400, "grace:"},
		{"array body", "POST", "/v1/keys", "[]", []string{auth}, 400, "request body: must be an object, not array"},
		{"field on a change without parameters", "POST", "/v1/users/alice/disable", `{"x":1}`, []string{auth}, 400, `unknown field "x"`},
		{"array on a change without parameters", "POST", "/v1/keys/key_nope/revoke", `[]`, []string{auth}, 400, "request body: must be an object, not array"},
		{"wrong method", "DELETE", "/v1/keys", "", []string{auth}, 405, "use "},
		{"no endpoint", "GET", "/v1/nothing", "", []string{auth}, 404, "no admin endpoint"},
		{"unknown audit event type", "GET", "/v1/audit?type=auth.failure", "", []string{auth}, 400, `type: unknown event type "auth.failure" (known: admin.access.denied, `},
		{"audit type prefix matching none", "GET", "/v1/audit?type=nope.*", "", []string{auth}, 400, `type: unknown event type "nope.*"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			res := h.do(tt.method, h.admin+tt.path, body, tt.headers...)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.status)
			}
			if e := decodeError(t, res); !strings.Contains(e.Error.Message, tt.want) {
				t.Errorf("message %q does not contain %q", e.Error.Message, tt.want)
			}
		})
	}
}

func TestAdminScopeKeyUsesAdminAPI(t *testing.T) {
	h := MustStart(t)
	adminKey := h.createKey(map[string]any{"name": "ops", "scopes": []string{"admin"}})
	plain := h.createKey(map[string]any{"name": "app", "scopes": []string{"read:signals"}})
	if res := h.do("GET", h.admin+"/v1/keys", nil, "Authorization: Bearer "+adminKey.Key); res.StatusCode != 200 {
		t.Errorf("admin-scope key on admin API: %d", res.StatusCode)
	}
	if res := h.do("GET", h.admin+"/v1/keys", nil, "Authorization: Bearer "+plain.Key); res.StatusCode != 403 {
		t.Errorf("plain key on admin API: %d, want 403", res.StatusCode)
	}
	// admin also passes every route's scope check at the gateway.
	if res := h.do("GET", h.base+"/api/v1/signals/admin/x", nil, "X-API-Key: "+adminKey.Key); res.StatusCode != 200 {
		t.Errorf("admin key on scoped route: %d", res.StatusCode)
	}
}

func TestKeysListedWithoutSecrets(t *testing.T) {
	h := MustStart(t)
	k := h.createKey(map[string]any{"name": "a", "scopes": []string{"x"}})
	res := h.do("GET", h.admin+"/v1/keys", nil, "Authorization: Bearer "+adminToken)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), k.ID) {
		t.Fatalf("list: %d %s", res.StatusCode, body)
	}
	if strings.Contains(string(body), k.Key) || strings.Contains(string(body), `"key":`) {
		t.Errorf("list shows a secret: %s", body)
	}
}

// hangUp is a client that goes away as its answer starts to arrive.
type hangUp struct {
	*httptest.ResponseRecorder
	cancel context.CancelFunc
}

func (w hangUp) Write(b []byte) (int, error) {
	w.cancel()
	return w.ResponseRecorder.Write(b)
}

// TestAdminReadAuditedWhenClientHangsUp: a reader that disconnects while
// its answer is sent still leaves its admin.read event, and no ERROR
// (nothing failed but the client).
func TestAdminReadAuditedWhenClientHangsUp(t *testing.T) {
	h := MustStart(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, "GET", "/v1/audit?limit=1000", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	h.app.AdminHandler().ServeHTTP(hangUp{httptest.NewRecorder(), cancel}, req)
	if logs := h.logs.String(); strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("a client hanging up is logged as an error:\n%s", logs)
	}
	var page struct {
		Entries []struct {
			Event struct {
				Details map[string]any `json:"details"`
			} `json:"event"`
		} `json:"entries"`
	}
	if code := h.adminCall("GET", "/v1/audit?type=admin.read", nil, &page); code != 200 {
		t.Fatalf("GET /v1/audit: %d", code)
	}
	for _, e := range page.Entries {
		if e.Event.Details["query"] == "limit=1000" {
			return
		}
	}
	t.Errorf("no admin.read event for the read whose client hung up: %+v", page.Entries)
}
