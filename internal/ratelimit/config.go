package ratelimit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Backend names and failure modes accepted in Config.
const (
	BackendMemory = "memory"
	BackendRedis  = "redis"

	// OnFailureLocal keeps serving with per-instance (memory) limits while
	// Redis is unreachable. It is the default.
	OnFailureLocal = "local"
	// OnFailureDeny refuses every request while Redis is unreachable.
	OnFailureDeny = "deny"

	// DefaultPolicyName names the default limit in RateLimit headers.
	DefaultPolicyName = "default"
)

// DefaultLimit is the limit used when Config.Default is zero.
var DefaultLimit = Limit{Requests: 600, Per: time.Minute}

var tierName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// Config is the `ratelimit:` section of the gateway config:
//
//	ratelimit:
//	  backend: redis                   # memory (default) | redis
//	  redis_url: redis://127.0.0.1:6379/0
//	  on_redis_failure: local          # local (default) | deny
//	  default: {requests: 600, per: 1m}
//	  tiers: {free: {requests: 60, per: 1m}}
//
// Zero fields take the defaults shown; see WithDefaults.
type Config struct {
	Backend  string `yaml:"backend" json:"backend"`
	RedisURL string `yaml:"redis_url,omitempty" json:"redis_url,omitempty"`
	// RedisPasswordSecret names the secret (config secrets section) that
	// holds the Redis password, set into RedisURL when serve starts.
	RedisPasswordSecret string           `yaml:"redis_password_secret,omitempty" json:"-"`
	OnRedisFailure      string           `yaml:"on_redis_failure,omitempty" json:"on_redis_failure,omitempty"`
	Default             Limit            `yaml:"default" json:"default"`
	Tiers               map[string]Limit `yaml:"tiers,omitempty" json:"tiers,omitempty"`
	// MaxKeys bounds the keys the memory backend (and the local fallback)
	// tracks; 0 means about a million (some 300 MB at worst).
	MaxKeys int `yaml:"max_keys,omitempty" json:"max_keys,omitempty"`
}

// WithDefaults returns c with empty fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Backend == "" {
		c.Backend = BackendMemory
	}
	if c.OnRedisFailure == "" {
		c.OnRedisFailure = OnFailureLocal
	}
	if c.Default == (Limit{}) {
		c.Default = DefaultLimit
	}
	return c
}

// Validate reports every problem in c, one per line, each naming the
// setting (for example "ratelimit.tiers.free.per: ..."). Empty fields are
// valid: they take defaults. Validate has no side effects.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("ratelimit.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	switch c.Backend {
	case "", BackendMemory:
		if c.RedisURL != "" {
			bad("redis_url", "set but backend is %q; set backend: redis to use it", BackendMemory)
		}
	case BackendRedis:
		if c.RedisURL == "" {
			bad("redis_url", "required when backend is redis (for example redis://127.0.0.1:6379/0)")
		} else if u, err := url.Parse(c.RedisURL); err != nil {
			bad("redis_url", "not a URL: %v", redactURLError(err))
		} else if u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix" {
			bad("redis_url", "scheme must be redis, rediss or unix, got %q", u.Scheme)
		}
	default:
		bad("backend", "must be %q or %q, got %q", BackendMemory, BackendRedis, c.Backend)
	}
	switch c.OnRedisFailure {
	case "", OnFailureLocal, OnFailureDeny:
	default:
		bad("on_redis_failure", "must be %q or %q, got %q", OnFailureLocal, OnFailureDeny, c.OnRedisFailure)
	}
	if c.Default != (Limit{}) {
		if err := c.Default.Validate(); err != nil {
			bad("default", "%s", limitProblem(err))
		}
	}
	names := make([]string, 0, len(c.Tiers))
	for name := range c.Tiers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		switch {
		case name == DefaultPolicyName:
			bad("tiers."+name, "the name %q is reserved for the default limit", DefaultPolicyName)
		case !tierName.MatchString(name):
			bad("tiers."+strconv.Quote(name), "tier names are 1-64 of a-z 0-9 _ . - starting with a letter or digit")
		default:
			if err := c.Tiers[name].Validate(); err != nil {
				bad("tiers."+name, "%s", limitProblem(err))
			}
		}
	}
	if c.MaxKeys < 0 {
		bad("max_keys", "must not be negative")
	}
	return errors.Join(errs...)
}

