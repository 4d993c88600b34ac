package ratelimit_test

import (
	"net/netip"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

func TestSourceKey(t *testing.T) {
	for _, tc := range []struct {
		name, ip string
		bits     int
		want     string
		ok       bool // SourcePrefix parses it
	}{
		{"v4", "192.0.2.1", 64, "192.0.2.1", true},
		{"v4 ignores the v6 prefix", "192.0.2.1", 48, "192.0.2.1", true},
		{"v4-mapped v6 is v4", "::ffff:192.0.2.1", 64, "192.0.2.1", true},
		{"v4-mapped v6 hex form", "::ffff:c000:201", 64, "192.0.2.1", true},
		{"v6 full", "2001:0db8:0001:0002:0003:0004:0005:0006", 64, "2001:db8:1:2::/64", true},
		{"v6 compressed", "2001:db8:1:2::1", 64, "2001:db8:1:2::/64", true},
		{"v6 last of the /64", "2001:db8:1:2:ffff:ffff:ffff:ffff", 64, "2001:db8:1:2::/64", true},
		{"v6 next /64", "2001:db8:1:3::1", 64, "2001:db8:1:3::/64", true},
		{"v6 upper case", "2001:DB8:1:2::AB", 64, "2001:db8:1:2::/64", true},
		{"v6 zone dropped", "fe80::1%eth0", 64, "fe80::/64", true},
		{"v6 /48", "2001:db8:1:2::1", 48, "2001:db8:1::/48", true},
		{"v6 /56", "2001:db8:1:2ff::1", 56, "2001:db8:1:200::/56", true},
		{"v6 /128 is the address", "2001:db8::1", 128, "2001:db8::1/128", true},
		{"v6 prefix 0 is the default", "2001:db8:1:2::1", 0, "2001:db8:1:2::/64", true},
		{"v6 prefix out of range is the default", "2001:db8:1:2::1", 129, "2001:db8:1:2::/64", true},
		{"v6 negative prefix is the default", "2001:db8:1:2::1", -1, "2001:db8:1:2::/64", true},
		{"v6 loopback", "::1", 64, "::/64", true},
		{"empty", "", 64, "", false},
		{"host:port", "192.0.2.1:443", 64, "192.0.2.1:443", false},
		{"bracketed", "[2001:db8::1]", 64, "[2001:db8::1]", false},
		{"v4 with leading zero", "192.0.2.01", 64, "192.0.2.01", false},
		{"v6 prefix notation", "2001:db8::/64", 64, "2001:db8::/64", false},
		{"name", "unknown", 64, "unknown", false},
		{"v6 too many groups", "1:2:3:4:5:6:7:8:9", 64, "1:2:3:4:5:6:7:8:9", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ratelimit.SourceKey(tc.ip, tc.bits); got != tc.want {
				t.Errorf("SourceKey(%q, %d) = %q, want %q", tc.ip, tc.bits, got, tc.want)
			}
			p, ok := ratelimit.SourcePrefix(tc.ip, tc.bits)
			if ok != tc.ok {
				t.Fatalf("SourcePrefix(%q) ok = %v, want %v", tc.ip, ok, tc.ok)
			}
			if ok && (p != p.Masked() || p.Addr().Zone() != "" || p.Addr().Is4In6()) {
				t.Errorf("SourcePrefix(%q) = %v: not a masked, zoneless, unmapped network", tc.ip, p)
			}
		})
	}
}

// TestSourcePrefixGroups: every address of one network has one key, and
// the neighbouring network another.
func TestSourcePrefixGroups(t *testing.T) {
	base := netip.MustParseAddr("2001:db8:1:2::")
	first, _ := ratelimit.SourcePrefix(base.String(), 64)
	b := base.As16()
	for i := range 8 {
		b[8+i] = 0xff
		a := netip.AddrFrom16(b)
		if p, _ := ratelimit.SourcePrefix(a.String(), 64); p != first {
			t.Errorf("%v is under %v, want %v", a, p, first)
		}
	}
	if p, _ := ratelimit.SourcePrefix("2001:db8:1:3::", 64); p == first {
		t.Errorf("the next /64 shares the key %v", p)
	}
}

func TestSourceKeyAllocations(t *testing.T) {
	for _, ip := range []string{"192.0.2.1", "2001:db8:1:2::1"} {
		if n := testing.AllocsPerRun(100, func() { ratelimit.SourcePrefix(ip, 64) }); n != 0 {
			t.Errorf("SourcePrefix(%q) allocates %v times", ip, n)
		}
		if n := testing.AllocsPerRun(100, func() { _ = ratelimit.Key(nil, ip, 64) }); n > 1 {
			t.Errorf("Key(nil, %q) allocates %v times, want at most the key", ip, n)
		}
	}
	p := &gatehouse.Principal{ID: "k_1", Kind: gatehouse.KindAPIKey}
	if n := testing.AllocsPerRun(100, func() { _ = ratelimit.Key(p, "2001:db8::1", 64) }); n > 1 {
		t.Errorf("Key(principal) allocates %v times", n)
	}
}

func BenchmarkKey(b *testing.B) {
	p := &gatehouse.Principal{ID: "k_1", Kind: gatehouse.KindAPIKey}
	for _, bc := range []struct {
		name string
		p    *gatehouse.Principal
		ip   string
	}{{"anonymous-v4", nil, "203.0.113.7"}, {"anonymous-v6", nil, "2001:db8:1:2::1"}, {"principal", p, "2001:db8:1:2::1"}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = ratelimit.Key(bc.p, bc.ip, 64)
			}
		})
	}
}

func BenchmarkSourcePrefix(b *testing.B) {
	for _, ip := range []string{"192.0.2.44", "2001:db8:1:2::1"} {
		b.Run(ip, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ratelimit.SourcePrefix(ip, 64)
			}
		})
	}
}
