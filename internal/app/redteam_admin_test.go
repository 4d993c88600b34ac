package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Holes the red team found in issue 13's admin design (copied from branch
// w-red, internal/app/redteam_holes_test.go), with variants.

// TestRedShortLivedCredentialMintsPermanentAdmin: a credential with a
// short life — an admin's one-hour personal access token, or a one-hour
// key with the admin scope — creates a user (role admin, a password that
// never expires) or sets another admin's password. Users carry no expiry,
// so the ceiling on lifetime does not apply, and the user is not in the
// revocation cascade: after the token is revoked (or the key has expired)
// the person who held it for an hour still signs in as admin for good.
func TestRedShortLivedCredentialMintsPermanentAdmin(t *testing.T) {
	h := MustStart(t)
	h.createUser("root1", "admin")
	h.createUser("victim", "admin")
	p := h.newPerson()
	if code, e := p.login("root1", alicePW, nil); code != 200 {
		t.Fatalf("login: %d %s", code, e.Error.Message)
	}
	var pat struct{ ID, Token string }
	if code := p.call("POST", "/v1/tokens", map[string]any{"name": "short", "scopes": []string{}, "role": "admin", "expires_in": "1h"}, true, &pat); code != 201 {
		t.Fatalf("token: %d", code)
	}
	key := h.createKey(map[string]any{"name": "short", "scopes": []string{"admin"}, "expires_in": "1h"})
	const newPW = "another long passphrase 77!"
	for _, c := range []struct {
		name, bearer, user string
	}{{"1h admin token", pat.Token, "backdoor1"}, {"1h admin-scope key", key.Key, "backdoor2"}} {
		cl := &caller{h: h, bearer: c.bearer}
		code, msg := cl.call("POST", "/v1/users", map[string]any{"username": c.user, "role": "admin", "password": alicePW}, nil)
		if code == 201 {
			t.Errorf("%s created admin user %s (no expiry): %d %s", c.name, c.user, code, msg)
		}
	}
	// Refusing the reset (403) is the defence chosen (managing people
	// needs a person's sign-in); a reset that happens must not outlive
	// the token (checked below).
	resetDone := false
	for _, c := range []struct{ name, bearer string }{{"1h admin token", pat.Token}, {"1h admin-scope key", key.Key}} {
		switch code, msg := (&caller{h: h, bearer: c.bearer}).call("POST", "/v1/users/victim/password", map[string]any{"new_password": newPW}, nil); code {
		case 200:
			resetDone = true
		case 403:
			if !strings.Contains(msg, "sign-in") {
				t.Errorf("%s: reset refused without saying what is needed: %q", c.name, msg)
			}
		default:
			t.Fatalf("%s: reset victim's password: %d %s", c.name, code, msg)
		}
	}
	// Revoke the token; let the key expire.
	if code := p.call("POST", "/v1/tokens/"+pat.ID+"/revoke", nil, true, nil); code >= 300 {
		t.Fatalf("revoke: %d", code)
	}
	h.clock.Advance(2 * time.Hour)
	for _, u := range []string{"backdoor1", "backdoor2"} {
		q := h.newPerson()
		if code, _ := q.login(u, alicePW, nil); code == 200 {
			t.Errorf("%s, made by a credential that is now revoked or expired, still signs in (role admin)", u)
		}
	}
	// The password the token set for another admin outlives it too.
	q := h.newPerson()
	if code, _ := q.login("victim", newPW, map[string]any{"new_password": "attacker chosen passphrase 99?"}); code == 200 {
		t.Errorf("the password a revoked 1h token set for admin 'victim' still signs in (account taken over; reset answered 200: %v)", resetDone)
	}
}

