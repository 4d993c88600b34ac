package main_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestListCommandsFollowPages: keys, clients, users and tokens list ask
// for pages of 1,000 with their filter flags and follow next to the last
// page (a stand-in server hands out two pages per list).
func TestListCommandsFollowPages(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		f := map[string][2]string{"/v1/keys": {"keys", "id"}, "/v1/clients": {"clients", "client_id"},
			"/v1/users": {"users", "username"}, "/v1/tokens": {"tokens", "id"}}[r.URL.Path]
		field, id := f[0], f[1]
		if field == "" || r.URL.Query().Get("limit") != "1000" {
			http.Error(w, `{"error":{"code":"invalid","message":"unexpected"}}`, http.StatusBadRequest)
			return
		}
		page := map[string]any{field: []map[string]any{{id: "first-" + field}}, "next": "page2"}
		if r.URL.Query().Get("cursor") == "page2" {
			page = map[string]any{field: []map[string]any{{id: "second-" + field}}}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(page)
	}))
	defer srv.Close()
	env := []string{"GATEHOUSE_ADDR=" + srv.URL, "GATEHOUSE_TOKEN=test-token"}
	for _, tc := range []struct {
		args  []string
		field string
		want  string // the filters the first request carries
	}{
		{[]string{"keys", "list", "--status", "revoked", "--name", "ci"}, "keys", "/v1/keys?limit=1000&name=ci&status=revoked"},
		{[]string{"clients", "list", "--status", "locked"}, "clients", "/v1/clients?limit=1000&status=locked"},
		{[]string{"users", "list", "--role", "auditor", "--status", "active", "--name", "bo"}, "users", "/v1/users?limit=1000&name=bo&role=auditor&status=active"},
		{[]string{"tokens", "list", "--all", "--status", "active"}, "tokens", "/v1/tokens?all=true&limit=1000&status=active"},
	} {
		t.Run(strings.Join(tc.args[:2], " "), func(t *testing.T) {
			mu.Lock()
			queries = nil
			mu.Unlock()
			out, errOut, code := run(t, env, append(tc.args, "--json")...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var got map[string][]map[string]any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("output %q: %v", out, err)
			}
			var ids []string
			for _, e := range got[tc.field] {
				for _, v := range e {
					if s, ok := v.(string); ok && strings.Contains(s, tc.field) {
						ids = append(ids, s)
					}
				}
			}
			if want := []string{"first-" + tc.field, "second-" + tc.field}; !slices.Equal(ids, want) {
				t.Errorf("listed %q, want %q", ids, want)
			}
			mu.Lock()
			defer mu.Unlock()
			path, query, _ := strings.Cut(tc.want, "?")
			next, _ := url.ParseQuery(query)
			next.Set("cursor", "page2")
			if want := []string{tc.want, path + "?" + next.Encode()}; !slices.Equal(queries, want) {
				t.Errorf("requests %q, want %q", queries, want)
			}
		})
	}
}
