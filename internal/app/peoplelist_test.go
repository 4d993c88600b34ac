package app_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// listPage is one page of a list endpoint: the ids of its entries (the
// field idField of each) and its next cursor.
type listPage struct {
	ids  []string
	next string
}

// pageAll follows next from q, limit entries a page, and returns every
// id in the order seen; it fails t when paging does not end.
func pageAll(t *testing.T, list func(url.Values) listPage, q url.Values) []string {
	t.Helper()
	var seen []string
	for range 20 {
		p := list(q)
		seen = append(seen, p.ids...)
		if p.next == "" {
			return seen
		}
		q.Set("cursor", p.next)
	}
	t.Fatal("paging does not end")
	return nil
}

// wantSameIDs fails t unless got and want hold the same ids, in any order.
func wantSameIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// wantBadQueries checks that each query on path is a 400 whose message
// starts with the parameter it names.
func wantBadQueries(t *testing.T, h *harness, path string, headers []string, cases []struct{ query, names string }) {
	t.Helper()
	for _, tc := range cases {
		res := h.do("GET", h.admin+path+"?"+tc.query, nil, headers...)
		e := decodeError(t, res)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || !strings.HasPrefix(e.Error.Message, tc.names+":") {
			t.Errorf("GET %s?%.40s: HTTP %d %q, want 400 naming %s", path, tc.query, res.StatusCode, e.Error.Message, tc.names)
		}
	}
}

// badPageQueries are the paging and filter values every list refuses.
var badPageQueries = []struct{ query, names string }{
	{"limit=0", "limit"},
	{"limit=1001", "limit"},
	{"limit=ten", "limit"},
	{"cursor=not-a-cursor!", "cursor"},
	{"cursor=" + url.QueryEscape("bm9kb3Q"), "cursor"}, // "nodot"
	{"status=deleted", "status"},
	{"name=" + strings.Repeat("x", 201), "name"},
}

// TestClientListPages: GET /v1/clients hands out clients a page at a
// time with a cursor, filters by state and name (or exact id) in the
// store, and refuses a bad limit, cursor, state or role with a 400 that
// names the parameter.
func TestClientListPages(t *testing.T) {
	h := MustStart(t)
	var made []string
	for _, name := range []string{"ci-deploy", "CI-nightly", "billing", "ci-old", "search"} {
		var c clientOut
		if code := h.adminCall("POST", "/v1/clients", map[string]any{"name": name, "scopes": []string{"read"}}, &c); code != http.StatusCreated {
			t.Fatalf("create client %s: %d", name, code)
		}
		made = append(made, c.ClientID)
	}
	if code := h.adminCall("POST", "/v1/clients/"+made[3]+"/revoke", nil, nil); code != http.StatusOK {
		t.Fatalf("revoke: %d", code)
	}
	list := func(q url.Values) listPage {
		t.Helper()
		var p struct {
			Clients []clientOut `json:"clients"`
			Next    string      `json:"next"`
		}
		if code := h.adminCall("GET", "/v1/clients?"+q.Encode(), nil, &p); code != http.StatusOK {
			t.Fatalf("GET /v1/clients?%s: %d", q.Encode(), code)
		}
		out := listPage{next: p.Next}
		for _, c := range p.Clients {
			out.ids = append(out.ids, c.ClientID)
		}
		return out
	}

	// Two at a time: three pages, each client once, in the one big page's
	// order.
	seen := pageAll(t, list, url.Values{"limit": {"2"}})
	whole := list(url.Values{"limit": {"1000"}})
	if whole.next != "" || !slices.Equal(seen, whole.ids) {
		t.Errorf("paged through %q, want %q (next %q)", seen, whole.ids, whole.next)
	}
	wantSameIDs(t, "every page", seen, made)
	wantSameIDs(t, "active, two a page", pageAll(t, list, url.Values{"limit": {"2"}, "status": {"active"}}), []string{made[0], made[1], made[2], made[4]})

	// Five wrong secrets lock made[2] out (from this address).
	for range 5 {
		if a := h.token(url.Values{"grant_type": {"client_credentials"}}, made[2], "wrong"); a.status != http.StatusUnauthorized {
			t.Fatalf("wrong secret: %d", a.status)
		}
	}
	for _, tc := range []struct {
		q    url.Values
		want []string
	}{
		{url.Values{"status": {"locked"}}, []string{made[2]}},
		{url.Values{"status": {"locked"}, "name": {"bill"}, "limit": {"1"}}, []string{made[2]}},
		{url.Values{"status": {"locked"}, "name": {"ci"}}, nil},
		{url.Values{"name": {"ci"}}, []string{made[0], made[1], made[3]}},
		{url.Values{"name": {" CI "}, "status": {"active"}}, []string{made[0], made[1]}},
		{url.Values{"status": {"revoked"}}, []string{made[3]}},
		{url.Values{"status": {"expired"}}, nil},
		{url.Values{"name": {made[4]}}, []string{made[4]}},
		{url.Values{"name": {"%"}}, nil},
	} {
		wantSameIDs(t, "GET /v1/clients?"+tc.q.Encode(), list(tc.q).ids, tc.want)
	}
	wantBadQueries(t, h, "/v1/clients", []string{"Authorization: Bearer " + adminToken},
		append(slices.Clone(badPageQueries), struct{ query, names string }{"role=admin", "role"}, struct{ query, names string }{"status=disabled", "status"}))
}