// TestRedCascadeRace: a token keeps creating keys while it is revoked
// (the race an attacker runs when they see the revocation coming). The
// creation checks the token, the revocation then walks its descendants,
// and only then is the new key inserted: keys created around the
// revocation survive it and keep working (2-3 of ~10 here, every run).
// Insert a child only if its parent is still active, in one statement or
// transaction (INSERT … WHERE EXISTS active parent), or re-check the
// parent after the insert and revoke the child if the parent is gone.
func TestRedCascadeRace(t *testing.T) {
	h := MustStart(t)
	h.createUser("sec", "security", "read:signals")
	p := h.newPerson()
	if code, e := p.login("sec", alicePW, nil); code != 200 {
		t.Fatalf("login: %d %s", code, e.Error.Message)
	}
	var tok struct{ ID, Token string }
	if code := p.call("POST", "/v1/tokens", map[string]any{"name": "t", "scopes": []string{"read:signals"}, "role": "security"}, true, &tok); code != 201 {
		t.Fatalf("token: %d", code)
	}
	var minted []keyOut
	for _, raw := range mintWhileEnded(t, tok.Token, h.admin+"/v1/keys", map[string]any{"name": "race", "scopes": []string{"read:signals"}}, func() {
		if code := p.call("POST", "/v1/tokens/"+tok.ID+"/revoke", nil, true, nil); code != 200 {
			t.Fatalf("revoke: %d", code)
		}
	}) {
		var k keyOut
		json.Unmarshal(raw, &k)
		minted = append(minted, k)
	}
	for _, k := range minted {
		res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+k.Key)
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode == 429 { // the pre-authentication limit, after many 401s: wait it out
			h.clock.Advance(2 * time.Minute)
			res = h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+k.Key)
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		if res.StatusCode != 401 {
			t.Errorf("key %s, created by the token around its revocation, still works: %d", k.ID, res.StatusCode)
		}
	}
	t.Logf("%d keys minted during the race", len(minted))
}

// TestRedPasswordResetKeepsThiefsToken: an attacker with a stolen session
// mints a personal access token (a session alone suffices). The
// administrator's compromise response — resetting the password, which
// ends the sessions — leaves the token working: the attacker keeps the
// account's role on the admin API until someone finds and revokes it.
// A reset by an administrator (unlike one's own change) should revoke the
// user's tokens, or at least those created by sessions it ends.
func TestRedPasswordResetKeepsThiefsToken(t *testing.T) {
	h := MustStart(t)
	h.createUser("alice", "security", "read:signals")
	thief := h.newPerson()
	if code, e := thief.login("alice", alicePW, nil); code != 200 {
		t.Fatalf("login: %d %s", code, e.Error.Message)
	}
	var tok struct{ ID, Token string }
	if code := thief.call("POST", "/v1/tokens", map[string]any{"name": "persist", "scopes": []string{"read:signals"}, "role": "security"}, true, &tok); code != 201 {
		t.Fatalf("token: %d", code)
	}
	var e errorOut
	if code := h.adminCall("POST", "/v1/users/alice/password", map[string]any{"new_password": "a fresh temporary passphrase 31!"}, &e); code != 200 {
		t.Fatalf("reset: %d %s", code, e.Error.Message)
	}
	if code, _ := (&caller{h: h, bearer: tok.Token}).call("POST", "/v1/keys", map[string]any{"name": "k", "scopes": []string{"read:signals"}}, nil); code == 201 {
		t.Errorf("after the administrator reset alice's password, the token minted by the stolen session still creates keys")
	}
}

