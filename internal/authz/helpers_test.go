package authz_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/policy"
)

// recorder is a gatehouse.Auditor that keeps events in memory.
type recorder struct {
	mu     sync.Mutex
	events []gatehouse.Event
}

var _ gatehouse.Auditor = (*recorder)(nil)

func (r *recorder) Record(_ context.Context, e gatehouse.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

// types returns the recorded event types in order.
func (r *recorder) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.events))
	for i, e := range r.events {
		out[i] = e.Type
	}
	return out
}

func (r *recorder) last() gatehouse.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		return gatehouse.Event{}
	}
	return r.events[len(r.events)-1]
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// MustNewEngine returns an engine for cfg or fails the test.
func MustNewEngine(tb testing.TB, cfg authz.Config, opts authz.Options) *authz.Engine {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	e, err := authz.New(context.Background(), cfg, opts)
	if err != nil {
		tb.Fatalf("new engine: %v", err)
	}
	return e
}

// defaultFiles returns the embedded default policy files.
func defaultFiles(tb testing.TB) map[string]string {
	tb.Helper()
	files := map[string]string{}
	err := fs.WalkDir(policy.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(policy.FS(), p)
		files[p] = string(b)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return files
}

// writeFiles replaces the contents of dir with files.
func writeFiles(tb testing.TB, dir string, files map[string]string) {
	tb.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			tb.Fatal(err)
		}
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// makeBundle returns an OPA bundle tarball of files with the given manifest
// revision ("" for no manifest).
func makeBundle(tb testing.TB, files map[string]string, revision string) []byte {
	tb.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	add := func(name string, body []byte) {
		hdr := &tar.Header{Name: "/" + name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			tb.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			tb.Fatal(err)
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		add(n, []byte(files[n]))
	}
	if revision != "" {
		m, _ := json.Marshal(map[string]any{"revision": revision, "roots": []string{""}})
		add(".manifest", m)
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// principal builds a principal input with the given scopes.
func principal(scopes ...string) authz.PrincipalInput {
	if scopes == nil {
		scopes = []string{}
	}
	return authz.PrincipalInput{ID: "k_1", Kind: string(gatehouse.KindAPIKey), Scopes: scopes}
}

func routeInput(p authz.PrincipalInput, rt *authz.RouteInput, mode string) *authz.Input {
	return &authz.Input{
		Principal: p,
		Request:   authz.RequestInput{Method: "GET", Path: "/api/v1/signals/1", Host: "api.example", SourceIP: "192.0.2.1"},
		Route:     rt,
		Action:    authz.ActionHTTPRequest,
		Mode:      mode,
	}
}

func toolInput(p authz.PrincipalInput, resource, mode string) *authz.Input {
	return &authz.Input{
		Principal: p,
		Request:   authz.RequestInput{Method: "POST", Path: "/v1/authorize"},
		Action:    authz.ActionToolExecute,
		Resource:  resource,
		Mode:      mode,
	}
}
