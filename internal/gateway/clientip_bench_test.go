package gateway

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

// BenchmarkClientAddress measures resolving the client address: no
// trusted proxies, an untrusted peer with trusted proxies configured, and
// a trusted peer with a three-hop X-Forwarded-For.
func BenchmarkClientAddress(b *testing.B) {
	trusted := newTrustedProxies([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.0/24")})
	cases := []struct {
		name, peer string
		t          trustedProxies
	}{
		{"none", "198.51.100.1:1234", nil},
		{"untrusted_peer", "198.51.100.1:1234", trusted},
		{"trusted_peer", "10.0.0.1:1234", trusted},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.peer
			r.Header.Set("X-Forwarded-For", "203.0.113.9, 198.51.100.7, 10.2.3.4")
			b.ReportAllocs()
			for b.Loop() {
				c.t.resolve(r)
			}
		})
	}
}
