package app_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUpstreamFingerprintDropped: the upstream's Server and X-Powered-By
// never reach the client, unless the route keeps them.
func TestUpstreamFingerprintDropped(t *testing.T) {
	h := MustStartFull(t, "", `  - name: keeps
    path: /keeps/
    upstream: {{UP}}
    public: true
    keep_server_headers: true
`)
	res := h.do("GET", h.base+"/public/x", nil)
	if res.StatusCode != 200 || res.Header.Get("X-Upstream") != "yes" {
		t.Fatalf("public route: %d %v", res.StatusCode, res.Header)
	}
	for _, name := range []string{"Server", "X-Powered-By"} {
		if v := res.Header.Get(name); v != "" {
			t.Errorf("%s: %q reached the client", name, v)
		}
	}
	res = h.do("GET", h.base+"/keeps/x", nil)
	if res.Header.Get("Server") == "" || res.Header.Get("X-Powered-By") == "" {
		t.Errorf("keep_server_headers route lost them: %v", res.Header)
	}
}

// TestMethodOverride: override headers in every spelling never reach an
// upstream of a route without method_override (the upstream serves the
// method Gatehouse authorized); with it, Gatehouse applies the override
// itself, so the scope and method checks see the real method.
func TestMethodOverride(t *testing.T) {
	h := MustStartFull(t, "", `  - name: items-read
    path: /items/
    methods: [GET, POST]
    upstream: {{UP}}
    scopes: [items:read]
    method_override: true
  - name: items-delete
    path: /items/
    methods: [DELETE]
    upstream: {{UP}}
    scopes: [items:delete]
    method_override: true
`)
	reader := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals", "write:signals", "items:read"}})
	deleter := h.createKey(map[string]any{"name": "d", "scopes": []string{"items:read", "items:delete"}})

	// Without method_override: removed in every spelling.
	for _, name := range []string{"X-HTTP-Method-Override", "X-Method-Override", "X-HTTP-Method", "x-http-method-override", "X_HTTP_Method_Override"} {
		res := h.do("POST", h.base+"/api/v1/signals/x", strings.NewReader("{}"), "X-API-Key: "+reader.Key, name+": DELETE")
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d", name, res.StatusCode)
		}
		got, _ := h.up.lastRequest()
		if got.Method != "POST" {
			t.Errorf("%s: upstream saw %s", name, got.Method)
		}
		for k := range got.Header {
			if strings.Contains(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "method") {
				t.Errorf("%s: upstream received %s: %v", name, k, got.Header[k])
			}
		}
	}

	cases := []struct {
		name    string
		key     keyOut
		method  string
		headers []string
		status  int
		up      string // method the upstream must see
	}{
		{"override to a method the key may not use", reader, "POST", []string{"X-HTTP-Method-Override: DELETE"}, 403, ""},
		{"override applied", deleter, "POST", []string{"X-HTTP-Method-Override: DELETE"}, 200, "DELETE"},
		{"other spelling applied", deleter, "POST", []string{"X-Method-Override: DELETE"}, 200, "DELETE"},
		{"conflicting overrides", deleter, "POST", []string{"X-HTTP-Method-Override: DELETE", "X-Method-Override: GET"}, 400, ""},
		{"override on GET", deleter, "GET", []string{"X-HTTP-Method-Override: DELETE"}, 400, ""},
		{"unknown method", deleter, "POST", []string{"X-HTTP-Method-Override: TRACE"}, 400, ""},
		{"lower case", deleter, "POST", []string{"X-HTTP-Method-Override: delete"}, 400, ""},
		{"no override", reader, "POST", nil, 200, "POST"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := h.up.lastRequest()
			res := h.do(tc.method, h.base+"/items/1", strings.NewReader("{}"), append([]string{"X-API-Key: " + tc.key.Key}, tc.headers...)...)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			got, _ := h.up.lastRequest()
			if tc.up == "" {
				decodeError(t, res)
				if got != before {
					t.Errorf("refused request reached the upstream as %s", got.Method)
				}
				return
			}
			if got.Method != tc.up || got.Header.Get("X-HTTP-Method-Override") != "" || got.Header.Get("X-Method-Override") != "" {
				t.Errorf("upstream saw %s %v", got.Method, got.Header)
			}
		})
	}
}

// TestJSONDuplicateKeys: on a route with a JSON Schema, a body that
// parsers read differently — a key twice (raw or escaped, at any depth),
// keys differing only in case, invalid UTF-8 — is refused before it
// reaches the upstream.
func TestJSONDuplicateKeys(t *testing.T) {
	dir := t.TempDir()
	strict := filepath.Join(dir, "order.json")
	os.WriteFile(strict, []byte(`{"type":"object","required":["sku","amount"],"properties":{"sku":{"type":"string"},"amount":{"type":"integer","minimum":1},"meta":{"type":"object"}},"additionalProperties":false}`), 0o644)
	open := filepath.Join(dir, "profile.json")
	os.WriteFile(open, []byte(`{"type":"object","properties":{"role":{"enum":["user"]}}}`), 0o644)
	h := MustStartFull(t, "", fmt.Sprintf(`  - name: orders
    path: /orders/
    methods: [POST]
    upstream: {{UP}}
    scopes: [demo:read]
    json_schema: %s
  - name: profile
    path: /profile/
    methods: [POST]
    upstream: {{UP}}
    scopes: [demo:read]
    json_schema: %s
`, strict, open))
	k := h.createKey(map[string]any{"name": "k", "scopes": []string{"demo:read"}})
	for _, tc := range []struct {
		path, body, want string
	}{
		{"/orders/x", `{"sku":"a","amount":-5,"amount":2}`, "duplicate object key"},
		{"/orders/x", `{"sku":"a","amount":-5,"\u0061mount":2}`, "duplicate object key"},
		{"/orders/x", `{"sku":"a","amount":2,"meta":{"k":1,"k":2}}`, "/meta/k: duplicate"},
		{"/profile/x", `{"role":"user","Role":"admin"}`, "differ only in case"},
		{"/profile/x", `{"role":"user","ROLE":"admin"}`, "differ only in case"},
		{"/profile/x", `{"role":"user","x":"` + "\xff" + `"}`, "UTF-8"},
		{"/profile/x", `{"items":[{"a":1},{"a":2,"a":3}]}`, "/items/a: duplicate"},
	} {
		before, _ := h.up.lastRequest()
		res := h.do("POST", h.base+tc.path, strings.NewReader(tc.body), "X-API-Key: "+k.Key, "Content-Type: application/json")
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", tc.body, res.StatusCode)
			continue
		}
		if e := decodeError(t, res); !strings.Contains(e.Error.Message, tc.want) {
			t.Errorf("%s: %q, want %q", tc.body, e.Error.Message, tc.want)
		}
		if got, _ := h.up.lastRequest(); got != before {
			t.Errorf("%s reached the upstream", tc.body)
		}
	}
	// Repeated keys in different objects are fine.
	for _, body := range []string{`{"sku":"a","amount":2,"meta":{"sku":1}}`, `{"items":[{"a":1},{"a":2}],"role":"user"}`} {
		path := "/orders/x"
		if strings.Contains(body, "items") {
			path = "/profile/x"
		}
		if res := h.do("POST", h.base+path, strings.NewReader(body), "X-API-Key: "+k.Key, "Content-Type: application/json"); res.StatusCode == 400 {
			t.Errorf("%s refused: %v", body, decodeError(t, res).Error.Message)
		}
	}
}
