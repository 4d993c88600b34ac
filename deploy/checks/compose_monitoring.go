package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// mounts returns a compose service's short-syntax volumes, container path
// to source (a named volume or a path relative to the compose dir).
func mounts(svc any) map[string]string {
	out := map[string]string{}
	for _, v := range asList(get(svc, "volumes")) {
		s, ok := v.(string)
		if !ok {
			continue
		}
		parts := strings.Split(s, ":")
		if len(parts) >= 2 {
			out[parts[1]] = parts[0]
		}
	}
	return out
}

// checkLoopbackPorts: every published port of the service is bound to
// 127.0.0.1.
func checkLoopbackPorts(name string, svc any, p *problems) {
	for _, port := range asList(get(svc, "ports")) {
		if s := fmt.Sprint(port); !strings.HasPrefix(s, "127.0.0.1:") {
			p.add("compose: %s publishes %q beyond loopback", name, s)
		}
	}
}

// serviceSecrets returns the container paths at which a compose service
// mounts each secret it lists: /run/secrets/NAME, or the long syntax's
// target.
func serviceSecrets(svc any) map[string]string {
	out := map[string]string{}
	for _, x := range asList(get(svc, "secrets")) {
		switch x := x.(type) {
		case string:
			out[x] = "/run/secrets/" + x
		case obj:
			src, target := str(x, "source"), str(x, "target")
			switch {
			case target == "":
				target = "/run/secrets/" + src
			case !strings.HasPrefix(target, "/"):
				target = "/run/secrets/" + target
			}
			out[src] = target
		}
	}
	return out
}

