package ratelimit

import "github.com/gatehouse/gatehouse"

// Key returns the counter key for a request: the principal's kind and id,
// or for anonymous callers (nil p) the client address's source key
// (SourceKey: an IPv6 client by its first ipv6Prefix bits), so an API key
// and a user with the same id never share a quota and one IPv6 network
// cannot spread its requests over fresh addresses. Prefix it with the
// policy name when one principal is limited under several policies.
func Key(p *gatehouse.Principal, clientIP string, ipv6Prefix int) string {
	if p != nil && p.Kind != gatehouse.KindAnonymous && p.ID != "" {
		return string(p.Kind) + ":" + p.ID
	}
	// One allocation, as for the principal: "ip:" and the source key
	// are built on the stack.
	var buf [64]byte
	return string(AppendSourceKey(append(buf[:0], "ip:"...), clientIP, ipv6Prefix))
}
