package gateway

import (
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

// route is a configured route compiled for serving.
type route struct {
	gatehouse.Route
	input *authz.RouteInput // the policy's view, built once
	proxy http.Handler
	// limit is the route's own rate limit (nil: none); limitPrefix makes
	// its counter keys distinct from the tier counters.
	limit       *ratelimit.Policy
	limitPrefix string
	schema      *jsonschema.Schema // request-body schema, or nil
	breaker     *breakerTransport
}

// prefixGroup is every route that shares one path prefix. The longest
// matching prefix owns a request; within it the method picks the route, and
// a method no route of the group takes is answered 405.
type prefixGroup struct {
	prefix string
	routes []*route
	allow  string // value of the Allow header for a 405
}

type router struct {
	groups []*prefixGroup // longest prefix first
}

func newRouter(routes []*route) *router {
	byPrefix := map[string]*prefixGroup{}
	rt := &router{}
	for _, r := range routes {
		g := byPrefix[r.PathPrefix]
		if g == nil {
			g = &prefixGroup{prefix: r.PathPrefix}
			byPrefix[r.PathPrefix] = g
			rt.groups = append(rt.groups, g)
		}
		g.routes = append(g.routes, r)
	}
	for _, g := range rt.groups {
		var methods []string
		any := false
		for _, r := range g.routes {
			if len(r.Methods) == 0 {
				any = true
			}
			methods = append(methods, r.Methods...)
		}
		if !any {
			if slices.Contains(methods, http.MethodGet) && !slices.Contains(methods, http.MethodHead) {
				methods = append(methods, http.MethodHead)
			}
			sort.Strings(methods)
			g.allow = strings.Join(slices.Compact(methods), ", ")
		}
	}
	sort.SliceStable(rt.groups, func(i, j int) bool { return len(rt.groups[i].prefix) > len(rt.groups[j].prefix) })
	return rt
}

// match returns the route for path and method. When a group owns the path
// but no route takes the method, it returns the group and a nil route.
func (rt *router) match(path, method string) (*route, *prefixGroup) {
	for _, g := range rt.groups {
		if !prefixMatch(g.prefix, path) {
			continue
		}
		for _, r := range g.routes {
			if methodMatch(r.Methods, method) {
				return r, g
			}
		}
		return nil, g
	}
	return nil, nil
}

// prefixMatch matches on segment boundaries: "/a/" and "/a" both match
// "/a", "/a/" and "/a/b", and neither matches "/ab".
func prefixMatch(prefix, path string) bool {
	p := strings.TrimSuffix(prefix, "/")
	if p == "" {
		return true
	}
	if !strings.HasPrefix(path, p) {
		return false
	}
	return len(path) == len(p) || path[len(p)] == '/'
}

func methodMatch(methods []string, m string) bool {
	if len(methods) == 0 {
		return true
	}
	for _, x := range methods {
		if x == m || (m == http.MethodHead && x == http.MethodGet) {
			return true
		}
	}
	return false
}
