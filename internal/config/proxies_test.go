package config_test

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

// TestTrustedProxiesAndForwardAuth: trusted_proxies and forward_auth
// parse once into prefixes (what they refuse is in TestProblems).
func TestTrustedProxiesAndForwardAuth(t *testing.T) {
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
