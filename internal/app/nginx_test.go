package app_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needBinary finds a server binary the test needs. It is installed by
// scripts/ensure-*.sh; under CI=true a missing one fails the test.
func needBinary(t *testing.T, name string, paths ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed; scripts/test.sh installs it", name)
	}
	t.Skipf("SKIPPING: %s is not installed (run scripts/test.sh, which installs it)", name)
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// readmeSnippet returns the fenced block of lang that follows marker in
// README.md, so the tests run the configuration operators copy.
func readmeSnippet(t *testing.T, marker, lang string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, marker)
	if i < 0 {
		t.Fatalf("README.md has no %q", marker)
	}
	s = s[i:]
	j := strings.Index(s, "```"+lang+"\n")
	if j < 0 {
		t.Fatalf("README.md: no %s block after %q", lang, marker)
	}
	s = s[j+len("```"+lang+"\n"):]
	return s[:strings.Index(s, "```")]
}

// startNginx runs nginx with the server-level directives given and
// returns its base URL.
func startNginx(t *testing.T, server string) string {
	t.Helper()
	nginx := needBinary(t, "nginx", "/usr/sbin/nginx")
	dir := t.TempDir()
	port := freePort(t)
	conf := fmt.Sprintf(`daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events {}
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen 127.0.0.1:%[2]d;
%[3]s
  }
}
`, dir, port, server)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-p", dir, "-c", confPath)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not start: %s %s", stderr.String(), log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// take returns the last request the upstream saw and forgets it.
func (u *upstream) take() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.last
	u.last = nil
	return r
}

