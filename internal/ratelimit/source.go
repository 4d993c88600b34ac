package ratelimit

import (
	"net/netip"
	"strings"
)

// DefaultIPv6Prefix is how many leading bits of an IPv6 address a
// per-source limit keys on when none is configured: one /64 is one
// subscriber (RFC 6177: a home line is given at least a /64), so an
// attacker who holds one cannot spend a fresh address per request.
const DefaultIPv6Prefix = 64

// SourcePrefix returns the network every per-source-address limit and
// table counts ip under: an IPv4 address (or IPv4-mapped IPv6 address) as
// its /32, an IPv6 address as its first ipv6Prefix bits, zone dropped.
// An ipv6Prefix outside 1..128 is DefaultIPv6Prefix. ok is false when ip
// is not an IP address. It does not allocate.
func SourcePrefix(ip string, ipv6Prefix int) (p netip.Prefix, ok bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.Unmap().WithZone("")
	bits := 32
	if a.Is6() {
		bits = ipv6Prefix
		if bits < 1 || bits > 128 {
			bits = DefaultIPv6Prefix
		}
	}
	p, err = a.Prefix(bits)
	return p, err == nil
}

// AppendSourceKey appends the limit key of ip (SourcePrefix) to dst: the
// address alone for IPv4 ("192.0.2.1"), the network for IPv6
// ("2001:db8:1:2::/64"), ip as it is when it is not an address. An ip
// without a colon is IPv4 or not an address, kept as it is either way
// (netip reads dotted decimal only in its one canonical form), so IPv4
// costs a copy, not a parse.
func AppendSourceKey(dst []byte, ip string, ipv6Prefix int) []byte {
	if strings.IndexByte(ip, ':') < 0 {
		return append(dst, ip...)
	}
	p, ok := SourcePrefix(ip, ipv6Prefix)
	switch {
	case !ok:
		return append(dst, ip...)
	case p.Addr().Is4():
		return p.Addr().AppendTo(dst)
	}
	return p.AppendTo(dst)
}

// SourceKey is AppendSourceKey as a string.
func SourceKey(ip string, ipv6Prefix int) string {
	var buf [64]byte
	return string(AppendSourceKey(buf[:0], ip, ipv6Prefix))
}
