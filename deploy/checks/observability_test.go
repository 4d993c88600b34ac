package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSelectors(t *testing.T) {
	for _, tc := range []struct {
		name, expr string
		want       []selector
	}{
		{"bare", `up == 0`, []selector{{name: "up"}}},
		{"matchers and range", `rate(gatehouse_requests_total{code=~"5..", route!="(health)"}[5m])`,
			[]selector{{name: "gatehouse_requests_total", labels: []string{"code", "route"}}}},
		{"aggregation with by before the body", `sum by (job, instance) (increase(x_total[10m] offset 5m)) > 3 * y`,
			[]selector{{name: "x_total"}, {name: "y"}}},
		{"by after the body, on and group_left", `max(a) by (job) * on (instance) group_left (version) b`,
			[]selector{{name: "a"}, {name: "b"}}},
		{"strings, numbers and keywords", `label_replace(m{l="a,b{c}"}, "dst", "$1", "src", "(.*)") > 1e3 and bool inf`,
			[]selector{{name: "m", labels: []string{"l"}}}},
		{"Grafana variables", `rate(m{instance=~"$instance"}[$__rate_interval]) / ${scale}`,
			[]selector{{name: "m", labels: []string{"instance"}}}},
		{"subquery and comment", "max_over_time(rate(c[1m])[5m:30s]) # up\n",
			[]selector{{name: "c"}}},
		{"nameless selector", `{__name__="m"}`, []selector{{name: "(by __name__)", labels: []string{"__name__"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := selectors(tc.expr); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("selectors(%q)\n got %+v\nwant %+v", tc.expr, got, tc.want)
			}
		})
	}
}

// TestShippedObservability: the alert rules, their tests and the
// dashboard in deploy/observability, and the compose stack, pass every
// check.
func TestShippedObservability(t *testing.T) {
	var p problems
	if err := observability([]string{"-runbook", "../../docs/operations.md", "../observability"}, &p); err != nil {
		t.Fatal(err)
	}
	if err := compose([]string{"../compose"}, &p); err != nil {
		t.Fatal(err)
	}
	for _, s := range p {
		t.Error(s)
	}
}

// TestExportedMetrics: the families the checks compare against are what
// internal/metrics serves, histograms and labels included.
func TestExportedMetrics(t *testing.T) {
	ex, err := exportedMetrics()
	if err != nil {
		t.Fatal(err)
	}
	for name, labels := range map[string][]string{
		"gatehouse_requests_total":                       {"route", "method", "code", "job", "instance"},
		"gatehouse_request_duration_seconds_bucket":      {"route", "le"},
		"gatehouse_revocation_propagation_seconds_count": nil,
		"gatehouse_authn_failures_total":                 {"reason"},
		"gatehouse_breaker_state":                        {"upstream"},
		"gatehouse_secret_age_seconds":                   {"class"},
		"gatehouse_cert_not_after_seconds":               {"listener"},
		"gatehouse_audit_checkpoint_timestamp_seconds":   nil,
		"gatehouse_ready":                                nil,
		"gatehouse_store_up":                             nil,
		"go_gc_duration_seconds":                         {"quantile"},
		"up":                                             {"job", "instance"},
	} {
		got, ok := seriesLabels(name, ex)
		if !ok {
			t.Errorf("%s: not exported", name)
			continue
		}
		for _, l := range labels {
			if !got[l] {
				t.Errorf("%s: no label %s (has %v)", name, l, got)
			}
		}
	}
	for _, name := range []string{"gatehouse_request_total", "gatehouse_requests_total_bucket", "gatehouse_store_up_count", "gatehouse_authn_failures"} {
		if _, ok := seriesLabels(name, ex); ok {
			t.Errorf("%s: taken as exported", name)
		}
	}
}

// copyTree copies the files under src (recursively) into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// edit replaces old by new in file, which must hold old.
func edit(t *testing.T, file, old, new string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(string(data), old, new)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestObservabilityRefuses: a rule or dashboard that drifts from the code
// or the runbook is reported, saying what drifted.
func TestObservabilityRefuses(t *testing.T) {
	const (
		alerts = "observability/alerts.yml"
		tests  = "observability/alerts_test.yml"
		board  = "observability/gatehouse-dashboard.json"
		book   = "operations.md"
	)
	for _, tc := range []struct {
		name, file, old, new, want string
	}{
		{"a metric Gatehouse does not export", alerts, "gatehouse_store_up == 0", "gatehouse_store_upp == 0",
			"GatehouseStoreDown: metric gatehouse_store_upp is not exported"},
		{"a label the metric does not have", alerts, `reason!="error"`, `cause!="error"`,
			`GatehouseAuthnFailureSpike: metric gatehouse_authn_failures_total has no label "cause"`},
		{"le on a counter", alerts, `gatehouse_audit_append_errors_total[5m]`, `gatehouse_audit_append_errors_total{le="1"}[5m]`,
			`metric gatehouse_audit_append_errors_total has no label "le"`},
		{"a runbook anchor that is no heading", alerts, "#gatehousestoredown", "#gatehouse-store-down",
			"GatehouseStoreDown: runbook_url anchor #gatehouse-store-down is no heading"},
		{"a runbook section removed", book, "### GatehouseBackupTooOld", "### Old backups",
			"GatehouseBackupTooOld: runbook_url anchor #gatehousebackuptooold is no heading"},
		{"a runbook_url into another file", alerts, "main/docs/operations.md#gatehousestoredown", "main/docs/recovery.md#gatehousestoredown",
			"does not point to"},
		{"an unknown severity", alerts, "severity: critical", "severity: page", `severity label "page"`},
		{"an alert no test fires", tests, "alertname: GatehouseStoreDown", "alertname: GatehouseStoreGone",
			"no test fires GatehouseStoreDown"},
		{"a test of an alert that does not exist", tests, "alertname: GatehouseStoreDown", "alertname: GatehouseStoreGone",
			`names alert "GatehouseStoreGone", which alerts.yml does not define`},
		{"a dashboard metric Gatehouse does not export", board, "gatehouse_audit_queue_depth{", "gatehouse_audit_queue_length{",
			`panel "Queue depth": metric gatehouse_audit_queue_length is not exported`},
		{"a dashboard label the metric does not have", board, `sum by (tier) (rate(gatehouse_ratelimit_rejections_total{job`, `sum by (tier) (rate(gatehouse_ratelimit_rejections_total{tenant=\"a\", job`,
			`metric gatehouse_ratelimit_rejections_total has no label "tenant"`},
		{"a dashboard variable on a missing label", board, `$job\"}, instance)`, `$job\"}, pod)`,
			`variable instance: metric gatehouse_build_info has no label "pod"`},
		{"a dashboard that is not JSON", board, `"panels": [`, `"panels": [[`, "does not parse as JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, "../observability", filepath.Join(dir, "observability"))
			data, err := os.ReadFile("../../docs/operations.md")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, book), data, 0o644); err != nil {
				t.Fatal(err)
			}
			edit(t, filepath.Join(dir, tc.file), tc.old, tc.new)
			var p problems
			if err := observability([]string{"-runbook", filepath.Join(dir, book), filepath.Join(dir, "observability")}, &p); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(p, "\n"), tc.want) {
				t.Errorf("want a problem with %q, got:\n%s", tc.want, strings.Join(p, "\n"))
			}
		})
	}
}

