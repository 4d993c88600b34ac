// Package secrets gives the server its own secrets (the key-hashing pepper,
// the JWT signing keys, the audit checkpoint key, the backup identity and the
// passwords of the database and Redis) through a Provider: environment
// variables, a .env file, files (0600), HashiCorp Vault KV v2 (package
// vault) or, for the secrets Gatehouse generates, rows sealed with AES-GCM
// under a master key (Sealed).
package secrets

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadOrCreate returns the secret stored in the file at path, creating it
// with size random bytes (mode 0600) if it does not exist. A file readable
// by group or others is refused: fix its mode with chmod 600.
func LoadOrCreate(path string, size int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("stat secret %s: %w", path, err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("secret %s has mode %v; it must be readable only by its owner (chmod 600 %s)", path, fi.Mode().Perm(), path)
		}
		if len(b) != size {
			return nil, fmt.Errorf("secret %s holds %d bytes, want %d", path, len(b), size)
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read secret %s: %w", path, err)
	}
	b = make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate secret %s: %w", path, err)
	}
	if err := WriteFile(path, b); err != nil {
		return nil, err
	}
	return b, nil
}

// WriteFile writes data to path with mode 0600, durably: it writes a
// temporary file, fsyncs it, renames it into place and fsyncs the directory.
// It fails if path already exists.
func WriteFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create secret %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write secret %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("sync secret %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close secret %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// File is a secret held in one file of the data dir (mode 0600), replaced
// atomically. It backs stores such as the JWT signing keys until Vault does.
type File struct {
	Path string
}

// Load returns the file's bytes, or nil and no error if it does not exist.
func (f File) Load(ctx context.Context) ([]byte, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", f.Path, err)
	}
	return b, nil
}

// Save replaces the file's contents durably: temporary file, fsync,
// rename, fsync of the directory.
func (f File) Save(ctx context.Context, data []byte) error {
	tmp := f.Path + ".tmp"
	os.Remove(tmp)
	if err := WriteFile(tmp, data); err != nil {
		return err
	}
	if err := os.Rename(tmp, f.Path); err != nil {
		return fmt.Errorf("replace secret %s: %w", f.Path, err)
	}
	d, err := os.Open(filepath.Dir(f.Path))
	if err != nil {
		return fmt.Errorf("sync dir of %s: %w", f.Path, err)
	}
	defer d.Close()
	return d.Sync()
}
