// Package uitest starts a real Gatehouse (real listeners, temporary data
// dir, SQLite) for the admin console's tests, plain HTTP and real
// Chromium alike, so page tests of every author share one harness.
package uitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/totp"
)

// AdminToken is the bootstrap admin token of every Env.
const AdminToken = "uitest-admin-token-0123456789"

// Password is the password CreateUser gives (it meets the default policy).
const Password = "correct horse battery staple 42!"

// Env is a running Gatehouse.
type Env struct {
	T        testing.TB
	App      *app.App
	Admin    string // admin listener URL (the console is Admin+"/ui/")
	Gateway  string // public listener URL
	Upstream *httptest.Server
	Logs     *Logs
	// Clock is the server's clock (a fake one set to the real time, so
	// that tests can step past a used one-time code).
	Clock *gatehouse.FakeClock
	// DataDir is the server's data_dir (the audit log is in DataDir/audit
	// unless extra config moves it).
	DataDir string
	// browsers is whether a Browser was started on the Env (NoCSPReports
	// then waits out the browser's report delivery).
	browsers atomic.Bool
}

// Logs collects the server's log lines.
type Logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything logged so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start runs a Gatehouse on loopback ports with the real clock and one
// route, /api/ (scope demo:read), to an upstream answering 200 "ok".
// extra is appended to the config (YAML).
func Start(t testing.TB, extra string) *Env {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(up.Close)
	e := &Env{T: t, Upstream: up, Logs: &Logs{}, Clock: gatehouse.NewFakeClock(time.Now()), DataDir: t.TempDir()}
	yml := fmt.Sprintf("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\ndata_dir: %s\n%s\nroutes:\n  - name: api\n    path: /api/\n    upstream: %s\n    scopes: [demo:read]\n",
		e.DataDir, extra, up.URL)
	cfg, err := config.Parse("uitest.yaml", []byte(yml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	getenv := func(k string) string {
		if k == "GATEHOUSE_ADMIN_TOKEN" {
			return AdminToken
		}
		return ""
	}
	log := slog.New(slog.NewJSONHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := app.New(context.Background(), cfg, app.Options{Getenv: getenv, Logger: log, Clock: e.Clock})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	if err := a.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Shutdown(ctx)
	})
	e.App, e.Admin, e.Gateway = a, "http://"+a.AdminAddr(), "http://"+a.Addr()
	return e
}

// API calls the admin API with the bootstrap token; it returns the status
// and decodes a JSON answer into out (if not nil).
func (e *Env) API(method, path string, in, out any) int {
	e.T.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.Admin+path, body)
	if err != nil {
		e.T.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+AdminToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			e.T.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return res.StatusCode
}

// CreateUser creates a user with Password and role.
func (e *Env) CreateUser(name, role string) {
	e.T.Helper()
	var out map[string]any
	if code := e.API("POST", "/v1/users", map[string]any{"username": name, "role": role, "password": Password}, &out); code != http.StatusCreated {
		e.T.Fatalf("create user %s: HTTP %d %v", name, code, out)
	}
}

// EnrollTOTP gives user (with Password) a second factor through the API's
// own enrolment and returns its secret; the clock is then stepped past the
// code used, so that the next sign-in needs a fresh one.
func (e *Env) EnrollTOTP(user string) string {
	e.T.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	call := func(method, path, csrf string, in, out any) int {
		b, _ := json.Marshal(in)
		req, _ := http.NewRequest(method, e.Admin+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		res, err := c.Do(req)
		if err != nil {
			e.T.Fatal(err)
		}
		defer res.Body.Close()
		if out != nil {
			json.NewDecoder(res.Body).Decode(out)
		}
		return res.StatusCode
	}
	var sess struct {
		CSRF string `json:"csrf_token"`
	}
	if code := call("POST", "/v1/session", "", map[string]string{"username": user, "password": Password}, &sess); code != http.StatusOK {
		e.T.Fatalf("sign in %s: HTTP %d", user, code)
	}
	var enr struct{ Secret string }
	if code := call("POST", "/v1/me/totp", sess.CSRF, map[string]string{"current_password": Password}, &enr); code != http.StatusOK {
		e.T.Fatalf("enrol TOTP: HTTP %d", code)
	}
	if code := call("POST", "/v1/me/totp/verify", sess.CSRF, map[string]string{"code": e.TOTP(enr.Secret)}, nil); code != http.StatusNoContent {
		e.T.Fatalf("confirm TOTP: HTTP %d", code)
	}
	e.Clock.Advance(30 * time.Second)
	return enr.Secret
}

// TOTP is the current one-time code of secret by the server's clock.
func (e *Env) TOTP(secret string) string {
	e.T.Helper()
	code, err := totp.Code(secret, e.Clock.Now())
	if err != nil {
		e.T.Fatal(err)
	}
	return code
}

// Gate sends GET path to the gateway with the key as bearer and returns
// the status.
func (e *Env) Gate(path, key string) int {
	e.T.Helper()
	req, _ := http.NewRequest("GET", e.Gateway+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.T.Fatalf("gateway: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

// ReportDelay is how long a browser of the harness may take to deliver
// a CSP report: report-uri reports are sent at once (TestBrowserCSPViolationIsReported
// measures it), so this is slack for a loaded machine.
const ReportDelay = 2 * time.Second

// NoCSPReports fails the test if the console received a CSP report (see
// CheckNoCSPReports).
func (e *Env) NoCSPReports() {
	e.T.Helper()
	e.CheckNoCSPReports(e.T)
}

// CheckNoCSPReports fails t if the console received a CSP report. When a
// browser was started on e, it first waits ReportDelay, so that a report
// the browser still holds in its queue is counted.
func (e *Env) CheckNoCSPReports(t testing.TB) {
	t.Helper()
	if e.browsers.Load() {
		time.Sleep(ReportDelay)
	}
	if n := e.App.Console().CSPReports(); n != 0 {
		t.Errorf("%d CSP report(s) received; log:\n%s", n, grep(e.Logs.String(), "content security policy"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