// TestRedRefusalFloodHidesRoleDenials: refused admin requests are recorded
// one by one only up to 60 a minute per client address; beyond, one
// anonymous admin.audit.suppressed event. The budget is shared by every
// refusal from the address, so an insider first spends it with junk
// credentials, then tries what their role forbids: the role denials —
// with a known actor — are not on record. Behind a proxy (or on the
// loopback admin listener) every user shares one address, so one
// caller's flood blinds the record of everyone's denials. Aggregate only
// unauthenticated failures, and never suppress a refusal whose actor is
// known (or key the budget by the credential as well as the address).
func TestRedRefusalFloodHidesRoleDenials(t *testing.T) {
	h := MustStart(t)
	h.createUser("mallory", "auditor")
	p := h.newPerson()
	if code, e := p.login("mallory", alicePW, nil); code != 200 {
		t.Fatalf("login: %d %s", code, e.Error.Message)
	}
	for i := 0; i < 61; i++ {
		res := h.do("GET", h.admin+"/v1/keys", nil, "Authorization: Bearer gadm_junk-"+fmt.Sprint(i))
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	for _, path := range []string{"/v1/keys", "/v1/clients", "/v1/signing-keys/rotate"} {
		if code := p.call("POST", path, map[string]any{"name": "k", "scopes": []string{"x"}}, true, nil); code != 403 {
			t.Fatalf("auditor POST %s: %d, want 403", path, code)
		}
	}
	recorded := 0
	for _, e := range h.auditEvents("admin.access.denied") {
		if a, _ := e["actor"].(map[string]any); a["id"] == "mallory" {
			recorded++
		}
	}
	if recorded != 3 {
		t.Errorf("mallory's 3 role denials after a flood of junk credentials: %d recorded", recorded)
	}
}

// TestRedClientTokenEndsWithClient: a client created by a one-hour token
// expires with it, but a JWT it minted just before then stays valid for
// its full 15 minutes: the credential outlives its lifetime ceiling (and
// its creator). Cap the JWT's exp at the client's expiry (and at its
// lineage's), or check the client's expiry at use as revocation is.
func TestRedClientTokenEndsWithClient(t *testing.T) {
	h := MustStart(t)
	h.createUser("sec", "security", "read:signals")
	p := h.newPerson()
	if code, e := p.login("sec", alicePW, nil); code != 200 {
		t.Fatalf("login: %d %s", code, e.Error.Message)
	}
	var tok struct{ Token string }
	if code := p.call("POST", "/v1/tokens", map[string]any{"name": "t", "scopes": []string{"read:signals"}, "role": "security", "expires_in": "1h"}, true, &tok); code != 201 {
		t.Fatalf("token: %d", code)
	}
	var cl clientOut
	if code, msg := (&caller{h: h, bearer: tok.Token}).call("POST", "/v1/clients", map[string]any{"name": "c", "scopes": []string{"read:signals"}}, &cl); code != 201 {
		t.Fatalf("client: %d %s", code, msg)
	}
	h.clock.Advance(59 * time.Minute)
	a := h.token(url.Values{"grant_type": {"client_credentials"}}, cl.ClientID, cl.ClientSecret)
	if a.status != 200 {
		t.Fatalf("token before the client expires: %d %s", a.status, a.Desc)
	}
	h.clock.Advance(5 * time.Minute)
	res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+a.Access)
	if res.StatusCode != 401 {
		t.Errorf("a JWT of a client that expired 4 minutes ago: %d, want 401", res.StatusCode)
	}
}

