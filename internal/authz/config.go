package authz

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// DefaultPollInterval is how often a bundle URL is polled when Config does
// not say.
const DefaultPollInterval = time.Minute

// Config selects where the policy comes from. The zero value means the
// embedded default policy (package policy). Dir and Bundle are exclusive.
type Config struct {
	// Dir is a directory of .rego (and data .json/.yaml) files, loaded like
	// an unpacked OPA bundle.
	Dir string `yaml:"dir" json:"dir,omitempty"`
	// Bundle is an OPA bundle tarball (.tar.gz): a file path, or an http://
	// or https:// URL polled with If-None-Match.
	Bundle string `yaml:"bundle" json:"bundle,omitempty"`
	// PollInterval is how often Run re-reads the source. Zero means
	// DefaultPollInterval for a bundle URL and no polling for a directory or
	// a bundle file (Reload still re-reads them on demand).
	PollInterval time.Duration `yaml:"poll_interval" json:"poll_interval,omitempty"`
}

// Validate reports the first problem with c. It has no side effects: it does
// not touch the file system or the network.
func (c Config) Validate() error {
	if c.Dir != "" && c.Bundle != "" {
		return errors.New("policy: set either dir or bundle, not both")
	}
	if c.PollInterval < 0 {
		return fmt.Errorf("policy.poll_interval: must not be negative, got %s", c.PollInterval)
	}
	if c.PollInterval > 0 && c.PollInterval < time.Second {
		return fmt.Errorf("policy.poll_interval: must be at least 1s, got %s", c.PollInterval)
	}
	if c.Bundle != "" && isURL(c.Bundle) {
		u, err := url.Parse(c.Bundle)
		if err != nil {
			return fmt.Errorf("policy.bundle: %w", err)
		}
		if u.Host == "" {
			return fmt.Errorf("policy.bundle: URL %q has no host", c.Bundle)
		}
	}
	return nil
}

// Source describes c's policy source for logs and audit events:
// "embedded:default", "dir:PATH", "bundle:PATH" or the bundle URL.
func (c Config) Source() string {
	switch {
	case c.Dir != "":
		return "dir:" + c.Dir
	case c.Bundle != "" && isURL(c.Bundle):
		return c.Bundle
	case c.Bundle != "":
		return "bundle:" + c.Bundle
	}
	return "embedded:default"
}

// pollInterval is the effective interval, zero for none.
func (c Config) pollInterval() time.Duration {
	if c.PollInterval > 0 {
		return c.PollInterval
	}
	if c.Bundle != "" && isURL(c.Bundle) {
		return DefaultPollInterval
	}
	return 0
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}
