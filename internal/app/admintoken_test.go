package app_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
)

var printedToken = regexp.MustCompile(`GATEHOUSE_TOKEN=(gadm_\S+)`)

// newApp builds (not starts) a Gatehouse on dataDir with no
// GATEHOUSE_ADMIN_TOKEN, printing to stdout.
func newApp(t *testing.T, dataDir, extra string, stdout *bytes.Buffer) (*app.App, error) {
	t.Helper()
	yml := fmt.Sprintf("data_dir: %s\n", dataDir) + extra
	if !bytes.Contains([]byte(extra), []byte("listen:")) {
		yml = "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\n" + yml
	}
	cfg, err := config.Parse("test.yaml", []byte(yml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return app.New(context.Background(), cfg, app.Options{Getenv: func(string) string { return "" }, Stdout: stdout, Logger: slog.New(slog.DiscardHandler)})
}

// TestBootstrapTokenSurvivesFailedFirstStart: a first start that fails
// shows no token and burns none; the next start that serves prints one
// that works.
func TestBootstrapTokenSurvivesFailedFirstStart(t *testing.T) {
	badPolicy := t.TempDir()
	os.WriteFile(filepath.Join(badPolicy, "bad.rego"), []byte("package gatehouse.authz\nthis is not rego\n"), 0o600)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tt := range []struct {
		name, extra string
	}{
		{"policy does not compile", fmt.Sprintf("policy: {dir: %s}\n", badPolicy)},
		{"public port taken", fmt.Sprintf("listen: %s\nadmin_listen: 127.0.0.1:0\n", taken.Addr())},
		{"built but never started", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var out bytes.Buffer
			a, err := newApp(t, dir, tt.extra, &out)
			if tt.extra != "" && err == nil {
				t.Fatal("the failing first start did not fail")
			}
			if err == nil {
				a.Shutdown(context.Background()) // New succeeded, Start never ran (killed)
			}
			if out.Len() != 0 {
				t.Fatalf("a start that never served printed %q", out.String())
			}
			// The first start that serves prints a token; the next one
			// prints none, and the token keeps working.
			var token string
			for i := range 2 {
				out.Reset()
				a, err = newApp(t, dir, "", &out)
				if err != nil {
					t.Fatal(err)
				}
				if err := a.Start(); err != nil {
					t.Fatal(err)
				}
				m := printedToken.FindStringSubmatch(out.String())
				switch {
				case i == 0 && m == nil:
					t.Fatalf("the first start that served printed no token: %q", out.String())
				case i == 0:
					token = m[1]
				case m != nil:
					t.Fatalf("a later start printed a token again")
				}
				req, _ := http.NewRequest("GET", "http://"+a.AdminAddr()+"/v1/keys", nil)
				req.Header.Set("Authorization", "Bearer "+token)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				a.Shutdown(ctx)
				cancel()
				if res.StatusCode != 200 {
					t.Fatalf("start %d: the printed token got %d, want 200", i+1, res.StatusCode)
				}
			}
		})
	}
}

// TestAdminTokenDisable: refused while no admin user exists; then the
// token stops working and the disable is audited.
func TestAdminTokenDisable(t *testing.T) {
	h := MustStart(t)
	var e errorOut
	if code := h.adminCall("POST", "/v1/admin-token/disable", nil, &e); code != 409 {
		t.Fatalf("disable with no admin user: %d %s", code, e.Error.Message)
	}
	h.createUser("sam", "security")
	if code := h.adminCall("POST", "/v1/admin-token/disable", nil, nil); code != 409 {
		t.Fatalf("disable with only a security user: %d", code)
	}
	// Once there is an enabled admin, it stays (so the state "only
	// disabled admins" cannot arise after the token is disabled).
	h.createUser("dora", "admin")
	if code := h.adminCall("POST", "/v1/users/dora/disable", nil, &e); code != 409 || !strings.Contains(e.Error.Message, "last enabled admin") {
		t.Fatalf("disable the only admin: %d %q", code, e.Error.Message)
	}
	h.createUser("alice", "admin")
	sam := h.newPerson()
	sam.login("sam", alicePW, nil)
	if code := sam.call("POST", "/v1/admin-token/disable", nil, true, nil); code != 403 {
		t.Fatalf("security disabled the admin token: %d", code)
	}
	if code := h.adminCall("POST", "/v1/admin-token/disable", nil, nil); code != 200 {
		t.Fatalf("disable: %d", code)
	}
	if code := h.adminCall("GET", "/v1/keys", nil, nil); code != 401 {
		t.Fatalf("disabled admin token: %d, want 401", code)
	}
	p := h.newPerson()
	p.login("alice", alicePW, nil)
	var st map[string]string
	if code := p.call("GET", "/v1/admin-token", nil, false, &st); code != 200 || st["status"] != "disabled" {
		t.Fatalf("status: %d %v", code, st)
	}
	var page struct {
		Entries []struct {
			Event map[string]any `json:"event"`
		} `json:"entries"`
	}
	p.call("GET", "/v1/audit?type=admin.admin_token.disable", nil, false, &page)
	if len(page.Entries) != 1 || page.Entries[0].Event["actor"].(map[string]any)["kind"] != "admin_token" {
		t.Errorf("disable events: %v", page.Entries)
	}
	// A restart with GATEHOUSE_ADMIN_TOKEN set does not bring it back.
	h.restart()
	if code := h.adminCall("GET", "/v1/keys", nil, nil); code != 401 {
		t.Fatalf("disabled admin token after a restart with GATEHOUSE_ADMIN_TOKEN: %d, want 401", code)
	}
}
