package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/gatehouse/gatehouse/internal/metrics"
)

// observability checks deploy/observability against the code and the
// docs: every alert rule in alerts.yml reads only metrics and labels that
// Gatehouse exports, has a severity, a summary, a description and a
// runbook_url whose anchor is a heading of the runbook, and is fired by a
// test in alerts_test.yml; every Grafana dashboard (*.json) parses and
// queries only exported metrics and labels.
func observability(args []string, p *problems) error {
	fs := flag.NewFlagSet("observability", flag.ContinueOnError)
	runbook := fs.String("runbook", "docs/operations.md", "the runbook the alerts' runbook_url point into")
	queriesOut := fs.String("dashboard-rules", "", "write the dashboards' queries, Grafana variables filled in, as a Prometheus rule file here (for `promtool check rules`)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("observability: the deploy/observability directory expected")
	}
	dir := fs.Arg(0)
	exported, err := exportedMetrics()
	if err != nil {
		return err
	}
	anchors, err := markdownAnchors(*runbook)
	if err != nil {
		return err
	}
	alerts := checkAlertRules(filepath.Join(dir, "alerts.yml"), exported, *runbook, anchors, p)
	checkAlertTests(filepath.Join(dir, "alerts_test.yml"), alerts, p)
	dashboards, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	if len(dashboards) == 0 {
		p.add("%s: no Grafana dashboard (*.json)", dir)
	}
	var queries []string
	for _, f := range dashboards {
		queries = append(queries, checkDashboard(f, exported, p)...)
	}
	if *queriesOut != "" {
		if err := writeQueryRules(*queriesOut, queries); err != nil {
			return err
		}
	}
	fmt.Printf("%s: %d alerts, %d dashboards checked against %d exported metric families and %d runbook anchors\n",
		dir, len(alerts), len(dashboards), len(exported), len(anchors))
	return nil
}

// family is what a metric family exports: its type and label names.
type family struct {
	typ    dto.MetricType
	labels map[string]bool
}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"job", "instance"}

// exportedMetrics returns the metric families Gatehouse's /metrics
// serves, from internal/metrics itself: a Metrics with every handle used
// once and every scrape-time source set, scraped. A metric added to
// internal/metrics that only appears once used must be used here too
// before a rule or dashboard may read it. Prometheus's own `up` is added.
func exportedMetrics() (map[string]family, error) {
	m := metrics.New(metrics.Options{Version: "check"})
	r := m.Route("route")
	r.Done(http.MethodGet, http.StatusOK, time.Millisecond)
	r.Upstream(time.Millisecond)
	m.AuthnFailure(metrics.AuthnInvalid)
	m.AuthzDecision(false, time.Microsecond)
	m.RateLimited("default")
	m.BreakerState("http://upstream", metrics.BreakerClosed)
	m.AuditAppend(time.Millisecond, nil)
	m.Revocation(time.Now())
	now := time.Now()
	m.SetAudit(func() metrics.AuditState {
		return metrics.AuditState{Queued: 1, Tree: true, Entries: 1, CheckpointAt: now}
	})
	m.SetReady(func(context.Context) bool { return true })
	m.SetRateLimitBackend(func() bool { return true })
	m.SetStore(func(context.Context) error { return nil })
	m.SetSecrets(func(context.Context) map[string]time.Time { return map[string]time.Time{"api_key": now} })
	m.SetCerts(func() map[string]time.Time { return map[string]time.Time{"public": now} })
	m.SetBackups(func() metrics.BackupState { return metrics.BackupState{LastSuccess: now, LastRestoreTest: now} })

	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusOK {
		return nil, fmt.Errorf("scrape internal/metrics: %d %s", w.Code, w.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(w.Body)
	if err != nil {
		return nil, fmt.Errorf("parse the exposition of internal/metrics: %w", err)
	}
	out := map[string]family{"up": {typ: dto.MetricType_GAUGE, labels: map[string]bool{}}}
	for name, f := range fams {
		fam := family{typ: f.GetType(), labels: map[string]bool{}}
		for _, s := range f.Metric {
			for _, l := range s.Label {
				fam.labels[l.GetName()] = true
			}
		}
		out[name] = fam
	}
	return out, nil
}

// checkSelectors reports the metrics and labels expr reads that are not
// exported. where names the rule or panel.
func checkSelectors(where, expr string, exported map[string]family, p *problems) {
	for _, sel := range selectors(expr) {
		if sel.name == "" || sel.name == "(by __name__)" {
			p.add("%s: a selector without a metric name (%q): name the metric so it can be checked", where, expr)
			continue
		}
		labels, ok := seriesLabels(sel.name, exported)
		if !ok {
			p.add("%s: metric %s is not exported by Gatehouse (internal/metrics)", where, sel.name)
			continue
		}
		for _, l := range sel.labels {
			if !labels[l] {
				p.add("%s: metric %s has no label %q", where, sel.name, l)
			}
		}
	}
}

// seriesLabels returns the labels a series name can carry: a family's
// own, a histogram's _bucket (with le), _count and _sum, a summary's
// _count and _sum, and always the target labels.
func seriesLabels(name string, exported map[string]family) (map[string]bool, bool) {
	withTarget := func(f family, extra ...string) map[string]bool {
		out := map[string]bool{"__name__": true}
		for l := range f.labels {
			out[l] = true
		}
		for _, l := range append(extra, targetLabels...) {
			out[l] = true
		}
		return out
	}
	if f, ok := exported[name]; ok {
		if f.typ == dto.MetricType_SUMMARY {
			return withTarget(f, "quantile"), true
		}
		return withTarget(f), true
	}
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		f, ok := exported[base]
		switch {
		case !ok:
		case f.typ == dto.MetricType_HISTOGRAM && suffix == "_bucket":
			return withTarget(f, "le"), true
		case f.typ == dto.MetricType_HISTOGRAM || f.typ == dto.MetricType_SUMMARY:
			return withTarget(f), true
		}
	}
	return nil, false
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// severities are the values of the severity label (alerts.yml's header
// says what each means).
var severities = map[string]bool{"critical": true, "warning": true}

// checkAlertRules checks the rule file and returns its alert names.
func checkAlertRules(file string, exported map[string]family, runbook string, anchors map[string]bool, p *problems) []string {
	data, err := os.ReadFile(file)
	if err != nil {
		p.add("%v", err)
		return nil
	}
	var rf ruleFile
	if err := yaml.Unmarshal(data, &rf); err != nil {
		p.add("%s does not parse: %v", file, err)
		return nil
	}
	var names []string
	seen := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				if r.Record != "" {
					checkSelectors(file+": record "+r.Record, r.Expr, exported, p)
				}
				continue
			}
			where := file + ": " + r.Alert
			if seen[r.Alert] {
				p.add("%s: alert defined twice", where)
			}
			seen[r.Alert] = true
			names = append(names, r.Alert)
			checkSelectors(where, r.Expr, exported, p)
			if !severities[r.Labels["severity"]] {
				p.add("%s: severity label %q, want critical or warning", where, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					p.add("%s: no %s annotation", where, a)
				}
			}
			if u := r.Annotations["runbook_url"]; u != "" {
				checkRunbookURL(where, u, runbook, anchors, p)
			}
		}
	}
	if len(names) == 0 {
		p.add("%s: no alert rules", file)
	}
	return names
}

