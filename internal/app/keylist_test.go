package app_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestKeyListPages: GET /v1/keys hands out keys a page at a time with a
// cursor, filters by state and name on the server, and refuses a bad
// limit, cursor or state with a 400 that names the parameter.
func TestKeyListPages(t *testing.T) {
	h := MustStart(t)
	var made []string
	for _, name := range []string{"ci-deploy", "CI-nightly", "billing", "ci-old", "search"} {
		made = append(made, h.createKey(map[string]any{"name": name, "scopes": []string{"read"}}).ID)
	}
	if code := h.adminCall("POST", "/v1/keys/"+made[3]+"/revoke", nil, nil); code != http.StatusOK {
		t.Fatalf("revoke: %d", code)
	}
	type page struct {
		Keys []keyOut `json:"keys"`
		Next string   `json:"next"`
	}
	list := func(q url.Values) page {
		t.Helper()
		var p page
		if code := h.adminCall("GET", "/v1/keys?"+q.Encode(), nil, &p); code != http.StatusOK {
			t.Fatalf("GET /v1/keys?%s: %d", q.Encode(), code)
		}
		return p
	}
	ids := func(p page) []string {
		var out []string
		for _, k := range p.Keys {
			out = append(out, k.ID)
		}
		return out
	}

	// Two at a time: three pages, each key once, in creation order.
	var seen []string
	q := url.Values{"limit": {"2"}}
	for range 5 {
		p := list(q)
		seen = append(seen, ids(p)...)
		if p.Next == "" {
			break
		}
		q.Set("cursor", p.Next)
	}
	// The order is creation time, then id (this harness's clock may give
	// every key the same time): the pages are the one big page, cut.
	whole := list(url.Values{"limit": {"1000"}})
	if whole.Next != "" || len(whole.Keys) != len(made) {
		t.Errorf("a page larger than the list: %d keys, next %q", len(whole.Keys), whole.Next)
	}
	if !slices.Equal(seen, ids(whole)) || !slices.Equal(slices.Sorted(slices.Values(seen)), slices.Sorted(slices.Values(made))) {
		t.Errorf("paged through %q, want %q", seen, ids(whole))
	}

	for _, tc := range []struct {
		q    url.Values
		want []string
	}{
		{url.Values{"name": {"ci"}}, []string{made[0], made[1], made[3]}},
		{url.Values{"name": {"ci"}, "status": {"active"}}, []string{made[0], made[1]}},
		{url.Values{"status": {"revoked"}}, []string{made[3]}},
		{url.Values{"name": {"%"}}, nil},
	} {
		got := ids(list(tc.q))
		slices.Sort(got)
		slices.Sort(tc.want)
		if !slices.Equal(got, tc.want) {
			t.Errorf("GET /v1/keys?%s = %q, want %q", tc.q.Encode(), got, tc.want)
		}
	}

	for _, tc := range []struct{ query, names string }{
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=ten", "limit"},
		{"cursor=not-a-cursor!", "cursor"},
		{"cursor=" + url.QueryEscape("bm9kb3Q"), "cursor"}, // "nodot"
		{"status=deleted", "status"},
		{"name=" + strings.Repeat("x", 201), "name"},
	} {
		res := h.do("GET", h.admin+"/v1/keys?"+tc.query, nil, "Authorization: Bearer "+adminToken)
		e := decodeError(t, res)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || !strings.HasPrefix(e.Error.Message, tc.names+":") {
			t.Errorf("GET /v1/keys?%.40s: HTTP %d %q, want 400 naming %s", tc.query, res.StatusCode, e.Error.Message, tc.names)
		}
	}
}
