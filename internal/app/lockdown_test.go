package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/compliance"
)

// gatewayCall sends a request to the public listener and returns its
// status and body.
func (h *harness) gatewayCall(method, path, body string, headers ...string) (int, string) {
	h.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	res := h.do(method, h.base+path, r, headers...)
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(data)
}

// wantLockdown checks a 503 lockdown refusal: the JSON error shape of the
// gateway, code lockdown, the incident named.
func wantLockdown(t *testing.T, what string, code int, body, incident string) {
	t.Helper()
	var e errorOut
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("%s: %d, body %q: not a JSON error", what, code, body)
	}
	if code != 503 || e.Error.Code != "lockdown" || !strings.Contains(e.Error.Message, incident) || e.Error.RequestID == "" {
		t.Errorf("%s: %d %+v, want 503 code lockdown naming %s", what, code, e.Error, incident)
	}
}

// TestLockdown: an incident's lockdown refuses every caller it does not
// name with 503 and a JSON reason — on routes (public ones too), at
// forward-auth and at the decision API — admits the roles and principals it
// names, leaves /health and the admin API alone, holds the incident open,
// and is audited; lifting it restores the gateway.
func TestLockdown(t *testing.T) {
	h := MustStartWith(t, "forward_auth:\n  proxy: traefik\n")
	svc := h.createKey(map[string]any{"name": "svc", "scopes": []string{"read:signals"}})
	ops := h.createKey(map[string]any{"name": "ops", "scopes": []string{"read:signals"}})
	boss := h.createKey(map[string]any{"name": "boss", "scopes": []string{"admin"}})
	bearer := func(k keyOut) string { return "Authorization: Bearer " + k.Key }
	decide := `{"action": "tool.execute", "resource": "tool:web_search"}`

	var in compliance.Incident
	if code := h.adminCall("POST", "/v1/incidents", map[string]any{"title": "key leaked", "severity": "critical", "impact": "reads"}, &in); code != 201 {
		t.Fatalf("open: %d", code)
	}
	if code, body := h.gatewayCall("GET", "/api/v1/signals/x", "", bearer(svc)); code != 200 {
		t.Fatalf("svc before the lockdown: %d %s", code, body)
	}

	t.Run("bad requests are 400 naming the problem", func(t *testing.T) {
		for _, tc := range []struct {
			body map[string]any
			want string
		}{
			{map[string]any{"lockdown": true}, "allow"},
			{map[string]any{"lockdown": true, "allow": []string{}}, "allow"},
			{map[string]any{"lockdown": true, "allow": []string{"superuser"}}, "superuser"},
			{map[string]any{"lockdown": true, "allow": []string{"api_key:key_doesnotexist"}}, "no such api key"},
			{map[string]any{"lockdown": true, "allow": []string{"user:nobody"}}, "no such user"},
			{map[string]any{"lockdown": true, "allow": []string{"pat:pat_nothing"}}, "no such pat"},
			{map[string]any{"lockdown": true, "allow": []string{"robot:x"}}, "robot:x"},
			{map[string]any{"allow": []string{"admin"}}, "allow"},
			{map[string]any{"lockdown": true, "allow": []string{"admin"}, "revoke_before": "2026-01-01T00:00:00Z"}, "exactly one"},
		} {
			var e errorOut
			if code := h.adminCall("POST", "/v1/incidents/"+in.ID+"/contain", tc.body, &e); code != 400 || !strings.Contains(e.Error.Message, tc.want) {
				t.Errorf("%v: %d %q, want 400 naming %q", tc.body, code, e.Error.Message, tc.want)
			}
		}
		if code, _ := h.gatewayCall("GET", "/api/v1/signals/x", "", bearer(svc)); code != 200 {
			t.Fatalf("a refused lockdown locked the gateway down: svc %d", code)
		}
		var e errorOut
		if code := h.adminCall("POST", "/v1/incidents/inc_nope/contain", map[string]any{"lockdown": true, "allow": []string{"admin"}}, &e); code != 404 {
			t.Errorf("lockdown for an unknown incident: %d, want 404", code)
		}
	})

	t.Run("an auditor cannot lock down or lift", func(t *testing.T) {
		h.createUser("aud", "auditor")
		aud := h.newPerson()
		if code, _ := aud.login("aud", alicePW, nil); code != 200 {
			t.Fatal("sign in aud")
		}
		if code := aud.call("POST", "/v1/incidents/"+in.ID+"/contain", map[string]any{"lockdown": true, "allow": []string{"auditor"}}, true, nil); code != 403 {
			t.Errorf("auditor locks down: %d, want 403", code)
		}
		if code := aud.call("POST", "/v1/incidents/"+in.ID+"/lift", nil, true, nil); code != 403 {
			t.Errorf("auditor lifts: %d, want 403", code)
		}
		if code, _ := h.gatewayCall("GET", "/api/v1/signals/x", "", bearer(svc)); code != 200 {
			t.Fatalf("the auditor's refused lockdown locked the gateway down: svc %d", code)
		}
	})

	var got compliance.Incident
	if code := h.adminCall("POST", "/v1/incidents/"+in.ID+"/contain", map[string]any{"lockdown": true, "allow": []string{"api_key:" + ops.ID, "admin"}}, &got); code != 200 {
		t.Fatalf("lockdown: %d", code)
	}
	if n := len(got.Actions); n == 0 || got.Actions[n-1].Action != "lockdown" || strings.Join(got.Actions[n-1].Allow, " ") != "admin api_key:"+ops.ID {
		t.Errorf("containment recorded: %+v", got.Actions)
	}

	t.Run("in lockdown", func(t *testing.T) {
		for _, tc := range []struct {
			name, method, path, body string
			headers                  []string
			want                     int // 0: the lockdown refusal
		}{
			{"non-admin key on a route", "GET", "/api/v1/signals/x", "", []string{bearer(svc)}, 0},
			{"non-admin key by X-API-Key", "GET", "/api/v1/signals/x", "", []string{"X-API-Key: " + svc.Key}, 0},
			{"anonymous on a public route", "GET", "/public/x", "", nil, 0},
			{"non-admin key at the decision API", "POST", "/v1/authorize", decide, []string{bearer(svc), "Content-Type: application/json"}, 0},
			{"allowed principal on a route", "GET", "/api/v1/signals/x", "", []string{bearer(ops)}, 200},
			{"allowed principal still meets the policy", "POST", "/api/v1/signals/x", "{}", []string{bearer(ops), "Content-Type: application/json"}, 403},
			{"allowed role (admin scope) on a route", "GET", "/api/v1/signals/admin/x", "", []string{bearer(boss)}, 200},
			{"allowed principal at the decision API", "POST", "/v1/authorize", decide, []string{bearer(ops), "Content-Type: application/json"}, 200},
			{"no credential: still 401", "GET", "/api/v1/signals/x", "", nil, 401},
			{"health", "GET", "/health", "", nil, 200},
			{"health/live", "GET", "/health/live", "", nil, 200},
			{"health/ready", "GET", "/health/ready", "", nil, 200},
			{"jwks", "GET", "/.well-known/jwks.json", "", nil, 200},
		} {
			code, body := h.gatewayCall(tc.method, tc.path, tc.body, tc.headers...)
			if tc.want == 0 {
				wantLockdown(t, tc.name, code, body, in.ID)
			} else if code != tc.want {
				t.Errorf("%s: %d, want %d: %s", tc.name, code, tc.want, body)
			}
		}
		// Forward-auth: the proxy's check is refused the same way.
		code, _, body := h.verifyCall(nil, "traefik", "GET", "/api/v1/signals/x", hdr{"Authorization", "Bearer " + svc.Key})
		wantLockdown(t, "forward-auth, non-admin key", code, body, in.ID)
		if code, _, body := h.verifyCall(nil, "traefik", "GET", "/api/v1/signals/x", hdr{"Authorization", "Bearer " + ops.Key}); code != 200 {
			t.Errorf("forward-auth, allowed principal: %d %s", code, body)
		}
		// The admin listener stays usable (that is where it is lifted).
		var full struct {
			Lockdown *struct {
				Incident string
				Allow    []string
			}
		}
		if code := h.adminCall("GET", "/v1/incidents/"+in.ID, nil, &full); code != 200 || full.Lockdown == nil || full.Lockdown.Incident != in.ID {
			t.Errorf("GET the incident in lockdown: %d %+v", code, full.Lockdown)
		}
		var e errorOut
		if code := h.adminCall("POST", "/v1/incidents/"+in.ID+"/close", nil, &e); code != 409 || !strings.Contains(e.Error.Message, "lift") {
			t.Errorf("closing an incident that holds the lockdown: %d %q, want 409 saying lift it first", code, e.Error.Message)
		}
		var other compliance.Incident
		h.adminCall("POST", "/v1/incidents", map[string]any{"title": "another", "severity": "low", "impact": "none"}, &other)
		if code := h.adminCall("POST", "/v1/incidents/"+other.ID+"/contain", map[string]any{"lockdown": true, "allow": []string{"admin"}}, &e); code != 409 || !strings.Contains(e.Error.Message, in.ID) {
			t.Errorf("a second incident's lockdown: %d %q, want 409 naming %s", code, e.Error.Message, in.ID)
		}
		if code := h.adminCall("POST", "/v1/incidents/"+other.ID+"/lift", nil, &e); code != 409 {
			t.Errorf("lifting through another incident: %d, want 409", code)
		}
		if ev := h.auditEvents("lockdown.refused"); len(ev) < 5 {
			t.Errorf("%d lockdown.refused events, want one per refusal (at least 5)", len(ev))
		} else if r, _ := ev[0]["reason"].(string); !strings.Contains(r, in.ID) {
			t.Errorf("lockdown.refused event: %v, want the incident in the reason", ev[0])
		}
	})

	h.clock.Advance(90 * time.Second) // the lockdown lasts 90 s
	if code := h.adminCall("POST", "/v1/incidents/"+in.ID+"/lift", nil, &got); code != 200 {
		t.Fatalf("lift: %d", code)
	}
	if n := len(got.Actions); got.Actions[n-1].Action != "lift_lockdown" {
		t.Errorf("lift recorded: %+v", got.Actions[n-1])
	}
	if code, body := h.gatewayCall("GET", "/api/v1/signals/x", "", bearer(svc)); code != 200 {
		t.Errorf("svc after the lift: %d %s", code, body)
	}
	if code, body := h.gatewayCall("GET", "/public/x", ""); code != 200 {
		t.Errorf("anonymous public route after the lift: %d %s", code, body)
	}
	var e errorOut
	if code := h.adminCall("POST", "/v1/incidents/"+in.ID+"/lift", nil, &e); code != 409 || !strings.Contains(e.Error.Message, "not in lockdown") {
		t.Errorf("lift again: %d %q, want 409", code, e.Error.Message)
	}
	contain, lift := h.auditEvents("admin.incident.contain"), h.auditEvents("admin.incident.lift")
	if len(contain) != 1 || len(lift) != 1 {
		t.Fatalf("audit: %d contain and %d lift events, want 1 and 1", len(contain), len(lift))
	}
	if d, _ := contain[0]["details"].(map[string]any); d["action"] != "lockdown" || fmt.Sprint(d["allow"]) != "[admin api_key:"+ops.ID+"]" {
		t.Errorf("contain event details: %v", contain[0]["details"])
	}
	if d, _ := lift[0]["details"].(map[string]any); d["duration_s"] != float64(90) || d["set_by"] != "admin_token:admin-token" {
		t.Errorf("lift event details: %v", lift[0]["details"])
	}
	if code := h.adminCall("POST", "/v1/incidents/"+in.ID+"/close", nil, nil); code != 200 {
		t.Errorf("close after the lift: %d", code)
	}
	// The evidence report shows the lockdown under CC7.4, citing its events.
	h.clock.Advance(time.Second)
	var rep compliance.Report
	if code := h.adminCall("GET", "/v1/evidence", nil, &rep); code != 200 {
		t.Fatalf("evidence: %d", code)
	}
	f := findingOf(t, &rep, "CC7.4", "incidents.reviewed")
	ld, _ := f.Observed["lockdowns"].([]any)
	if len(ld) != 1 {
		t.Fatalf("observed lockdowns: %v, want 1 (%v)", f.Observed["lockdowns"], f.Observed)
	}
	if l, _ := ld[0].(map[string]any); l["incident"] != in.ID || l["lifted"] == "" || l["duration_s"] != float64(90) || fmt.Sprint(l["allow"]) != "[admin api_key:"+ops.ID+"]" {
		t.Errorf("observed lockdown: %v", l)
	}
	if len(f.Evidence) == 0 {
		t.Errorf("incidents.reviewed cites no audit entry")
	}
}

