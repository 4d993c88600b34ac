package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/sqlite"
)

// Privilege ceilings (issue 13 item 2): no credential creates a credential
// more powerful than itself.

const ceilingTiers = `
ratelimit:
  default: {requests: 600, per: 1m}
  tiers:
    free: {requests: 60, per: 1m}
    gold: {requests: 6000, per: 1m}
`

// caller is one way of calling the admin API.
type caller struct {
	name    string
	role    string // the admin-API role it acts with
	kind    string // bootstrap | session | pat | key
	expires bool   // its own credential expires (in an hour)
	h       *harness
	bearer  string
	session *person
}

// call sends JSON and decodes the answer into out (also on errors).
func (c *caller) call(method, path string, body, out any) (int, string) {
	c.h.t.Helper()
	if c.session != nil {
		var e errorOut
		raw := map[string]any{}
		code := c.session.call(method, path, body, true, &raw)
		b, _ := json.Marshal(raw)
		json.Unmarshal(b, &e)
		if out != nil {
			json.Unmarshal(b, out)
		}
		return code, e.Error.Message
	}
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.h.admin+path, r)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.bearer)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.h.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	var e errorOut
	json.Unmarshal(data, &e)
	if out != nil {
		json.Unmarshal(data, out)
	}
	if res.StatusCode >= 400 && e.Error.Message == "" {
		c.h.t.Fatalf("%s %s: HTTP %d without a JSON error: %q", method, path, res.StatusCode, data)
	}
	return res.StatusCode, e.Error.Message
}

// mustCallers signs in one user per role, gives each a token of its role
// (scopes read:signals, one hour), and adds the bootstrap token and a key
// with the admin scope (one hour).
func mustCallers(t *testing.T, h *harness) []*caller {
	t.Helper()
	out := []*caller{{name: "bootstrap token", role: "admin", kind: "bootstrap", h: h, bearer: adminToken}}
	for _, role := range []string{"admin", "security", "auditor"} {
		user := role + "1"
		h.createUser(user, role, "read:signals")
		p := h.newPerson()
		if code, e := p.login(user, alicePW, nil); code != 200 {
			t.Fatalf("login %s: %d %s", user, code, e.Error.Message)
		}
		out = append(out, &caller{name: role + " session", role: role, kind: "session", h: h, session: p})
		var tok struct{ Token string }
		if code := p.call("POST", "/v1/tokens", map[string]any{"name": "t", "scopes": []string{"read:signals"}, "role": role, "expires_in": "1h"}, true, &tok); code != 201 {
			t.Fatalf("token for %s: %d", user, code)
		}
		out = append(out, &caller{name: role + " token", role: role, kind: "pat", expires: true, h: h, bearer: tok.Token})
	}
	k := h.createKey(map[string]any{"name": "admin-key", "scopes": []string{"admin", "read:signals"}, "expires_in": "1h"})
	out = append(out, &caller{name: "admin-scope key", role: "admin", kind: "key", expires: true, h: h, bearer: k.Key})
	return out
}

