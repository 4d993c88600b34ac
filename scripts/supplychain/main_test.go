package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A govulncheck -format json stream in the shape v1.9.0 writes: each OSV
// reported at module level first, then package and symbol level when the
// code reaches it.
const stream = `{"config":{"protocol_version":"v1.0.0","scanner_name":"govulncheck","scanner_version":"v1.9.0","db":"file:///db","db_last_modified":"2026-11-05T00:00:00Z","go_version":"go1.26.8","scan_level":"symbol","scan_mode":"source"}}
{"progress":{"message":"Scanning your code and 412 packages across 97 dependent modules for known vulnerabilities..."}}
{"osv":{"id":"GO-2026-6603","summary":"Header smuggling in net/http"}}
{"osv":{"id":"GO-2026-7001","summary":"Panic on malformed input in example.com/yaml"}}
{"osv":{"id":"GO-2026-7002","summary":"Quadratic parse in example.com/unused"}}
{"finding":{"osv":"GO-2026-6603","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8"}]}}
{"finding":{"osv":"GO-2026-6603","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8","package":"net/http","function":"ReadRequest"},{"module":"github.com/gatehouse/gatehouse","package":"internal/gateway","function":"serve"}]}}
{"finding":{"osv":"GO-2026-7001","fixed_version":"v1.2.4","trace":[{"module":"example.com/yaml","version":"v1.2.3"}]}}
{"finding":{"osv":"GO-2026-7001","fixed_version":"v1.2.4","trace":[{"module":"example.com/yaml","version":"v1.2.3","package":"example.com/yaml","function":"Unmarshal"}]}}
{"finding":{"osv":"GO-2026-7002","trace":[{"module":"example.com/unused","version":"v0.1.0"}]}}
{"finding":{"osv":"GO-2026-7002","trace":[{"module":"example.com/unused","version":"v0.1.0","package":"example.com/unused"}]}}
`

func TestSummarize(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	s, err := summarize(strings.NewReader(stream), now)
	if err != nil {
		t.Fatal(err)
	}
	if s.Scanner != "govulncheck v1.9.0" || s.GoVersion != "go1.26.8" || !s.ScannedAt.Equal(now) ||
		s.DatabaseModified.Format(time.DateOnly) != "2026-11-05" {
		t.Errorf("header = %q %q %v %v", s.Scanner, s.GoVersion, s.ScannedAt, s.DatabaseModified)
	}
	want := []struct {
		id, module, fixed string
		reachable         bool
	}{
		{"GO-2026-6603", "stdlib", "v1.26.9", true},
		{"GO-2026-7001", "example.com/yaml", "v1.2.4", true},
		{"GO-2026-7002", "example.com/unused", "", false}, // package imported, no affected function called
	}
	if len(s.Vulns) != len(want) {
		t.Fatalf("vulns = %+v, want %d", s.Vulns, len(want))
	}
	for i, w := range want {
		v := s.Vulns[i]
		if v.ID != w.id || v.Module != w.module || v.Fixed != w.fixed || v.Reachable != w.reachable || v.Summary == "" {
			t.Errorf("vulns[%d] = %+v, want %+v", i, v, w)
		}
	}
	// Only the reachable module finding blocks: the standard library's is
	// fixed by the toolchain and reported.
	if b := s.Blocking(); len(b) != 1 || b[0].ID != "GO-2026-7001" {
		t.Errorf("blocking = %+v, want GO-2026-7001 only", b)
	}
}

func TestSummarizeRefusesOtherInput(t *testing.T) {
	for _, in := range []string{"", `{"progress":{"message":"x"}}`, "not json"} {
		if _, err := summarize(strings.NewReader(in), time.Now()); err == nil {
			t.Errorf("summarize(%q) = nil error", in)
		}
	}
}

func TestVulnsCommand(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "vuln.json")
	clean := strings.Join(slicesFilter(strings.Split(stream, "\n"), func(l string) bool { return !strings.Contains(l, "7001") }), "\n")
	for _, tc := range []struct {
		name, stream string
		fails        bool
	}{
		{"reachable module vuln", stream, true},
		{"only stdlib and unreached", clean, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(in, []byte(tc.stream), 0o600); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "scan.json")
			var log strings.Builder
			err := vulnsCmd([]string{"-in", in, "-db", "golang.org/x/vulndb@v0.0.0-20261105234957-e22db6528018", "-binary", in, "-out", out}, &log)
			if (err != nil) != tc.fails {
				t.Fatalf("err = %v, want failure %v", err, tc.fails)
			}
			if !strings.Contains(log.String(), "GO-2026-6603 stdlib@v1.26.8 REACHABLE, fixed in v1.26.9") {
				t.Errorf("report does not name the stdlib fix:\n%s", log.String())
			}
			if _, err := os.Stat(out); err != nil {
				t.Errorf("summary not written: %v", err)
			}
		})
	}
}

func slicesFilter(in []string, keep func(string) bool) []string {
	var out []string
	for _, s := range in {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

func TestNotices(t *testing.T) {
	modcache := t.TempDir()
	// Module paths with capitals are stored escaped in the module cache.
	dir := filepath.Join(modcache, "github.com", "!burnt!sushi", "toml@v1.4.0")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "COPYING"), []byte("The MIT License (MIT)\r\nCopyright (c) 2013 TOML authors\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var doc sbomDoc
	doc.Metadata.Component.Name = "github.com/gatehouse/gatehouse"
	doc.Components = []component{
		{Name: "github.com/gatehouse/gatehouse", Version: "v0.0.0", PURL: "pkg:golang/github.com/gatehouse/gatehouse"},
		{Name: "std", Version: "go1.27.3", PURL: "pkg:golang/std@go1.27.3"},
		{Name: "github.com/BurntSushi/toml", Version: "v1.4.0", PURL: "pkg:golang/github.com/BurntSushi/toml@v1.4.0"},
	}
	// cyclonedx-gomod -licenses reports detected licences as evidence.
	doc.Components[2].Evidence.Licenses = []licence{{}}
	doc.Components[2].Evidence.Licenses[0].License.ID = "MIT"
	got, err := notices(doc, modcache)
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	for _, want := range []string{"1 modules", "github.com/BurntSushi/toml v1.4.0  MIT", "--- COPYING", "Copyright (c) 2013 TOML authors\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("notices lack %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "gatehouse v0.0.0") || strings.Contains(s, "\r") {
		t.Errorf("notices list Gatehouse itself or keep CRLF:\n%s", s)
	}
	doc.Components[2].Version = "v9.9.9"
	if _, err := notices(doc, modcache); err == nil || !strings.Contains(err.Error(), "go mod download") {
		t.Errorf("a module missing from the cache: err = %v", err)
	}
}
