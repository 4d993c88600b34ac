package ratelimit_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

func TestConfigYAML(t *testing.T) {
	b, err := os.ReadFile("testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c ratelimit.Config
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := ratelimit.Config{
		Backend:        "redis",
		RedisURL:       "redis://:secret@127.0.0.1:6379/2",
		OnRedisFailure: "deny",
		Default:        ratelimit.Limit{Requests: 600, Per: time.Minute},
		Tiers: map[string]ratelimit.Limit{
			"free":    {Requests: 60, Per: time.Minute},
			"partner": {Requests: 10000, Per: time.Hour},
		},
	}
	if got, _ := json.Marshal(c); string(got) != mustJSON(t, want) {
		t.Fatalf("decoded\n%s\nwant\n%s", got, mustJSON(t, want))
	}
	if name, l := c.LimitFor("partner"); name != "partner" || l.Per != time.Hour {
		t.Errorf("LimitFor(partner) = %s, %v", name, l)
	}
	if name, l := c.LimitFor("nope"); name != "default" || l.Requests != 600 {
		t.Errorf("LimitFor(nope) = %s, %v", name, l)
	}
	// Round trip through YAML keeps per as a duration string.
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "per: 1h0m0s") {
		t.Errorf("marshalled YAML lacks a duration string:\n%s", out)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLimitYAMLErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"number per", "{requests: 5, per: 60}", `"60" is not a duration`},
		{"bad per", "{requests: 5, per: soon}", `"soon" is not a duration`},
		{"unknown field", "{requests: 5, per: 1m, burst: 3}", `unknown limit field "burst"`},
		{"scalar", "600", "a limit is a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l ratelimit.Limit
			err := yaml.Unmarshal([]byte(tc.in), &l)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLimitJSON(t *testing.T) {
	var l ratelimit.Limit
	if err := json.Unmarshal([]byte(`{"requests":60,"per":"1m"}`), &l); err != nil || l != (ratelimit.Limit{Requests: 60, Per: time.Minute}) {
		t.Fatalf("got %v, %v", l, err)
	}
	if b, _ := json.Marshal(l); string(b) != `{"requests":60,"per":"1m0s"}` {
		t.Fatalf("marshal: %s", b)
	}
}

// TestLimitJSONErrors: a limit sent as JSON (Settings → Authentication's
// sign-in limits over the admin API) is refused unless it is exactly
// {"requests", "per"}, with an error naming what is wrong and no Go type
// name.
func TestLimitJSONErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"unknown field", `{"requests":60,"per":"1m","burst":5}`, `unknown limit field "burst" (want requests, per)`},
		{"misspelt field", `{"request":60,"per":"1m"}`, `unknown limit field "request"`},
		{"array", `[60,"1m"]`, `a limit is an object like {"requests": 600, "per": "1m"}`},
		{"number", `60`, `a limit is an object`},
		{"requests a string", `{"requests":"60","per":"1m"}`, `requests: must be a whole number, not "60"`},
		{"requests a fraction", `{"requests":1.5,"per":"1m"}`, `requests: must be a whole number, not 1.5`},
		{"per a number", `{"requests":60,"per":60}`, `per: must be a duration string such as "1m", not 60`},
		{"per not a duration", `{"requests":60,"per":"a minute"}`, `per: "a minute" is not a duration like 1m or 1h`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l ratelimit.Limit
			err := json.Unmarshal([]byte(tc.in), &l)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "limitDoc") || strings.Contains(err.Error(), "Go ") {
				t.Errorf("error names a Go type: %v", err)
			}
		})
	}
	// Through a strict decoder, as the admin API decodes bodies.
	var s struct {
		Limit ratelimit.Limit `json:"limit"`
	}
	dec := json.NewDecoder(strings.NewReader(`{"limit":{"requests":1,"per":"1s","extra":true}}`))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err == nil || !strings.Contains(err.Error(), `"extra"`) {
		t.Errorf("strict decode: err = %v, want the unknown field named", err)
	}
	if err := json.Unmarshal([]byte(`null`), &s.Limit); err != nil {
		t.Errorf("null: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	lim := func(n int, per time.Duration) ratelimit.Limit { return ratelimit.Limit{Requests: n, Per: per} }
	for _, tc := range []struct {
		name string
		c    ratelimit.Config
		want []string // substrings; none means valid
	}{
		{"zero is valid", ratelimit.Config{}, nil},
		{"redis", ratelimit.Config{Backend: "redis", RedisURL: "rediss://u:p@h:6380/1"}, nil},
		{"unknown backend", ratelimit.Config{Backend: "memcached"}, []string{`ratelimit.backend: must be "memory" or "redis", got "memcached"`}},
		{"redis without url", ratelimit.Config{Backend: "redis"}, []string{"ratelimit.redis_url: required when backend is redis"}},
		{"url without redis", ratelimit.Config{RedisURL: "redis://h"}, []string{"ratelimit.redis_url: set but backend is"}},
		{"bad scheme", ratelimit.Config{Backend: "redis", RedisURL: "http://h"}, []string{`scheme must be redis, rediss or unix, got "http"`}},
		{"bad url keeps password out", ratelimit.Config{Backend: "redis", RedisURL: "redis://u:hunter2@h:port/"}, []string{"ratelimit.redis_url: not a URL"}},
		{"failure mode", ratelimit.Config{OnRedisFailure: "open"}, []string{`ratelimit.on_redis_failure: must be "local" or "deny", got "open"`}},
		{"default zero requests", ratelimit.Config{Default: lim(0, time.Minute)}, []string{"ratelimit.default: requests must be at least 1"}},
		{"sub-second window", ratelimit.Config{Default: lim(5, 500*time.Millisecond)}, []string{"ratelimit.default: per must be at least 1s"}},
		{"fractional window", ratelimit.Config{Tiers: map[string]ratelimit.Limit{"free": lim(5, 1500*time.Millisecond)}}, []string{"ratelimit.tiers.free: per must be a whole number of seconds"}},
		{"reserved tier", ratelimit.Config{Tiers: map[string]ratelimit.Limit{"default": lim(5, time.Minute)}}, []string{`ratelimit.tiers.default: the name "default" is reserved`}},
		{"bad tier name", ratelimit.Config{Tiers: map[string]ratelimit.Limit{"Gold Plan": lim(5, time.Minute)}}, []string{`ratelimit.tiers."Gold Plan": tier names are`}},
		{"all problems at once", ratelimit.Config{Backend: "x", OnRedisFailure: "y", Default: lim(-1, time.Minute)}, []string{"ratelimit.backend", "ratelimit.on_redis_failure", "ratelimit.default"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the Redis password: %v", err)
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	c := ratelimit.Config{}.WithDefaults()
	if c.Backend != "memory" || c.OnRedisFailure != "local" || c.Default != ratelimit.DefaultLimit {
		t.Fatalf("defaults: %+v", c)
	}
}

// FuzzConfigYAML: decoding and validating arbitrary YAML never panics, and
// a config that validates has limits the backends accept.
func FuzzConfigYAML(f *testing.F) {
	if b, err := os.ReadFile("testdata/config.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("default: {requests: 1, per: 1s}"))
	f.Add([]byte("tiers: {x: {requests: 5, per: 90m}}"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var c ratelimit.Config
		if yaml.Unmarshal(in, &c) != nil || c.Validate() != nil {
			return
		}
		c = c.WithDefaults()
		if err := c.Default.Validate(); err != nil {
			t.Fatalf("valid config has invalid default: %v", err)
		}
		for name, l := range c.Tiers {
			if err := l.Validate(); err != nil {
				t.Fatalf("valid config has invalid tier %s: %v", name, err)
			}
		}
	})
}