// TestLockdownAcrossReplicas: a lockdown set through replica A refuses on
// replica B at once (the invalidation bus), a replica started during the
// lockdown refuses from its first request (the state is in the store, as
// after a restart), and a lift through B reopens A.
func TestLockdownAcrossReplicas(t *testing.T) {
	r := MustStartReplicas(t)
	svc := r.a.createKey(map[string]any{"name": "svc", "scopes": []string{"read:signals"}})
	ops := r.a.createKey(map[string]any{"name": "ops", "scopes": []string{"read:signals"}})
	get := func(base, key string) (int, string) {
		req, _ := http.NewRequest("GET", base+"/api/v1/signals/x", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get(r.bBase, svc.Key); code != 200 {
		t.Fatalf("svc on B before: %d %s", code, body)
	}
	var in compliance.Incident
	r.a.adminCall("POST", "/v1/incidents", map[string]any{"title": "breach", "severity": "high", "impact": "all"}, &in)
	if code := r.a.adminCall("POST", "/v1/incidents/"+in.ID+"/contain", map[string]any{"lockdown": true, "allow": []string{"api_key:" + ops.ID}}, nil); code != 200 {
		t.Fatalf("lockdown on A: %d", code)
	}
	start := time.Now()
	for {
		code, body := get(r.bBase, svc.Key)
		if code == 503 {
			wantLockdown(t, "svc on B", code, body, in.ID)
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("B still admits svc %v after the lockdown on A: %d", time.Since(start), code)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("B refused %v after the lockdown on A", time.Since(start).Round(time.Millisecond))
	if code, body := get(r.bBase, ops.Key); code != 200 {
		t.Errorf("allowed principal on B: %d %s", code, body)
	}

	// A third replica started now reads the lockdown from the store.
	c, _ := startReplica(t, r.a, r.dsn, "")
	code, body := get("http://"+c.Addr(), svc.Key)
	wantLockdown(t, "svc on a replica started during the lockdown", code, body, in.ID)

	// Lifted through B: A admits svc again.
	hb := *r.a
	hb.admin = "http://" + r.b.AdminAddr()
	if code := hb.adminCall("POST", "/v1/incidents/"+in.ID+"/lift", nil, nil); code != 200 {
		t.Fatalf("lift on B: %d", code)
	}
	start = time.Now()
	for {
		code, _ := get(r.a.base, svc.Key)
		if code == 200 {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("A still refuses svc %v after the lift on B: %d", time.Since(start), code)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
