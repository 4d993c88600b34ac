package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gatehouse-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "gatehouse")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build gatehouse: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs the binary to completion.
func run(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestBadConfigExits2WithOneLine(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "g.yaml")
	os.WriteFile(cfg, []byte("routes:\n  - name: a\n    path: /a/\n    upstream: not a url\n    scopes: [x]\n"), 0o644)
	_, stderr, code := run(t, []string{"GATEHOUSE_DATA_DIR=" + filepath.Join(dir, "data")}, "serve", "--config", cfg)
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr %q", code, stderr)
	}
	want := cfg + ":4: routes[0].upstream: must be an absolute http:// or https:// URL"
	if !strings.HasPrefix(stderr, want) || !strings.HasSuffix(stderr, "\ngatehouse: invalid config: 1 problem\n") || strings.Count(stderr, "\n") != 2 {
		t.Errorf("stderr = %q\nwant a line starting %q and the count", stderr, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Error("data dir created although the config was invalid")
	}
}

// server is a `gatehouse serve` child process.
type server struct {
	cmd         *exec.Cmd
	base, admin string
	token       string
	exited      chan error
	// logs holds every line the server wrote to stderr so far.
	logs *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for one writer and many readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startServer(t *testing.T, configYAML string) *server {
	t.Helper()
	return startServerWith(t, serverOpts{config: configYAML})
}

type serverOpts struct {
	config  string   // YAML after the listen lines
	dataDir string   // default: a new temporary one
	env     []string // extra environment
	args    []string // extra serve flags
}

func startServerWith(t *testing.T, o serverOpts) *server {
	t.Helper()
	dir := t.TempDir()
	if o.dataDir == "" {
		o.dataDir = filepath.Join(dir, "data")
	}
	cfg := filepath.Join(dir, "g.yaml")
	if err := os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\n"+o.config), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &server{exited: make(chan error, 1), logs: &syncBuffer{}}
	s.cmd = exec.Command(binary, append([]string{"serve", "--config", cfg}, o.args...)...)
	s.cmd.Env = append(append(os.Environ(), "GATEHOUSE_DATA_DIR="+o.dataDir), o.env...)
	stdout, _ := s.cmd.StdoutPipe()
	stderr, _ := s.cmd.StderrPipe()
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.logs.Write(append(sc.Bytes(), '\n'))
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "gatehouse started" {
				started <- line
			}
		}
	}()
	tokens := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			for _, f := range strings.Fields(sc.Text()) {
				if t, ok := strings.CutPrefix(f, "GATEHOUSE_TOKEN="); ok {
					tokens <- t
				}
			}
		}
	}()
	go func() { s.exited <- s.cmd.Wait() }()
	t.Cleanup(func() { s.cmd.Process.Kill() })
	select {
	case line := <-started:
		s.base, s.admin = "http://"+line["listen"].(string), "http://"+line["admin_listen"].(string)
	case err := <-s.exited:
		t.Fatalf("server exited at start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("server did not start in 20s")
	}
	for _, kv := range o.env {
		if tok, ok := strings.CutPrefix(kv, "GATEHOUSE_ADMIN_TOKEN="); ok {
			s.token = tok
		}
	}
	if s.token == "" {
		select {
		case s.token = <-tokens:
		case <-time.After(5 * time.Second):
			t.Fatal("no admin token printed on first start")
		}
	}
	return s
}

func (s *server) env() []string {
	return []string{"GATEHOUSE_ADDR=" + s.admin, "GATEHOUSE_TOKEN=" + s.token}
}

