package ui_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

var decideFormRE = regexp.MustCompile(`action="/ui/reviews/(rev_[a-z0-9]+)/items/(item_[0-9]+)"`)

// reviewItem is the item id of principal's decision form on a review page.
func reviewItem(t *testing.T, body, principal string) (review, item string) {
	t.Helper()
	i := strings.Index(body, ">"+principal)
	if i < 0 {
		t.Fatalf("no item %s on the review page: %s", principal, body)
	}
	m := decideFormRE.FindStringSubmatch(body[i:])
	if m == nil {
		t.Fatalf("no decision form for %s", principal)
	}
	return m[1], m[2]
}

func TestReviewsFormFlowJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	e.CreateUser("bob", "security")
	var key struct{ ID, Key string }
	if code := e.API("POST", "/v1/keys", map[string]any{"name": "partner", "scopes": []string{"demo:read"}}, &key); code != 201 {
		t.Fatalf("create key: %d", code)
	}
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)
	res, body := f.get("/ui/reviews")
	if res.StatusCode != 200 || !strings.Contains(body, "Overdue") || !strings.Contains(body, "no access review has been completed") {
		t.Fatalf("reviews before any: HTTP %d %s", res.StatusCode, body)
	}
	tok := token(t, body)

	if res, body := f.post("/ui/reviews", url.Values{}); res.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF token") {
		t.Fatalf("start without a token: HTTP %d %s", res.StatusCode, body)
	}
	res, body = f.post("/ui/reviews", url.Values{"csrf_token": {tok}})
	if res.StatusCode != 200 || !strings.Contains(body, "Review started") || !strings.Contains(res.Request.URL.RawQuery, "id=rev_") {
		t.Fatalf("start: HTTP %d at %s %s", res.StatusCode, res.Request.URL, body)
	}
	rid, keyItem := reviewItem(t, body, "api_key:"+key.ID)
	_, bobItem := reviewItem(t, body, "user:bob")
	_, aliceItem := reviewItem(t, body, "user:alice")
	decide := func(item string, v url.Values) (*http.Response, string) {
		v.Set("csrf_token", tok)
		return f.post("/ui/reviews/"+rid+"/items/"+item, v)
	}

	// A second review while one is open: the API's 409.
	if res, body := f.post("/ui/reviews", url.Values{"csrf_token": {tok}}); res.StatusCode != http.StatusConflict || !strings.Contains(body, "is still open: complete it first") {
		t.Fatalf("second review: HTTP %d %s", res.StatusCode, body)
	}

	tests := []struct {
		name string
		item string
		v    url.Values
		code int
		want string
	}{
		{"no reason", bobItem, url.Values{"decision": {"approve"}}, 400, "reason: required: say why"},
		{"bad decision", bobItem, url.Values{"decision": {"maybe"}, "reason": {"x"}}, 400, "decision: must be approve, revoke or change"},
		{"own access", aliceItem, url.Values{"decision": {"approve"}, "reason": {"me"}}, 403, "may not approve their own access"},
		{"no such item", "item_999", url.Values{"decision": {"approve"}, "reason": {"x"}}, 404, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := decide(tt.item, tt.v)
			if res.StatusCode != tt.code || !strings.Contains(body, tt.want) {
				t.Fatalf("HTTP %d, want %d with %q: %s", res.StatusCode, tt.code, tt.want, body)
			}
		})
	}

	// Keep, with a reason the page escapes.
	res, body = decide(bobItem, url.Values{"decision": {"approve"}, "reason": {"<b>still on call</b>"}})
	if res.StatusCode != 200 || !strings.Contains(body, "Decision recorded.") {
		t.Fatalf("keep: HTTP %d %s", res.StatusCode, body)
	}
	if strings.Contains(body, "<b>still on call") || !strings.Contains(body, "&lt;b&gt;still on call&lt;/b&gt;") {
		t.Fatal("a reason's HTML is not escaped")
	}

	// Revoke asks first, and only the confirmed form revokes.
	res, body = decide(keyItem, url.Values{"decision": {"revoke"}, "reason": {"partner left"}})
	if res.StatusCode != 200 || !strings.Contains(body, "Yes, revoke api_key:"+key.ID+" (partner) now") || !strings.Contains(body, `name="confirm" value="yes"`) {
		t.Fatalf("revoke without confirmation: HTTP %d %s", res.StatusCode, body)
	}
	if code := e.Gate("/api/x", key.Key); code != 200 {
		t.Fatalf("key refused before the revocation was confirmed: %d", code)
	}
	if res, body := decide(keyItem, url.Values{"decision": {"revoke"}, "reason": {"partner left"}, "confirm": {"yes"}}); res.StatusCode != 200 || !strings.Contains(body, "Decision recorded.") {
		t.Fatalf("revoke: HTTP %d %s", res.StatusCode, body)
	}
	if code := e.Gate("/api/x", key.Key); code != 401 {
		t.Fatalf("key revoked in a review: gateway %d, want 401", code)
	}

	// Completing with items left: the API's 409 names them.
	if res, body := f.post("/ui/reviews/"+rid+"/complete", url.Values{"csrf_token": {tok}}); res.StatusCode != http.StatusConflict || !strings.Contains(body, "items are not decided") {
		t.Fatalf("complete too soon: HTTP %d %s", res.StatusCode, body)
	}
	// Bob decides alice's own access, alice the rest.
	g := newForm(t, e)
	g.signIn("bob", uitest.Password)
	_, gb := g.get("/ui/reviews?id=" + rid)
	if res, body := g.post("/ui/reviews/"+rid+"/items/"+aliceItem, url.Values{"decision": {"approve"}, "reason": {"admin"}, "csrf_token": {token(t, gb)}}); res.StatusCode != 200 {
		t.Fatalf("bob keeps alice: HTTP %d %s", res.StatusCode, body)
	}
	_, body = f.get("/ui/reviews?id=" + rid + "&show=undecided")
	for _, m := range decideFormRE.FindAllStringSubmatch(body, -1) {
		if res, body := decide(m[2], url.Values{"decision": {"change"}, "reason": {"narrow scopes"}}); res.StatusCode != 200 {
			t.Fatalf("decide %s: HTTP %d %s", m[2], res.StatusCode, body)
		}
	}
	res, body = f.post("/ui/reviews/"+rid+"/complete", url.Values{"csrf_token": {tok}})
	if res.StatusCode != 200 || !strings.Contains(body, "Review completed") || strings.Contains(body, "Overdue") {
		t.Fatalf("complete: HTTP %d %s", res.StatusCode, body)
	}
	if _, body := f.get("/ui/reviews?id=" + rid); strings.Contains(body, "Record decision") {
		t.Fatal("a completed review still offers decisions")
	}
	e.NoCSPReports()
}