// TestEscalationMatrix: each role × each kind of caller × each credential
// type × each grant. Grants above the caller's ceiling are refused 403
// with a reason naming the field; grants within it are created.
func TestEscalationMatrix(t *testing.T) {
	h := MustStartWith(t, ceilingTiers)
	callers := mustCallers(t, h)
	roleAbove := map[string]string{"admin": "admin", "security": "admin", "auditor": "security"}
	type grant struct {
		name  string
		field string // the field a refusal names
		// body builds the request; ok reports whether the grant is within
		// the ceiling of c (area permitting).
		body func(c *caller, n int) map[string]any
		ok   func(c *caller) bool
	}
	exempt := func(c *caller) bool { return c.role == "admin" }
	// A grant for keys and clients.
	machine := []grant{
		{"within", "", func(c *caller, n int) map[string]any {
			return map[string]any{"name": "k", "scopes": []string{"read:signals"}, "tier": "free", "expires_in": "30m"}
		}, func(*caller) bool { return true }},
		{"scopes beyond own", "scopes", func(c *caller, n int) map[string]any {
			return map[string]any{"name": "k", "scopes": []string{"read:signals", "write:signals"}, "expires_in": "30m"}
		}, exempt},
		{"admin scope", "scopes", func(c *caller, n int) map[string]any {
			return map[string]any{"name": "k", "scopes": []string{"admin"}, "expires_in": "30m"}
		}, exempt},
		{"tier above own", "tier", func(c *caller, n int) map[string]any {
			return map[string]any{"name": "k", "scopes": []string{"read:signals"}, "tier": "gold", "expires_in": "30m"}
		}, exempt},
		{"lifetime beyond own", "expires_at", func(c *caller, n int) map[string]any {
			return map[string]any{"name": "k", "scopes": []string{"read:signals"}, "expires_in": "2h"}
		}, func(c *caller) bool { return !c.expires }},
		{"never expiring", "expires_at", func(c *caller, n int) map[string]any {
			return map[string]any{"name": "k", "scopes": []string{"read:signals"}, "expires_at": time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)}
		}, func(c *caller) bool { return !c.expires }},
	}
	tokens := []grant{
		{"within", "", func(c *caller, n int) map[string]any {
			return map[string]any{"name": "t", "scopes": []string{"read:signals"}, "role": c.role, "expires_in": "30m"}
		}, func(*caller) bool { return true }},
		{"scopes beyond own", "scopes", func(c *caller, n int) map[string]any {
			return map[string]any{"name": "t", "scopes": []string{"write:signals"}, "role": c.role, "expires_in": "30m"}
		}, func(*caller) bool { return false }}, // a token never holds more than its owner
		{"admin scope", "scopes", func(c *caller, n int) map[string]any {
			return map[string]any{"name": "t", "scopes": []string{"admin"}, "expires_in": "30m"}
		}, func(*caller) bool { return false }},
		{"role above own", "role", func(c *caller, n int) map[string]any {
			return map[string]any{"name": "t", "scopes": []string{"read:signals"}, "role": roleAbove[c.role], "expires_in": "30m"}
		}, exempt},
		{"admin role", "role", func(c *caller, n int) map[string]any {
			return map[string]any{"name": "t", "scopes": []string{"read:signals"}, "role": "admin", "expires_in": "30m"}
		}, exempt},
		{"lifetime beyond own", "expires_in", func(c *caller, n int) map[string]any {
			return map[string]any{"name": "t", "scopes": []string{"read:signals"}, "role": c.role, "expires_in": "2h"}
		}, func(c *caller) bool { return !c.expires }},
	}
	users := []grant{
		{"within", "", func(c *caller, n int) map[string]any {
			return map[string]any{"username": fmt.Sprintf("u%d", n), "role": "auditor", "scopes": []string{"read:signals"}, "password": alicePW}
		}, func(*caller) bool { return true }},
		{"scopes beyond own", "scopes", func(c *caller, n int) map[string]any {
			return map[string]any{"username": fmt.Sprintf("u%d", n), "role": "auditor", "scopes": []string{"write:signals"}, "password": alicePW}
		}, exempt},
		{"admin scope", "scopes", func(c *caller, n int) map[string]any {
			return map[string]any{"username": fmt.Sprintf("u%d", n), "role": "auditor", "scopes": []string{"admin"}, "password": alicePW}
		}, exempt},
		{"admin role", "role", func(c *caller, n int) map[string]any {
			return map[string]any{"username": fmt.Sprintf("u%d", n), "role": "admin", "password": alicePW}
		}, exempt},
	}
	types := []struct {
		name, path string
		grants     []grant
		// area reports whether the caller may reach the endpoint at all
		// (otherwise a 403 from the role's areas, or a person-only 403).
		area func(c *caller) bool
	}{
		{"key", "/v1/keys", machine, func(c *caller) bool { return c.role != "auditor" }},
		{"client", "/v1/clients", machine, func(c *caller) bool { return c.role != "auditor" }},
		{"token", "/v1/tokens", tokens, func(c *caller) bool { return c.kind == "session" || c.kind == "pat" }},
		// Managing people needs a person's sign-in or the bootstrap
		// token: an admin token or admin-scope key is refused.
		{"user", "/v1/users", users, func(c *caller) bool { return c.role == "admin" && (c.kind == "session" || c.kind == "bootstrap") }},
	}
	n := 0
	for _, c := range callers {
		for _, typ := range types {
			for _, g := range typ.grants {
				t.Run(c.name+"/"+typ.name+"/"+g.name, func(t *testing.T) {
					n++
					code, msg := c.call("POST", typ.path, g.body(c, n), nil)
					switch {
					case !typ.area(c):
						if code != 403 {
							t.Fatalf("HTTP %d %q, want 403 (no access to %s)", code, msg, typ.path)
						}
					case g.ok(c):
						if code != 201 {
							t.Fatalf("within the ceiling: HTTP %d %q, want 201", code, msg)
						}
					default:
						if code != 403 || !strings.HasPrefix(msg, g.field+":") {
							t.Fatalf("above the ceiling: HTTP %d %q, want 403 naming %s", code, msg, g.field)
						}
					}
				})
			}
		}
	}
}

