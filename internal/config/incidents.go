package config

import (
	"net/url"
	"slices"
)

// IncidentsConfig is the incidents section.
type IncidentsConfig struct {
	// DrillTargets are the public listeners of the other replicas
	// (https://gatehouse-2:8080), which a revocation drill asks as well as
	// its own, so its figure is the time until every replica refuses the
	// revoked canary key. Only these are ever asked: an API caller cannot
	// point a drill elsewhere.
	DrillTargets []string `yaml:"drill_targets"`
}

// validateIncidents checks the incidents section.
func (c *Config) validateIncidents(p *problems) {
	for i, t := range c.Incidents.DrillTargets {
		at := item("incidents.drill_targets", i)
		u, err := url.Parse(t)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
			p.add(at, "must be a replica's public listener URL, such as https://gatehouse-2:8080, not %q", t)
		case u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
			p.add(at, "must be scheme://host:port only (the drill asks POST /v1/authorize there), not %q", t)
		case slices.Index(c.Incidents.DrillTargets, t) < i:
			p.add(at, "%q is listed twice", t)
		}
	}
}
