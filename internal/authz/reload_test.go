package authz_test

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authz"
)

// allowAll is a minimal valid custom policy.
const allowAll = `package gatehouse.authz

default allow := true

reasons contains "allow-all policy"
`

func TestStatusDefault(t *testing.T) {
	rec := &recorder{}
	e := MustNewEngine(t, authz.Config{}, authz.Options{Auditor: rec})
	s := e.Status()
	if !s.Ready || s.Source != "embedded:default" || s.Generation != 1 || len(s.SHA256) != 64 {
		t.Errorf("status = %+v", s)
	}
	if !strings.HasPrefix(s.Revision, "sha256:") || s.Revision != e.Revision() {
		t.Errorf("revision = %q, Revision() = %q", s.Revision, e.Revision())
	}
	if s.Tests == 0 {
		t.Error("default policy tests did not run at load")
	}
	want := []string{"principal.scopes", "route.name", "route.scopes", "route.tool", "action", "resource", "mode"}
	if !s.Cache || strings.Join(s.CacheKeyFields, ",") != strings.Join(want, ",") {
		t.Errorf("cache = %v on %q (%s), want on %q", s.Cache, s.CacheKeyFields, s.CacheDisabled, want)
	}
	ev := rec.last()
	if ev.Type != authz.EventPolicyLoaded || ev.Outcome != gatehouse.OutcomeSuccess ||
		ev.Details["sha256"] != s.SHA256 || ev.Details["revision"] != s.Revision || ev.ID == "" || ev.Time.IsZero() {
		t.Errorf("audit event = %+v", ev)
	}
}

// TestReloadRefusesBadPolicy replaces a good policy directory with bad ones
// and checks each is refused, audited, and the good policy keeps serving.
func TestReloadRefusesBadPolicy(t *testing.T) {
	good := defaultFiles(t)
	failingTest := maps.Clone(good)
	failingTest["extra_test.rego"] = "package gatehouse.extra_test\n\nimport data.gatehouse.authz\n\ntest_everyone_allowed if authz.allow with input as {}\n"

	tests := []struct {
		name    string
		files   map[string]string
		wantErr string
	}{
		{"syntax error gives file:line", map[string]string{"authz.rego": "package gatehouse.authz\n\nallow if {\n  input.x ==\n"}, "authz.rego:"},
		{"compile error", map[string]string{"authz.rego": "package gatehouse.authz\n\nallow if undefined_function(1)\n"}, "undefined function"},
		{"no allow rule", map[string]string{"authz.rego": "package gatehouse.authz\n\nreasons contains \"x\"\n"}, "defines no data.gatehouse.authz.allow"},
		{"failing own tests", failingTest, "policy tests failed"},
		{"no rego files", map[string]string{"README": "nothing"}, "no .rego files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, good)
			rec := &recorder{}
			e := MustNewEngine(t, authz.Config{Dir: dir}, authz.Options{Auditor: rec})
			in := routeInput(principal("read:signals"), &authz.RouteInput{Name: "r", Scopes: []string{"read:signals", "write:x"}}, "prod")
			before, _ := e.Decide(context.Background(), in)
			rev := e.Revision()

			writeFiles(t, dir, tt.files)
			err := e.Reload(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Reload error = %v, want containing %q", err, tt.wantErr)
			}
			if e.Revision() != rev {
				t.Errorf("revision changed to %s after refusal", e.Revision())
			}
			after, err := e.Decide(context.Background(), in)
			if err != nil || after.Allow != before.Allow || after.Revision != rev {
				t.Errorf("after refusal: %+v, %v; before %+v", after, err, before)
			}
			if got := rec.types(); strings.Join(got, ",") != "policy.loaded,policy.refused" {
				t.Errorf("audit types = %q", got)
			}
			ev := rec.last()
			if ev.Outcome != gatehouse.OutcomeFailure || !strings.Contains(ev.Reason, tt.wantErr) ||
				len(ev.Details["sha256"].(string)) != 64 || ev.Details["serving"] != rev {
				t.Errorf("refused event = %+v", ev)
			}
			s := e.Status()
			if !s.Ready || s.LastError == "" || s.Failures != 1 {
				t.Errorf("status after refusal = %+v", s)
			}

			// Reloading the same bad content is not audited twice.
			_ = e.Reload(context.Background())
			if n := len(rec.types()); n != 2 {
				t.Errorf("%d audit events after second reload, want 2", n)
			}

			// Fixing the policy loads it.
			writeFiles(t, dir, map[string]string{"authz.rego": allowAll})
			if err := e.Reload(context.Background()); err != nil {
				t.Fatalf("reload fixed policy: %v", err)
			}
			d, _ := e.Decide(context.Background(), in)
			if !d.Allow || d.Revision == rev || e.Status().Generation != 2 {
				t.Errorf("after fix: %+v, status %+v", d, e.Status())
			}
		})
	}
}

