package ui_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// TestListFilters: GET /v1/clients and /v1/users take ?status=, ?name=
// (and ?role= for users), the filters the console's lists use; an
// unknown value is a 400 naming the parameter.
func TestListFilters(t *testing.T) {
	e := uitest.Start(t, "")
	for _, n := range []string{"Billing Sync", "billing-export", "reports"} {
		if code := e.API("POST", "/v1/clients", map[string]any{"name": n, "scopes": []string{"demo:read"}}, nil); code != http.StatusCreated {
			t.Fatalf("create client %s: %d", n, code)
		}
	}
	var one struct {
		ClientID string `json:"client_id"`
	}
	e.API("POST", "/v1/clients", map[string]any{"name": "gone", "scopes": []string{"demo:read"}}, &one)
	e.API("POST", "/v1/clients/"+one.ClientID+"/revoke", nil, nil)
	e.CreateUser("alice", "admin")
	e.CreateUser("bob", "security")
	e.CreateUser("bobby", "auditor")
	e.API("POST", "/v1/users/bobby/disable", nil, nil)

	type item struct {
		Name     string `json:"name"`
		Username string `json:"username"`
	}
	names := func(list []item) []string {
		var out []string
		for _, i := range list {
			out = append(out, i.Name+i.Username)
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		path string
		code int
		want string // names joined by ",", or the error's words
	}{
		{"/v1/clients", 200, "Billing Sync,billing-export,gone,reports"},
		{"/v1/clients?name=BILLING", 200, "Billing Sync,billing-export"},
		{"/v1/clients?status=revoked", 200, "gone"},
		{"/v1/clients?status=active&name=rep", 200, "reports"},
		{"/v1/clients?name=" + one.ClientID, 200, "gone"},
		{"/v1/clients?status=locked", 200, ""},
		{"/v1/clients?status=paused", 400, "status: must be one of active, expired, revoked, locked"},
		{"/v1/clients?role=admin", 400, "role: this listing has no role filter"},
		{"/v1/users?name=bob", 200, "bob,bobby"},
		{"/v1/users?status=disabled", 200, "bobby"},
		{"/v1/users?role=security", 200, "bob"},
		{"/v1/users?role=admin&status=active", 200, "alice"},
		{"/v1/users?role=root", 400, "role: must be one of admin, security, auditor"},
		{"/v1/users?status=gone", 400, "status: must be one of active, disabled, locked"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			var out struct {
				Clients []item `json:"clients"`
				Users   []item `json:"users"`
				Error   struct{ Message string }
			}
			code := e.API("GET", tt.path, nil, &out)
			if code != tt.code {
				t.Fatalf("HTTP %d, want %d: %+v", code, tt.code, out)
			}
			if code != 200 {
				if out.Error.Message != tt.want {
					t.Fatalf("message %q, want %q", out.Error.Message, tt.want)
				}
				return
			}
			if got := strings.Join(names(append(out.Clients, out.Users...)), ","); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
