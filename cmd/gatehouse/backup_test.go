package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
)

// keygen makes a backup identity with the binary and returns its file and
// recipient.
func keygen(t *testing.T) (string, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "backup.key")
	out, errOut, code := run(t, nil, "backup", "keygen", "--out", file)
	if code != 0 {
		t.Fatalf("keygen: %d %s", code, errOut)
	}
	return file, strings.TrimSpace(out)
}

func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		if err != nil {
			t.Fatalf("serve exited with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop in 20s")
	}
}

func demoStatus(t *testing.T, s *server, key string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", s.base+"/demo/x", nil)
	req.Header.Set("X-API-Key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

type backupInfo struct {
	ID, Location, SHA256 string
	Size                 int64
}

// runJSON runs the binary, wants exit 0, and decodes its JSON output.
func runJSON(t *testing.T, env []string, out any, args ...string) {
	t.Helper()
	stdout, stderr, code := run(t, env, args...)
	if code != 0 {
		t.Fatalf("gatehouse %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		t.Fatalf("gatehouse %s: %v in %q", strings.Join(args, " "), err, stdout)
	}
}

// A deployment is backed up, wiped out and restored from its backup with
// the real binary, on SQLite and on PostgreSQL: the restored gateway takes
// the keys made before the backup, and its audit log verifies and goes on.
func TestBackupWipeRestoreServe(t *testing.T) {
	sqlite := func(t *testing.T) (string, func(), []string) { return "", func() {}, nil }
	postgres := func(t *testing.T) (string, func(), []string) {
		dsn := pgtest.MustCreateDatabase(t)
		wipe := func() {
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
				t.Fatal(err)
			}
		}
		return fmt.Sprintf("store: {driver: postgres, dsn: %q}\n", dsn), wipe, []string{"--store", dsn}
	}
	dir := func(t *testing.T) string { return fmt.Sprintf("dir: %q", filepath.Join(t.TempDir(), "backups")) }
	bucket := func(t *testing.T) string {
		return fmt.Sprintf("url: %q", "s3://gh-e2e-"+strings.NewReplacer("/", "-", "_", "-").Replace(strings.ToLower(t.Name()))+"/gatehouse?endpoint="+s3Endpoint(t))
	}
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) (yaml string, wipe func(), restoreArgs []string)
		dest  func(t *testing.T) string
	}{
		{"sqlite", sqlite, dir},
		{"postgres", postgres, dir},
		{"sqlite on s3", sqlite, bucket},
		{"postgres on s3", postgres, bucket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storeYAML, wipe, restoreArgs := tc.store(t)
			identity, recipient := keygen(t)
			data := filepath.Join(t.TempDir(), "data")
			backupYAML := storeYAML + fmt.Sprintf("backup: {%s, recipients: [%s], identity_file: %q}\n", tc.dest(t), recipient, identity)
			cfg := backupYAML + "routes:\n  - name: demo\n    path: /demo/\n    upstream: builtin:echo\n    scopes: [demo:read]\n"
			s := startServerWith(t, serverOpts{config: cfg, dataDir: data, env: s3Env})
			before := createKey(t, s, "made-before-the-backup")
			var b backupInfo
			runJSON(t, s.env(), &b, "backup", "create", "--json")
			if b.ID == "" || b.Size == 0 || len(b.SHA256) != 64 || !strings.HasSuffix(b.Location, "/gatehouse-"+b.ID+".age") {
				t.Fatalf("backup create: %+v", b)
			}
			var list []backupInfo
			runJSON(t, s.env(), &list, "backup", "list", "--json")
			if len(list) < 1 || list[0].ID != b.ID {
				t.Fatalf("backup list: %+v", list)
			}
			after := createKey(t, s, "made-after-the-backup")
			var v struct {
				OK          bool   `json:"ok"`
				Error       string `json:"error"`
				DurationMS  *int64 `json:"duration_ms"`
				RPOSeconds  *int64 `json:"rpo_seconds"`
				EntriesLost uint64 `json:"entries_lost"`
			}
			runJSON(t, s.env(), &v, "backup", "verify", b.ID, "--json")
			if !v.OK || v.DurationMS == nil || v.RPOSeconds == nil || v.EntriesLost == 0 {
				t.Fatalf("backup verify %s: %+v", b.ID, v)
			}
			t.Logf("restore test (%s): %d ms, backup %d s old, %d audit entries behind", tc.name, *v.DurationMS, *v.RPOSeconds, v.EntriesLost)
			if !strings.HasPrefix(b.Location, "s3://") {
				runJSON(t, s.env(), &v, "backup", "verify", b.Location, "--json") // sent from here
				if !v.OK {
					t.Fatalf("backup verify FILE: %+v", v)
				}
			}
			s.stop(t)

			// The disaster: the data dir (and the database) are gone.
			if err := os.RemoveAll(data); err != nil {
				t.Fatal(err)
			}
			wipe()
			args := []string{"backup", "restore", b.Location, "--data-dir", data, "--identity", identity}
			if strings.HasPrefix(b.Location, "s3://") { // by id, from the config's destination
				cfgFile := filepath.Join(t.TempDir(), "g.yaml")
				os.WriteFile(cfgFile, []byte(backupYAML), 0o600)
				args = []string{"backup", "restore", b.ID, "--data-dir", data, "--config", cfgFile}
			}
			out, errOut, code := run(t, s3Env, append(args, restoreArgs...)...)
			if code != 0 || !strings.Contains(out, "Restored backup "+b.ID) {
				t.Fatalf("restore: exit %d\n%s\n%s", code, out, errOut)
			}
			s2 := startServerWith(t, serverOpts{config: cfg, dataDir: data, env: append([]string{"GATEHOUSE_ADMIN_TOKEN=" + s.token}, s3Env...)})
			if st := demoStatus(t, s2, before); st != 200 {
				t.Errorf("a key made before the backup: %d after the restore, want 200", st)
			}
			if st := demoStatus(t, s2, after); st != 401 {
				t.Errorf("a key made after the backup: %d after the restore, want 401 (not in the backup)", st)
			}
			createKey(t, s2, "made-after-the-restore")
			s2.stop(t)
			verifyArgs := []string{"audit", "verify", "--data-dir", data}
			if len(restoreArgs) > 0 {
				verifyArgs = []string{"audit", "verify", "--store", restoreArgs[1]}
			}
			out, errOut, code = run(t, nil, verifyArgs...)
			if code != 0 || !strings.HasPrefix(out, "audit log OK") {
				t.Errorf("the restored audit log, continued: exit %d %s %s", code, out, errOut)
			}
		})
	}
}

