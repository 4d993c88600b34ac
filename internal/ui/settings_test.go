package ui_test

import (
	"html"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// settingsDefaults is the settings form as a new deployment shows it.
func settingsDefaults() url.Values {
	return url.Values{
		"min_length": {"12"}, "min_strength": {"3"}, "history": {"5"}, "max_age_days": {"90"},
		"forbid_username": {"on"}, "check_common": {"on"},
		"max_failures": {"5"}, "lockout_window": {"15m"}, "lockout_duration": {"15m"},
		"idle_timeout": {"30m"}, "absolute_timeout": {"12h"}, "basic_auth": {"on"},
		"per_source_requests": {"30"}, "per_source_per": {"1m"}, "per_username_requests": {"10"}, "per_username_per": {"1m"},
	}
}

// TestSettingsFormJSOff: the form shows the API's settings, saves them as
// one PUT, and shows the API's own message for every refusal.
func TestSettingsFormJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)
	res, body := f.get("/ui/settings/authentication")
	if res.StatusCode != 200 {
		t.Fatalf("settings page: HTTP %d %s", res.StatusCode, body)
	}
	tok := token(t, body)
	// Every default is shown as the form sends it back.
	for k, v := range settingsDefaults() {
		if v[0] == "on" {
			if !strings.Contains(body, `name="`+k+`" type="checkbox" checked`) {
				t.Errorf("%s not checked", k)
			}
			continue
		}
		if !strings.Contains(body, `name="`+k+`" inputmode="numeric" value="`+v[0]+`"`) && !strings.Contains(body, `name="`+k+`" value="`+v[0]+`"`) {
			t.Errorf("%s: not shown as %q", k, v[0])
		}
	}
	// Every control has a label.
	for _, id := range regexpAll(body, `<input id="([^"]+)"`) {
		if !strings.Contains(body, `<label for="`+id+`">`) {
			t.Errorf("input %s has no label", id)
		}
	}
	var before map[string]any
	e.API("GET", "/v1/settings/authentication", nil, &before)

	// Save unchanged: the same settings.
	v := settingsDefaults()
	v.Set("csrf_token", tok)
	if res, body := f.post("/ui/settings/authentication", v); res.StatusCode != 200 || !strings.Contains(body, "Settings saved.") {
		t.Fatalf("save unchanged: HTTP %d %s", res.StatusCode, body)
	}
	var same map[string]any
	e.API("GET", "/v1/settings/authentication", nil, &same)
	if !reflect.DeepEqual(before, same) {
		t.Fatalf("saving the form unchanged changed the settings:\n%v\n%v", before, same)
	}

	// A change: longer passwords, TOTP for auditors, Basic off.
	v.Set("min_length", "16")
	v["totp_required_roles"] = []string{"auditor"}
	v.Del("basic_auth")
	if res, body := f.post("/ui/settings/authentication", v); res.StatusCode != 200 || !strings.Contains(body, "Settings saved.") {
		t.Fatalf("save: HTTP %d %s", res.StatusCode, body)
	}
	var after struct {
		Password struct {
			MinLength int `json:"min_length"`
		} `json:"password_policy"`
		BasicAuth bool     `json:"basic_auth"`
		TOTP      []string `json:"totp_required_roles"`
	}
	e.API("GET", "/v1/settings/authentication", nil, &after)
	if after.Password.MinLength != 16 || after.BasicAuth || len(after.TOTP) != 1 || after.TOTP[0] != "auditor" {
		t.Fatalf("after saving: %+v", after)
	}
	if _, body := f.get("/ui/settings/authentication"); !strings.Contains(body, `value="auditor" aria-describedby="totp-help" checked`) || strings.Contains(body, `name="basic_auth" type="checkbox" checked`) {
		t.Error("the page does not show the saved settings")
	}
	// The policy is enforced: a 13-character password is now too short.
	_, ub := f.get("/ui/users")
	if res, body := f.post("/ui/users", url.Values{"username": {"erin"}, "role": {"auditor"}, "password": {"thirteen char"}, "password_confirm": {"thirteen char"}, "csrf_token": {token(t, ub)}}); res.StatusCode != 400 || !strings.Contains(body, "password: too short: at least 16 characters") {
		t.Fatalf("short password after raising the minimum: HTTP %d %s", res.StatusCode, body)
	}

	// Refusals: the page shows exactly what the API says to the same PUT.
	tests := []struct {
		name, field, value string
		api                map[string]any
	}{
		{"min length too low", "min_length", "4", map[string]any{"password_policy": map[string]any{"min_length": 4}}},
		{"min length not a number", "min_length", "<b>twelve</b>", map[string]any{"password_policy": map[string]any{"min_length": "<b>twelve</b>"}}},
		{"bad max failures", "max_failures", "0", map[string]any{"lockout": map[string]any{"max_failures": 0}}},
		{"bad duration", "lockout_window", "soon", map[string]any{"lockout": map[string]any{"window": "soon"}}},
		{"lifetime too long", "absolute_timeout", "1000h", map[string]any{"session": map[string]any{"absolute_timeout": "1000h"}}},
		{"bad rate window", "per_source_per", "x", map[string]any{"sign_in_limits": map[string]any{"per_source": map[string]any{"requests": 30, "per": "x"}}}},
		{"unknown role", "totp_required_roles", "root", map[string]any{"totp_required_roles": []string{"root"}}},
		{"max age too long", "max_age_days", "100000", map[string]any{"password_policy": map[string]any{"max_age_days": 100000}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want struct{ Error struct{ Message string } }
			code := e.API("PUT", "/v1/settings/authentication", tt.api, &want)
			if code != 400 || want.Error.Message == "" {
				t.Fatalf("API: HTTP %d %+v", code, want)
			}
			bad := settingsDefaults()
			bad.Set(tt.field, tt.value)
			bad.Set("csrf_token", tok)
			res, body := f.post("/ui/settings/authentication", bad)
			if res.StatusCode != 400 || !strings.Contains(body, `<p class="error" role="alert" id="settings-error">`+html.EscapeString(want.Error.Message)+`</p>`) {
				t.Fatalf("HTTP %d, want 400 and the API's %q: %s", res.StatusCode, want.Error.Message, body)
			}
			if strings.Contains(body, "<b>twelve") {
				t.Fatal("the value sent is not escaped")
			}
			if tt.field != "totp_required_roles" && !strings.Contains(body, `value="`+html.EscapeString(tt.value)+`"`) {
				t.Error("the form does not keep the value sent")
			}
		})
	}
	e.API("GET", "/v1/settings/authentication", nil, &after)
	if after.Password.MinLength != 16 {
		t.Fatalf("a refused form changed the settings: %+v", after)
	}
	e.NoCSPReports()
}

