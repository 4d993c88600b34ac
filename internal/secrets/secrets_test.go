package secrets_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/secrets"
)

func TestEnv(t *testing.T) {
	env := map[string]string{
		"GATEHOUSE_SECRET_DB_PASSWORD": "pw-1",
		"GATEHOUSE_SECRET_MASTER_KEY":  "master",
		"PATH":                         "/usr/bin",
		"HOME":                         "/root",
	}
	p := secrets.Env{Getenv: func(k string) string { return env[k] }}
	s, err := p.Get(t.Context(), "db-password")
	if err != nil || string(s.Value) != "pw-1" || s.Where != "env GATEHOUSE_SECRET_DB_PASSWORD" {
		t.Fatalf("db-password: %+v %v", s, err)
	}
	// Names outside the prefix cannot be reached: a name is always
	// looked up under GATEHOUSE_SECRET_, and names that are not names
	// are refused.
	for _, name := range []string{"PATH", "HOME", "../PATH", "path/x", "", "master-key", "master_key", "a b"} {
		t.Run(name, func(t *testing.T) {
			_, err := p.Get(t.Context(), name)
			if err == nil {
				t.Fatalf("%q read through the env provider", name)
			}
			if strings.Contains(err.Error(), "/usr/bin") || strings.Contains(err.Error(), "master\"") {
				t.Fatalf("error carries a value: %v", err)
			}
		})
	}
	if _, err := p.Get(t.Context(), "path"); !errors.Is(err, secrets.ErrNotFound) {
		t.Errorf("path (GATEHOUSE_SECRET_PATH) is not PATH: %v", err)
	}
	if _, err := p.Get(t.Context(), "master-key"); !errors.Is(err, secrets.ErrInvalidName) {
		t.Errorf("the master key is readable as a secret: %v", err)
	}
}

func TestDotenv(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env")
	body := "# dev secrets\nGATEHOUSE_SECRET_PEPPER=cGVwcGVy\nGATEHOUSE_SECRET_DB_PASSWORD='s3cr et'\nAWS_SECRET_ACCESS_KEY=other\nGATEHOUSE_SECRET_MASTER_KEY=mk\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := secrets.OpenDotenv(path)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := d.Get(t.Context(), "db-password"); err != nil || string(s.Value) != "s3cr et" {
		t.Errorf("db-password: %q %v", s.Value, err)
	}
	for _, name := range []string{"aws-secret-access-key", "master-key"} {
		if _, err := d.Get(t.Context(), name); err == nil {
			t.Errorf("%s read from the dotenv file", name)
		}
	}

	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		os.Chmod(path, mode)
		_, err := secrets.OpenDotenv(path)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %v: %v, want refused", mode, err)
		}
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("GATEHOUSE_SECRET_X='unterminated-hunter2\n"), 0o600)
	if _, err := secrets.OpenDotenv(path); err != nil && strings.Contains(err.Error(), "hunter2") {
		t.Errorf("parse error quotes the file: %v", err)
	}
}

func TestFiles(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	f := secrets.Files{Dir: dir, Paths: map[string]string{"pepper": filepath.Join(dir, "server.secret")}}
	if _, err := f.Get(ctx, "pepper"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	s, err := f.Put(ctx, "pepper", []byte("one"), 0)
	if err != nil || s.Version != 1 {
		t.Fatalf("put: %+v %v", s, err)
	}
	fi, _ := os.Stat(filepath.Join(dir, "server.secret"))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if _, err := f.Put(ctx, "pepper", []byte("two"), 0); !errors.Is(err, secrets.ErrConflict) {
		t.Errorf("second create: %v, want conflict", err)
	}
	if s, err := f.Put(ctx, "pepper", []byte("two"), 1); err != nil || string(s.Value) != "two" {
		t.Errorf("replace: %+v %v", s, err)
	}
	if _, err := f.Get(ctx, "../etc"); !errors.Is(err, secrets.ErrInvalidName) {
		t.Errorf("path outside: %v", err)
	}
	os.Chmod(filepath.Join(dir, "server.secret"), 0o644)
	if _, err := f.Get(ctx, "pepper"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable file: %v", err)
	}
}

func TestEnsureConcurrentCreators(t *testing.T) {
	ctx := t.Context()
	f := secrets.Files{Dir: t.TempDir()}
	first, err := secrets.Ensure(ctx, f, "pepper", nil, func() ([]byte, error) { return []byte("A"), nil })
	if err != nil {
		t.Fatal(err)
	}
	// Another replica arriving later gets A's, not its own.
	second, err := secrets.Ensure(ctx, f, "pepper", nil, func() ([]byte, error) { return []byte("B"), nil })
	if err != nil || !bytes.Equal(first.Value, second.Value) {
		t.Fatalf("second: %q %v", second.Value, err)
	}
	// An existing secret elsewhere is imported rather than generated.
	old := secrets.Files{Dir: t.TempDir()}
	old.Put(ctx, "audit-key", []byte("old"), 0)
	s, err := secrets.Ensure(ctx, f, "audit-key", old, func() ([]byte, error) { return []byte("new"), nil })
	if err != nil || string(s.Value) != "old" {
		t.Fatalf("import: %q %v", s.Value, err)
	}
}

func TestBlobCheckAndSet(t *testing.T) {
	ctx := context.Background()
	f := secrets.Files{Dir: t.TempDir()}
	a, b := &secrets.Blob{W: f, Name: "signing-keys"}, &secrets.Blob{W: f, Name: "signing-keys"}
	if v, err := a.Load(ctx); v != nil || err != nil {
		t.Fatalf("empty: %q %v", v, err)
	}
	b.Load(ctx)
	if err := a.Save(ctx, []byte("a1")); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(ctx, []byte("b1")); !errors.Is(err, secrets.ErrConflict) {
		t.Fatalf("b saved over a's unseen: %v", err)
	}
}