// TestEscalationThroughRotation: rotating a key or a client's secret hands
// the caller a credential as powerful as the old one, so it is refused to
// callers who could not create it.
func TestEscalationThroughRotation(t *testing.T) {
	h := MustStartWith(t, ceilingTiers)
	callers := mustCallers(t, h)
	var sec, secTok *caller
	for _, c := range callers {
		switch c.name {
		case "security session":
			sec = c
		case "security token":
			secTok = c
		}
	}
	adminKey := h.createKey(map[string]any{"name": "powerful", "scopes": []string{"admin"}})
	var cl struct {
		ClientID string `json:"client_id"`
	}
	if code := h.adminCall("POST", "/v1/clients", map[string]any{"name": "powerful", "scopes": []string{"admin"}}, &cl); code != 201 {
		t.Fatal("create client")
	}
	for _, c := range []*caller{sec, secTok} {
		if code, msg := c.call("POST", "/v1/keys/"+adminKey.ID+"/rotate", nil, nil); code != 403 || !strings.HasPrefix(msg, "scopes:") {
			t.Errorf("%s rotates an admin key: %d %q, want 403 naming scopes", c.name, code, msg)
		}
		if code, msg := c.call("POST", "/v1/clients/"+cl.ClientID+"/rotate", nil, nil); code != 403 || !strings.HasPrefix(msg, "scopes:") {
			t.Errorf("%s rotates an admin client: %d %q, want 403 naming scopes", c.name, code, msg)
		}
	}
	// A never-expiring key of its own scopes: the one-hour token may
	// rotate it, and the new key ends when the token does; the session may
	// rotate that one in turn (keeping its expiry).
	own := h.createKey(map[string]any{"name": "own", "scopes": []string{"read:signals"}})
	var viaTok, viaSession keyOut
	if code, msg := secTok.call("POST", "/v1/keys/"+own.ID+"/rotate", nil, &viaTok); code != 201 || viaTok.ExpiresAt == nil ||
		!viaTok.ExpiresAt.Equal(h.clock.Now().Add(time.Hour)) {
		t.Errorf("token rotates a never-expiring key: %d %q, new key expires %v, want with the token (in 1h)", code, msg, viaTok.ExpiresAt)
	}
	if code, msg := sec.call("POST", "/v1/keys/"+viaTok.ID+"/rotate", nil, &viaSession); code != 201 || viaSession.Key == "" || viaSession.ExpiresAt == nil || !viaSession.ExpiresAt.Equal(*viaTok.ExpiresAt) {
		t.Errorf("security session rotates a key within its ceiling: %d %q %+v", code, msg, viaSession.ExpiresAt)
	}
}