func TestKeysCommands(t *testing.T) {
	s := startServer(t, "routes:\n  - name: demo\n    path: /demo/\n    upstream: builtin:echo\n    scopes: [demo:read]\n")
	out, errOut, code := run(t, s.env(), "keys", "create", "--name", "ci", "--scopes", "demo:read", "--expires", "90d", "--json")
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	var k struct{ ID, Key string }
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.ID == "" || !strings.HasPrefix(k.Key, "gk_") {
		t.Fatalf("create --json = %q (%v)", out, err)
	}
	get := func(key string) int {
		req, _ := http.NewRequest("GET", s.base+"/demo/hello", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if c := get(k.Key); c != 200 {
		t.Fatalf("demo route with new key: %d", c)
	}
	out, _, code = run(t, s.env(), "keys", "list")
	if code != 0 || !strings.Contains(out, k.ID) || !strings.Contains(out, "active") || strings.Contains(out, k.Key) {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	out, _, code = run(t, s.env(), "keys", "rotate", k.ID, "--grace", "0s", "--json")
	var r struct{ ID, Key string }
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.Key == "" {
		t.Fatalf("rotate: exit %d %q", code, out)
	}
	if get(k.Key) != 401 || get(r.Key) != 200 {
		t.Fatalf("after rotate with no grace: old %d, new %d", get(k.Key), get(r.Key))
	}
	out, _, code = run(t, s.env(), "keys", "revoke", r.ID)
	if code != 0 || !strings.Contains(out, "Revoked key "+r.ID) {
		t.Fatalf("revoke: exit %d %q", code, out)
	}
	if c := get(r.Key); c != 401 {
		t.Fatalf("after revoke: %d", c)
	}
	_, errOut, code = run(t, s.env(), "keys", "revoke", "key_doesnotexist")
	if code != 1 || !strings.Contains(errOut, `key "key_doesnotexist" not found (HTTP 404`) {
		t.Errorf("revoke unknown: exit %d %q", code, errOut)
	}
	_, errOut, code = run(t, []string{"GATEHOUSE_ADDR=" + s.admin, "GATEHOUSE_TOKEN=wrong-token-123456"}, "keys", "list")
	if code != 1 || !strings.Contains(errOut, "invalid admin credential") {
		t.Errorf("wrong token: exit %d %q", code, errOut)
	}
}

func TestCLIErrors(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"server not running", []string{"GATEHOUSE_ADDR=http://127.0.0.1:1", "GATEHOUSE_TOKEN=x"}, []string{"keys", "list"}, 1,
			"gatehouse: cannot reach the admin API at http://127.0.0.1:1: is `gatehouse serve` running?"},
		{"no token", []string{"GATEHOUSE_TOKEN="}, []string{"keys", "list"}, 2, "gatehouse: no admin token"},
		{"missing name", []string{"GATEHOUSE_TOKEN=x"}, []string{"keys", "create", "--scopes", "a"}, 2, "gatehouse: --name is required"},
		{"unknown command", nil, []string{"frobnicate"}, 2, `gatehouse: unknown command "frobnicate"`},
		{"unknown flag", nil, []string{"serve", "--nope"}, 2, "gatehouse: unknown flag: --nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := run(t, tt.env, tt.args...)
			if code != tt.code || !strings.HasPrefix(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit %d and one line starting %q", code, stderr, tt.code, tt.want)
			}
		})
	}
}

func TestHelpHasExamples(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"keys", "create", "--help"}, {"keys", "rotate", "--help"}} {
		out, _, code := run(t, nil, args...)
		if code != 0 || !strings.Contains(out, "gatehouse") {
			t.Errorf("%v: exit %d", args, code)
		}
		if args[0] != "--help" && !strings.Contains(out, "Examples:") {
			t.Errorf("%v: no examples:\n%s", args, out)
		}
	}
}

func TestSIGTERMDrainsInFlightRequest(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "finished")
	}))
	defer up.Close()
	s := startServer(t, fmt.Sprintf("routes:\n  - name: slow\n    path: /slow/\n    upstream: %s\n    scopes: [s]\n", up.URL))
	out, errOut, code := run(t, s.env(), "keys", "create", "--name", "x", "--scopes", "s", "--json")
	var k struct{ Key string }
	if code != 0 || json.Unmarshal([]byte(out), &k) != nil {
		t.Fatalf("create key: %d %s", code, errOut)
	}
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", s.base+"/slow/x", nil)
		req.Header.Set("X-API-Key", k.Key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		done <- result{status: res.StatusCode, body: string(b)}
	}()
	<-arrived
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-s.exited:
		t.Fatalf("exited before the in-flight request finished: %v", err)
	default:
	}
	close(release)
	r := <-done
	if r.err != nil || r.status != 200 || r.body != "finished" {
		t.Fatalf("in-flight request: %+v", r)
	}
	select {
	case err := <-s.exited:
		if err != nil {
			t.Fatalf("exit: %v, want 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not exit after draining")
	}
}
