package secrets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Files keeps each secret in a file of its own, mode 0600: Dir/<name>,
// or the path Paths gives for the name (the data dir's server.secret and
// signing-keys.json, the audit dir's log.key). Files keep no history:
// every secret is at version 1. A file readable by group or others is
// refused. Files is safe for concurrent use; writes are atomic (temporary
// file, fsync, rename, fsync of the directory).
type Files struct {
	Dir   string
	Paths map[string]string
}

var _ Writer = Files{}

// Name implements Provider.
func (Files) Name() string { return "file" }

// Path returns the file that holds secret name.
func (f Files) Path(name string) string {
	if p, ok := f.Paths[name]; ok {
		return p
	}
	return filepath.Join(f.Dir, name)
}

// Get implements Provider.
func (f Files) Get(ctx context.Context, name string) (Secret, error) {
	if err := CheckName(name); err != nil {
		return Secret{}, err
	}
	path := f.Path(name)
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Secret{}, fmt.Errorf("secret %s (%s): %w", name, path, ErrNotFound)
	}
	if err != nil {
		return Secret{}, fmt.Errorf("read secret %s: %w", name, err)
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return Secret{}, fmt.Errorf("stat secret %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return Secret{}, fmt.Errorf("secret %s has mode %v; it must be readable only by its owner (chmod 600 %s)", path, fi.Mode().Perm(), path)
	}
	b, err := io.ReadAll(file)
	if err != nil {
		return Secret{}, fmt.Errorf("read secret %s: %w", path, err)
	}
	return Secret{Value: b, Version: 1, Created: fi.ModTime().UTC(), Where: "file " + path}, nil
}

// Put implements Writer: cas 0 creates the file (a conflict if it
// exists), cas 1 replaces it.
func (f Files) Put(ctx context.Context, name string, value []byte, cas int) (Secret, error) {
	if err := CheckName(name); err != nil {
		return Secret{}, err
	}
	path := f.Path(name)
	switch cas {
	case 0:
		if err := WriteFile(path, value); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return Secret{}, fmt.Errorf("secret %s: %w", name, ErrConflict)
			}
			return Secret{}, err
		}
	case 1:
		if err := (File{Path: path}).Save(ctx, value); err != nil {
			return Secret{}, err
		}
	default:
		return Secret{}, fmt.Errorf("secret %s: files hold version 1 only, not %d: %w", name, cas, ErrConflict)
	}
	return f.Get(ctx, name)
}
