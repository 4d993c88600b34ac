package config_test

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the problems found")

const route = "routes:\n  - name: a\n    path: /a/\n    upstream: http://127.0.0.1:9000\n    scopes: [x]\n"

const issuer = "auth:\n  external_issuers:\n    - issuer: https://idp.example\n      audiences: [gatehouse]\n"

// problemCases is one config file for every problem Parse reports; the
// problems each gives are kept in testdata/problems.golden.
var problemCases = []struct{ name, yaml string }{
	// Form: what the YAML says, before any setting is read.
	{"not yaml", "routes: [\n"},
	{"tab indentation", "mode: dev\n\tlisten: x\n"},
	{"not a mapping", "- mode: dev\n"},
	{"two documents", "mode: dev\n---\nmode: prod\n"},
	{"drill targets", "incidents:\n  drill_targets: [gatehouse-2:8080, 'https://g2:8080/v1/authorize', 'https://g3:8080', 'https://g3:8080']\n"},
	{"not yaml in a second document", "mode: dev\n---\n[\n"},
	{"a key that is not a name", "? [a]\n: b\n"},
	{"unknown key in a merged mapping", "routes:\n  - <<: {name: a, path: /a/, upstream: \"http://h\", scopes: [x], bogus: 1}\n"},
	{"unknown top-level key", "listne: 1.2.3.4:80\n"},
	{"unknown key in capitals", "Listen: 127.0.0.1:80\n"},
	{"unknown key, nothing near", "colour: red\n"},
	{"unknown route key", route + "    upstreem: x\n"},
	{"unknown key longer than the known one", issuer + "      allowed_scopes: [read]\n      scope_mapping: {}\n"},
	{"key set twice", "mode: dev\nmode: prod\n"},
	{"duration without a unit", route + "    timeout: 30\n"},
	{"duration not a duration", route + "    timeout: soon\n"},
	{"duration in days where Go durations are read", "shutdown_timeout: 2d\n"},
	{"long duration not a duration", "audit: {retention: forever}\n"},
	{"size not a size", route + "    max_body: lots\n"},
	{"number not a number", "limits: {max_headers: many}\n"},
	{"number quoted", "limits: {max_headers: \"50\"}\n"},
	{"bool not a bool", route + "    public: maybe\n"},
	{"list given one value", route + "    methods: GET\n"},
	{"mapping given a value", "tls: true\n"},
	{"string given a list", "mode: [dev]\n"},
	{"route not a mapping", "routes:\n  - just-a-name\n"},
	{"limit with a word for requests", "ratelimit:\n  default: {requests: many, per: 1m}\n"},
	{"limit with an unknown key", "ratelimit:\n  tiers:\n    free: {requests: 10, window: 1m}\n"},
	{"tiers as a list", "ratelimit:\n  tiers: [free]\n"},
	{"limit given a number", "ratelimit:\n  tiers: {free: 5}\n"},
	{"several problems at once", "mode: staging\nlisten: nowhere\nroutes:\n  - name: a\n    path: a/\n    upstream: ftp://x\n    scopes: [x]\n    timeout: 30\n    upstreem: y\n  - name: a\n    path: /b/\n    upstream: http://h\n"},

	// Server and store.
	{"bad mode", "mode: staging\n"},
	{"bad listen", "listen: nowhere\n"},
	{"bad listen host", "listen: example.com:80\n"},
	{"bad listen port", "listen: 127.0.0.1:99999\n"},
	{"same listeners", "listen: 127.0.0.1:80\nadmin_listen: 127.0.0.1:80\n"},
	{"negative shutdown timeout", "shutdown_timeout: -1s\n"},
	{"unknown store driver", "store: {driver: mysql}\n"},
	{"postgres without dsn", "store: {driver: postgres}\n"},
	{"sqlite with dsn", "store: {driver: sqlite, dsn: \"postgres://db/g\"}\n"},

	// Limits and log.
	{"negative max headers", "limits: {max_headers: -1}\n"},
	{"negative timeouts", "limits: {read_timeout: -1s, read_header_timeout: -1s, password_hash_wait: -1s}\n"},
	{"preauth out of range", "limits:\n  preauth: {failures: -2, per: 500ms, sources: -1}\n"},
	{"ipv6 prefix too short", "limits: {ipv6_prefix: 32}\n"},
	{"ipv6 prefix too long", "limits: {ipv6_prefix: 129}\n"},
	{"ipv6 prefix negative", "limits: {ipv6_prefix: -64}\n"},
	{"log level", "log: {level: verbose}\n"},
	{"log format", "log: {format: xml}\n"},

	// Rate limits.
	{"ratelimit backend", "ratelimit: {backend: memcached}\n"},
	{"redis without url", "ratelimit: {backend: redis}\n"},
	{"redis url on memory", "ratelimit: {redis_url: \"redis://h:6379\"}\n"},
	{"redis failure mode", "ratelimit: {backend: redis, redis_url: \"redis://h\", on_redis_failure: retry}\n"},
	{"default limit zero requests", "ratelimit:\n  default: {requests: 0, per: 1m}\n"},
	{"tier limit too short", "ratelimit:\n  tiers:\n    free: {requests: 10, per: 500ms}\n"},
	{"tier named default", "ratelimit:\n  tiers:\n    default: {requests: 10, per: 1m}\n"},
	{"tier name not allowed", "ratelimit:\n  tiers:\n    Free: {requests: 10, per: 1m}\n"},

	// Auth.
	{"issuer not a url", "auth: {issuer: gatehouse}\n"},
	{"signing alg", "auth: {signing_alg: HS256}\n"},
	{"token ttl too long", "auth: {token_ttl: 2d}\n"},
	{"signing key rotation too short", "auth: {signing_key_rotation: 1h}\n"},
	{"external issuer plain http jwks_url in prod", issuer + "      allowed_scopes: [read]\n      jwks_url: http://idp.example/jwks\n"},
	{"external issuer plain http discovery in prod", strings.Replace(issuer, "https://idp", "http://idp", 1) + "      allowed_scopes: [read]\n"},
	{"external issuer without scope mapping", issuer + "      jwks_url: https://idp.example/jwks\n"},
	{"external issuer allowing admin", issuer + "      allowed_scopes: [read, admin]\n"},
	{"external issuer mapping to a scope with a space", issuer + "      scope_map:\n        read: [\"read admin\"]\n"},
	{"external issuer HMAC alg", issuer + "      allowed_scopes: [read]\n      allowed_algs: [RS256, HS256]\n"},
	{"external issuer without audiences", "auth:\n  external_issuers:\n    - issuer: https://idp.example\n      allowed_scopes: []\n"},
	{"external issuer twice", issuer + "      allowed_scopes: [read]\n" + strings.TrimPrefix(issuer, "auth:\n  external_issuers:\n") + "      allowed_scopes: [read]\n"},

	// Audit.
	{"audit retention below 90d in prod", "audit: {retention: 60d}\n"},
	{"audit retention below 30d in dev", "mode: dev\naudit: {retention: 20d}\n"},
	{"audit durability", "audit: {durability: eventually}\n"},
	{"audit source ip", "audit: {source_ip: anonymise}\n"},
	{"audit backend", "audit: {backend: s3}\n"},
	{"audit in postgres without the postgres store", "audit: {backend: postgres}\n"},
	{"audit in postgres in batch mode", "store: {driver: postgres, dsn: \"postgres://db/g\"}\naudit: {durability: batch}\n"},
	{"audit origin with a space", "audit: {origin: my gatehouse}\n"},
	{"audit checkpoint interval", "audit: {checkpoint_interval: 100ms}\n"},

	// TLS.
	{"tls cert without key", "tls: {cert_file: c.pem}\n"},
	{"tls key without cert", "tls: {key_file: k.pem}\n"},
	{"tls options without a certificate", "tls:\n  client_ca_file: ca.pem\n  redirect_listen: 127.0.0.1:80\n  admin: true\n"},
	{"tls min version", "tls: {cert_file: c.pem, key_file: k.pem, min_version: \"1.1\"}\n"},
	{"tls redirect listen", "tls: {cert_file: c.pem, key_file: k.pem, redirect_listen: \":http\"}\n"},
	{"client principal without id", "tls:\n  cert_file: c.pem\n  key_file: k.pem\n  client_ca_file: ca.pem\n  client_principals:\n    - {subject: svc}\n"},
	{"client principal with both subject and san", "tls:\n  cert_file: c.pem\n  key_file: k.pem\n  client_ca_file: ca.pem\n  client_principals:\n    - {subject: svc, san: spiffe://x/svc, id: svc}\n"},
	{"client principal with an unknown tier", "ratelimit:\n  tiers: {free: {requests: 10, per: 1m}}\ntls:\n  cert_file: c.pem\n  key_file: k.pem\n  client_ca_file: ca.pem\n  client_principals:\n    - {subject: svc, id: svc, tier: gold}\n"},
	{"client principal tier with no tiers defined", "tls:\n  cert_file: c.pem\n  key_file: k.pem\n  client_ca_file: ca.pem\n  client_principals:\n    - {subject: svc, id: svc, tier: gold}\n"},
	{"client principals without client ca", "tls:\n  cert_file: c.pem\n  key_file: k.pem\n  client_principals:\n    - {subject: svc, id: svc}\n"},

	// Policy.
	{"policy dir and bundle", "policy: {dir: ./p, bundle: b.tar.gz}\n"},
	{"policy poll interval", "policy: {dir: ./p, poll_interval: 10ms}\n"},
	{"policy bundle url without host", "policy: {bundle: \"https:///b.tar.gz\"}\n"},
	{"policy header with credentials", "policy:\n  headers: [X-Tenant, Authorization]\n"},

	// Secrets.
	{"secrets provider", "secrets: {provider: keychain}\n"},
	{"vault without address", "secrets: {provider: vault}\n"},
	{"vault over plain http in prod", "secrets:\n  provider: vault\n  vault: {address: \"http://vault.example:8200\"}\n"},
	{"vault credentials in the address", "secrets:\n  provider: vault\n  vault: {address: \"https://root:pw@vault.example\"}\n"},
	{"vault approle without role", "secrets:\n  provider: vault\n  vault: {address: \"https://v.example\", auth: approle}\n"},
	{"vault kubernetes without role", "secrets:\n  provider: vault\n  vault: {address: \"https://v.example\", auth: kubernetes}\n"},
	{"vault auth unknown", "secrets:\n  provider: vault\n  vault: {address: \"https://v.example\", auth: ldap, poll: 10ms}\n"},
	{"vault settings on another provider", "secrets:\n  provider: env\n  vault: {address: \"https://v.example\"}\n  dotenv: .env\n  dir: /s\n"},
	{"cadence class unknown", "secrets:\n  cadence: {passwords: 30d, pepper: 10m}\n"},
	{"secret reference not a name", "store: {driver: postgres, dsn: \"postgres://db/g\", password_secret: \"../etc/passwd\"}\n"},
	{"secret reference to the master key", "store: {driver: postgres, dsn: \"postgres://db/g\", password_secret: master-key}\n"},
	{"secret reference unused", "store: {password_secret: db-password}\nratelimit: {redis_password_secret: PATH}\n"},

	// Proxies.
	{"trusted proxy not an address", "trusted_proxies: [10.0.0.0/8, nginx.internal]\n"},
	{"trusted proxy bad cidr", "trusted_proxies:\n  - 10.0.0.0/33\n"},
	{"trusted proxy everyone", "trusted_proxies:\n  - 10.0.0.0/8\n  - 0.0.0.0/0\n"},
	{"trusted proxy everyone v6", "trusted_proxies: [\"::/0\"]\n"},
	{"trusted proxy with zone", "trusted_proxies: [\"fe80::1%eth0\"]\n"},
	{"forward auth unknown proxy", "forward_auth:\n  proxy: haproxy\n"},
	{"forward auth peers", "forward_auth:\n  proxy: nginx\n  trusted_proxies: [x]\n"},
	{"forward auth peers without proxy", "forward_auth:\n  trusted_proxies: [10.0.0.1]\n"},

	// Routes.
	{"bad url", strings.Replace(route, "http://127.0.0.1:9000", "ftp://x", 1)},
	{"relative url", strings.Replace(route, "http://127.0.0.1:9000", "localhost:9000", 1)},
	{"url with user info", strings.Replace(route, "http://127.0.0.1:9000", "http://u:p@h/", 1)},
	{"missing upstream", "routes:\n  - name: a\n    path: /a/\n    scopes: [x]\n"},
	{"missing scopes", "routes:\n  - name: a\n    path: /a/\n    upstream: http://h\n"},
	{"missing name", "routes:\n  - path: /a/\n    upstream: http://h\n    scopes: [x]\n"},
	{"missing path", "routes:\n  - name: a\n    upstream: http://h\n    scopes: [x]\n"},
	{"duplicate name", route + strings.Replace(route, "routes:\n", "", 1)},
	{"duplicate path", route + "  - name: b\n    path: /a/\n    upstream: http://h\n    scopes: [x]\n"},
	{"dot path", strings.Replace(route, "/a/", "/a/../b/", 1)},
	{"relative path", strings.Replace(route, "/a/", "a/", 1)},
	{"encoded path", strings.Replace(route, "/a/", "/a%2f/", 1)},
	{"reserved path", strings.Replace(route, "/a/", "/health/x", 1)},
	{"bad method", route + "    methods: [GET, FETCH]\n"},
	{"public with scopes", route + "    public: true\n"},
	{"scope with space", strings.Replace(route, "[x]", `["a b"]`, 1)},
	{"scope with a quote", strings.Replace(route, "[x]", `["a\"b"]`, 1)},
	{"scope with a control character", strings.Replace(route, "[x]", `["a\u0001b"]`, 1)},
	{"scope not ASCII", strings.Replace(route, "[x]", `["adm\u0131n"]`, 1)},
	{"bad tool name", route + "    tool: \"web search\"\n"},
	{"negative route timeouts", route + "    timeout: -1s\n    read_timeout: -1s\n    connect_timeout: -1s\n    total_timeout: -1s\n"},
	{"breaker out of range", route + "    breaker: {consecutive_failures: -1, failure_ratio: 1.5, min_requests: -1, open_timeout: 10ms, half_open_requests: -1}\n"},
	{"tls to a plain http upstream", route + "    tls: {ca_file: ca.pem}\n"},
	{"upstream client cert without key", strings.Replace(route, "http://", "https://", 1) + "    tls: {cert_file: c.pem}\n"},
	{"route rate limit", route + "    ratelimit: {requests: 0, per: 1m}\n"},
	{"metrics token file with spaces", "metrics: {token_file: \" /etc/token\"}\n"},
}

