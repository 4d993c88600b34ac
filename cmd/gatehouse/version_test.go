package main_test

import (
	"encoding/json"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// TestVersion: `gatehouse version` reports the build, and the admin
// listener's /health the same version; the public /health shows status
// only (no version to fingerprint).
func TestVersion(t *testing.T) {
	out, e, code := run(t, nil, "version", "--json")
	var v struct {
		Version   string `json:"version"`
		Commit    string `json:"commit"`
		Date      string `json:"date"`
		GoVersion string `json:"go_version"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Version == "" || v.Commit == "" || v.Date == "" || v.GoVersion != runtime.Version() {
		t.Fatalf("version --json: exit %d %q %q", code, out, e)
	}
	text, _, _ := run(t, nil, "version")
	for _, w := range []string{"gatehouse " + v.Version, "commit:  " + v.Commit, "built:   " + v.Date, "go:      " + v.GoVersion} {
		if !strings.Contains(text, w) {
			t.Errorf("version lacks %q:\n%s", w, text)
		}
	}
	if out, _, _ := run(t, nil, "--version"); out != "gatehouse "+v.Version+"\n" {
		t.Errorf("--version = %q", out)
	}
	s := startServer(t, "")
	get := func(url string) map[string]any {
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		json.NewDecoder(res.Body).Decode(&m)
		return m
	}
	if h := get(s.admin + "/health"); h["version"] != v.Version {
		t.Errorf("admin /health = %v, want version %s", h, v.Version)
	}
	if h := get(s.base + "/health"); len(h) != 1 || h["status"] != "ok" {
		t.Errorf("public /health = %v, want the status alone", h)
	}
}
