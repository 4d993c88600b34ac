package config_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

// TestTrustedProxiesAndForwardAuth: trusted_proxies and forward_auth are
// validated with the field and line, and parse once into prefixes.
func TestTrustedProxiesAndForwardAuth(t *testing.T) {
	bad := []struct{ name, yaml, want string }{
		{"not an address", "trusted_proxies: [10.0.0.0/8, nginx.internal]\n", `g.yaml:1: trusted_proxies[1]: "nginx.internal" is not a CIDR`},
		{"bad cidr", "trusted_proxies:\n  - 10.0.0.0/33\n", `g.yaml:2: trusted_proxies[0]: "10.0.0.0/33" is not a CIDR`},
		{"everyone", "trusted_proxies:\n  - 10.0.0.0/8\n  - 0.0.0.0/0\n", `g.yaml:3: trusted_proxies[1]: "0.0.0.0/0" trusts every address`},
		{"everyone v6", "trusted_proxies: [\"::/0\"]\n", `trusts every address`},
		{"zone", "trusted_proxies: [\"fe80::1%eth0\"]\n", `is not a CIDR`},
		{"unknown proxy", "forward_auth:\n  proxy: haproxy\n", `g.yaml:2: forward_auth.proxy: must be nginx, traefik, caddy or envoy, not "haproxy"`},
		{"forward-auth peers", "forward_auth:\n  proxy: nginx\n  trusted_proxies: [x]\n", `g.yaml:3: forward_auth.trusted_proxies[0]: "x" is not a CIDR`},
		{"peers without proxy", "forward_auth:\n  trusted_proxies: [10.0.0.1]\n", `forward_auth.proxy: is required with forward_auth.trusted_proxies`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("g.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	c, err := config.Parse("g.yaml", []byte("trusted_proxies: [10.1.2.3/8, 192.0.2.7, \"::ffff:198.51.100.0/120\", \"2001:db8::/32\"]\nforward_auth: {proxy: envoy, trusted_proxies: [127.0.0.1]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	if got := config.ParsePrefixes(c.TrustedProxies); !slices.Equal(got, want) {
		t.Errorf("prefixes %v, want %v", got, want)
	}
	if c.ForwardAuth.Proxy != "envoy" || len(c.ForwardAuth.TrustedProxies) != 1 {
		t.Errorf("forward_auth %+v", c.ForwardAuth)
	}
}
