package authz_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz"
)

func TestBundleFile(t *testing.T) {
	data := makeBundle(t, defaultFiles(t), "v42")
	path := filepath.Join(t.TempDir(), "authz.tar.gz")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	e := MustNewEngine(t, authz.Config{Bundle: path}, authz.Options{Auditor: rec})
	sum := sha256.Sum256(data)
	s := e.Status()
	if s.Revision != "v42" || s.SHA256 != hex.EncodeToString(sum[:]) || !s.Cache {
		t.Errorf("status = %+v", s)
	}
	d, err := e.Decide(context.Background(), toolInput(principal("tools:execute:*"), "tool:web_search", "prod"))
	if err != nil || !d.Allow || d.Revision != "v42" {
		t.Errorf("decision = %+v, %v", d, err)
	}
	if ev := rec.last(); ev.Type != authz.EventPolicyLoaded || ev.Details["revision"] != "v42" || ev.Resource != "bundle:"+path {
		t.Errorf("event = %+v", ev)
	}

	// A corrupt tarball is refused; v42 keeps serving.
	if err := os.WriteFile(path, []byte("not a tarball"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(context.Background()); err == nil {
		t.Fatal("corrupt bundle accepted")
	}
	if e.Revision() != "v42" || rec.last().Type != authz.EventPolicyRefused {
		t.Errorf("after corrupt bundle: revision %s, last event %+v", e.Revision(), rec.last())
	}
}

// bundleServer serves a bundle with an ETag and answers If-None-Match with
// 304. It can be told to fail.
type bundleServer struct {
	mu       sync.Mutex
	data     []byte
	etag     string
	fail     int // answer 503 to this many requests
	requests int
	notMod   int
}

func (b *bundleServer) set(data []byte, etag string) {
	b.mu.Lock()
	b.data, b.etag = data, etag
	b.mu.Unlock()
}

func (b *bundleServer) counts() (requests, notModified int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.requests, b.notMod
}

func (b *bundleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requests++
	if b.fail > 0 {
		b.fail--
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == b.etag {
		b.notMod++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", b.etag)
	w.Header().Set("Content-Type", "application/gzip")
	_, _ = w.Write(b.data)
}

func TestBundleURLWithETag(t *testing.T) {
	bs := &bundleServer{}
	bs.set(makeBundle(t, defaultFiles(t), "r1"), `"r1"`)
	srv := httptest.NewServer(bs)
	defer srv.Close()

	rec := &recorder{}
	cfg := authz.Config{Bundle: srv.URL + "/bundles/authz.tar.gz", PollInterval: time.Second}
	e := MustNewEngine(t, cfg, authz.Options{Auditor: rec, HTTPClient: srv.Client()})
	if s := e.Status(); !s.Ready || s.Revision != "r1" || s.Source != cfg.Bundle {
		t.Fatalf("status = %+v", s)
	}

	// Unchanged: the server answers 304 and nothing is reloaded.
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, nm := bs.counts(); nm != 1 {
		t.Errorf("304 answers = %d, want 1", nm)
	}

	// A new revision is fetched and served.
	bs.set(makeBundle(t, map[string]string{"authz.rego": allowAll}, "r2"), `"r2"`)
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	d, _ := e.Decide(context.Background(), routeInput(principal(), nil, "prod"))
	if !d.Allow || d.Revision != "r2" {
		t.Errorf("after r2: %+v", d)
	}

	// A bundle whose tests fail is refused; r2 keeps serving, and polling
	// the same ETag again does not refetch it.
	bad := defaultFiles(t)
	bad["authz_test.rego"] = strings.Replace(bad["authz_test.rego"], `authz.allow with input as route_input(["read:signals"], signals)`, `not authz.allow with input as route_input(["read:signals"], signals)`, 1)
	bs.set(makeBundle(t, bad, "r3"), `"r3"`)
	if err := e.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "test_route_scopes_held") {
		t.Fatalf("reload r3 = %v, want failing test named", err)
	}
	if e.Revision() != "r2" {
		t.Errorf("revision = %s after refused r3", e.Revision())
	}
	ev := rec.last()
	if ev.Type != authz.EventPolicyRefused || ev.Details["revision"] != "r3" || ev.Details["serving"] != "r2" {
		t.Errorf("refused event = %+v", ev)
	}
	if err := e.Reload(context.Background()); err != nil {
		t.Errorf("reload with 304 = %v", err)
	}
	if s := e.Status(); !strings.Contains(s.LastError, "test_route_scopes_held") {
		t.Errorf("refusal no longer reported after 304: %+v", s)
	}
	if got := rec.types(); strings.Join(got, ",") != "policy.loaded,policy.loaded,policy.refused" {
		t.Errorf("audit = %q", got)
	}

	// The server failing is a fetch error: reported, not audited, r2 serves.
	bs.mu.Lock()
	bs.fail = 1
	bs.mu.Unlock()
	if err := e.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("reload with server down = %v", err)
	}
	if s := e.Status(); !s.Ready || s.Revision != "r2" || !strings.Contains(s.LastError, "503") {
		t.Errorf("status with server down = %+v", s)
	}
}

// TestBundleURLUnreachableThenUp starts with a bundle server that fails,
// checks the engine is not ready and denies, then lets Run retry with
// backoff until the bundle loads.
func TestBundleURLUnreachableThenUp(t *testing.T) {
	bs := &bundleServer{fail: 3}
	bs.set(makeBundle(t, defaultFiles(t), "r1"), `"r1"`)
	srv := httptest.NewServer(bs)
	defer srv.Close()

	e := MustNewEngine(t, authz.Config{Bundle: srv.URL, PollInterval: time.Second},
		authz.Options{HTTPClient: srv.Client(), RetryMin: 10 * time.Millisecond})
	s := e.Status()
	if s.Ready || s.Failures != 1 || s.LastError == "" {
		t.Fatalf("status before bundle = %+v", s)
	}
	d, err := e.Decide(context.Background(), routeInput(principal("admin"), nil, "prod"))
	if !errors.Is(err, authz.ErrNotReady) || d.Allow {
		t.Fatalf("decide before bundle = %+v, %v", d, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	for e.Revision() == "" && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	if e.Revision() != "r1" {
		t.Fatalf("bundle never loaded: %+v", e.Status())
	}
	if req, _ := bs.counts(); req != 4 {
		t.Errorf("requests = %d, want 3 failures then 1 success", req)
	}
	if s := e.Status(); s.Failures != 0 || s.LastError != "" {
		t.Errorf("status after load = %+v", s)
	}

	// Polling picks up a new revision.
	bs.set(makeBundle(t, map[string]string{"authz.rego": allowAll}, "r2"), `"r2"`)
	for e.Revision() != "r2" && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if e.Revision() != "r2" {
		t.Fatalf("poll did not load r2: %+v", e.Status())
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
}

func TestBundleURLUnreachable(t *testing.T) {
	// A closed server: connection refused.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	rec := &recorder{}
	e := MustNewEngine(t, authz.Config{Bundle: url}, authz.Options{Auditor: rec})
	if s := e.Status(); s.Ready || !strings.Contains(s.LastError, "fetch bundle") {
		t.Errorf("status = %+v", s)
	}
	if n := len(rec.types()); n != 0 {
		t.Errorf("unreachable source audited %d events", n)
	}
}

func TestRunWithoutPolling(t *testing.T) {
	e := MustNewEngine(t, authz.Config{}, authz.Options{})
	if err := e.Run(context.Background()); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// TestBundleWithData checks that a bundle's data.json reaches the policy and
// its tests, and that data does not disable caching.
func TestBundleWithData(t *testing.T) {
	files := map[string]string{
		"authz.rego": `package gatehouse.authz

default allow := false

allow if input.principal.tier in data.gatehouse.tiers.trusted

reasons contains sprintf("tier %s", [input.principal.tier])
`,
		"authz_test.rego": `package gatehouse.authz_test

import data.gatehouse.authz

test_trusted if authz.allow with input as {"principal": {"tier": "gold"}}

test_untrusted if not authz.allow with input as {"principal": {"tier": "free"}}
`,
		"gatehouse/tiers/data.json": `{"trusted": ["gold", "platinum"]}`,
	}
	path := filepath.Join(t.TempDir(), "b.tar.gz")
	if err := os.WriteFile(path, makeBundle(t, files, "data-1"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := MustNewEngine(t, authz.Config{Bundle: path}, authz.Options{})
	s := e.Status()
	if s.Tests != 2 || !s.Cache || strings.Join(s.CacheKeyFields, ",") != "principal.tier" {
		t.Errorf("status = %+v", s)
	}
	for tier, want := range map[string]bool{"gold": true, "platinum": true, "free": false} {
		in := &authz.Input{Principal: authz.PrincipalInput{Tier: tier}}
		d, err := e.Decide(context.Background(), in)
		if err != nil || d.Allow != want {
			t.Errorf("tier %s: %+v, %v", tier, d, err)
		}
	}
}
