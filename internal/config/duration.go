package config

import (
	"fmt"

	"gopkg.in/yaml.v3"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a Go duration ("36h", "15m") and also whole days
// ("90d", "1y" as 365 days), which key and token lifetimes are usually
// written in.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "y": 365 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.Atoi(n)
			if err != nil || v < 0 || v > 100*365 {
				return 0, fmt.Errorf("invalid duration %q (examples: 90d, 36h, 15m)", s)
			}
			return time.Duration(v) * unit, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (examples: 90d, 36h, 15m)", s)
	}
	return d, nil
}

// Duration is a time.Duration that decodes from YAML with ParseDuration,
// so "180d" works as well as "36h".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}