// TestPeopleManagementNeedsSignIn: each people-management endpoint × each
// kind of caller with role admin. A person's sign-in (session, HTTP Basic)
// and the bootstrap token manage people; a personal access token (with or
// without an expiry) and a key with the admin scope are refused 403 with
// a message that says what is needed; a client's JWT is no admin
// credential at all (401). Disabling a user only takes access away and
// stays open to every admin credential.
func TestPeopleManagementNeedsSignIn(t *testing.T) {
	h := MustStart(t)
	h.createUser("root1", "admin", "read:signals")
	p := h.newPerson()
	if code, e := p.login("root1", alicePW, nil); code != 200 {
		t.Fatalf("login: %d %s", code, e.Error.Message)
	}
	pat := func(body map[string]any) string {
		var tok struct{ Token string }
		if code := p.call("POST", "/v1/tokens", body, true, &tok); code != 201 {
			t.Fatalf("token: %d", code)
		}
		return tok.Token
	}
	cl := h.createClient("read:signals")
	jwt := h.token(url.Values{"grant_type": {"client_credentials"}}, cl.ClientID, cl.ClientSecret)
	if jwt.status != 200 {
		t.Fatalf("client token: %d", jwt.status)
	}
	type who struct {
		name string
		c    *caller
		want int // 0: allowed
	}
	callers := []who{
		{"bootstrap token", &caller{h: h, bearer: adminToken}, 0},
		{"session", &caller{h: h, session: p}, 0},
		{"basic", nil, 0},
		{"admin token (90d)", &caller{h: h, bearer: pat(map[string]any{"name": "long", "role": "admin"})}, 403},
		{"admin token (1h)", &caller{h: h, bearer: pat(map[string]any{"name": "short", "role": "admin", "expires_in": "1h"})}, 403},
		{"admin-scope key (no expiry)", &caller{h: h, bearer: h.createKey(map[string]any{"name": "a", "scopes": []string{"admin"}}).Key}, 403},
		{"admin-scope key (1h)", &caller{h: h, bearer: h.createKey(map[string]any{"name": "b", "scopes": []string{"admin"}, "expires_in": "1h"}).Key}, 403},
		{"client JWT", &caller{h: h, bearer: jwt.Access}, 401},
	}
	basic := func(method, path string, body any) (int, string) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, h.admin+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth("root1", alicePW)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var e errorOut
		json.NewDecoder(res.Body).Decode(&e)
		return res.StatusCode, e.Error.Message
	}
	n := 0
	for _, w := range callers {
		call := basic
		if w.c != nil {
			call = func(method, path string, body any) (int, string) { return w.c.call(method, path, body, nil) }
		}
		n++
		victim := fmt.Sprintf("victim%d", n)
		h.createUser(victim, "security", "read:signals")
		endpoints := []struct {
			name, path string
			body       any
			ok         int
		}{
			{"create user", "/v1/users", map[string]any{"username": fmt.Sprintf("new%d", n), "role": "auditor", "password": alicePW}, 201},
			{"reset password", "/v1/users/" + victim + "/password", map[string]any{"new_password": "a fresh temporary passphrase 31!"}, 200},
			{"reset second factor", "/v1/users/" + victim + "/totp/reset", nil, 200},
			{"unlock", "/v1/users/" + victim + "/unlock", nil, 200},
			{"disable (allowed to every admin credential)", "/v1/users/" + victim + "/disable", nil, 200},
		}
		for _, ep := range endpoints {
			t.Run(w.name+"/"+ep.name, func(t *testing.T) {
				code, msg := call("POST", ep.path, ep.body)
				want := w.want
				if want == 403 && ep.path == "/v1/users/"+victim+"/disable" {
					want = 0
				}
				switch want {
				case 0:
					if code != ep.ok {
						t.Fatalf("HTTP %d %q, want %d", code, msg, ep.ok)
					}
				case 403:
					if code != 403 || !strings.Contains(msg, "needs a person's sign-in") {
						t.Fatalf("HTTP %d %q, want 403 saying a sign-in is needed", code, msg)
					}
				default:
					if code != want {
						t.Fatalf("HTTP %d %q, want %d", code, msg, want)
					}
				}
			})
		}
	}
	// The refusals are on record with their actor.
	denied := 0
	for _, e := range h.auditEvents("admin.access.denied") {
		if strings.Contains(fmt.Sprint(e["details"]), "needs a person's sign-in") {
			denied++
		}
	}
	if denied != 4*4 {
		t.Errorf("%d refusals of people management on record, want 16", denied)
	}
}