// TestTokenListPages: GET /v1/tokens pages one's own tokens, or with
// all=true (admins only) everyone's, filtered by state and name in the
// store; a bad limit, cursor or state is a 400 naming it, all=true from
// another role a 403.
func TestTokenListPages(t *testing.T) {
	h := MustStart(t)
	h.createUser("alice", "admin", "read:signals")
	h.createUser("bob", "security", "read:signals")
	alice, bob := h.newPerson(), h.newPerson()
	for who, p := range map[string]*person{"alice": alice, "bob": bob} {
		if code, e := p.login(who, alicePW, nil); code != http.StatusOK {
			t.Fatalf("login %s: %d %s", who, code, e.Error.Message)
		}
	}
	mint := func(p *person, name string) string {
		t.Helper()
		var tok struct{ ID string }
		if code := p.call("POST", "/v1/tokens", map[string]any{"name": name, "scopes": []string{"read:signals"}, "role": "auditor"}, true, &tok); code != http.StatusCreated {
			t.Fatalf("create token %s: %d", name, code)
		}
		return tok.ID
	}
	var alices []string
	for _, name := range []string{"deploy-a", "Deploy-b", "laptop", "deploy-old"} {
		alices = append(alices, mint(alice, name))
	}
	bobs := []string{mint(bob, "deploy-bob"), mint(bob, "phone")}
	if code := alice.call("POST", "/v1/tokens/"+alices[3]+"/revoke", nil, true, nil); code != http.StatusOK {
		t.Fatalf("revoke: %d", code)
	}
	lister := func(p *person) func(url.Values) listPage {
		return func(q url.Values) listPage {
			t.Helper()
			var out struct {
				Tokens []struct{ ID string } `json:"tokens"`
				Next   string                `json:"next"`
			}
			if code := p.call("GET", "/v1/tokens?"+q.Encode(), nil, false, &out); code != http.StatusOK {
				t.Fatalf("GET /v1/tokens?%s: %d", q.Encode(), code)
			}
			lp := listPage{next: out.Next}
			for _, tok := range out.Tokens {
				lp.ids = append(lp.ids, tok.ID)
			}
			return lp
		}
	}
	listA, listB := lister(alice), lister(bob)

	everyone := pageAll(t, listA, url.Values{"all": {"true"}, "limit": {"2"}})
	if whole := listA(url.Values{"all": {"true"}, "limit": {"1000"}}); !slices.Equal(everyone, whole.ids) || whole.next != "" {
		t.Errorf("everyone's, two a page: %q, want %q", everyone, whole.ids)
	}
	wantSameIDs(t, "everyone's", everyone, append(slices.Clone(alices), bobs...))
	wantSameIDs(t, "alice's, one a page", pageAll(t, listA, url.Values{"limit": {"1"}}), alices)
	wantSameIDs(t, "bob's", pageAll(t, listB, url.Values{"limit": {"1"}}), bobs)

	for _, tc := range []struct {
		list func(url.Values) listPage
		q    url.Values
		want []string
	}{
		{listA, url.Values{"name": {"deploy"}}, []string{alices[0], alices[1], alices[3]}},
		{listA, url.Values{"name": {"deploy"}, "status": {"active"}}, []string{alices[0], alices[1]}},
		{listA, url.Values{"name": {"deploy"}, "all": {"true"}}, []string{alices[0], alices[1], alices[3], bobs[0]}},
		{listA, url.Values{"status": {"revoked"}, "all": {"true"}}, []string{alices[3]}},
		{listA, url.Values{"status": {"expired"}}, nil},
		{listA, url.Values{"name": {bobs[1]}}, nil}, // bob's, not in alice's own list
		{listA, url.Values{"name": {bobs[1]}, "all": {"true"}}, []string{bobs[1]}},
		{listB, url.Values{"status": {"revoked"}}, nil},
		{listB, url.Values{"name": {"_"}}, nil},
	} {
		wantSameIDs(t, "GET /v1/tokens?"+tc.q.Encode(), tc.list(tc.q).ids, tc.want)
	}
	if code := bob.call("GET", "/v1/tokens?all=true", nil, false, nil); code != http.StatusForbidden {
		t.Errorf("all=true as security: %d, want 403", code)
	}
	if code := bob.call("GET", "/v1/tokens?all=true&cursor="+url.QueryEscape(listA(url.Values{"all": {"true"}, "limit": {"1"}}).next), nil, false, nil); code != http.StatusForbidden {
		t.Errorf("all=true as security with admin's cursor: %d, want 403", code)
	}
	for _, tc := range append(slices.Clone(badPageQueries), struct{ query, names string }{"status=locked", "status"}) {
		var e errorOut
		if code := alice.call("GET", "/v1/tokens?"+tc.query, nil, false, &e); code != http.StatusBadRequest || !strings.HasPrefix(e.Error.Message, tc.names+":") {
			t.Errorf("GET /v1/tokens?%.40s: HTTP %d %q, want 400 naming %s", tc.query, code, e.Error.Message, tc.names)
		}
	}
}

