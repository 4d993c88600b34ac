package app_test

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
)

// TestDataDirModes starts Gatehouse on a data dir that already exists with
// mode 0755, serves a request (so SQLite has its WAL and shared-memory
// files and the audit log its segments), widens every file to 0644 and
// starts again: each time, the directory tree is 0700 and every file 0600,
// with a warning naming what was tightened.
func TestDataDirModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	start := func() (*app.App, *syncBuffer) {
		t.Helper()
		cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\ndata_dir: %s\n", dir)))
		if err != nil {
			t.Fatal(err)
		}
		logs := &syncBuffer{}
		a, err := app.New(context.Background(), cfg, app.Options{Getenv: func(string) string { return "" }, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
		if err != nil {
			t.Fatalf("app.New: %v", err)
		}
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		return a, logs
	}
	stop := func(a *app.App) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Shutdown(ctx)
	}
	check := func(when string) {
		t.Helper()
		var files []string
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			info, _ := d.Info()
			want := fs.FileMode(0o600)
			if d.IsDir() {
				want = 0o700
			} else {
				files = append(files, filepath.Base(path))
			}
			if got := info.Mode().Perm(); got != want {
				t.Errorf("%s: %s is %04o, want %04o", when, path, got, want)
			}
			return nil
		})
		for _, f := range []string{"gatehouse.db", "server.secret", "signing-keys.json", "log.key", "log.pub"} {
			if !strings.Contains(strings.Join(files, " "), f) {
				t.Errorf("%s: no %s in the data dir (%v)", when, f, files)
			}
		}
	}

	a, logs := start()
	if !strings.Contains(logs.String(), "data dir permissions tightened") || !strings.Contains(logs.String(), "(0755)") {
		t.Errorf("no warning for the 0755 data dir: %s", logs.String())
	}
	res, err := http.Get("http://" + a.Addr() + "/nowhere")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("an audited 404: %d", res.StatusCode)
	}
	check("first start")
	stop(a)

	// Widen everything, as a restore with the wrong umask would.
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		mode := fs.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(path, mode)
	})
	a, logs = start()
	defer stop(a)
	if !strings.Contains(logs.String(), "server.secret (0644)") {
		t.Errorf("the warning does not name the widened secret: %s", logs.String())
	}
	check("restart")
}