// TestCascadeRaceVariants: a token keeps creating keys, clients or tokens
// while it is ended — revoked, its owner disabled, or its owner's
// password reset by an administrator. Every credential it managed to
// create is revoked afterwards (the cascade, or the creation's own
// re-check of its creator chain). Status is read from the listings, so
// the check does not depend on the gateway's limits.
func TestCascadeRaceVariants(t *testing.T) {
	kinds := []struct{ name, path, list, field string }{
		{"keys", "/v1/keys", "/v1/keys", "keys"},
		{"clients", "/v1/clients", "/v1/clients", "clients"},
		{"tokens", "/v1/tokens", "/v1/tokens?all=true", "tokens"},
	}
	ends := []struct {
		name string
		end  func(h *harness, p *person, tokID string) int
	}{
		{"revoke", func(h *harness, p *person, id string) int {
			return p.call("POST", "/v1/tokens/"+id+"/revoke", nil, true, nil)
		}},
		{"disable owner", func(h *harness, p *person, id string) int {
			return h.adminCall("POST", "/v1/users/sec/disable", nil, nil)
		}},
		{"reset owner's password", func(h *harness, p *person, id string) int {
			return h.adminCall("POST", "/v1/users/sec/password", map[string]any{"new_password": "a fresh temporary passphrase 31!"}, nil)
		}},
	}
	for _, k := range kinds {
		for _, e := range ends {
			t.Run(k.name+"/"+e.name, func(t *testing.T) {
				h := MustStart(t)
				h.createUser("sec", "security", "read:signals")
				p := h.newPerson()
				if code, er := p.login("sec", alicePW, nil); code != 200 {
					t.Fatalf("login: %d %s", code, er.Error.Message)
				}
				var tok struct{ ID, Token string }
				if code := p.call("POST", "/v1/tokens", map[string]any{"name": "t", "scopes": []string{"read:signals"}, "role": "security"}, true, &tok); code != 201 {
					t.Fatalf("token: %d", code)
				}
				body := map[string]any{"name": "race", "scopes": []string{"read:signals"}}
				if k.name == "tokens" {
					body["role"] = "security"
				}
				var minted []string
				for _, raw := range mintWhileEnded(t, tok.Token, h.admin+k.path, body, func() {
					if code := e.end(h, p, tok.ID); code != 200 {
						t.Fatalf("%s: %d", e.name, code)
					}
				}) {
					var out struct {
						ID       string `json:"id"`
						ClientID string `json:"client_id"`
					}
					json.Unmarshal(raw, &out)
					minted = append(minted, out.ID+out.ClientID)
				}
				all := h.listing(k.list, k.field)
				for _, id := range minted {
					if st := all[id].Status; st != "revoked" {
						t.Errorf("%s created by the token around its end (%s) is %q", id, e.name, st)
					}
				}
				t.Logf("%d %s minted during the race", len(minted), k.name)
			})
		}
	}
}

// TestAdminResetRevokesTokens: each administrator action on a possibly
// compromised account — password reset, second-factor reset, disable —
// revokes the account's tokens and what they created (the cascade), each
// on record; the user's own password change without revoke_tokens keeps
// them (control).
func TestAdminResetRevokesTokens(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		body       any
		revokes    bool
	}{
		{"password reset", "/v1/users/alice/password", map[string]any{"new_password": "a fresh temporary passphrase 31!"}, true},
		{"second-factor reset", "/v1/users/alice/totp/reset", nil, true},
		{"disable", "/v1/users/alice/disable", nil, true},
		{"unlock (control)", "/v1/users/alice/unlock", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := MustStart(t)
			h.createUser("alice", "security", "read:signals")
			p := h.newPerson()
			if code, e := p.login("alice", alicePW, nil); code != 200 {
				t.Fatalf("login: %d %s", code, e.Error.Message)
			}
			var tok struct{ ID, Token string }
			if code := p.call("POST", "/v1/tokens", map[string]any{"name": "persist", "scopes": []string{"read:signals"}, "role": "security"}, true, &tok); code != 201 {
				t.Fatalf("token: %d", code)
			}
			var k keyOut
			if code, msg := (&caller{h: h, bearer: tok.Token}).call("POST", "/v1/keys", map[string]any{"name": "k", "scopes": []string{"read:signals"}}, &k); code != 201 {
				t.Fatalf("key: %d %s", code, msg)
			}
			var e errorOut
			if code := h.adminCall("POST", tc.path, tc.body, &e); code != 200 {
				t.Fatalf("%s: %d %s", tc.name, code, e.Error.Message)
			}
			tokens := h.listing("/v1/tokens?all=true", "tokens")
			keys := h.listing("/v1/keys", "keys")
			if got := tokens[tok.ID].Status == "revoked"; got != tc.revokes {
				t.Errorf("token status %q after %s", tokens[tok.ID].Status, tc.name)
			}
			if got := keys[k.ID].Status == "revoked"; got != tc.revokes {
				t.Errorf("key the token created: status %q after %s", keys[k.ID].Status, tc.name)
			}
			res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+k.Key)
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if tc.revokes && res.StatusCode != 401 {
				t.Errorf("the key the token created still works at the gateway: %d", res.StatusCode)
			}
			if !tc.revokes {
				return
			}
			found := false
			for _, ev := range h.auditEvents("admin.token.revoke") {
				if ev["resource"] == "token:"+tok.ID {
					found = true
				}
			}
			if !found {
				t.Errorf("no admin.token.revoke event for token %s after %s", tok.ID, tc.name)
			}
		})
	}
}