// TestTokenMintsNoMore is the case the issue reports: a token with one
// scope and a one-minute life cannot mint a token with all its owner's
// scopes for a year; what it mints without an expiry ends with it.
func TestTokenMintsNoMore(t *testing.T) {
	h := MustStart(t)
	h.createUser("alice", "security", "read:signals", "write:signals")
	p := h.newPerson()
	p.login("alice", alicePW, nil)
	var parent struct {
		ID, Token string
		ExpiresAt time.Time `json:"expires_at"`
	}
	if code := p.call("POST", "/v1/tokens", map[string]any{"name": "short", "scopes": []string{"read:signals"}, "role": "security", "expires_in": "1m"}, true, &parent); code != 201 {
		t.Fatalf("parent token: %d", code)
	}
	c := &caller{h: h, bearer: parent.Token}
	if code, msg := c.call("POST", "/v1/tokens", map[string]any{"name": "all", "scopes": []string{"read:signals", "write:signals"}, "role": "security", "expires_in": "365d"}, nil); code != 403 || !strings.HasPrefix(msg, "scopes:") {
		t.Errorf("all the owner's scopes: %d %q, want 403 naming scopes", code, msg)
	}
	if code, msg := c.call("POST", "/v1/tokens", map[string]any{"name": "long", "scopes": []string{"read:signals"}, "role": "security", "expires_in": "365d"}, nil); code != 403 || !strings.HasPrefix(msg, "expires_in:") {
		t.Errorf("a year: %d %q, want 403 naming expires_in", code, msg)
	}
	var child struct {
		Token     string
		ExpiresAt time.Time `json:"expires_at"`
	}
	if code, msg := c.call("POST", "/v1/tokens", map[string]any{"name": "default", "scopes": []string{"read:signals"}, "role": "security"}, &child); code != 201 || !child.ExpiresAt.Equal(parent.ExpiresAt) {
		t.Errorf("default lifetime from a one-minute token: %d %q, expires %v, want the parent's %v", code, msg, child.ExpiresAt, parent.ExpiresAt)
	}
	var key keyOut
	if code, msg := c.call("POST", "/v1/keys", map[string]any{"name": "k", "scopes": []string{"read:signals"}}, &key); code != 201 || key.ExpiresAt == nil || !key.ExpiresAt.Equal(parent.ExpiresAt) {
		t.Errorf("key without expiry from a one-minute token: %d %q, expires %v, want the parent's %v", code, msg, key.ExpiresAt, parent.ExpiresAt)
	}
	var cl struct {
		ClientID     string     `json:"client_id"`
		ClientSecret string     `json:"client_secret"`
		ExpiresAt    *time.Time `json:"expires_at"`
	}
	if code, msg := c.call("POST", "/v1/clients", map[string]any{"name": "c", "scopes": []string{"read:signals"}}, &cl); code != 201 || cl.ExpiresAt == nil || !cl.ExpiresAt.Equal(parent.ExpiresAt) {
		t.Errorf("client without expiry from a one-minute token: %d %q, expires %v, want the parent's %v", code, msg, cl.ExpiresAt, parent.ExpiresAt)
	}
	h.clock.Advance(time.Minute)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {cl.ClientID}, "client_secret": {cl.ClientSecret}}
	if res := h.do("POST", h.base+"/oauth/token", strings.NewReader(form.Encode()), "Content-Type: application/x-www-form-urlencoded"); res.StatusCode != 401 {
		t.Errorf("child client at the token endpoint after the parent expired: %d, want 401", res.StatusCode)
	}
	for name, tok := range map[string]string{"child token": child.Token, "child key": key.Key} {
		if res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+tok); res.StatusCode != 401 {
			t.Errorf("%s after the parent expired: %d, want 401", name, res.StatusCode)
		}
	}
}

// lineageOut is what listings show of a credential's lineage and use.
type lineageOut struct {
	ID            string     `json:"id"`
	ClientID      string     `json:"client_id"`
	Username      string     `json:"username"`
	Status        string     `json:"status"`
	CreatedBy     string     `json:"created_by"`
	CreatedByRoot string     `json:"created_by_root"`
	LastUsedAt    *time.Time `json:"last_used_at"`
}