func TestReviewsAuditorReadsOnly(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("carol", "auditor")
	f := newForm(t, e)
	f.signIn("carol", uitest.Password)
	res, body := f.get("/ui/reviews")
	if res.StatusCode != 200 {
		t.Fatalf("auditor reads reviews: HTTP %d %s", res.StatusCode, body)
	}
	res, body = f.post("/ui/reviews", url.Values{"csrf_token": {token(t, body)}})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "role auditor may not change reviews") {
		t.Fatalf("auditor starting a review: HTTP %d %s", res.StatusCode, body)
	}
	if res, body := f.get("/ui/reviews?id=rev_nope"); res.StatusCode != http.StatusNotFound || !strings.Contains(body, "not found") {
		t.Fatalf("no such review: HTTP %d %s", res.StatusCode, body)
	}
}

// TestReviewPagesByCursorJSOff: a review's page shows the API's page of
// 50 items; Next follows its cursor, First goes back; a forged cursor is
// the API's 400.
func TestReviewPagesByCursorJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	for i := range 55 {
		if code := e.API("POST", "/v1/keys", map[string]any{"name": "k" + strconv.Itoa(i), "scopes": []string{"demo:read"}}, nil); code != 201 {
			t.Fatalf("create key: %d", code)
		}
	}
	var rv struct {
		ID    string
		Items []struct{ ID string }
	}
	if code := e.API("POST", "/v1/reviews", nil, &rv); code != 201 {
		t.Fatalf("start: %d", code)
	}
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)
	res, body := f.get("/ui/reviews?id=" + rv.ID)
	forms := decideFormRE.FindAllStringSubmatch(body, -1)
	if res.StatusCode != 200 || len(forms) != 50 || strings.Contains(body, "First page") {
		t.Fatalf("page 1: HTTP %d, %d items", res.StatusCode, len(forms))
	}
	next := regexp.MustCompile(`href="(/ui/reviews\?[^"]*cursor=[^"]*)">Next page`).FindStringSubmatch(body)
	if next == nil {
		t.Fatalf("page 1: no Next link: %s", body)
	}
	res, body = f.get(html.UnescapeString(next[1]))
	forms2 := decideFormRE.FindAllStringSubmatch(body, -1)
	if res.StatusCode != 200 || len(forms2) != len(rv.Items)-50 || !strings.Contains(body, "First page") || strings.Contains(body, "Next page") {
		t.Fatalf("page 2: HTTP %d, %d items of %d", res.StatusCode, len(forms2), len(rv.Items))
	}
	if forms2[0][2] != rv.Items[50].ID {
		t.Errorf("page 2 starts at %s, want %s", forms2[0][2], rv.Items[50].ID)
	}
	if res, body := f.get("/ui/reviews?id=" + rv.ID + "&cursor=forged"); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "cursor") {
		t.Errorf("forged cursor: HTTP %d %s", res.StatusCode, body)
	}
}