// checkRunbookURL: the link points to the runbook file and to one of its
// headings.
func checkRunbookURL(where, raw, runbook string, anchors map[string]bool, p *problems) {
	u, err := url.Parse(raw)
	if err != nil {
		p.add("%s: runbook_url %q: %v", where, raw, err)
		return
	}
	// The URL names the file in the repository (…/docs/operations.md);
	// runbook is where it is here.
	if want := filepath.Base(runbook); path.Base(u.Path) != want {
		p.add("%s: runbook_url %q does not point to %s", where, raw, want)
	}
	if u.Fragment == "" {
		p.add("%s: runbook_url %q has no #anchor", where, raw)
	} else if !anchors[u.Fragment] {
		p.add("%s: runbook_url anchor #%s is no heading of %s", where, u.Fragment, runbook)
	}
}

// markdownAnchors returns the anchors GitHub gives the headings of a
// Markdown file: lower case, spaces to hyphens, punctuation other than
// hyphens and underscores dropped, -1, -2… on repeats.
func markdownAnchors(file string) (map[string]bool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	count := map[string]int{}
	fence := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fence = !fence
			continue
		}
		if fence || !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, c := range strings.ToLower(text) {
			switch {
			case c == ' ':
				b.WriteRune('-')
			case c == '-' || c == '_' || unicode.IsLetter(c) || unicode.IsDigit(c):
				b.WriteRune(c)
			}
		}
		slug := b.String()
		if n := count[slug]; n > 0 {
			out[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			out[slug] = true
		}
		count[slug]++
	}
	return out, sc.Err()
}

type ruleTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name       string `yaml:"name"`
		AlertTests []struct {
			AlertName string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// checkAlertTests: the test file tests alerts.yml, every alert is fired
// by at least one test, and no test names an alert that does not exist.
func checkAlertTests(file string, alerts []string, p *problems) {
	data, err := os.ReadFile(file)
	if err != nil {
		p.add("%v", err)
		return
	}
	var rt ruleTests
	if err := yaml.Unmarshal(data, &rt); err != nil {
		p.add("%s does not parse: %v", file, err)
		return
	}
	if !containsString(rt.RuleFiles, "alerts.yml") {
		p.add("%s: rule_files %v does not include alerts.yml", file, rt.RuleFiles)
	}
	known := map[string]bool{}
	for _, a := range alerts {
		known[a] = true
	}
	fired := map[string]bool{}
	for _, t := range rt.Tests {
		for _, at := range t.AlertTests {
			if !known[at.AlertName] {
				p.add("%s: test %q names alert %q, which alerts.yml does not define", file, t.Name, at.AlertName)
			}
			if len(at.ExpAlerts) > 0 {
				fired[at.AlertName] = true
			}
		}
	}
	for _, a := range alerts {
		if !fired[a] {
			p.add("%s: no test fires %s", file, a)
		}
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// labelValuesQuery is Grafana's label_values(metric, label) variable query.
var labelValuesQuery = regexp.MustCompile(`^\s*label_values\(\s*(?:(.*),)?\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// checkDashboard: the file is a Grafana dashboard (title, uid, panels with
// unique ids), and every query of its panels and variables reads
// exported metrics and labels.
func checkDashboard(file string, exported map[string]family, p *problems) (queries []string) {
	data, err := os.ReadFile(file)
	if err != nil {
		p.add("%v", err)
		return nil
	}
	var d struct {
		UID        string            `json:"uid"`
		Title      string            `json:"title"`
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		p.add("%s does not parse as JSON: %v", file, err)
		return nil
	}
	base := path.Base(filepath.ToSlash(file))
	if d.UID == "" || d.Title == "" {
		p.add("%s: no uid or title", base)
	}
	type panel struct {
		ID      int               `json:"id"`
		Title   string            `json:"title"`
		Type    string            `json:"type"`
		Panels  []json.RawMessage `json:"panels"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	}
	ids := map[int]string{}
	var walk func(raw []json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var pn panel
			if err := json.Unmarshal(r, &pn); err != nil {
				p.add("%s: a panel does not parse: %v", base, err)
				continue
			}
			where := fmt.Sprintf("%s: panel %q", base, pn.Title)
			if prev, ok := ids[pn.ID]; ok {
				p.add("%s: id %d already used by panel %q", where, pn.ID, prev)
			}
			ids[pn.ID] = pn.Title
			if pn.Type != "row" && len(pn.Targets) == 0 {
				p.add("%s: no query", where)
			}
			for _, t := range pn.Targets {
				if strings.TrimSpace(t.Expr) == "" {
					p.add("%s: a target without expr", where)
					continue
				}
				checkSelectors(where, t.Expr, exported, p)
				queries = append(queries, t.Expr)
			}
			walk(pn.Panels) // a collapsed row keeps its panels inside
		}
	}
	walk(d.Panels)
	if len(ids) == 0 {
		p.add("%s: no panels", base)
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		where := fmt.Sprintf("%s: variable %s", base, v.Name)
		if mm := labelValuesQuery.FindStringSubmatch(q); mm != nil {
			if mm[1] == "" {
				p.add("%s: label_values without a metric reads every series", where)
				continue
			}
			checkSelectors(where, mm[1], exported, p)
			for _, sel := range selectors(mm[1]) {
				if labels, ok := seriesLabels(sel.name, exported); ok && !labels[mm[2]] {
					p.add("%s: metric %s has no label %q", where, sel.name, mm[2])
				}
			}
			continue
		}
		if inner, ok := strings.CutPrefix(strings.TrimSpace(q), "query_result("); ok {
			q = strings.TrimSuffix(inner, ")")
		}
		checkSelectors(where, q, exported, p)
	}
	fmt.Printf("%s: %d panels, %d queries\n", base, len(ids), len(queries))
	return queries
}

// grafanaVariable is a Grafana variable in a query: $name or ${name…}.
var grafanaVariable = regexp.MustCompile(`\$(\{[^}]*\}|\w+)`)

// fillVariables gives a dashboard query's Grafana variables values that
// PromQL parses: a duration for the interval variables, a regular
// expression matching anything for the others (they stand in label
// matchers).
func fillVariables(q string) string {
	return grafanaVariable.ReplaceAllStringFunc(q, func(v string) string {
		switch strings.Trim(v, "${}") {
		case "__rate_interval", "__interval", "__range":
			return "5m"
		}
		return ".*"
	})
}

// writeQueryRules writes queries, variables filled in, as recording rules
// of one group, so that promtool checks that they parse.
func writeQueryRules(file string, queries []string) error {
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, q := range queries {
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d", i+1), Expr: fillVariables(q)})
	}
	doc := map[string]any{"groups": []any{map[string]any{"name": "dashboard-queries", "rules": rules}}}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o644)
}
