package app_test

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// TestOneReadingOfEveryPath sends raw request lines through the real
// listeners: path parameters, case variants and encodings an upstream
// could read as the signals-admin route are refused before any upstream
// sees them, with a key that may only read signals. The matrix route opts
// in to path parameters, which still may not hide its admin subtree.
func TestOneReadingOfEveryPath(t *testing.T) {
	h := MustStartFull(t, "", `
  - name: matrix
    path: /m/
    upstream: {{UP}}
    scopes: [read:signals]
    allow_path_params: true
  - name: matrix-admin
    path: /m/admin/
    upstream: {{UP}}
    scopes: [signals:admin]
    allow_path_params: true
`)
	k := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})
	addr := strings.TrimPrefix(h.base, "http://")
	tests := []struct {
		name, path string
		status     int
	}{
		{"plain", "/api/v1/signals/a", 200},
		{"admin directly", "/api/v1/signals/admin/x", 403},
		{"path parameter (Tomcat/Spring read /admin/x)", "/api/v1/signals/admin;x/y", 400},
		{"encoded path parameter", "/api/v1/signals/admin%3Bx/y", 400},
		{"encoded lower path parameter", "/api/v1/signals/admin%3bx/y", 400},
		{"jsessionid without opt-in", "/api/v1/signals/a;jsessionid=1", 400},
		{"upper case (Express/ASP.NET read /admin/x)", "/api/v1/signals/ADMIN/y", 400},
		{"mixed case", "/api/v1/signals/aDmIn", 400},
		{"trailing dot (IIS)", "/api/v1/signals/admin./y", 400},
		{"trailing encoded space (IIS)", "/api/v1/signals/admin%20/y", 400},
		{"overlong slash", "/api/v1/signals%C0%AFadmin/y", 400},
		{"IIS %u", "/api/v1/signals/%u0061dmin/y", 400},
		{"fullwidth letters (NFKC)", "/api/v1/signals/%EF%BD%81dmin/y", 400},
		{"fullwidth solidus (NFKC)", "/api/v1/signals%EF%BC%8Fadmin/y", 400},
		{"dotless i", "/api/v1/signals/adm%C4%B1n/y", 400},
		{"soft hyphen", "/api/v1/signals/ad%C2%ADmin/y", 400},
		{"encoded #", "/api/v1/signals/admin%23/y", 400},
		{"Tomcat /.;/", "/api/v1/signals/.;/admin/y", 400},
		{"opted-in parameter", "/m/x;v=1", 200},
		{"opted-in parameter hiding admin", "/m/admin;v=1/y", 400},
		{"opted-in parameter-only segment", "/m/;v=1/admin/y", 400},
		{"opted-in upper case", "/m/ADMIN/y", 400},
		{"opted-in admin directly", "/m/admin/y", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status := rawGet(t, addr, tt.path, k.Key); status != tt.status {
				t.Fatalf("%s: status %d, want %d", tt.path, status, tt.status)
			}
			if got, _ := h.up.lastRequest(); got != nil && strings.Contains(strings.ToLower(got.URL.Path), "adm") {
				t.Fatalf("%s reached upstream as %s", tt.path, got.URL.Path)
			}
		})
	}
}

// TestClientHangUpIsAudited: a client that hangs up while the upstream
// works leaves an audit event (status 499), read back through /v1/audit.
func TestClientHangUpIsAudited(t *testing.T) {
	h := MustStart(t)
	k := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})
	c, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	id := ulid.Make().String()
	io.WriteString(c, "GET /api/v1/signals/wait HTTP/1.1\r\nHost: x\r\nX-Request-Id: "+id+"\r\nX-API-Key: "+k.Key+"\r\n\r\n")
	waitFor(t, func() bool { r, _ := h.up.lastRequest(); return r != nil })
	c.Close()
	var mine []map[string]any
	waitFor(t, func() bool {
		mine = nil
		for _, e := range h.auditEvents("http.request") {
			if req, _ := e["request"].(map[string]any); req != nil && req["request_id"] == id {
				mine = append(mine, e)
			}
		}
		return len(mine) > 0
	})
	if len(mine) != 1 {
		t.Fatalf("%d events for the abandoned request, want 1: %v", len(mine), mine)
	}
	req := mine[0]["request"].(map[string]any)
	if req["status"] != float64(499) || mine[0]["outcome"] != "failure" || mine[0]["resource"] != "route:signals-read" {
		t.Fatalf("event %v", mine[0])
	}
}
