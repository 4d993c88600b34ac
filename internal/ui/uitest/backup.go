package uitest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
)

// BackupConfig is a backup section for Start's extra config: a directory
// destination in the test's temp dir and a new age identity (written
// 0600) that opens the backups, so that restore tests run. Serve makes
// its first scheduled backup soon after it starts.
func BackupConfig(t testing.TB) string {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatalf("backup identity: %v", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.key")
	if err := os.WriteFile(file, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatalf("backup identity: %v", err)
	}
	return fmt.Sprintf("backup: {dir: %q, identity_file: %q}\n", filepath.Join(dir, "backups"), file)
}
