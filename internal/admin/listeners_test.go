package admin_test

import (
	"encoding/json"
	"flag"
	"os"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite README.md's listener table from openapi.json")

const (
	readme      = "../../README.md"
	tableBegin  = "<!-- BEGIN listeners: generated from internal/admin/openapi.json (go test ./internal/admin -run TestREADMEListenerTable -update); do not edit -->\n"
	tableEnd    = "<!-- END listeners -->\n"
	noAuthLabel = " (no credential)"
)

// areas are the rows of README's listener table: the OpenAPI tags of each
// listener in the order shown, with what the row is called there.
var areas = []struct{ listener, tag, label string }{
	{"public", "", "configured routes: the longest matching prefix owns a request, proxied upstream; anything else is 404"},
	{"public", "health", "health, status only"},
	{"public", "oauth", "token endpoint, keys, discovery"},
	{"public", "gateway", "decisions: forward-auth, decision API"},
	{"admin", "health", "health with details: the version, every readiness check and its error"},
	{"admin", "meta", "this API's OpenAPI document; Prometheus metrics"},
	{"admin", "session", "sign-in (session cookie)"},
	{"admin", "self", "your own account"},
	{"admin", "users", "users"},
	{"admin", "tokens", "personal access tokens"},
	{"admin", "keys", "API keys, rate-limit tiers"},
	{"admin", "clients", "service clients"},
	{"admin", "signing-keys", "JWT signing keys"},
	{"admin", "policies", "policy"},
	{"admin", "settings", "Settings → Authentication"},
	{"admin", "admin-token", "bootstrap admin token"},
	{"admin", "audit", "audit log"},
	{"admin", "evidence", "SOC 2 evidence"},
	{"admin", "reviews", "access reviews"},
	{"admin", "incidents", "incidents, revocation drills"},
	{"admin", "backups", "backups"},
	{"admin", "secrets", "server secrets: ages against rotation cadence, rotation"},
	{"admin", "", "Go runtime profiles, with `serve --pprof` only (admin role): `GET /debug/pprof/…`"},
}

type openAPIDoc struct {
	Paths map[string]map[string]json.RawMessage `json:"paths"`
}

type operation struct {
	Tags     []string           `json:"tags"`
	Security *[]json.RawMessage `json:"security"`
}

// TestREADMEListenerTable holds README.md's "What runs where" table to
// the OpenAPI document, which TestOpenAPIDescribesEveryRoute holds to
// the routes both listeners register: every endpoint of each listener is
// in its row, with its methods, and marked when it needs no credential.
func TestREADMEListenerTable(t *testing.T) {
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	// rows[listener+" "+tag] lists "METHODS path" entries.
	rows := map[string][]string{}
	var paths []string
	for p := range doc.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		item := doc.Paths[p]
		var listeners []string
		if err := json.Unmarshal(item["x-gatehouse-listener"], &listeners); err != nil || len(listeners) == 0 {
			t.Errorf("%s: no x-gatehouse-listener", p)
			continue
		}
		var methods []string
		tag, open := "", true
		for _, m := range []string{"get", "head", "post", "put", "patch", "delete"} {
			raw, ok := item[m]
			if !ok {
				continue
			}
			var op operation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", m, p, err)
			}
			if len(op.Tags) > 0 && tag == "" {
				tag = op.Tags[0]
			}
			if op.Security == nil || len(*op.Security) > 0 {
				open = false
			}
			if m == "head" && item["get"] != nil {
				continue // HEAD goes with GET
			}
			methods = append(methods, strings.ToUpper(m))
		}
		entry := "`" + strings.Join(methods, ", ") + " " + p + "`"
		if open {
			entry += noAuthLabel
		}
		for _, l := range listeners {
			rows[l+" "+tag] = append(rows[l+" "+tag], entry)
		}
	}
	var table strings.Builder
	table.WriteString("| listener | serves | endpoints |\n|---|---|---|\n")
	prev := ""
	for _, a := range areas {
		name := ""
		if a.listener != prev {
			name = map[string]string{"public": "public, `127.0.0.1:8080`", "admin": "admin, `127.0.0.1:8081`"}[a.listener]
			prev = a.listener
		}
		entries := "—"
		if a.tag != "" {
			key := a.listener + " " + a.tag
			if rows[key] == nil {
				t.Errorf("no endpoint of tag %q on the %s listener: remove it from areas", a.tag, a.listener)
			}
			entries = strings.Join(rows[key], ", ")
			if all := strings.Count(entries, noAuthLabel); all == len(rows[key]) {
				entries = strings.ReplaceAll(entries, noAuthLabel, "")
				a.label += noAuthLabel
			}
			delete(rows, key)
		}
		label := a.label
		if a.tag == "" {
			label, entries, _ = strings.Cut(a.label, ": ")
		}
		table.WriteString("| " + name + " | " + label + " | " + entries + " |\n")
	}
	for key, entries := range rows {
		t.Errorf("the %s endpoints of tag %q have no row in README's listener table (add the tag to areas): %s", strings.Fields(key)[0], strings.Fields(key)[1], strings.Join(entries, ", "))
	}
	text, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := strings.Cut(string(text), tableBegin)
	_, after, ok2 := strings.Cut(rest, tableEnd)
	if !ok || !ok2 {
		t.Fatalf("README.md has no %q … %q block", tableBegin, tableEnd)
	}
	want := before + tableBegin + table.String() + tableEnd + after
	if want == string(text) {
		return
	}
	if *update {
		if err := os.WriteFile(readme, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's listener table is not what openapi.json says; run go test ./internal/admin -run TestREADMEListenerTable -update\nwant:\n%s", table.String())
}