// TestRefusalFloodKnownActors: after a flood of junk credentials from the
// address, refusals of credentials that did verify — a key without the
// admin scope, an auditor's token — are still recorded with their actor.
func TestRefusalFloodKnownActors(t *testing.T) {
	h := MustStart(t)
	h.createUser("mallory", "auditor", "read:signals")
	p := h.newPerson()
	if code, e := p.login("mallory", alicePW, nil); code != 200 {
		t.Fatalf("login: %d %s", code, e.Error.Message)
	}
	var tok struct{ ID, Token string }
	if code := p.call("POST", "/v1/tokens", map[string]any{"name": "t", "scopes": []string{"read:signals"}, "role": "auditor"}, true, &tok); code != 201 {
		t.Fatalf("token: %d", code)
	}
	plain := h.createKey(map[string]any{"name": "plain", "scopes": []string{"read:signals"}})
	for i := 0; i < 61; i++ {
		res := h.do("GET", h.admin+"/v1/keys", nil, "Authorization: Bearer gadm_junk-"+fmt.Sprint(i))
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	for _, c := range []struct{ name, bearer, id string }{
		{"auditor token", tok.Token, "mallory"},
		{"key without the admin scope", plain.Key, plain.ID},
	} {
		if code, _ := (&caller{h: h, bearer: c.bearer}).call("POST", "/v1/keys", map[string]any{"name": "k", "scopes": []string{"read:signals"}}, nil); code != 403 {
			t.Fatalf("%s: %d, want 403", c.name, code)
		}
		recorded := 0
		for _, e := range h.auditEvents("admin.access.denied") {
			if a, _ := e["actor"].(map[string]any); a["id"] == c.id {
				recorded++
			}
		}
		if recorded != 1 {
			t.Errorf("%s's denial after a flood of junk credentials: %d recorded, want 1", c.name, recorded)
		}
	}
	// The junk beyond the budget is still aggregated (control).
	if n := len(h.auditEvents("admin.audit.suppressed")); n == 0 {
		t.Errorf("no admin.audit.suppressed event after 61 junk credentials")
	}
}

// TestClientTokenExpiresInCapped: the token endpoint's expires_in says
// when the JWT really ends (the client's expiry, when sooner than the TTL).
func TestClientTokenExpiresInCapped(t *testing.T) {
	h := MustStart(t)
	var cl clientOut
	if code := h.adminCall("POST", "/v1/clients", map[string]any{"name": "c", "scopes": []string{"read:signals"}, "expires_in": "10m"}, &cl); code != 201 {
		t.Fatalf("client: %d", code)
	}
	h.clock.Advance(8 * time.Minute)
	a := h.token(url.Values{"grant_type": {"client_credentials"}}, cl.ClientID, cl.ClientSecret)
	if a.status != 200 {
		t.Fatalf("token: %d %s", a.status, a.Desc)
	}
	if a.Expires <= 0 || a.Expires > 120 {
		t.Errorf("expires_in %d, want at most 120 (the client ends in 2 minutes)", a.Expires)
	}
	h.clock.Advance(3*time.Minute + time.Second + time.Minute) // past the client's end and the leeway
	res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+a.Access)
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("JWT after its client ended: %d, want 401", res.StatusCode)
	}
}

// mintWhileEnded has four callers create credentials with token at url
// (POSTing body) until the token stops working, calls end once at least
// three exist, and returns the body of every creation that succeeded.
func mintWhileEnded(t *testing.T, token, url string, body map[string]any, end func()) []json.RawMessage {
	t.Helper()
	var mu sync.Mutex
	var minted []json.RawMessage
	stop := make(chan struct{})
	var wg sync.WaitGroup
	b, _ := json.Marshal(body)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				data, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode == 401 {
					return
				}
				if res.StatusCode != 201 {
					continue
				}
				mu.Lock()
				minted = append(minted, data)
				mu.Unlock()
			}
		}()
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(minted) >= 3 })
	func() {
		defer close(stop) // also when end fails the test
		end()
	}()
	wg.Wait()
	return minted
}