// TestSettingsRefusedJSOff: security and auditors read the settings but
// get the API's 403 for changing them; a form without its CSRF token is
// refused.
func TestSettingsRefusedJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	e.CreateUser("bob", "security")
	e.CreateUser("carol", "auditor")
	for _, who := range []string{"bob", "carol"} {
		f := newForm(t, e)
		f.signIn(who, uitest.Password)
		res, body := f.get("/ui/settings/authentication")
		if res.StatusCode != 200 || !strings.Contains(body, `name="min_length"`) {
			t.Fatalf("%s reading settings: HTTP %d", who, res.StatusCode)
		}
		v := settingsDefaults()
		v.Set("min_length", "20")
		v.Set("csrf_token", token(t, body))
		res, body = f.post("/ui/settings/authentication", v)
		if res.StatusCode != 403 || !strings.Contains(body, "may not change settings") {
			t.Fatalf("%s changing settings: HTTP %d %s", who, res.StatusCode, body)
		}
	}
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)
	v := settingsDefaults()
	v.Set("min_length", "20")
	if res, _ := f.post("/ui/settings/authentication", v); res.StatusCode != 403 {
		t.Fatalf("without its token: HTTP %d", res.StatusCode)
	}
	var s struct {
		Password struct {
			MinLength int `json:"min_length"`
		} `json:"password_policy"`
	}
	e.API("GET", "/v1/settings/authentication", nil, &s)
	if s.Password.MinLength != 12 {
		t.Fatalf("refused forms changed the settings: %+v", s)
	}
}
