package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestListingsShowLineage: keys, clients and users listings (table and
// JSON) show who created each credential and the person or bootstrap
// token behind it, and keys show when they were last used.
func TestListingsShowLineage(t *testing.T) {
	s := startServer(t, "routes:\n  - name: demo\n    path: /demo/\n    upstream: builtin:echo\n    scopes: [demo:read]\n")
	out, errOut, code := run(t, s.env(), "keys", "create", "--name", "ci", "--scopes", "demo:read", "--json")
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	var k struct{ ID, Key string }
	json.Unmarshal([]byte(out), &k)
	out, _, code = run(t, s.env(), "keys", "list")
	if code != 0 || !strings.Contains(out, "CREATED BY") || !strings.Contains(out, "LAST USED") {
		t.Fatalf("keys list has no lineage columns: exit %d\n%s", code, out)
	}
	line := lineOf(out, k.ID)
	if !strings.Contains(line, "admin_token:admin-token") || !strings.HasSuffix(strings.TrimSpace(line), "never") {
		t.Errorf("unused key created with the bootstrap token: %q", line)
	}
	req, _ := http.NewRequest("GET", s.base+"/demo/hello", nil)
	req.Header.Set("Authorization", "Bearer "+k.Key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	out, _, _ = run(t, s.env(), "keys", "list")
	if line := lineOf(out, k.ID); strings.HasSuffix(strings.TrimSpace(line), "never") {
		t.Errorf("used key still shows last used never: %q", line)
	}
	out, _, _ = run(t, s.env(), "keys", "list", "--json")
	var keys struct {
		Keys []struct {
			ID            string  `json:"id"`
			CreatedBy     string  `json:"created_by"`
			CreatedByRoot string  `json:"created_by_root"`
			LastUsedAt    *string `json:"last_used_at"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(out), &keys); err != nil || len(keys.Keys) != 1 || keys.Keys[0].CreatedBy != "admin_token:admin-token" ||
		keys.Keys[0].CreatedByRoot != "admin_token:admin-token" || keys.Keys[0].LastUsedAt == nil {
		t.Errorf("keys list --json: %q (%v)", out, err)
	}
	if _, errOut, code := run(t, s.env(), "clients", "create", "--name", "etl", "--scopes", "demo:read", "--expires", "30d"); code != 0 {
		t.Fatalf("clients create: %d %s", code, errOut)
	}
	out, _, _ = run(t, s.env(), "clients", "list")
	if line := lineOf(out, "etl"); !strings.Contains(out, "CREATED BY") || !strings.Contains(line, "admin_token:admin-token") {
		t.Errorf("clients list: %q", out)
	}
	out, _, _ = run(t, s.env(), "clients", "list", "--json")
	var clients struct {
		Clients []struct {
			CreatedBy string  `json:"created_by"`
			ExpiresAt *string `json:"expires_at"`
		} `json:"clients"`
	}
	if err := json.Unmarshal([]byte(out), &clients); err != nil || len(clients.Clients) != 1 || clients.Clients[0].CreatedBy != "admin_token:admin-token" || clients.Clients[0].ExpiresAt == nil {
		t.Errorf("clients list --json (created with --expires 30d): %q (%v)", out, err)
	}
}

// lineOf returns the first line of out containing s.
func lineOf(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