// listing reads every page of a list endpoint (path may carry a query)
// and returns its items by id.
func (h *harness) listing(path, field string) map[string]lineageOut {
	h.t.Helper()
	var items []lineageOut
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	for cursor, pages := "", 0; ; pages++ {
		if pages > 100 {
			h.t.Fatalf("GET %s: paging does not end", path)
		}
		var raw map[string]json.RawMessage
		url := path + sep + "limit=1000"
		if cursor != "" {
			url += "&cursor=" + cursor
		}
		if code := h.adminCall("GET", url, nil, &raw); code != 200 {
			h.t.Fatalf("GET %s: %d", url, code)
		}
		var page []lineageOut
		if err := json.Unmarshal(raw[field], &page); err != nil {
			h.t.Fatalf("GET %s: %s: %v", url, field, err)
		}
		items = append(items, page...)
		cursor = ""
		if n, ok := raw["next"]; ok {
			json.Unmarshal(n, &cursor)
		}
		if cursor == "" {
			break
		}
	}
	out := map[string]lineageOut{}
	for _, it := range items {
		id := it.ID
		if id == "" {
			id = it.ClientID
		}
		if id == "" {
			id = it.Username
		}
		out[id] = it
	}
	return out
}

// TestLineageAndCascade: every credential records its creator and the
// person (or bootstrap token) behind it, in listings and audit events;
// revoking a token revokes what it created, down the chain; disabling a
// user revokes what their tokens created.
func TestLineageAndCascade(t *testing.T) {
	h := MustStart(t)
	h.createUser("alice", "security", "read:signals")
	p := h.newPerson()
	p.login("alice", alicePW, nil)
	var p1 struct{ ID, Token string }
	if code := p.call("POST", "/v1/tokens", map[string]any{"name": "p1", "scopes": []string{"read:signals"}, "role": "security", "expires_in": "1h"}, true, &p1); code != 201 {
		t.Fatal("p1")
	}
	c1 := &caller{h: h, bearer: p1.Token}
	var k1, k2 keyOut
	var p2 struct{ ID, Token string }
	var cl struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if code, msg := c1.call("POST", "/v1/keys", map[string]any{"name": "k1", "scopes": []string{"read:signals"}}, &k1); code != 201 {
		t.Fatalf("k1: %d %s", code, msg)
	}
	if code, msg := c1.call("POST", "/v1/clients", map[string]any{"name": "c1", "scopes": []string{"read:signals"}}, &cl); code != 201 {
		t.Fatalf("c1: %d %s", code, msg)
	}
	if code, msg := c1.call("POST", "/v1/tokens", map[string]any{"name": "p2", "scopes": []string{"read:signals"}, "role": "security"}, &p2); code != 201 {
		t.Fatalf("p2: %d %s", code, msg)
	}
	if code, msg := (&caller{h: h, bearer: p2.Token}).call("POST", "/v1/keys", map[string]any{"name": "k2", "scopes": []string{"read:signals"}}, &k2); code != 201 {
		t.Fatalf("k2: %d %s", code, msg)
	}
	// A key with the admin scope creates a key: the chain ends at the
	// bootstrap token.
	k0 := h.createKey(map[string]any{"name": "k0", "scopes": []string{"admin"}})
	var k3 keyOut
	if code, msg := (&caller{h: h, bearer: k0.Key}).call("POST", "/v1/keys", map[string]any{"name": "k3", "scopes": []string{"x"}}, &k3); code != 201 {
		t.Fatalf("k3: %d %s", code, msg)
	}
	keys := h.listing("/v1/keys", "keys")
	tokens := h.listing("/v1/tokens?all=true", "tokens")
	clients := h.listing("/v1/clients", "clients")
	users := h.listing("/v1/users", "users")
	want := []struct {
		what     string
		got      lineageOut
		by, root string
	}{
		{"user alice", users["alice"], "admin_token:admin-token", "admin_token:admin-token"},
		{"token p1", tokens[p1.ID], "user:alice", "user:alice"},
		{"key k1", keys[k1.ID], "pat:" + p1.ID, "user:alice"},
		{"client c1", clients[cl.ClientID], "pat:" + p1.ID, "user:alice"},
		{"token p2", tokens[p2.ID], "pat:" + p1.ID, "user:alice"},
		{"key k2", keys[k2.ID], "pat:" + p2.ID, "user:alice"},
		{"key k0", keys[k0.ID], "admin_token:admin-token", "admin_token:admin-token"},
		{"key k3", keys[k3.ID], "api_key:" + k0.ID, "admin_token:admin-token"},
	}
	for _, w := range want {
		if w.got.CreatedBy != w.by || w.got.CreatedByRoot != w.root {
			t.Errorf("%s: created_by %q root %q, want %q root %q", w.what, w.got.CreatedBy, w.got.CreatedByRoot, w.by, w.root)
		}
	}
	// The audit event of a creation names the lineage.
	var page struct {
		Entries []struct {
			Event struct {
				Resource string         `json:"resource"`
				Details  map[string]any `json:"details"`
			} `json:"event"`
		} `json:"entries"`
	}
	if code := h.adminCall("GET", "/v1/audit?type=admin.key.create&limit=100", nil, &page); code != 200 {
		t.Fatalf("audit: %d", code)
	}
	found := false
	for _, e := range page.Entries {
		if e.Event.Resource == "key:"+k2.ID {
			found = e.Event.Details["created_by"] == "pat:"+p2.ID && e.Event.Details["created_by_root"] == "user:alice"
			if !found {
				t.Errorf("key.create event details %v lack the lineage", e.Event.Details)
			}
		}
	}
	if !found {
		t.Errorf("no key.create audit event with the lineage of %s in %d events", k2.ID, len(page.Entries))
	}

	// Revoking p1 revokes k1, c1, p2 and (through p2) k2; not k0 or k3.
	if code := p.call("POST", "/v1/tokens/"+p1.ID+"/revoke", nil, true, nil); code != 200 {
		t.Fatalf("revoke p1: %d", code)
	}
	keys, tokens, clients = h.listing("/v1/keys", "keys"), h.listing("/v1/tokens?all=true", "tokens"), h.listing("/v1/clients", "clients")
	for what, st := range map[string]string{"k1": keys[k1.ID].Status, "k2": keys[k2.ID].Status, "p2": tokens[p2.ID].Status, "c1": clients[cl.ClientID].Status} {
		if st != "revoked" {
			t.Errorf("%s after its ancestor p1 was revoked: %q, want revoked", what, st)
		}
	}
	for what, st := range map[string]string{"k0": keys[k0.ID].Status, "k3": keys[k3.ID].Status} {
		if st != "active" {
			t.Errorf("%s (not a descendant of p1): %q", what, st)
		}
	}
	if res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+k2.Key); res.StatusCode != 401 {
		t.Errorf("grandchild key at the gateway after the revocation: %d, want 401", res.StatusCode)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {cl.ClientID}, "client_secret": {cl.ClientSecret}}
	if res := h.do("POST", h.base+"/oauth/token", strings.NewReader(form.Encode()), "Content-Type: application/x-www-form-urlencoded"); res.StatusCode == 200 {
		t.Errorf("child client got a token after its parent was revoked")
	}
	if code := h.adminCall("GET", "/v1/audit?type=admin.credential.revoke_descendant&limit=100", nil, &page); code != 200 || len(page.Entries) != 4 {
		t.Errorf("revoke_descendant events: %d, %d entries, want 4", code, len(page.Entries))
	}
	gotRes := map[string]bool{}
	for _, e := range page.Entries {
		gotRes[e.Event.Resource] = e.Event.Details["because_revoked"] == "pat:"+p1.ID || e.Event.Details["because_revoked"] == "pat:"+p2.ID
	}
	for _, res := range []string{"key:" + k1.ID, "key:" + k2.ID, "token:" + p2.ID, "client:" + cl.ClientID} {
		if !gotRes[res] {
			t.Errorf("no revoke_descendant event for %s naming its revoked ancestor (events %v)", res, gotRes)
		}
	}
	// Revoking k0 revokes k3.
	if code := h.adminCall("POST", "/v1/keys/"+k0.ID+"/revoke", nil, nil); code != 200 {
		t.Fatal("revoke k0")
	}
	if st := h.listing("/v1/keys", "keys")[k3.ID].Status; st != "revoked" {
		t.Errorf("k3 after k0 was revoked: %q", st)
	}

	// Disabling a user revokes what the user's tokens created.
	var p3 struct{ ID, Token string }
	if code := p.call("POST", "/v1/tokens", map[string]any{"name": "p3", "scopes": []string{"read:signals"}, "role": "security", "expires_in": "1h"}, true, &p3); code != 201 {
		t.Fatal("p3")
	}
	var k4 keyOut
	if code, msg := (&caller{h: h, bearer: p3.Token}).call("POST", "/v1/keys", map[string]any{"name": "k4", "scopes": []string{"read:signals"}}, &k4); code != 201 {
		t.Fatalf("k4: %d %s", code, msg)
	}
	if code := h.adminCall("POST", "/v1/users/alice/disable", nil, nil); code != 200 {
		t.Fatal("disable")
	}
	if res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+k4.Key); res.StatusCode != 401 {
		t.Errorf("key made by a disabled user's token: %d, want 401", res.StatusCode)
	}
}