// TestComposeMonitoringRefuses: the compose stack's Prometheus must
// scrape every replica with the token the replicas read (a git-ignored
// file secret) and load the alert rules; Grafana must be provisioned with
// both and stay on loopback.
func TestComposeMonitoringRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, file, old, new, want string
	}{
		{"a replica not scraped", "compose/prometheus.yml", `, "gatehouse-3:8081"`, ``, "job gatehouse targets"},
		{"the public port scraped", "compose/prometheus.yml", `"gatehouse-3:8081"`, `"gatehouse-3:8080"`, "job gatehouse targets"},
		{"no scrape token", "compose/prometheus.yml", "credentials_file: /run/secrets/scrape-token", "credentials: x",
			"no authorization.credentials_file"},
		{"Prometheus reading another token file", "compose/prometheus.yml", "credentials_file: /run/secrets/scrape-token",
			"credentials_file: /etc/prometheus/token", "is not where prometheus mounts secret scrape-token"},
		{"Prometheus without the secret", "compose/compose.yaml", "    secrets: [scrape-token]\n", "",
			"is not where prometheus mounts secret scrape-token"},
		{"the replicas without the secret", "compose/compose.yaml", "  secrets: [scrape-token]\n  read_only: true", "  read_only: true",
			"mounts no secret at metrics.token_file /run/secrets/scrape-token"},
		{"the token from the environment", "compose/compose.yaml", "    file: ./scrape-token", "    environment: GATEHOUSE_SCRAPE_TOKEN",
			"secret scrape-token must be a file"},
		{"the token file not git-ignored", "compose/.gitignore", "\nscrape-token\n", "\n", "is not in"},
		{"the replicas without a token file", "compose/gatehouse.yaml", "token_file: /run/secrets/scrape-token", "token_file: ''",
			"sets no metrics.token_file"},
		{"the alert rules not loaded", "compose/prometheus.yml", "  - /etc/prometheus/alerts.yml", "  - /etc/prometheus/rules.yml",
			"do not load /etc/prometheus/alerts.yml"},
		{"the scrape job renamed", "compose/prometheus.yml", "job_name: gatehouse", "job_name: gh", "no scrape job named gatehouse"},
		{"Grafana on every interface", "compose/compose.yaml", `"127.0.0.1:3000:3000"`, `"3000:3000"`, "grafana publishes"},
		{"Grafana's password in the file", "compose/compose.yaml", "${GRAFANA_ADMIN_PASSWORD:?export GRAFANA_ADMIN_PASSWORD first}", "admin",
			"admin password is written"},
		{"the provider reading another dir", "compose/grafana/dashboards.yaml", "path: /etc/grafana/dashboards", "path: /var/lib/grafana/dashboards",
			"the provider does not read /etc/grafana/dashboards"},
		{"the data source elsewhere", "compose/grafana/datasources.yaml", "url: http://prometheus:9090", "url: http://localhost:9090",
			"want a prometheus data source"},
		{"no Prometheus", "compose/compose.yaml", "  prometheus:\n", "  prom:\n", "no prometheus service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, "../compose", filepath.Join(dir, "compose"))
			copyTree(t, "../observability", filepath.Join(dir, "observability"))
			edit(t, filepath.Join(dir, tc.file), tc.old, tc.new)
			var p problems
			if err := compose([]string{filepath.Join(dir, "compose")}, &p); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(p, "\n"), tc.want) {
				t.Errorf("want a problem with %q, got:\n%s", tc.want, strings.Join(p, "\n"))
			}
		})
	}
}

func TestFillVariables(t *testing.T) {
	for in, want := range map[string]string{
		`rate(m{instance=~"$instance", job=~"${job}"}[$__rate_interval])`: `rate(m{instance=~".*", job=~".*"}[5m])`,
		`x[${__range}] offset $__interval`:                                `x[5m] offset 5m`,
		`sum(m{a="b"})`:                                                   `sum(m{a="b"})`,
	} {
		if got := fillVariables(in); got != want {
			t.Errorf("fillVariables(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMarkdownAnchors(t *testing.T) {
	f := filepath.Join(t.TempDir(), "x.md")
	doc := "# Operations runbook\n## Rotating each secret\n```\n# not a heading\n```\n### GatehouseStoreDown\n## Restore tests: `backup verify`\n## Alerts\n## Alerts\n"
	if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := markdownAnchors(f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"operations-runbook": true, "rotating-each-secret": true, "gatehousestoredown": true,
		"restore-tests-backup-verify": true, "alerts": true, "alerts-1": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("anchors %v, want %v", got, want)
	}
}