// TestNginxAuthRequest puts a real nginx, configured with the README's
// forward-auth snippet as written, in front of an upstream, and sends
// forged headers of every family, in upper and lower case, with and
// without a credential: the checked request is always the one nginx
// received, and the backend sees only what Gatehouse answered — never a
// forged X-Gatehouse-* header or the caller's credential.
func TestNginxAuthRequest(t *testing.T) {
	h := MustStartWith(t, "forward_auth: {proxy: nginx, trusted_proxies: [127.0.0.1]}\ntrusted_proxies: [127.0.0.1]\n")
	reader := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})
	writer := h.createKey(map[string]any{"name": "w", "scopes": []string{"write:signals"}})
	boss := h.createKey(map[string]any{"name": "b", "scopes": []string{"signals:admin"}})
	snippet := readmeSnippet(t, "**nginx** (`auth_request`", "nginx")
	snippet = strings.ReplaceAll(snippet, "http://backend", h.up.URL)
	snippet = strings.ReplaceAll(snippet, "http://127.0.0.1:8080", h.base)
	base := startNginx(t, snippet)
	client := loopbackClient(t, "127.0.0.2") // a caller nginx sees as 127.0.0.2

	send := func(t *testing.T, method, path string, headers ...hdr) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(""))
		for _, e := range headers {
			req.Header[e.k] = append(req.Header[e.k], e.v) // names exactly as written
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode, string(b)
	}
	// backendClean fails if the upstream request carries a forged
	// X-Gatehouse-* value or a credential.
	backendClean := func(t *testing.T, got *http.Request, forged ...string) {
		t.Helper()
		for k, vs := range got.Header {
			lk := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
			for _, v := range vs {
				for _, secret := range append([]string{reader.Key, writer.Key, boss.Key}, forged...) {
					if strings.Contains(v, secret) {
						t.Errorf("backend saw %s: %q", k, v)
					}
				}
			}
			switch {
			case lk == "authorization", lk == "x-api-key":
				t.Errorf("backend saw the caller's %s", k)
			case strings.HasPrefix(lk, "x-gatehouse-") && k != "X-Gatehouse-Principal" && k != "X-Gatehouse-Scopes" && k != "X-Gatehouse-Decision-Id":
				t.Errorf("backend saw %s: %v", k, vs)
			}
		}
	}

	t.Run("legitimate", func(t *testing.T) {
		tests := []struct {
			name, method, path string
			headers            []hdr
			status             int
			principal, scopes  string
		}{
			{"reader", "GET", "/api/v1/signals/x?q=1", []hdr{{"Authorization", "Bearer " + reader.Key}, {"X-Forwarded-For", "203.0.113.9"}}, 200, reader.ID, "read:signals"},
			{"reader, lower-case x-api-key", "GET", "/api/v1/signals/x", []hdr{{"x-api-key", reader.Key}}, 200, reader.ID, "read:signals"},
			{"writer posts", "POST", "/api/v1/signals/x", []hdr{{"authorization", "Bearer " + writer.Key}}, 200, writer.ID, "write:signals"},
			{"anonymous on public route", "GET", "/public/x", nil, 200, "", ""},
			{"missing scope", "GET", "/api/v1/signals/x", []hdr{{"Authorization", "Bearer " + writer.Key}}, 403, "", ""},
			{"unauthenticated", "GET", "/api/v1/signals/x", nil, 401, "", ""},
			{"method needs other scope", "POST", "/api/v1/signals/x", []hdr{{"Authorization", "Bearer " + reader.Key}}, 403, "", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h.up.take()
				code, body := send(t, tt.method, tt.path, tt.headers...)
				if code != tt.status {
					t.Fatalf("status %d, want %d: %s", code, tt.status, body)
				}
				got := h.up.take()
				if tt.status != 200 {
					if got != nil {
						t.Fatalf("a refused request reached the backend: %s", got.URL)
					}
					return
				}
				if got == nil {
					t.Fatal("backend not reached")
				}
				if got.Header.Get("X-Gatehouse-Principal") != tt.principal || got.Header.Get("X-Gatehouse-Scopes") != tt.scopes {
					t.Errorf("backend saw principal %q scopes %q", got.Header.Get("X-Gatehouse-Principal"), got.Header.Get("X-Gatehouse-Scopes"))
				}
				if tt.principal != "" && got.Header.Get("X-Gatehouse-Decision-Id") == "" {
					t.Error("backend saw no decision id")
				}
				backendClean(t, got)
			})
		}
		found := false
		for _, e := range h.auditEvents("forward_auth") {
			if req, _ := e["request"].(map[string]any); req["source_ip"] == "127.0.0.2" {
				found = true
			} else if req["source_ip"] == "203.0.113.9" {
				t.Errorf("audit took the caller's forged X-Forwarded-For: %v", e)
			}
		}
		if !found {
			t.Error("no forward_auth event with the caller's address 127.0.0.2 (nginx is a trusted proxy)")
		}
	})

	t.Run("forged target headers", func(t *testing.T) {
		families := [][]hdr{
			{{"X-Original-URI", "/public/x"}, {"X-Original-Method", "GET"}, {"X-Original-Host", "evil.example"}},
			{{"X-Forwarded-Uri", "/public/x"}, {"X-Forwarded-Method", "GET"}},
			{{"X-Forwarded-Uri", "/public/x"}},
			{{"X-Forwarded-Host", "evil.example"}},
			{{"X-Envoy-Original-Path", "/public/x"}},
			{{"X-Original-URI", "/public/x"}, {"x-original-uri", "/public/y"}},
		}
		for i, fam := range families {
			for _, lower := range []bool{false, true} {
				for _, cred := range []string{"", reader.Key, writer.Key} {
					forged := make([]hdr, 0, len(fam)+1)
					for _, e := range fam {
						if lower {
							e.k = strings.ToLower(e.k)
						}
						forged = append(forged, e)
					}
					if cred != "" {
						forged = append(forged, hdr{"Authorization", "Bearer " + cred})
					}
					t.Run(fmt.Sprintf("%d/%s/lower=%v/cred=%v", i, fam[0].k, lower, cred != ""), func(t *testing.T) {
						h.up.take()
						code, body := send(t, "GET", "/api/v1/signals/admin/x", forged...)
						if code != 401 && code != 403 {
							t.Fatalf("status %d, want 401 or 403: %s", code, body)
						}
						if got := h.up.take(); got != nil {
							t.Fatalf("reached the backend: %s", got.URL)
						}
					})
				}
			}
		}
	})

	t.Run("forged X-Gatehouse headers", func(t *testing.T) {
		for _, name := range []string{"X-Gatehouse-Principal", "x-gatehouse-principal", "X-GATEHOUSE-SCOPES", "X-Gatehouse-Tier", "x-gatehouse-decision-id"} {
			for _, cred := range []string{"", reader.Key} {
				t.Run(fmt.Sprintf("%s/cred=%v", name, cred != ""), func(t *testing.T) {
					h.up.take()
					headers := []hdr{{name, boss.ID}}
					path := "/public/x"
					if cred != "" {
						headers, path = append(headers, hdr{"Authorization", "Bearer " + cred}), "/api/v1/signals/x"
					}
					code, body := send(t, "GET", path, headers...)
					if code != 403 {
						t.Fatalf("status %d, want 403: %s", code, body)
					}
					if got := h.up.take(); got != nil {
						t.Fatalf("reached the backend with %v", got.Header)
					}
				})
			}
		}
		// Names with '_' are dropped by nginx before anyone sees them.
		for _, name := range []string{"X_Gatehouse_Principal", "x_gatehouse_scopes", "X_API_Key"} {
			t.Run(name, func(t *testing.T) {
				h.up.take()
				code, body := send(t, "GET", "/public/x", hdr{name, boss.ID + reader.Key})
				if code != 200 {
					t.Fatalf("status %d: %s", code, body)
				}
				got := h.up.take()
				if got == nil {
					t.Fatal("backend not reached")
				}
				backendClean(t, got, boss.ID)
			})
		}
	})
}
