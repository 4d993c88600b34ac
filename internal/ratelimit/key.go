package ratelimit

import "github.com/gatehouse/gatehouse"

// Key returns the counter key for a request: the principal's kind and id,
// or the client IP for anonymous callers (nil p), so an API key and a user
// with the same id never share a quota. Prefix it with the policy name
// when one principal is limited under several policies.
func Key(p *gatehouse.Principal, clientIP string) string {
	if p == nil || p.Kind == gatehouse.KindAnonymous || p.ID == "" {
		return "ip:" + clientIP
	}
	return string(p.Kind) + ":" + p.ID
}