// typeName finds Go's words in a message: a YAML tag, "unmarshal", a
// qualified type name.
var typeName = regexp.MustCompile(`!!|unmarshal|time\.Duration|\b[a-z]+\.[A-Z]\w+`)

// quoted is a value quoted back from the file, which may say anything.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// badProblem reports a problem that spans lines or names a Go type.
func badProblem(p config.Problem) bool {
	return strings.Contains(p.String(), "\n") || typeName.MatchString(quoted.ReplaceAllString(p.Message, `""`))
}

// TestProblems: every problem Parse finds, with its file, line and field,
// against testdata/problems.golden (go test -run TestProblems -update
// rewrites it). Every case has a problem, each problem is one line, and
// none names a Go type.
func TestProblems(t *testing.T) {
	golden := filepath.Join("testdata", "problems.golden")
	want := readGolden(t, golden)
	var out strings.Builder
	for _, tc := range problemCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("g.yaml", []byte(tc.yaml))
			ps := config.AsProblems(err)
			if len(ps) == 0 {
				t.Fatalf("no problem reported (err %v) for:\n%s", err, tc.yaml)
			}
			for _, p := range ps {
				if badProblem(p) {
					t.Errorf("problem %q spans lines or names a Go type", p)
				}
				if p.File != "g.yaml" {
					t.Errorf("problem %q not placed in g.yaml", p)
				}
			}
			got := err.Error()
			out.WriteString("== " + tc.name + "\n" + got + "\n\n")
			if !*update && got != want[tc.name] {
				t.Errorf("got:\n%s\nwant (%s):\n%s", got, golden, want[tc.name])
			}
		})
	}
	if *update {
		if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readGolden reads "== name\nproblems\n\n" sections.
func readGolden(t *testing.T, file string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		if *update {
			return nil
		}
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, sec := range strings.Split(string(data), "\n\n") {
		name, body, ok := strings.Cut(strings.TrimPrefix(sec, "== "), "\n")
		if ok {
			m[name] = body
		}
	}
	return m
}

// TestProblemsFromTheEnvironment: a value an environment variable set is
// reported at the variable, not at a line of the file.
func TestProblemsFromTheEnvironment(t *testing.T) {
	file := filepath.Join(t.TempDir(), "g.yaml")
	os.WriteFile(file, []byte("listen: 127.0.0.1:8080\nmode: staging\n"), 0o644)
	env := map[string]string{"GATEHOUSE_LISTEN": "nowhere", "GATEHOUSE_ADMIN_LISTEN": "127.0.0.1:99999"}
	for _, path := range []string{file, ""} {
		_, err := config.Load(path, func(k string) string { return env[k] })
		got := err.Error()
		for _, want := range []string{
			"GATEHOUSE_LISTEN: listen: must be host:port, not \"nowhere\"",
			"GATEHOUSE_ADMIN_LISTEN: admin_listen: port \"99999\" must be a number from 0 to 65535",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("Load(%q): %q\ndoes not contain %q", path, got, want)
			}
		}
		if path != "" && !strings.Contains(got, file+":2: mode:") {
			t.Errorf("Load(%q): %q\nlost the file's own problem", path, got)
		}
	}
}

// TestUnreadableConfigFile: a config file that cannot be read is a
// problem with that file, not a Go error.
func TestUnreadableConfigFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "missing.yaml")
	_, err := config.Load(file, nil)
	ps := config.AsProblems(err)
	if len(ps) != 1 || ps[0].String() != file+": cannot read the config file: no such file or directory" {
		t.Errorf("problems %q", ps)
	}
}

// TestProblemsWith: a field reported once is not reported again from
// inside or around it; the rest are kept, in line order.
func TestProblemsWith(t *testing.T) {
	ps := config.Problems{{Line: 5, Path: "routes[0]", Message: "must be a mapping"}}
	got := ps.With(config.Problems{
		{Line: 5, Path: "routes[0].name", Message: "is required"},
		{Line: 5, Path: "routes", Message: "x"},
		{Line: 2, Path: "routes[01]", Message: "kept"},
		{Line: 9, Path: "routes[1].name", Message: "kept"},
	})
	want := config.Problems{{Line: 2, Path: "routes[01]", Message: "kept"}, ps[0], {Line: 9, Path: "routes[1].name", Message: "kept"}}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("[%d] = %q, want %q", i, got[i], want[i])
		}
	}
}