// LimitFor returns the policy name and limit for a principal's tier: the
// tier's own when configured, otherwise the default. c should have defaults
// applied.
func (c Config) LimitFor(tier string) (string, Limit) {
	if l, ok := c.Tiers[tier]; ok && tier != "" {
		return tier, l
	}
	return DefaultPolicyName, c.Default
}

// limitProblem strips the ErrInvalidLimit prefix for config messages.
func limitProblem(err error) string {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		for _, e := range j.Unwrap() {
			if !errors.Is(e, ErrInvalidLimit) {
				return e.Error()
			}
		}
	}
	return err.Error()
}

// redactURLError drops the URL (which may hold a password) from a parse
// error.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// String formats l as "600/1m0s".
func (l Limit) String() string { return strconv.Itoa(l.Requests) + "/" + l.Per.String() }

// limitDoc is the serialised form of a Limit: per is a Go duration string.
type limitDoc struct {
	Requests int    `yaml:"requests" json:"requests"`
	Per      string `yaml:"per" json:"per"`
}

// UnmarshalYAML decodes {requests: 600, per: 1m}; per must be a Go
// duration string ("1m", "1h30m"), and unknown fields are rejected.
func (l *Limit) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a limit is a mapping like {requests: 600, per: 1m}", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k := n.Content[i].Value; k {
		case "requests", "per":
		default:
			return fmt.Errorf("line %d: unknown limit field %q (want requests, per)", n.Content[i].Line, k)
		}
	}
	var d limitDoc
	if err := n.Decode(&d); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return l.fromDoc(d, n.Line)
}

// MarshalYAML encodes l with per as a duration string.
func (l Limit) MarshalYAML() (any, error) {
	return limitDoc{Requests: l.Requests, Per: l.Per.String()}, nil
}

// UnmarshalJSON decodes {"requests": 600, "per": "1m"}. Like
// UnmarshalYAML it refuses anything else: a value that is not an object,
// an unknown field (named in the error), a field of the wrong type.
func (l *Limit) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		return nil // as encoding/json leaves a value alone for null
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return errors.New(`a limit is an object like {"requests": 600, "per": "1m"}`)
	}
	unknown := make([]string, 0, len(fields))
	for k := range fields {
		if k != "requests" && k != "per" {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("unknown limit field %q (want requests, per)", unknown[0])
	}
	var d limitDoc
	if raw, ok := fields["requests"]; ok {
		if err := json.Unmarshal(raw, &d.Requests); err != nil {
			return fmt.Errorf("requests: must be a whole number, not %s", raw)
		}
	}
	if raw, ok := fields["per"]; ok {
		if err := json.Unmarshal(raw, &d.Per); err != nil {
			return fmt.Errorf(`per: must be a duration string such as "1m", not %s`, raw)
		}
	}
	return l.fromDoc(d, 0)
}

// MarshalJSON encodes l with per as a duration string.
func (l Limit) MarshalJSON() ([]byte, error) {
	return json.Marshal(limitDoc{Requests: l.Requests, Per: l.Per.String()})
}

func (l *Limit) fromDoc(d limitDoc, line int) error {
	var per time.Duration
	if d.Per != "" {
		var err error
		if per, err = time.ParseDuration(d.Per); err != nil {
			if line > 0 {
				return fmt.Errorf("line %d: per: %q is not a duration like 1m or 1h", line, d.Per)
			}
			return fmt.Errorf("per: %q is not a duration like 1m or 1h", d.Per)
		}
	}
	*l = Limit{Requests: d.Requests, Per: per}
	return nil
}
