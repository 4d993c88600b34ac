package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
)

// TestCheck: what a config names on disk is read as serve would read it,
// and each problem is placed at the field that names the file.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, dir, "test")
	cert, key := ca.issue(t, dir, "gw", false)
	otherCert, _ := ca.issue(t, dir, "other", false)
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const allow = "package gatehouse.authz\n\ndefault allow := false\n"
	write("good/authz.rego", allow)
	write("good/authz_test.rego", "package gatehouse.authz\n\ntest_deny if not allow\n")
	write("broken/authz.rego", "package gatehouse.authz\n\nallow if {\n")
	write("undefined/authz.rego", allow+"allow if nope(input)\n")
	write("failing/authz.rego", allow)
	write("failing/authz_test.rego", "package gatehouse.authz\n\ntest_allows if allow\n")
	write("noallow/x.rego", "package gatehouse.other\n\nx := 1\n")
	garbage := write("garbage.pem", "not a certificate\n")
	schema := write("order.json", `{"type":"object"}`)
	badSchema := write("bad.json", `{"type":"objekt"}`)
	notJSON := write("notjson.json", `{`)
	write("plain.txt", "x")
	write("scrape-token", strings.Repeat("s", 32)+"\n")
	write("short-token", "short\n")
	route := func(extra string) string {
		return "routes:\n  - name: r\n    path: /r/\n    upstream: https://127.0.0.1:9000\n    scopes: [x]\n" + extra
	}
	tests := []struct {
		name string
		yaml string
		want []string // "" = no problem
	}{
		{"the embedded policy", "", nil},
		{"a policy dir that compiles and passes its tests", "policy: {dir: good}\n", nil},
		{"a policy dir that is missing", "policy: {dir: nowhere}\n", []string{"g.yaml:1: policy.dir: cannot read nowhere: no such file or directory"}},
		{"a policy dir that is a file", "policy: {dir: plain.txt}\n", []string{"g.yaml:1: policy.dir: cannot read plain.txt: is not a directory"}},
		{"a policy that does not parse", "policy: {dir: broken}\n", []string{"g.yaml:1: policy.dir: broken/authz.rego:4: rego_parse_error: "}},
		{"a policy that does not compile", "policy: {dir: undefined}\n", []string{"g.yaml:1: policy.dir: /authz.rego:4: rego_type_error: undefined function nope"}},
		{"a policy that fails its tests", "policy: {dir: failing}\n", []string{"g.yaml:1: policy.dir: policy tests failed: /authz_test.rego:3: data.gatehouse.authz.test_allows: FAIL"}},
		{"a policy without allow", "policy: {dir: noallow}\n", []string{"g.yaml:1: policy.dir: policy defines no data.gatehouse.authz.allow rule"}},
		{"a bundle file that is missing", "policy: {bundle: b.tar.gz}\n", []string{"g.yaml:1: policy.bundle: cannot read b.tar.gz: no such file or directory"}},
		{"a bundle file that is not a bundle", "policy: {bundle: plain.txt}\n", []string{"g.yaml:1: policy.bundle: read bundle: "}},
		{"a bundle URL is not fetched", "policy: {bundle: \"http://127.0.0.1:1/b.tar.gz\"}\n", nil},
		{"tls that loads", fmt.Sprintf("tls: {cert_file: %s, key_file: %s, client_ca_file: %s}\n", cert, key, ca.file), nil},
		{"tls cert missing", fmt.Sprintf("tls:\n  cert_file: missing.pem\n  key_file: %s\n", key), []string{"g.yaml:2: tls.cert_file: cannot read missing.pem: no such file or directory"}},
		{"tls key missing", fmt.Sprintf("tls:\n  cert_file: %s\n  key_file: missing.pem\n", cert), []string{"g.yaml:3: tls.key_file: cannot read missing.pem: no such file or directory"}},
		{"tls key of another certificate", fmt.Sprintf("tls:\n  cert_file: %s\n  key_file: %s\n", otherCert, key), []string{"g.yaml:3: tls.key_file: private key does not match public key"}},
		{"tls cert not a certificate", fmt.Sprintf("tls:\n  cert_file: %s\n  key_file: %s\n", garbage, key), []string{"g.yaml:2: tls.cert_file: failed to find any PEM data in certificate input"}},
		{"tls client CA not a certificate", fmt.Sprintf("tls:\n  cert_file: %s\n  key_file: %s\n  client_ca_file: %s\n", cert, key, garbage), []string{"g.yaml:4: tls.client_ca_file: CA file " + garbage + " holds no PEM certificate"}},
		{"tls client CA missing", fmt.Sprintf("tls:\n  cert_file: %s\n  key_file: %s\n  client_ca_file: ca.pem\n", cert, key), []string{"g.yaml:4: tls.client_ca_file: cannot read ca.pem: no such file or directory"}},
		{"upstream tls that loads", route(fmt.Sprintf("    tls: {ca_file: %s, cert_file: %s, key_file: %s}\n", ca.file, cert, key)), nil},
		{"upstream CA not a certificate", route(fmt.Sprintf("    tls:\n      ca_file: %s\n", garbage)), []string{"g.yaml:7: routes[0].tls.ca_file: CA file " + garbage + " holds no PEM certificate"}},
		{"upstream client key missing", route(fmt.Sprintf("    tls:\n      cert_file: %s\n      key_file: missing.pem\n", cert)), []string{"g.yaml:8: routes[0].tls.key_file: cannot read missing.pem: no such file or directory"}},
		{"collector tls that loads", fmt.Sprintf("tracing:\n  endpoint: https://collector:4318\n  tls: {ca_file: %s, cert_file: %s, key_file: %s}\n", ca.file, cert, key), nil},
		{"collector CA not a certificate", fmt.Sprintf("tracing:\n  endpoint: https://collector:4318\n  tls:\n    ca_file: %s\n", garbage), []string{"g.yaml:4: tracing.tls.ca_file: CA file " + garbage + " holds no PEM certificate"}},
		{"collector client key of another certificate", fmt.Sprintf("tracing:\n  endpoint: https://collector:4318\n  tls:\n    cert_file: %s\n    key_file: %s\n", otherCert, key), []string{"g.yaml:5: tracing.tls.key_file: private key does not match public key"}},
		{"upstream client key of another certificate", route(fmt.Sprintf("    tls:\n      cert_file: %s\n      key_file: %s\n", otherCert, key)), []string{"g.yaml:8: routes[0].tls.key_file: private key does not match public key"}},
		{"json schema that compiles", route("    json_schema: " + schema + "\n"), nil},
		{"json schema missing", route("    json_schema: missing.json\n"), []string{"g.yaml:6: routes[0].json_schema: cannot read missing.json: no such file or directory"}},
		{"json schema that does not compile", route("    json_schema: " + badSchema + "\n"), []string{"g.yaml:6: routes[0].json_schema: not a valid JSON Schema: /type: "}},
		{"json schema not JSON", route("    json_schema: " + notJSON + "\n"), []string{"g.yaml:6: routes[0].json_schema: compile JSON schema " + notJSON + ": "}},
		{"data dir a file", "data_dir: plain.txt\n", []string{"g.yaml:1: data_dir: plain.txt is not a directory"}},
		{"audit stream in a missing directory", "audit: {stream: nowhere/audit.jsonl}\n", []string{"g.yaml:1: audit.stream: cannot create nowhere/audit.jsonl: directory nowhere does not exist"}},
		{"audit stream a directory", "audit: {stream: good}\n", []string{"g.yaml:1: audit.stream: good is a directory; name a file to append to"}},
		{"a scrape token", "metrics: {token_file: scrape-token}\n", nil},
		{"a scrape token file that is missing", "metrics: {token_file: nowhere}\n", []string{"g.yaml:1: metrics.token_file: cannot read nowhere: no such file or directory"}},
		{"a scrape token too short", "metrics: {token_file: short-token}\n", []string{"g.yaml:1: metrics.token_file: the scrape token in short-token must be one word of at least 32 characters"}},
		{"every problem at once", fmt.Sprintf("policy: {dir: nowhere}\ntls: {cert_file: %s, key_file: missing.pem}\n", cert) + route("    json_schema: missing.json\n"), []string{
			"g.yaml:1: policy.dir: cannot read nowhere", "g.yaml:2: tls.key_file: cannot read missing.pem", "g.yaml:8: routes[0].json_schema: cannot read missing.json"}},
	}
	t.Chdir(dir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("g.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			ps := app.Check(context.Background(), cfg)
			if len(ps) != len(tt.want) {
				t.Fatalf("problems:\n%v\nwant %d: %q", ps.Error(), len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if got := ps[i].String(); !strings.HasPrefix(got, w) || strings.Contains(got, "\n") {
					t.Errorf("problem %d: %q\nwant one line starting %q", i, got, w)
				}
			}
		})
	}
}