func TestNewFailsOnBadDir(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"authz.rego": "package gatehouse.authz\nallow if {"})
	_, err := authz.New(context.Background(), authz.Config{Dir: dir}, authz.Options{Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "authz.rego")+":2") {
		t.Fatalf("New = %v, want syntax error with file:line", err)
	}
	if _, err := authz.New(context.Background(), authz.Config{Dir: dir + "/missing"}, authz.Options{Logger: quietLogger()}); err == nil {
		t.Fatal("New with a missing dir succeeded")
	}
}

func TestReloadUnchangedIsQuiet(t *testing.T) {
	rec := &recorder{}
	e := MustNewEngine(t, authz.Config{}, authz.Options{Auditor: rec})
	for range 3 {
		if err := e.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(rec.types()); n != 1 || e.Status().Generation != 1 {
		t.Errorf("%d events, generation %d after unchanged reloads", n, e.Status().Generation)
	}
}

// TestReloadUnderLoad swaps policies while goroutines decide; no decision
// may fail and each must come from one of the two policies. Run with -race.
func TestReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	deny := "package gatehouse.authz\n\ndefault allow := false\n\nreasons contains \"deny-all policy\"\n"
	writeFiles(t, dir, map[string]string{"authz.rego": allowAll})
	e := MustNewEngine(t, authz.Config{Dir: dir}, authz.Options{})

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var decisions, failures atomic.Int64
	var firstErr atomic.Value
	for g := range 4 {
		wg.Go(func() {
			in := routeInput(principal("s"), &authz.RouteInput{Name: "r", Scopes: []string{"s"}}, "prod")
			for i := 0; ctx.Err() == nil; i++ {
				in.Resource = string(rune('a' + (g*7+i)%26)) // vary the key: hits and misses
				d, err := e.Decide(context.Background(), in)
				decisions.Add(1)
				ok := err == nil && len(d.Reasons) == 1 &&
					(d.Allow && d.Reasons[0] == "allow-all policy" || !d.Allow && d.Reasons[0] == "deny-all policy")
				if !ok {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, errors.New(d.Revision+": "+strings.Join(d.Reasons, ";")))
				}
			}
		})
	}
	for i := range 20 {
		body := allowAll
		if i%2 == 0 {
			body = deny
		}
		writeFiles(t, dir, map[string]string{"authz.rego": body})
		if err := e.Reload(context.Background()); err != nil {
			t.Errorf("reload %d: %v", i, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d of %d decisions failed, first: %v", failures.Load(), decisions.Load(), firstErr.Load())
	}
	if g := e.Status().Generation; g != 21 {
		t.Errorf("generation = %d, want 21", g)
	}
	t.Logf("%d decisions across 20 reloads", decisions.Load())
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     authz.Config
		wantErr string
	}{
		{"zero is embedded default", authz.Config{}, ""},
		{"dir", authz.Config{Dir: "./policy"}, ""},
		{"bundle file", authz.Config{Bundle: "b.tar.gz", PollInterval: time.Minute}, ""},
		{"bundle url", authz.Config{Bundle: "https://bundles.example/authz.tar.gz"}, ""},
		{"both", authz.Config{Dir: "d", Bundle: "b"}, "not both"},
		{"negative poll", authz.Config{Bundle: "b", PollInterval: -time.Second}, "negative"},
		{"tiny poll", authz.Config{Bundle: "b", PollInterval: time.Millisecond}, "at least 1s"},
		{"url without host", authz.Config{Bundle: "https:///x"}, "no host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
