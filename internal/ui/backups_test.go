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

var backupVerifyRE = regexp.MustCompile(`action="/ui/backups/([^/"]+)/verify"`)

func TestBackupsFormFlowJSOff(t *testing.T) {
	e := uitest.Start(t, uitest.BackupConfig(t))
	e.CreateUser("alice", "admin")
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)
	res, body := f.get("/ui/backups")
	if res.StatusCode != 200 || !strings.Contains(body, "Run a backup now") {
		t.Fatalf("backups: HTTP %d %s", res.StatusCode, body)
	}
	tok := token(t, body)
	if res, body := f.post("/ui/backups", url.Values{}); res.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF token") {
		t.Fatalf("backup without a token: HTTP %d %s", res.StatusCode, body)
	}
	e.Clock.Advance(time.Minute) // newer than serve's first scheduled one
	res, body = f.post("/ui/backups", url.Values{"csrf_token": {tok}})
	if res.StatusCode != 200 || !strings.Contains(body, "Backup ") || !strings.Contains(body, " made.") {
		t.Fatalf("backup: HTTP %d %s", res.StatusCode, body)
	}
	id := res.Request.URL.Query().Get("backup")
	if id == "" || !strings.Contains(body, "<code>"+id+"</code>") {
		t.Fatalf("the new backup %q is not listed: %s", id, body)
	}
	m := backupVerifyRE.FindStringSubmatch(body)
	if m == nil || m[1] != id {
		t.Fatalf("the restore test button is not for the newest backup %s: %v", id, m)
	}
	res, body = f.post("/ui/backups/"+id+"/verify", url.Values{"csrf_token": {tok}})
	if res.StatusCode != 200 || !strings.Contains(body, "Restore test just run") || !strings.Contains(body, "Passed: <code>backup:"+id) {
		t.Fatalf("restore test: HTTP %d %s", res.StatusCode, body)
	}
	for _, want := range []string{"Duration (RTO evidence)", "RPO (backup age when tested)", "Audit entries lost"} {
		if !strings.Contains(body, want) {
			t.Errorf("restore test result lacks %q", want)
		}
	}
	// The page itself shows it afterwards, read from the audit log.
	_, body = f.get("/ui/backups")
	if !strings.Contains(body, "Last restore test") || !strings.Contains(body, "Passed: <code>backup:") {
		t.Fatalf("last restore test not shown: %s", body)
	}
	if res, body := f.post("/ui/backups/nope/verify", url.Values{"csrf_token": {tok}}); res.StatusCode >= 500 || res.StatusCode < 400 {
		t.Fatalf("restore test of no such backup: HTTP %d %s", res.StatusCode, body)
	}
	// Prune asks first.
	res, body = f.post("/ui/backups/prune", url.Values{"csrf_token": {tok}})
	if res.StatusCode != 200 || !strings.Contains(body, "Yes, delete the backups past retention") {
		t.Fatalf("prune without confirmation: HTTP %d %s", res.StatusCode, body)
	}
	res, body = f.post("/ui/backups/prune", url.Values{"csrf_token": {tok}, "confirm": {"yes"}})
	if res.StatusCode != 200 || !strings.Contains(body, "Prune done: 0 backup(s) deleted.") {
		t.Fatalf("prune: HTTP %d %s", res.StatusCode, body)
	}
	e.NoCSPReports()
}

func TestBackupsRefusedAndNotConfigured(t *testing.T) {
	for _, role := range []string{"security", "auditor"} {
		t.Run(role, func(t *testing.T) {
			e := uitest.Start(t, uitest.BackupConfig(t))
			e.CreateUser("bob", role)
			f := newForm(t, e)
			f.signIn("bob", uitest.Password)
			res, body := f.get("/ui/backups")
			if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "role "+role+" may not read backups") {
				t.Fatalf("%s reading backups: HTTP %d %s", role, res.StatusCode, body)
			}
			tok := token(t, body)
			for _, p := range []string{"/ui/backups", "/ui/backups/x/verify", "/ui/backups/prune"} {
				res, body = f.post(p, url.Values{"csrf_token": {tok}, "confirm": {"yes"}})
				if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "role "+role+" may not change backups") {
					t.Fatalf("%s POST %s: HTTP %d %s", role, p, res.StatusCode, body)
				}
			}
		})
	}
	t.Run("not configured", func(t *testing.T) {
		e := uitest.Start(t, "")
		e.CreateUser("alice", "admin")
		f := newForm(t, e)
		f.signIn("alice", uitest.Password)
		res, body := f.get("/ui/backups")
		if res.StatusCode != 200 || !strings.Contains(body, "No backup destination is configured") || !strings.Contains(body, "backup: {dir:") {
			t.Fatalf("no destination: HTTP %d %s", res.StatusCode, body)
		}
		res, body = f.post("/ui/backups", url.Values{"csrf_token": {token(t, body)}})
		if res.StatusCode != http.StatusConflict || !strings.Contains(body, "backups are not configured on this server") || !strings.Contains(body, "backup: {dir:") {
			t.Fatalf("backup with no destination: HTTP %d %s", res.StatusCode, body)
		}
	})
}