// TestLastUsedAt: keys, clients' tokens and PATs show when they were last
// used; the time moves at most once a minute however many requests come.
func TestLastUsedAt(t *testing.T) {
	h := MustStart(t)
	k := h.createKey(map[string]any{"name": "k", "scopes": []string{"read:signals"}})
	h.createUser("alice", "security", "read:signals")
	p := h.newPerson()
	p.login("alice", alicePW, nil)
	var pat struct{ ID, Token string }
	if code := p.call("POST", "/v1/tokens", map[string]any{"name": "p", "scopes": []string{"read:signals"}}, true, &pat); code != 201 {
		t.Fatal("pat")
	}
	var cl struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if code := h.adminCall("POST", "/v1/clients", map[string]any{"name": "c", "scopes": []string{"read:signals"}}, &cl); code != 201 {
		t.Fatal("client")
	}
	if got := h.listing("/v1/keys", "keys")[k.ID].LastUsedAt; got != nil {
		t.Fatalf("unused key shows last_used_at %v", got)
	}
	start := h.clock.Now()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {cl.ClientID}, "client_secret": {cl.ClientSecret}}
	res := h.do("POST", h.base+"/oauth/token", strings.NewReader(form.Encode()), "Content-Type: application/x-www-form-urlencoded")
	var jwt struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(res.Body).Decode(&jwt)
	if jwt.AccessToken == "" {
		t.Fatalf("client token: %d", res.StatusCode)
	}
	for i := 0; i < 100; i++ { // 300 requests, 100 per credential, 1 s apart
		for _, tok := range []string{k.Key, pat.Token, jwt.AccessToken} {
			if res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+tok); res.StatusCode != 200 {
				t.Fatalf("request %d: %d", i, res.StatusCode)
			}
		}
		h.clock.Advance(time.Second)
	}
	// Noted at 0 s and 60 s (the first use in each minute), not at 99 s.
	want := start.Add(60 * time.Second)
	check := func(when string) {
		t.Helper()
		for what, got := range map[string]*time.Time{
			"key":    h.listing("/v1/keys", "keys")[k.ID].LastUsedAt,
			"token":  h.listing("/v1/tokens?all=true", "tokens")[pat.ID].LastUsedAt,
			"client": h.listing("/v1/clients", "clients")[cl.ClientID].LastUsedAt,
		} {
			if got == nil || !got.Equal(want) {
				t.Errorf("%s: %s last_used_at = %v, want %v", when, what, got, want)
			}
		}
	}
	check("before the flush")
	if err := h.app.FlushUsage(t.Context()); err != nil {
		t.Fatal(err)
	}
	stored, err := h.app.Store().GetKey(t.Context(), k.ID)
	if err != nil || !stored.LastUsedAt.Equal(want) {
		t.Errorf("stored key last_used_at = %v (%v), want %v", stored.LastUsedAt, err, want)
	}
	check("after the flush")
}

