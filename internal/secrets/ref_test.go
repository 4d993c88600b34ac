package secrets_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/secrets"
	"github.com/gatehouse/gatehouse/internal/secrets/vault"
	"github.com/gatehouse/gatehouse/internal/secrets/vaulttest"
)

func writeFile(t *testing.T, path, value string, mode os.FileMode) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(value), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestRefFile follows a file secret: a new content is a change, the same
// content rewritten only moves its time, a file that becomes unreadable
// keeps the value in use and reports why, naming the secret.
func TestRefFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "db-password")
	writeFile(t, path, "one", 0o600)
	r, err := secrets.NewRef(ctx, secrets.Files{Dir: dir}, "db-password", "store.password_secret", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Value() != "one" {
		t.Fatalf("value %q", r.Value())
	}
	steps := []struct {
		name    string
		write   func()
		changed bool
		value   string
		err     string // in the reload error and the status
	}{
		{"unchanged", func() {}, false, "one", ""},
		{"same content, new time", func() {
			writeFile(t, path, "one", 0o600)
			os.Chtimes(path, time.Now().Add(time.Hour), time.Now().Add(time.Hour))
		}, false, "one", ""},
		{"new content", func() { writeFile(t, path, "two", 0o600) }, true, "two", ""},
		{"readable by others", func() { writeFile(t, path, "three", 0o644) }, false, "two", "chmod 600"},
		{"removed", func() { os.Remove(path) }, false, "two", "store.password_secret: secret db-password not found in the file provider"},
		{"empty", func() { writeFile(t, path, "", 0o600) }, false, "two", "is empty"},
		{"back", func() { writeFile(t, path, "four", 0o600) }, true, "four", ""},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.write()
			changed, err := r.Reload(ctx)
			if changed != s.changed || r.Value() != s.value {
				t.Fatalf("changed %v value %q, want %v %q (err %v)", changed, r.Value(), s.changed, s.value, err)
			}
			st := r.Status()
			if s.err == "" {
				if err != nil || st.Err != nil {
					t.Fatalf("reload: %v, status %v", err, st.Err)
				}
			} else if err == nil || !strings.Contains(err.Error(), s.err) || st.Err == nil {
				t.Fatalf("reload error %v, want one saying %q", err, s.err)
			}
			if err != nil && (strings.Contains(err.Error(), "two") || strings.Contains(err.Error(), "three")) {
				t.Fatalf("error quotes a value: %v", err)
			}
			if st.Name != "db-password" || st.Provider != "file" || st.Where != "file "+path || st.What != "store.password_secret" {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

// TestRefMissing: a reference to a secret that is not there fails,
// naming it and what it is for.
func TestRefMissing(t *testing.T) {
	_, err := secrets.NewRef(context.Background(), secrets.Env{Getenv: func(string) string { return "" }}, "redis-password", "ratelimit.redis_password_secret", nil)
	if !errors.Is(err, secrets.ErrNotFound) || !strings.Contains(err.Error(), "redis-password") || !strings.Contains(err.Error(), "ratelimit.redis_password_secret") ||
		!strings.Contains(err.Error(), "GATEHOUSE_SECRET_REDIS_PASSWORD") {
		t.Fatalf("missing: %v", err)
	}
}

// TestRefVault follows a Vault KV v2 secret by its metadata's
// current_version: a new version is read (and only then), and Run calls
// back with the new version while readers see one value or the other.
func TestRefVault(t *testing.T) {
	ctx := t.Context()
	s := vaulttest.New(vaulttest.Config{})
	t.Cleanup(s.Close)
	p, err := vault.Open(ctx, vault.Config{Address: s.URL, Auth: "token", Token: s.RootToken("")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if _, err := p.Put(ctx, "db-password", []byte("v1"), 0); err != nil {
		t.Fatal(err)
	}
	r, err := secrets.NewRef(ctx, p, "db-password", "store.password_secret", nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := r.Status(); r.Value() != "v1" || st.Version != 1 || st.Provider != "vault" || st.Created.IsZero() {
		t.Fatalf("read: %q %+v", r.Value(), st)
	}
	if changed, err := r.Reload(ctx); changed || err != nil {
		t.Fatalf("reload without a new version: %v %v", changed, err)
	}

	got := make(chan secrets.RefStatus, 1)
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		r.Run(rctx, 10*time.Millisecond, func(st secrets.RefStatus) { got <- st }, func(err error) { t.Errorf("reload: %v", err) })
	})
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if v := r.Value(); v != "v1" && v != "v2" {
				t.Errorf("value %q", v)
				return
			}
		}
	})
	if _, err := p.Put(ctx, "db-password", []byte("v2"), 1); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-got:
		if st.Version != 2 || r.Value() != "v2" {
			t.Fatalf("after the rotation: %q %+v", r.Value(), st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reload 5 s after a new version")
	}
	close(stop)
	cancel()
	wg.Wait()
}
