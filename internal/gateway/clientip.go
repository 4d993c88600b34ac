package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// trustedProxies is the set of networks whose X-Forwarded-For the gateway
// believes (Config.TrustedProxies). Its zero value trusts no one.
type trustedProxies []netip.Prefix

func newTrustedProxies(ps []netip.Prefix) trustedProxies {
	if len(ps) == 0 {
		return nil
	}
	t := make(trustedProxies, len(ps))
	for i, p := range ps {
		t[i] = p.Masked()
	}
	return t
}

// contains reports whether a is in one of the networks; IPv4-mapped IPv6
// addresses are read as IPv4.
func (t trustedProxies) contains(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// maxForwardedHops bounds how far X-Forwarded-For is walked.
const maxForwardedHops = 32

// resolve finds the client address of r and, when the TCP peer is a
// trusted proxy, the X-Forwarded-For to pass upstream: the verified hops
// from the client to the peer ("" otherwise). Without trusted proxies, or when
// the TCP peer is not one, it is the peer and nothing the request carries
// is read (and nothing is allocated). From a trusted peer, X-Forwarded-For
// (every field line, in order) is read right to left, skipping trusted
// addresses, up to the first untrusted one, which is the client. A
// malformed entry ends the walk: the client is then the nearest hop that
// was verified. When every hop is trusted the leftmost is the client.
func (t trustedProxies) resolve(r *http.Request) (client, forwardedFor string) {
	peer := sourceIP(r)
	if len(t) == 0 {
		return peer, ""
	}
	pa, err := netip.ParseAddr(peer)
	if err != nil || !t.contains(pa) {
		return peer, ""
	}
	pa = pa.Unmap().WithZone("")
	hops := make([]netip.Addr, 1, 4)
	hops[0] = pa // right to left: hops[0] is the peer
	lines := r.Header["X-Forwarded-For"]
walk:
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		for len(line) > 0 {
			entry := line
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				entry, line = line[j+1:], line[:j]
			} else {
				line = ""
			}
			a, ok := parseForwardedAddr(entry)
			if !ok || len(hops) > maxForwardedHops {
				break walk
			}
			hops = append(hops, a)
			if !t.contains(a) {
				break walk
			}
		}
	}
	// One allocation: the chain, of which the client is the first entry.
	var b strings.Builder
	b.Grow(len(hops) * 18)
	var tmp [64]byte
	clientLen := 0
	for i := len(hops) - 1; i >= 0; i-- {
		b.Write(hops[i].AppendTo(tmp[:0]))
		if i == len(hops)-1 {
			clientLen = b.Len()
		}
		if i > 0 {
			b.WriteString(", ")
		}
	}
	chain := b.String()
	return chain[:clientLen], chain
}

// parseForwardedAddr reads one X-Forwarded-For entry: an IP address,
// optionally with a port ("192.0.2.1:443", "[2001:db8::1]:443") or in
// brackets, surrounded by optional whitespace. Zones, names, "unknown"
// and obfuscated identifiers are refused.
func parseForwardedAddr(s string) (netip.Addr, bool) {
	s = strings.Trim(s, " \t")
	if s == "" {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		if s[0] == '[' && s[len(s)-1] == ']' {
			a, err = netip.ParseAddr(s[1 : len(s)-1])
		} else {
			var ap netip.AddrPort
			ap, err = netip.ParseAddrPort(s)
			a = ap.Addr()
		}
		if err != nil {
			return netip.Addr{}, false
		}
	}
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// sourceIP is the TCP peer's address without its port.
func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// scrubbedHeaders returns the outbound headers h without, in one pass
// before a request is proxied, what a caller must not pass upstream: its
// credential (Authorization, X-API-Key), any X-Gatehouse-* header (which
// only Gatehouse sets), method-override headers (see methodOverride),
// HTTP2-Settings (h2c is never tunnelled, see upgradeStep), and every
// header in which a client could claim an address or a different target:
// Forwarded, X-Forwarded-*, X-Real-IP, True-Client-IP and the other
// client-address headers CDNs use, and X-Original-* / X-Rewrite-URL /
// X-Envoy-Original-Path (which some frameworks read as the request path).
// Names are compared with '_' read as '-'. The gateway then sets its own
// X-Forwarded-For, -Host, -Proto and X-Real-IP (setForwarded) and a few
// more: the map returned has room for extra of them without growing.
// The values are h's, not copied.
func scrubbedHeaders(h http.Header, extra int) http.Header {
	out := make(http.Header, len(h)+extra)
	for k, v := range h {
		if !scrubbed(k) {
			out[k] = v
		}
	}
	return out
}

// scrubbed tells whether scrubbedHeaders leaves the header named k out.
func scrubbed(k string) bool {
	if len(k) < 9 {
		return false
	}
	switch foldByte(k[0]) {
	case 'x':
		return hasFoldPrefix(k, "x-forwarded-") || hasFoldPrefix(k, "x-original-") || foldEqual(k, "x-real-ip") ||
			foldEqual(k, "x-client-ip") || foldEqual(k, "x-cluster-client-ip") || foldEqual(k, "x-rewrite-url") ||
			foldEqual(k, "x-envoy-original-path") || foldEqual(k, "x-envoy-external-address") ||
			hasFoldPrefix(k, "x-gatehouse-") || foldEqual(k, "x-api-key") || isMethodOverride(k)
	case 'a':
		return foldEqual(k, "authorization")
	case 'h':
		return foldEqual(k, "http2-settings")
	case 'f':
		return foldEqual(k, "forwarded") || foldEqual(k, "fastly-client-ip")
	case 't':
		return foldEqual(k, "true-client-ip")
	case 'c':
		return foldEqual(k, "cf-connecting-ip")
	}
	return false
}

// setForwarded sets the forwarding headers the upstream sees, after
// scrubbedHeaders: X-Forwarded-For is the TCP peer, or from a trusted proxy
// the verified chain from the client; X-Forwarded-Host and -Proto are the
// gateway's own view unless a trusted proxy sent exactly one plausible
// value; X-Real-IP is the resolved client.
func setForwarded(out http.Header, in *http.Request, ex *exchange) {
	if ex.forwardedFor == "" {
		// X-Forwarded-For is the peer, which is the client: share the
		// value rather than allocate another.
		if v := out["X-Forwarded-For"]; len(v) > 0 {
			out["X-Real-Ip"] = v
		}
		return
	}
	out["X-Forwarded-For"] = []string{ex.forwardedFor}
	out["X-Real-Ip"] = []string{ex.sourceIP}
	if v := in.Header["X-Forwarded-Proto"]; len(v) == 1 && (v[0] == "https" || v[0] == "http") {
		out["X-Forwarded-Proto"] = v
	}
	if v := in.Header["X-Forwarded-Host"]; len(v) == 1 && validHost(v[0]) {
		out["X-Forwarded-Host"] = v
	}
}

// validHost accepts a host or host:port without anything that could end
// or change a URL authority.
func validHost(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("/\\?#@,;\"'<>", c) >= 0 {
			return false
		}
	}
	return true
}