// checkMonitoring checks the Prometheus and Grafana services of the
// compose stack: Prometheus scrapes every replica's admin listener with
// the scrape token the replicas read (one compose secret, a file) and
// loads deploy/observability/alerts.yml; Grafana is provisioned with that
// Prometheus and the dashboard of deploy/observability.
func checkMonitoring(dir string, doc obj, replicas []string, gatehouseCfg []byte, p *problems) {
	services, _ := doc["services"].(obj)
	prom, graf := services["prometheus"], services["grafana"]
	if prom == nil || graf == nil {
		p.add("compose: no prometheus or grafana service")
		return
	}
	checkLoopbackPorts("prometheus", prom, p)
	checkLoopbackPorts("grafana", graf, p)

	// What the replicas read: metrics.token_file, a compose secret.
	var cfg struct {
		Metrics struct {
			TokenFile string `yaml:"token_file"`
		} `yaml:"metrics"`
	}
	if err := yaml.Unmarshal(gatehouseCfg, &cfg); err != nil || cfg.Metrics.TokenFile == "" {
		p.add("compose: gatehouse.yaml sets no metrics.token_file: Prometheus could not scrape without the admin token")
		return
	}
	token := ""
	for _, r := range replicas {
		found := ""
		for name, target := range serviceSecrets(services[r]) {
			if target == cfg.Metrics.TokenFile {
				found = name
			}
		}
		if found == "" {
			p.add("compose: %s mounts no secret at metrics.token_file %s", r, cfg.Metrics.TokenFile)
		} else {
			token = found
		}
	}
	if token != "" {
		secret := get(doc, "secrets", token)
		file := str(secret, "file")
		switch {
		case secret == nil:
			p.add("compose: secret %s is not defined at the top level", token)
		case file == "":
			// compose copies environment and content secrets into the
			// container, which a read_only root refuses.
			p.add("compose: secret %s must be a file (the replicas' root is read-only)", token)
		default:
			ignore, _ := os.ReadFile(filepath.Join(dir, ".gitignore"))
			if !containsString(strings.Split(string(ignore), "\n"), path.Clean(file)) && !containsString(strings.Split(string(ignore), "\n"), path.Base(file)) {
				p.add("compose: the scrape token file %s is not in %s/.gitignore", file, dir)
			}
		}
	}

	// Prometheus's config.
	m := mounts(prom)
	promCfgPath := ""
	for dst, src := range m {
		if strings.HasSuffix(dst, "/prometheus.yml") && strings.Contains(fmt.Sprint(get(prom, "command")), dst) {
			promCfgPath = src
		}
	}
	alertsIn := ""
	for dst, src := range m {
		if path.Clean(src) == "../observability/alerts.yml" {
			alertsIn = dst
		}
	}
	if alertsIn == "" {
		p.add("compose: prometheus does not mount ../observability/alerts.yml")
	}
	if promCfgPath == "" {
		p.add("compose: prometheus runs with no mounted prometheus.yml (--config.file)")
		return
	}
	data, err := os.ReadFile(filepath.Join(dir, promCfgPath))
	if err != nil {
		p.add("compose: %v", err)
		return
	}
	var pc struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			Authorization struct {
				CredentialsFile string `yaml:"credentials_file"`
			} `yaml:"authorization"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(data, &pc); err != nil {
		p.add("compose: %s does not parse: %v", promCfgPath, err)
		return
	}
	if alertsIn != "" && !containsString(pc.RuleFiles, alertsIn) {
		p.add("compose: %s rule_files %v do not load %s (alerts.yml)", promCfgPath, pc.RuleFiles, alertsIn)
	}
	found := false
	for _, sc := range pc.ScrapeConfigs {
		if sc.JobName != "gatehouse" {
			continue
		}
		found = true
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			p.add("compose: %s: job gatehouse scrapes %s, not /metrics", promCfgPath, sc.MetricsPath)
		}
		var targets []string
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
		sort.Strings(targets)
		var want []string
		for _, r := range replicas {
			want = append(want, r+":8081")
		}
		if strings.Join(targets, ",") != strings.Join(want, ",") {
			p.add("compose: %s: job gatehouse targets %v, want every replica's admin listener %v", promCfgPath, targets, want)
		}
		cf := sc.Authorization.CredentialsFile
		switch {
		case cf == "":
			p.add("compose: %s: job gatehouse has no authorization.credentials_file (the scrape token)", promCfgPath)
		case token != "" && serviceSecrets(prom)[token] != cf:
			p.add("compose: %s: credentials_file %s is not where prometheus mounts secret %s (the replicas' metrics.token_file)", promCfgPath, cf, token)
		}
	}
	if !found {
		p.add("compose: %s has no scrape job named gatehouse (alerts.yml expects it)", promCfgPath)
	}

	// Grafana: data source, dashboard provider, dashboard.
	gm := mounts(graf)
	var dsFile, provFile, boardDir, boardSrc string
	for dst, src := range gm {
		switch {
		case strings.HasPrefix(dst, "/etc/grafana/provisioning/datasources/"):
			dsFile = src
		case strings.HasPrefix(dst, "/etc/grafana/provisioning/dashboards/"):
			provFile = src
		case strings.HasSuffix(src, ".json") && path.Dir(path.Clean(src)) == "../observability":
			boardDir, boardSrc = path.Dir(dst), src
		}
	}
	if dsFile == "" || provFile == "" || boardSrc == "" {
		p.add("compose: grafana mounts no data source (%q), dashboard provider (%q) or dashboard from ../observability (%q)", dsFile, provFile, boardSrc)
		return
	}
	var ds struct {
		Datasources []struct {
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	if data, err := os.ReadFile(filepath.Join(dir, dsFile)); err != nil {
		p.add("compose: %v", err)
	} else if err := yaml.Unmarshal(data, &ds); err != nil {
		p.add("compose: %s does not parse: %v", dsFile, err)
	} else if len(ds.Datasources) == 0 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		p.add("compose: %s: want a prometheus data source at http://prometheus:9090", dsFile)
	}
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if data, err := os.ReadFile(filepath.Join(dir, provFile)); err != nil {
		p.add("compose: %v", err)
	} else if err := yaml.Unmarshal(data, &prov); err != nil {
		p.add("compose: %s does not parse: %v", provFile, err)
	} else if len(prov.Providers) == 0 || path.Clean(prov.Providers[0].Options.Path) != boardDir {
		p.add("compose: %s: the provider does not read %s, where the dashboard is mounted", provFile, boardDir)
	}
	if data, err := os.ReadFile(filepath.Join(dir, boardSrc)); err != nil {
		p.add("compose: %v", err)
	} else if !json.Valid(data) {
		p.add("compose: %s is not JSON", boardSrc)
	}
	if pw := str(graf, "environment", "GF_SECURITY_ADMIN_PASSWORD"); !strings.HasPrefix(pw, "${") {
		p.add("compose: grafana's admin password is written in compose.yaml; take it from the environment")
	}
}
