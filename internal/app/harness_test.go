package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
)

const adminToken = "test-admin-token-0123456789"

// upstream is a real HTTP server standing in for a protected API. It
// remembers the last request it saw.
type upstream struct {
	*httptest.Server
	mu      sync.Mutex
	last    *http.Request
	body    []byte
	release chan struct{} // /slow/wait blocks until closed
}

func newUpstream(t testing.TB) *upstream {
	u := &upstream{release: make(chan struct{})}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.last, u.body = r.Clone(context.Background()), body
		u.mu.Unlock()
		switch {
		case strings.HasSuffix(r.URL.Path, "/wait"):
			select {
			case <-u.release:
			case <-r.Context().Done():
				return
			}
		case strings.HasSuffix(r.URL.Path, "/sleep"):
			time.Sleep(2 * time.Second)
		}
		// An upstream that sets its own (weaker) security headers.
		w.Header().Set("X-Frame-Options", "ALLOWALL")
		w.Header().Set("X-Upstream", "yes")
		// And names its software, as most do.
		w.Header().Set("Server", "Apache/2.4.1 (Unix)")
		w.Header().Set("X-Powered-By", "PHP/5.6.40")
		w.Write([]byte("upstream saw " + r.URL.Path))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) lastRequest() (*http.Request, []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last, u.body
}

// syncBuffer is a concurrency-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	t       testing.TB
	app     *app.App
	base    string // public listener URL
	admin   string // admin listener URL
	clock   *gatehouse.FakeClock
	up      *upstream
	logs    *syncBuffer
	dataDir string
	client  *http.Client
	// contract checks every exchange of do (without client) against the
	// OpenAPI document.
	contract *contractTransport
}

const testRoutes = `
routes:
  - name: signals-read
    path: /api/v1/signals/
    methods: [GET]
    upstream: {{UP}}
    scopes: [read:signals]
  - name: signals-write
    path: /api/v1/signals/
    methods: [POST, PUT]
    upstream: {{UP}}
    scopes: [write:signals]
    max_body: 1KiB
  - name: signals-admin
    path: /api/v1/signals/admin/
    upstream: {{UP}}
    scopes: [signals:admin]
  - name: strip
    path: /strip/
    upstream: {{UP}}/base
    scopes: [demo:read]
    strip_prefix: true
  - name: public
    path: /public/
    upstream: {{UP}}
    public: true
  - name: slow
    path: /slow/
    upstream: {{UP}}
    scopes: [demo:read]
    timeout: 300ms
  - name: down
    path: /down/
    upstream: http://127.0.0.1:1
    scopes: [demo:read]
  - name: hot
    path: /hot/
    upstream: {{UP}}
    scopes: [demo:read]
    ratelimit: {requests: 1, per: 1m}
  - name: search-tool
    path: /tools/search/
    upstream: {{UP}}
    scopes: [tools:use]
    tool: web_search
`

// MustStart runs a Gatehouse on loopback ports with a temporary data dir, a
// fake clock and a real upstream.
func MustStart(t testing.TB) *harness {
	t.Helper()
	return MustStartWith(t, "")
}

// MustStartWith is MustStart with extra top-level config (YAML) and extra
// routes appended ("  - name: …" items).
func MustStartWith(t testing.TB, extra string) *harness {
	t.Helper()
	return MustStartFull(t, extra, "")
}

// MustStartFull is MustStart with extra top-level config and extra route
// items ("  - name: …") appended to the test routes.
func MustStartFull(t testing.TB, extra, routes string) *harness {
	t.Helper()
	return mustStartIn(t, t.TempDir(), extra, routes)
}

// mustStartIn is MustStartFull on an existing data dir (one a benchmark
// filled beforehand).
func mustStartIn(t testing.TB, dataDir, extra, routes string) *harness {
	t.Helper()
	h := &harness{t: t, up: newUpstream(t), logs: &syncBuffer{}, dataDir: dataDir}
	h.clock = gatehouse.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	yml := fmt.Sprintf("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\ndata_dir: %s\n", h.dataDir) +
		strings.ReplaceAll(extra+testRoutes+routes, "{{UP}}", h.up.URL)
	cfg, err := config.Parse("test.yaml", []byte(yml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	getenv := func(k string) string {
		if k == "GATEHOUSE_ADMIN_TOKEN" {
			return adminToken
		}
		return ""
	}
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(context.Background(), cfg, app.Options{Getenv: getenv, Logger: logger, Clock: h.clock})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	if err := a.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	h.app, h.base, h.admin = a, "http://"+a.Addr(), "http://"+a.AdminAddr()
	h.contract = newContractTransport(t, a.AdminAddr(), a.Addr())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Shutdown(ctx)
	})
	return h
}

// do sends a request to url with the given headers ("Name: value").
func (h *harness) do(method, url string, body io.Reader, headers ...string) *http.Response {
	h.t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, kv := range headers {
		k, v, _ := strings.Cut(kv, ": ")
		req.Header.Add(k, v)
	}
	client := h.client
	if client == nil {
		client = &http.Client{Transport: h.transport()}
	}
	res, err := client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, url, err)
	}
	h.t.Cleanup(func() { res.Body.Close() })
	return res
}

// transport is the contract transport, or the default one for a harness
// put together by hand.
func (h *harness) transport() http.RoundTripper {
	if h.contract == nil {
		return http.DefaultTransport
	}
	return h.contract
}

// adminCall calls the admin API with the bootstrap token and decodes JSON.
func (h *harness) adminCall(method, path string, in any, out any) int {
	h.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	client := h.client
	h.client = nil // the admin listener is plain HTTP in tests
	res := h.do(method, h.admin+path, body, "Authorization: Bearer "+adminToken, "Content-Type: application/json")
	h.client = client
	data, _ := io.ReadAll(res.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			h.t.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return res.StatusCode
}

type keyOut struct {
	ID        string     `json:"id"`
	Key       string     `json:"key"`
	Status    string     `json:"status"`
	Scopes    []string   `json:"scopes"`
	ExpiresAt *time.Time `json:"expires_at"`
	Previous  *keyOut    `json:"previous"`
}

// createKey creates a key through the admin API.
func (h *harness) createKey(req map[string]any) keyOut {
	h.t.Helper()
	var k keyOut
	if code := h.adminCall("POST", "/v1/keys", req, &k); code != http.StatusCreated {
		h.t.Fatalf("create key: HTTP %d", code)
	}
	return k
}

type errorOut struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// decodeError reads a JSON error body and checks it is well formed.
func decodeError(t testing.TB, res *http.Response) errorOut {
	t.Helper()
	var e errorOut
	data, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(data, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("HTTP %d: want a JSON error body, got %q", res.StatusCode, data)
	}
	if e.Error.RequestID == "" || e.Error.RequestID != res.Header.Get("X-Request-Id") {
		t.Errorf("error request_id %q does not match X-Request-Id %q", e.Error.RequestID, res.Header.Get("X-Request-Id"))
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q", ct)
	}
	return e
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