// s3Env are the credentials the S3 tests use (gofakes3 checks none).
var s3Env = []string{"AWS_ACCESS_KEY_ID=gatehouse-test", "AWS_SECRET_ACCESS_KEY=gatehouse-test-secret"}

// s3Endpoint is the S3 server of GATEHOUSE_TEST_S3 (default where
// scripts/ensure-s3.sh runs gofakes3): skipped loudly when nothing answers,
// failed when CI=true.
func s3Endpoint(t *testing.T) string {
	t.Helper()
	e := os.Getenv("GATEHOUSE_TEST_S3")
	if e == "" {
		e = "http://127.0.0.1:9878"
	}
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(e, "http://"), 2*time.Second)
	if err != nil {
		msg := "!!! no S3 server at " + e + ": " + err.Error() + "\n!!! SKIPPING. Run scripts/ensure-s3.sh or set GATEHOUSE_TEST_S3."
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	c.Close()
	return e
}

// Every file the destination holds begins with the age header and holds
// none of the deployment's plaintext; a changed byte, another deployment's
// backup and a backup for another identity are refused with a message
// saying which.
func TestBackupCanaryAndRefusals(t *testing.T) {
	identity, recipient := keygen(t)
	dest := filepath.Join(t.TempDir(), "backups")
	backupYAML := fmt.Sprintf("backup: {dir: %q, recipients: [%s], identity_file: %q}\n", dest, recipient, identity)
	routes := "routes:\n  - name: demo\n    path: /demo/\n    upstream: builtin:echo\n    scopes: [demo:read]\n"
	a := startServer(t, "audit: {origin: gatehouse/deployment-a}\n"+backupYAML+routes)
	const marker = "canary-key-name-5e2b07"
	createKey(t, a, marker)
	var b backupInfo
	runJSON(t, a.env(), &b, "backup", "create", "--json")

	ents, _ := os.ReadDir(dest)
	for _, e := range ents {
		data, _ := os.ReadFile(filepath.Join(dest, e.Name()))
		if !bytes.HasPrefix(data, []byte("age-encryption.org/v1\n")) {
			t.Errorf("%s does not begin with the age header", e.Name())
		}
		for _, m := range []string{marker, "admin.key.create", "SQLite format 3", "AGE-SECRET-KEY"} {
			if bytes.Contains(data, []byte(m)) {
				t.Errorf("%s holds plaintext %q", e.Name(), m)
			}
		}
	}

	// Another deployment, sharing the recipients and the destination.
	other := startServer(t, "audit: {origin: gatehouse/deployment-b}\n"+backupYAML+routes)
	var ob backupInfo
	runJSON(t, other.env(), &ob, "backup", "create", "--json")
	good, _ := os.ReadFile(b.Location)
	tampered := bytes.Clone(good)
	tampered[len(tampered)/2] ^= 0x20
	strangerID, _ := keygen(t)
	for _, tc := range []struct {
		name string
		file []byte
		args []string
		want string
	}{
		{"one byte changed", tampered, nil, "backup damaged or tampered with"},
		{"another deployment", mustRead(t, ob.Location), nil, `backup of another deployment: it was made by deployment "gatehouse/deployment-b", and this is "gatehouse/deployment-a"`},
		{"another identity", good, []string{"--identity", strangerID}, "not encrypted to this backup identity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "b.age")
			if err := os.WriteFile(file, tc.file, 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.args == nil { // the server's identity
				out, errOut, code := run(t, a.env(), "backup", "verify", file)
				if code != 1 || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
					t.Errorf("verify: exit %d, stdout %q, stderr %q; want exit 1 and one line with %q", code, out, errOut, tc.want)
				}
			}
			cfg := filepath.Join(t.TempDir(), "g.yaml")
			os.WriteFile(cfg, []byte("audit: {origin: gatehouse/deployment-a}\n"+backupYAML), 0o600)
			target := filepath.Join(t.TempDir(), "data")
			args := append([]string{"backup", "restore", file, "--data-dir", target, "--config", cfg}, tc.args...)
			_, errOut, code := run(t, nil, args...)
			if code != 1 || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("restore: exit %d, stderr %q; want exit 1 and one line with %q", code, errOut, tc.want)
			}
			if _, err := os.Stat(target); !os.IsNotExist(err) {
				t.Errorf("a refused restore created %s", target)
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
