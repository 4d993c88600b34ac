package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestPprofFlag: serve mounts the runtime profiles only when --pprof asks,
// only on the admin listener, and only for admin credentials.
func TestPprofFlag(t *testing.T) {
	get := func(t *testing.T, url, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	t.Run("off by default", func(t *testing.T) {
		s := startServer(t, "")
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
			if code, _ := get(t, s.admin+p, s.token); code != http.StatusNotFound {
				t.Errorf("admin %s with the admin token: %d, want 404", p, code)
			}
		}
	})

	t.Run("on with --pprof", func(t *testing.T) {
		s := startServerWith(t, serverOpts{args: []string{"--pprof"}})
		code, body := get(t, s.admin+"/debug/pprof/", s.token)
		if code != http.StatusOK || !strings.Contains(body, "goroutine") {
			t.Fatalf("admin /debug/pprof/ with the admin token: %d %.200q", code, body)
		}
		if code, body := get(t, s.admin+"/debug/pprof/goroutine?debug=1", s.token); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
			t.Errorf("goroutine profile: %d %.200q", code, body)
		}
		if code, body := get(t, s.admin+"/debug/pprof/profile?seconds=1", s.token); code != http.StatusOK || len(body) == 0 {
			t.Errorf("cpu profile: %d, %d bytes", code, len(body))
		}
		// The command line is not served.
		if code, _ := get(t, s.admin+"/debug/pprof/cmdline", s.token); code != http.StatusNotFound {
			t.Errorf("cmdline: %d, want 404", code)
		}
		// No credential, a wrong one: refused before any profile runs.
		for _, tok := range []string{"", "not-the-admin-token"} {
			if code, body := get(t, s.admin+"/debug/pprof/heap", tok); code != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
				t.Errorf("heap with token %q: %d %.200q, want a 401 JSON error", tok, code, body)
			}
		}
		// A credential that is not an admin's is refused.
		out, errOut, code := run(t, s.env(), "keys", "create", "--name", "ro", "--scopes", "read:x", "--json")
		var k struct{ Key string }
		if code != 0 || json.Unmarshal([]byte(out), &k) != nil {
			t.Fatalf("keys create: %d %s %s", code, out, errOut)
		}
		if code, _ := get(t, s.admin+"/debug/pprof/heap", k.Key); code != http.StatusForbidden {
			t.Errorf("heap with a key lacking the admin scope: %d, want 403", code)
		}
		// Never on the public listener.
		if code, _ := get(t, s.base+"/debug/pprof/", s.token); code == http.StatusOK {
			t.Errorf("public /debug/pprof/: %d", code)
		}
	})
}