// TestUserListPages: GET /v1/users pages accounts in username order,
// filtered by state, role and name in the store; bad values are a 400
// naming the parameter.
func TestUserListPages(t *testing.T) {
	h := MustStart(t)
	for name, role := range map[string]string{"alice": "admin", "bob": "security", "bobby": "auditor", "carol": "auditor", "dave": "auditor"} {
		h.createUser(name, role)
	}
	if code := h.adminCall("POST", "/v1/users/dave/disable", nil, nil); code != http.StatusOK {
		t.Fatalf("disable: %d", code)
	}
	list := func(q url.Values) listPage {
		t.Helper()
		var p struct {
			Users []struct{ Username string } `json:"users"`
			Next  string                      `json:"next"`
		}
		if code := h.adminCall("GET", "/v1/users?"+q.Encode(), nil, &p); code != http.StatusOK {
			t.Fatalf("GET /v1/users?%s: %d", q.Encode(), code)
		}
		out := listPage{next: p.Next}
		for _, u := range p.Users {
			out.ids = append(out.ids, u.Username)
		}
		return out
	}
	all := []string{"alice", "bob", "bobby", "carol", "dave"}
	if seen := pageAll(t, list, url.Values{"limit": {"2"}}); !slices.Equal(seen, all) {
		t.Errorf("two a page: %q, want %q", seen, all)
	}
	if seen := pageAll(t, list, url.Values{"limit": {"1"}, "role": {"auditor"}}); !slices.Equal(seen, []string{"bobby", "carol", "dave"}) {
		t.Errorf("auditors, one a page: %q", seen)
	}
	for _, tc := range []struct {
		q    url.Values
		want []string
	}{
		{url.Values{"name": {"BOB"}}, []string{"bob", "bobby"}},
		{url.Values{"status": {"disabled"}}, []string{"dave"}},
		{url.Values{"status": {"active"}, "role": {"auditor"}}, []string{"bobby", "carol"}},
		{url.Values{"status": {"locked"}}, nil},
	} {
		wantSameIDs(t, "GET /v1/users?"+tc.q.Encode(), list(tc.q).ids, tc.want)
	}
	wantBadQueries(t, h, "/v1/users", []string{"Authorization: Bearer " + adminToken},
		append(slices.Clone(badPageQueries), struct{ query, names string }{"role=root", "role"}, struct{ query, names string }{"status=revoked", "status"}))
}
