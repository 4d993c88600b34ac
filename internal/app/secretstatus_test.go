package app_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/metrics"
)

type secretStatusOut struct {
	Name           string     `json:"name"`
	Class          string     `json:"class"`
	Provider       string     `json:"provider"`
	Where          string     `json:"where"`
	CreatedAt      *time.Time `json:"created_at"`
	AgeSeconds     *int64     `json:"age_seconds"`
	CadenceSeconds int64      `json:"cadence_seconds"`
	DueAt          *time.Time `json:"due_at"`
	Overdue        bool       `json:"overdue"`
	Rotatable      bool       `json:"rotatable"`
	Rotate         string     `json:"rotate"`
}

func (h *harness) secretsStatus() map[string]secretStatusOut {
	h.t.Helper()
	var out struct {
		Secrets []secretStatusOut `json:"secrets"`
	}
	if code := h.adminCall("GET", "/v1/secrets", nil, &out); code != 200 {
		h.t.Fatalf("GET /v1/secrets: %d", code)
	}
	m := map[string]secretStatusOut{}
	for _, s := range out.Secrets {
		m[s.Name] = s
	}
	return m
}

// TestSecretsStatus: GET /v1/secrets lists every secret of a file-backed
// deployment with where it lives and its age against its class's cadence,
// and no value; once a key is past 90 days /health/ready reports it (not
// critical: still 200) and secrets.overdue is recorded once a day.
func TestSecretsStatus(t *testing.T) {
	h := MustStartWith(t, backupConfig(t, filepath.Join(t.TempDir(), "backups"))+"secrets: {cadence: {pepper: 400d}}\n")
	key := h.createKey(map[string]any{"name": "old", "scopes": []string{"read:signals"}})
	h.createClient("read:signals")

	st := h.secretsStatus()
	const day = 86400
	for _, want := range []struct {
		name, class, provider string
		cadence               int64
		rotatable             bool
	}{
		{"pepper", "pepper", "file", 400 * day, true},
		{"signing-keys", "signing_keys", "file", 180 * day, true},
		{"audit-key", "audit_key", "file", 365 * day, true},
		{"backup-identity", "backup_identity", "file", 365 * day, false},
		{"api-keys", "api_keys", "store", 90 * day, false},
		{"client-secrets", "api_keys", "store", 90 * day, false},
	} {
		s, ok := st[want.name]
		if !ok {
			t.Errorf("%s not listed: %+v", want.name, st)
			continue
		}
		if s.Class != want.class || s.Provider != want.provider || s.CadenceSeconds != want.cadence || s.Rotatable != want.rotatable ||
			s.CreatedAt == nil || s.AgeSeconds == nil || s.DueAt == nil || s.Overdue || s.Where == "" || s.Rotate == "" {
			t.Errorf("%s: %+v", want.name, s)
		}
	}
	if len(st) != 6 {
		t.Errorf("%d entries, want 6: %v", len(st), st)
	}
	if !strings.Contains(st["api-keys"].Where, key.ID) || !strings.Contains(st["api-keys"].Rotate, "gatehouse keys rotate "+key.ID) {
		t.Errorf("api-keys does not name the oldest key: %+v", st["api-keys"])
	}
	if got := st["signing-keys"].Where; !strings.Contains(got, "signing-keys.json") {
		t.Errorf("signing-keys where = %q", got)
	}

	// No value anywhere in what the API answers.
	res := h.do("GET", h.admin+"/v1/secrets", nil, "Authorization: Bearer "+adminToken)
	data, _ := io.ReadAll(res.Body)
	res.Body.Close()
	body := string(data)
	pepper, _ := os.ReadFile(filepath.Join(h.dataDir, "server.secret"))
	auditKey, _ := os.ReadFile(filepath.Join(h.dataDir, "audit", "log.key"))
	for name, v := range map[string]string{"pepper": string(pepper), "pepper (base64)": base64.StdEncoding.EncodeToString(pepper),
		"audit key": strings.TrimSpace(string(auditKey)), "key": key.Key} {
		if len(v) < 16 || strings.Contains(body, v) {
			t.Errorf("GET /v1/secrets carries the %s (or it was not read: %d bytes)", name, len(v))
		}
	}
	for _, marker := range []string{"PRIVATE+KEY", "AGE-SECRET-KEY"} {
		if strings.Contains(body, marker) {
			t.Errorf("GET /v1/secrets carries %s", marker)
		}
	}

	code, checks := readiness(t, h)
	if c := checks["secrets"]; code != 200 || !c.OK || !strings.Contains(c.Detail, "6 secrets tracked; next due: api-keys") {
		t.Fatalf("readiness before: %d %+v", code, c)
	}
	if n := len(h.auditEvents("secrets.overdue")); n != 0 {
		t.Fatalf("%d overdue events before any secret is overdue", n)
	}

	// 91 days on: the key and the client secret are past 90 days.
	h.clock.Advance(91 * 24 * time.Hour)
	st = h.secretsStatus()
	for _, name := range []string{"api-keys", "client-secrets"} {
		if !st[name].Overdue || *st[name].AgeSeconds < 91*day {
			t.Errorf("%s after 91 days: %+v", name, st[name])
		}
	}
	if st["signing-keys"].Overdue || st["pepper"].Overdue {
		t.Errorf("signing keys or pepper overdue after 91 days: %+v %+v", st["signing-keys"], st["pepper"])
	}
	code, checks = readiness(t, h)
	if c := checks["secrets"]; code != 200 || c.OK || !strings.Contains(c.Error, "past rotation cadence: api-keys (91 days old, cadence 90 days), client-secrets") {
		t.Errorf("readiness after 91 days: %d %+v (want 200: not critical)", code, c)
	}
	events := h.auditEvents("secrets.overdue")
	if len(events) != 1 {
		t.Fatalf("%d overdue events, want 1", len(events))
	}
	if d := events[0]["details"].(map[string]any); !strings.Contains(toJSON(d), `"name":"api-keys"`) || strings.Contains(toJSON(d), key.Key) {
		t.Errorf("overdue event: %v", d)
	}
	// Again the same day: no second event; the next day: one more.
	h.clock.Advance(2 * time.Minute)
	readiness(t, h)
	if n := len(h.auditEvents("secrets.overdue")); n != 1 {
		t.Errorf("%d overdue events on the same day, want 1", n)
	}
	h.clock.Advance(24 * time.Hour)
	readiness(t, h)
	if n := len(h.auditEvents("secrets.overdue")); n != 2 {
		t.Errorf("%d overdue events the next day, want 2", n)
	}

	// Settings → Authentication overrides the config's cadence: 120 days
	// for API keys puts both back within it; under 1h is refused.
	var e errorOut
	if code := h.adminCall("PUT", "/v1/settings/authentication", map[string]any{"secret_rotation": map[string]any{"api_keys": "30m"}}, &e); code != 400 || !strings.Contains(e.Error.Message, "secret_rotation.api_keys: must be at least 1h") {
		t.Errorf("cadence of 30m: %d %+v", code, e)
	}
	if code := h.adminCall("PUT", "/v1/settings/authentication", map[string]any{"secret_rotation": map[string]any{"api_keys": "120d"}}, nil); code != 200 {
		t.Fatalf("set the api_keys cadence: %d", code)
	}
	st = h.secretsStatus()
	for _, name := range []string{"api-keys", "client-secrets"} {
		if st[name].Overdue || st[name].CadenceSeconds != 120*day {
			t.Errorf("%s with a 120d cadence: %+v", name, st[name])
		}
	}
	if st["pepper"].CadenceSeconds != 400*day {
		t.Errorf("pepper cadence %d, want the config's 400d", st["pepper"].CadenceSeconds)
	}
	if code := h.adminCall("PUT", "/v1/settings/authentication", map[string]any{"secret_rotation": map[string]any{"api_keys": "0s"}}, nil); code != 200 {
		t.Fatalf("reset the api_keys cadence: %d", code)
	}
	if st = h.secretsStatus(); !st["api-keys"].Overdue || st["api-keys"].CadenceSeconds != 90*day {
		t.Errorf("api-keys back on the config's cadence: %+v", st["api-keys"])
	}

	// The age metric has every class, the first three under their names of before.
	res = h.do("GET", h.admin+"/metrics", nil, "Authorization: Bearer "+adminToken)
	data, _ = io.ReadAll(res.Body)
	res.Body.Close()
	s, err := metrics.ParseText(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, class := range []string{"signing_key", "api_key", "client_secret", "pepper", "audit_key", "backup_identity"} {
		if len(s.Series(`gatehouse_secret_age_seconds{class="`+class+`"}`)) != 1 {
			t.Errorf("no gatehouse_secret_age_seconds for %s", class)
		}
	}
	if age := s[`gatehouse_secret_age_seconds{class="api_key"}`]; age < 91*day {
		t.Errorf("api_key age %v", age)
	}
}

// TestSecretsRotate: security rotates the signing keys through
// /v1/secrets (the old key stays in the JWKS, a JWT it signed still
// works), audited without values; an auditor reads the status but cannot
// rotate; an unknown name is a 404 JSON error, a secret rotated otherwise
// a 409 saying how, a malformed name a 400.
func TestSecretsRotate(t *testing.T) {
	h := MustStart(t)
	h.createUser("sec", "security")
	h.createUser("aud", "auditor")
	c := h.createClient("read:signals")
	before := h.app.Tokens().SigningKeys()

	aud := h.newPerson()
	if code, _ := aud.login("aud", alicePW, nil); code != 200 {
		t.Fatal("auditor sign-in")
	}
	if code := aud.call("GET", "/v1/secrets", nil, false, nil); code != 200 {
		t.Errorf("auditor GET /v1/secrets: %d", code)
	}
	var e errorOut
	if code := aud.call("POST", "/v1/secrets/signing-keys/rotate", nil, true, &e); code != 403 || !strings.Contains(e.Error.Message, "role auditor may not change secrets") {
		t.Errorf("auditor rotate: %d %+v", code, e)
	}
	if got := h.app.Tokens().SigningKeys(); len(got) != len(before) {
		t.Fatalf("an auditor's refused request rotated: %v", got)
	}
	if ev := h.auditEvents("admin.access.denied"); len(ev) == 0 || ev[len(ev)-1]["resource"] != "/v1/secrets/signing-keys/rotate" {
		t.Errorf("refused rotation not audited: %v", ev)
	}

	h.clock.Advance(time.Hour)
	tok := h.token(url.Values{"grant_type": {"client_credentials"}}, c.ClientID, c.ClientSecret)
	if tok.Access == "" {
		t.Fatalf("no token: %+v", tok)
	}
	sec := h.newPerson()
	if code, _ := sec.login("sec", alicePW, nil); code != 200 {
		t.Fatal("security sign-in")
	}
	var out struct {
		Before secretStatusOut `json:"before"`
		After  secretStatusOut `json:"after"`
	}
	if code := sec.call("POST", "/v1/secrets/signing-keys/rotate", nil, true, &out); code != 200 {
		t.Fatalf("security rotate: %d", code)
	}
	if out.After.CreatedAt == nil || out.Before.CreatedAt == nil || !out.After.CreatedAt.After(*out.Before.CreatedAt) || *out.After.AgeSeconds != 0 {
		t.Errorf("rotation result: %+v", out)
	}
	after := h.app.Tokens().SigningKeys()
	if len(after) != len(before)+1 || !after[len(after)-1].Active || after[0].KID != before[0].KID || after[0].RetiredAt == nil {
		t.Errorf("signing keys after rotation: %+v", after)
	}
	res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+tok.Access)
	res.Body.Close()
	if code := res.StatusCode; code != 200 {
		t.Errorf("a JWT signed before the rotation: %d", code)
	}
	ev := h.auditEvents("admin.secret.rotate")
	if len(ev) != 1 || ev[0]["resource"] != "secret:signing-keys" || ev[0]["actor"].(map[string]any)["id"] != "sec" {
		t.Fatalf("rotation events: %v", ev)
	}
	keysFile, _ := os.ReadFile(filepath.Join(h.dataDir, "signing-keys.json"))
	if d := toJSON(ev[0]); strings.Contains(d, "private") || strings.Contains(d, "Private") || len(keysFile) == 0 {
		t.Errorf("rotation event carries key material: %s", d)
	}

	for _, tc := range []struct {
		path, code, msg string
		status          int
	}{
		{"/v1/secrets/nope/rotate", "not_found", `no secret "nope"`, 404},
		{"/v1/secrets/api-keys/rotate", "conflict", "this deployment has no api-keys", 409},
		{"/v1/secrets/vault-token/rotate", "conflict", "this deployment has no vault-token", 409},
		{"/v1/secrets/Bad.Name/rotate", "invalid", "invalid secret name", 400},
	} {
		var e errorOut
		if code := sec.call("POST", tc.path, nil, true, &e); code != tc.status || e.Error.Code != tc.code || !strings.Contains(e.Error.Message, tc.msg) {
			t.Errorf("POST %s: %d %+v, want %d %s %q", tc.path, code, e, tc.status, tc.code, tc.msg)
		}
	}
	if n := len(h.auditEvents("admin.secret.rotate")); n != 1 {
		t.Errorf("%d rotation events after refused rotations, want 1", n)
	}
}

func TestSecretsStatusNamesAreKnown(t *testing.T) {
	h := MustStart(t)
	for name := range h.secretsStatus() {
		if !slices.Contains([]string{"pepper", "signing-keys", "audit-key", "backup-identity", "vault-token", "approle-secret-id", "api-keys", "client-secrets"}, name) {
			t.Errorf("unknown status name %s", name)
		}
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
