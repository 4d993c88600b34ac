package app_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
)

// backupConfig is a backup section with a directory destination and a new
// identity (written 0600), for MustStartWith.
func backupConfig(t testing.TB, dir string) string {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "backup.key")
	if err := os.WriteFile(file, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("backup: {dir: %q, identity_file: %q}\n", dir, file)
}

// Backups hold every secret of the deployment: only the admin role reaches
// /v1/backups, and every operation there is an audit event.
func TestBackupsAdminOnly(t *testing.T) {
	h := MustStartWith(t, backupConfig(t, filepath.Join(t.TempDir(), "backups")))
	auth := "Authorization: Bearer " + adminToken
	h.expect(201, "POST", h.admin+"/v1/users", map[string]any{"username": "sec", "role": "security", "password": alicePW}, auth)
	h.expect(201, "POST", h.admin+"/v1/users", map[string]any{"username": "aud", "role": "auditor", "password": alicePW}, auth)
	for _, who := range []string{"sec", "aud"} {
		p := h.newPerson()
		if code, _ := p.login(who, alicePW, nil); code != 200 {
			t.Fatalf("sign in %s: %d", who, code)
		}
		for _, tc := range []struct{ method, path string }{
			{"GET", "/v1/backups"}, {"POST", "/v1/backups"}, {"POST", "/v1/backups/prune"},
			{"POST", "/v1/backups/20260102T030405.000Z-abcdef/verify"},
		} {
			if code := p.call(tc.method, tc.path, nil, true, nil); code != 403 {
				t.Errorf("%s: %s %s = %d, want 403", who, tc.method, tc.path, code)
			}
		}
	}
	var b struct{ ID string }
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(h.logs.String())
		}
	})
	if err := json.Unmarshal(h.expect(201, "POST", h.admin+"/v1/backups", nil, auth), &b); err != nil || b.ID == "" {
		t.Fatalf("create: %v", err)
	}
	h.expect(200, "POST", h.admin+"/v1/backups/"+b.ID+"/verify", nil, auth)
	page := h.expect(200, "GET", h.admin+"/v1/audit?type=backup.create", nil, auth)
	var events struct {
		Entries []struct {
			Event struct {
				Actor    struct{ Kind, ID string }
				Resource string
				Request  struct {
					RequestID string `json:"request_id"`
				}
			}
		}
	}
	json.Unmarshal(page, &events)
	found := false
	for _, e := range events.Entries {
		if e.Event.Resource == "backup:"+b.ID {
			found = e.Event.Actor.Kind == "admin_token" && e.Event.Request.RequestID != ""
		}
	}
	if !found {
		t.Errorf("no backup.create event by the admin, with its request, for %s: %s", b.ID, page)
	}
}

// Without a destination, /v1/backups says so (409), rather than 404 or 5xx.
func TestBackupsNotConfigured(t *testing.T) {
	h := MustStart(t)
	body := h.expect(409, "GET", h.admin+"/v1/backups", nil, "Authorization: Bearer "+adminToken)
	var e struct{ Error struct{ Message string } }
	if json.Unmarshal(body, &e); e.Error.Message == "" {
		t.Errorf("409 without a message: %s", body)
	}
}
