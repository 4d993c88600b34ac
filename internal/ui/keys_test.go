package ui_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

var (
	keySecretRE = regexp.MustCompile(`id="secret" class="secret" readonly value="([^"]+)"`)
	keyRotateRE = regexp.MustCompile(`action="/ui/keys/([^/"]+)/rotate"`)
)

// TestKeyRotateJSOff: rotating a key from the list with JS off shows the
// new secret once and says until when the old one works; the old key
// keeps working for the grace given in the row's field (24h when empty,
// refused at once after 0s); a bad grace is refused with the API's
// message and rotates nothing; an auditor's rotation is refused by the
// API's role check and leaves the key as it was.
func TestKeyRotateJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	e.CreateUser("carol", "auditor")
	var k struct{ ID, Key string }
	if code := e.API("POST", "/v1/keys", map[string]any{"name": "partner", "scopes": []string{"demo:read"}}, &k); code != http.StatusCreated {
		t.Fatalf("create key: HTTP %d", code)
	}
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)
	_, body := f.get("/ui/keys")
	tok := token(t, body)
	if !strings.Contains(body, `name="grace"`) || !strings.Contains(body, `for="grace-`+k.ID+`"`) {
		t.Fatalf("no labelled grace field in the rotate form: %s", body)
	}
	rotate := func(id, grace string) (int, string, string) {
		t.Helper()
		res, body := f.post("/ui/keys/"+id+"/rotate", url.Values{"csrf_token": {tok}, "grace": {grace}})
		m := keySecretRE.FindStringSubmatch(body)
		if m == nil {
			return res.StatusCode, body, ""
		}
		return res.StatusCode, body, m[1]
	}
	keys := func() int {
		var list struct{ Keys []any }
		e.API("GET", "/v1/keys", nil, &list)
		return len(list.Keys)
	}

	// Default grace: both work; the page says until when the old one does.
	code, body, second := rotate(k.ID, "")
	if code != http.StatusCreated || second == "" || second == k.Key {
		t.Fatalf("rotate: HTTP %d, secret %q: %s", code, second, body)
	}
	until := e.Clock.Now().Add(24 * time.Hour).UTC().Format("2006-01-02 15:04 UTC")
	if !strings.Contains(body, "The previous key <code>"+k.ID+"</code> keeps working until "+until) {
		t.Errorf("the answer does not say the old key works until %s: %s", until, body)
	}
	for _, key := range []string{k.Key, second} {
		if code := e.Gate("/api/x", key); code != 200 {
			t.Fatalf("gateway during the default grace: %d", code)
		}
	}
	_, body = f.get("/ui/keys")
	if strings.Contains(body, second) {
		t.Fatal("the rotated secret is shown again in the list")
	}
	next := ""
	for _, m := range keyRotateRE.FindAllStringSubmatch(body, -1) {
		if m[1] != k.ID {
			next = m[1]
		}
	}
	if next == "" {
		t.Fatalf("no rotate form for the new key: %s", body)
	}

	// A bad grace: the API's message, nothing rotated.
	n := keys()
	code, body, _ = rotate(next, "soon")
	if code != http.StatusBadRequest || !strings.Contains(body, "grace: &#34;soon&#34; is not a duration") {
		t.Fatalf("bad grace: HTTP %d: %s", code, body)
	}
	if keys() != n {
		t.Fatal("a refused rotation made a key")
	}

	// An auditor may not rotate it.
	g := newForm(t, e)
	g.signIn("carol", uitest.Password)
	_, cbody := g.get("/ui/keys")
	if res, body := g.post("/ui/keys/"+next+"/rotate", url.Values{"csrf_token": {token(t, cbody)}}); res.StatusCode != http.StatusForbidden || keySecretRE.MatchString(body) {
		t.Fatalf("auditor rotating: HTTP %d: %s", res.StatusCode, body)
	}
	if keys() != n {
		t.Fatal("an auditor's refused rotation made a key")
	}

	// Grace 0s: the old key stops at once.
	code, body, third := rotate(next, "0s")
	if code != http.StatusCreated || third == "" {
		t.Fatalf("rotate with grace 0s: HTTP %d: %s", code, body)
	}
	e.Clock.Advance(time.Second)
	if code := e.Gate("/api/x", second); code != 401 {
		t.Errorf("the key rotated with grace 0s: gateway %d, want 401", code)
	}
	if code := e.Gate("/api/x", third); code != 200 {
		t.Errorf("the new key: gateway %d", code)
	}
	e.NoCSPReports()
}
