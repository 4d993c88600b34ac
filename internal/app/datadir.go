package app

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/gatehouse/gatehouse/internal/config"
)

// secureDir makes dir (created if missing) and everything in it private to
// the process's user: directories 0700, files 0600 — the database and its
// WAL and shared-memory files, the secrets, the audit log. A directory or
// file that others could read, left by an older version, a restored backup
// or a wide umask, is tightened with a warning naming it. One that cannot
// be tightened (not owned by this user) fails the start in prod and is a
// warning in dev. Symbolic links are not followed.
func secureDir(dir, mode string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir %s: %w", dir, err)
	}
	var loose []string
	var failed error
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm()&0o077 == 0 {
			return nil
		}
		loose = append(loose, fmt.Sprintf("%s (%04o)", path, info.Mode().Perm()))
		if err := os.Chmod(path, want); err != nil { // #nosec G122 -- symlinks are skipped above; the data dir is 0700 and gatehouse's own
			failed = errors.Join(failed, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check data dir %s: %w", dir, err)
	}
	if failed != nil {
		msg := fmt.Sprintf("data dir %s holds files other users can read and they could not be made private", dir)
		if mode == config.ModeProd {
			return fmt.Errorf("%s (%v): make the directory and its files owned by gatehouse's user and chmod -R go-rwx it, or point data_dir at a directory gatehouse owns", msg, failed)
		}
		log.Warn(msg+"; in prod this refuses to start", "err", failed)
	}
	if len(loose) > 0 {
		log.Warn("data dir permissions tightened: directories to 0700, files to 0600", "data_dir", dir, "changed", loose)
	}
	return nil
}

// createPrivate creates path empty with mode 0600 if it does not exist, so
// that what a library then opens there (SQLite creates its -wal and -shm
// files with the database file's mode) is private from the first write.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return f.Close()
}
