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

// TestNginxAuthRequest puts a real nginx in front of an upstream with
// auth_request pointing at Gatehouse's /auth/verify.
func TestNginxAuthRequest(t *testing.T) {
	nginx := needBinary(t, "nginx", "/usr/sbin/nginx")
	h := MustStart(t)
	reader := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})
	writer := h.createKey(map[string]any{"name": "w", "scopes": []string{"write:signals"}})

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
    location / {
      auth_request /_gatehouse;
      auth_request_set $principal $upstream_http_x_gatehouse_principal;
      proxy_set_header X-Gatehouse-Principal $principal;
      proxy_set_header Authorization "";
      proxy_pass %[3]s;
    }
    location = /_gatehouse {
      internal;
      proxy_pass %[4]s/auth/verify;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
    }
  }
}
`, dir, port, h.up.URL, h.base)
	confPath := filepath.Join(dir, "nginx.conf")
	os.WriteFile(confPath, []byte(conf), 0o644)
	cmd := exec.Command(nginx, "-p", dir, "-c", confPath)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
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

	tests := []struct {
		name   string
		method string
		path   string
		key    string
		status int
	}{
		{"allowed", "GET", "/api/v1/signals/x", reader.Key, 200},
		{"missing scope", "GET", "/api/v1/signals/x", writer.Key, 403},
		{"unauthenticated", "GET", "/api/v1/signals/x", "", 401},
		{"method needs other scope", "POST", "/api/v1/signals/x", reader.Key, 403},
		{"writer may post", "POST", "/api/v1/signals/x", writer.Key, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, base+tt.path, strings.NewReader(""))
			if tt.key != "" {
				req.Header.Set("Authorization", "Bearer "+tt.key)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.status, body)
			}
			if tt.status == 200 {
				got, _ := h.up.lastRequest()
				want := reader.ID
				if tt.key == writer.Key {
					want = writer.ID
				}
				if got.Header.Get("X-Gatehouse-Principal") != want || got.Header.Get("Authorization") != "" {
					t.Errorf("upstream saw principal %q, authorization %q", got.Header.Get("X-Gatehouse-Principal"), got.Header.Get("Authorization"))
				}
			}
		})
	}
}