// TestCascadeAcrossReplicas: on PostgreSQL with two replicas, revoking a
// token on A revokes the key it created on B too (the cascade publishes
// each revocation), and last uses noted by both replicas land in the one
// store, the latest winning.
func TestCascadeAcrossReplicas(t *testing.T) {
	r := MustStartReplicas(t)
	r.a.createUser("alice", "security", "read:signals")
	p := r.a.newPerson()
	if code, e := p.login("alice", alicePW, nil); code != 200 {
		t.Fatalf("login: %d %s", code, e.Error.Message)
	}
	var parent struct{ ID, Token string }
	if code := p.call("POST", "/v1/tokens", map[string]any{"name": "p", "scopes": []string{"read:signals"}, "role": "security", "expires_in": "1h"}, true, &parent); code != 201 {
		t.Fatal("token")
	}
	var child keyOut
	if code, msg := (&caller{h: r.a, bearer: parent.Token}).call("POST", "/v1/keys", map[string]any{"name": "child", "scopes": []string{"read:signals"}}, &child); code != 201 {
		t.Fatalf("child key: %d %s", code, msg)
	}
	if code := r.getB(t, "/api/v1/signals/x", "X-API-Key", child.Key); code != 200 {
		t.Fatalf("child key on B: %d", code) // now cached on B
	}
	if code := r.a.do("GET", r.a.base+"/api/v1/signals/x", nil, "X-API-Key: "+child.Key).StatusCode; code != 200 {
		t.Fatalf("child key on A: %d", code)
	}
	// B used it later than A (B's clock is ahead).
	r.clock.Advance(5 * time.Minute)
	if code := r.getB(t, "/api/v1/signals/x", "X-API-Key", child.Key); code != 200 {
		t.Fatalf("child key on B later: %d", code)
	}
	if err := r.b.FlushUsage(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := r.a.app.FlushUsage(t.Context()); err != nil { // older: must not move it back
		t.Fatal(err)
	}
	k, err := r.a.app.Store().GetKey(t.Context(), child.ID)
	if err != nil || !k.LastUsedAt.Equal(r.clock.Now()) {
		t.Errorf("stored last_used_at = %v (%v), want B's later use %v", k.LastUsedAt, err, r.clock.Now())
	}
	if code := p.call("POST", "/v1/tokens/"+parent.ID+"/revoke", nil, true, nil); code != 200 {
		t.Fatalf("revoke parent on A: %d", code)
	}
	d := r.untilRefused(t, time.Now(), "X-API-Key", child.Key)
	t.Logf("propagation delay, parent token revoked on A until B refuses its child key: %v", d)
}

// TestLastUsedFlushedAtShutdown: uses noted but not yet written are
// written when the process stops, before the store closes.
func TestLastUsedFlushedAtShutdown(t *testing.T) {
	h := MustStart(t)
	k := h.createKey(map[string]any{"name": "k", "scopes": []string{"read:signals"}})
	if res := h.do("GET", h.base+"/api/v1/signals/x", nil, "X-API-Key: "+k.Key); res.StatusCode != 200 {
		t.Fatalf("use: %d", res.StatusCode)
	}
	usedAt := h.clock.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := h.app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(h.dataDir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.GetKey(ctx, k.ID)
	if err != nil || !got.LastUsedAt.Equal(usedAt) {
		t.Errorf("after shutdown: last_used_at %v (%v), want %v", got.LastUsedAt, err, usedAt)
	}
}
