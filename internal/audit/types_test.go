package audit_test

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/audit"
)

var update = flag.Bool("update", false, "rewrite the event type table of docs/audit.md from audit.EventTypes")

const (
	auditDoc   = "../../docs/audit.md"
	tableBegin = "<!-- BEGIN event types: generated from audit.EventTypes (go test ./internal/audit -run TestAuditDocListsEventTypes -update); do not edit -->\n"
	tableEnd   = "<!-- END event types -->\n"
)

// TestAuditDocListsEventTypes fails when the table of event types in
// docs/audit.md is not audit.EventTypes (-update rewrites it).
func TestAuditDocListsEventTypes(t *testing.T) {
	b, err := os.ReadFile(auditDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	before, rest, ok := strings.Cut(doc, tableBegin)
	_, after, ok2 := strings.Cut(rest, tableEnd)
	if !ok || !ok2 {
		t.Fatalf("docs/audit.md has no %q … %q block", tableBegin, tableEnd)
	}
	var table strings.Builder
	table.WriteString("| type | recorded when |\n|---|---|\n")
	for _, et := range audit.EventTypes() {
		table.WriteString("| `" + et.Name + "` | " + strings.ReplaceAll(et.Doc, "|", "\\|") + " |\n")
	}
	want := before + tableBegin + table.String() + tableEnd + after
	if want == doc {
		return
	}
	if *update {
		if err := os.WriteFile(auditDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("docs/audit.md's event types are not audit.EventTypes; run go test ./internal/audit -run TestAuditDocListsEventTypes -update\nwant:\n%s", table.String())
}

// TestDocsNameRealEventTypes checks every event type the docs filter on
// (--type X, ?type=X) or name in backquotes as an event.
func TestDocsNameRealEventTypes(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md")
	filter := regexp.MustCompile(`(?:--type[ =]|[?&]type=)([a-z_.*]+)`)
	n := 0
	for _, file := range files {
		if strings.HasSuffix(file, "/cli.md") { // flags and their value types
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range filter.FindAllStringSubmatch(line, -1) {
				n++
				if err := audit.CheckTypeFilter(m[1]); err != nil {
					t.Errorf("%s:%d: %q is not an event type", filepath.Base(file), i+1, m[1])
				}
			}
		}
	}
	if n == 0 {
		t.Error("no --type or ?type= found in the docs; is the pattern broken?")
	}
}

// TestDocsNameRealEvents checks the event types the docs and the OpenAPI
// document's summaries name: "audited as X [and Y]", and any name in
// backquotes of a family only event types use (admin., authn., …).
func TestDocsNameRealEvents(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md", "../../internal/admin/openapi.json")
	audited := regexp.MustCompile("audited as `?([a-z_]+\\.[a-z_.]*[a-z_])`?(?: and `?([a-z_]+\\.[a-z_.]*[a-z_])`?)?")
	// The config's secrets and breaker sections and the chart's secrets
	// values share a prefix with the events: secrets.provider,
	// secrets.vault.poll, breaker.consecutive_failures.
	configKey := regexp.MustCompile(`^(secrets\.(provider|source|cadence|dir|dotenv|vault|masterKey|poll)|breaker\.(consecutive_failures|failure_ratio|min_requests|open_timeout|half_open_requests))(\.|$)`)
	quoted := regexp.MustCompile("`((?:admin|authn|authz|compliance|system|secrets|oauth|breaker|signing_key|preauth|incident|review)\\.[a-z_.]*[a-z_])`")
	n := 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			var names []string
			for _, m := range audited.FindAllStringSubmatch(line, -1) {
				names = append(names, m[1:]...)
			}
			for _, m := range quoted.FindAllStringSubmatch(line, -1) {
				if !configKey.MatchString(m[1]) {
					names = append(names, m[1])
				}
			}
			for _, name := range names {
				if name == "" {
					continue
				}
				n++
				if audit.CheckTypeFilter(name) != nil {
					t.Errorf("%s:%d: %q is not an event type", filepath.Base(file), i+1, name)
				}
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d event names found in the docs; are the patterns broken?", n)
	}
}

func TestCheckTypeFilter(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		ok      bool
	}{
		{"", true},
		{"authn.failure", true},
		{"admin.*", true},
		{"*", true},
		{"admin.user.*", true},
		{"auth.failure", false}, // the admin API's is admin.auth.failure
		{"authn.failure*", true},
		{"authn", false},
		{"nope.*", false},
	} {
		err := audit.CheckTypeFilter(tc.pattern)
		if (err == nil) != tc.ok {
			t.Errorf("CheckTypeFilter(%q) = %v, want ok=%v", tc.pattern, err, tc.ok)
		}
		if err != nil && (!strings.Contains(err.Error(), "authn.failure") || !strings.Contains(err.Error(), tc.pattern)) {
			t.Errorf("CheckTypeFilter(%q) = %q: must name the pattern and the known types", tc.pattern, err)
		}
	}
}
