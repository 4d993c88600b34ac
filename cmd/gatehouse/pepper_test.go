package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPepperRotationBackupRestore: a key made before a pepper rotation
// and one made after it both work after backup → wipe → restore → serve,
// through the real binary; the restored deployment hashes new keys under
// the newest version it had.
func TestPepperRotationBackupRestore(t *testing.T) {
	identity, recipient := keygen(t)
	data := filepath.Join(t.TempDir(), "data")
	backupYAML := fmt.Sprintf("backup: {dir: %q, recipients: [%s], identity_file: %q}\n", filepath.Join(t.TempDir(), "backups"), recipient, identity)
	cfg := backupYAML + "routes:\n  - name: demo\n    path: /demo/\n    upstream: builtin:echo\n    scopes: [demo:read]\n"
	s := startServerWith(t, serverOpts{config: cfg, dataDir: data})
	before := createKey(t, s, "made-before-the-rotation")
	var rot struct {
		After struct {
			Version int `json:"version"`
		} `json:"after"`
	}
	runJSON(t, s.env(), &rot, "secrets", "rotate", "pepper", "--json")
	if rot.After.Version != 2 {
		t.Fatalf("secrets rotate pepper: %+v", rot)
	}
	after := createKey(t, s, "made-after-the-rotation")
	var b backupInfo
	runJSON(t, s.env(), &b, "backup", "create", "--json")
	s.stop(t)

	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, nil, "backup", "restore", b.Location, "--data-dir", data, "--identity", identity)
	if code != 0 || !strings.Contains(out, "Restored backup "+b.ID) {
		t.Fatalf("restore: exit %d\n%s\n%s", code, out, errOut)
	}
	if fi, err := os.Stat(filepath.Join(data, "pepper-versions")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("restored pepper-versions: %v %v", fi, err)
	}
	s2 := startServerWith(t, serverOpts{config: cfg, dataDir: data, env: []string{"GATEHOUSE_ADMIN_TOKEN=" + s.token}})
	for name, key := range map[string]string{"before": before, "after": after} {
		if st := demoStatus(t, s2, key); st != 200 {
			t.Errorf("the key made %s the rotation: %d after the restore, want 200", name, st)
		}
	}
	st, raw := secretsStatus(t, s2)
	if p := st["pepper"]; p.Version != 2 || !strings.Contains(raw, `"pepper_versions"`) {
		t.Errorf("pepper after the restore: %+v", p)
	}
	if st := demoStatus(t, s2, createKey(t, s2, "made-after-the-restore")); st != 200 {
		t.Errorf("a key made after the restore: %d", st)
	}
}
