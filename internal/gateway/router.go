package gateway

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

// route is a configured route compiled for serving.
type route struct {
	gatehouse.Route
	input    *authz.RouteInput // the policy's view, built once
	resource string            // "route:" + Name, its audit events' resource
	proxy    http.Handler
	// limit is the route's own rate limit (nil: none); limitPrefix makes
	// its counter keys distinct from the tier counters.
	limit       *ratelimit.Policy
	limitPrefix string
	schema      *jsonschema.Schema // request-body schema, or nil
	breaker     *breakerTransport
	metrics     *metrics.Route // nil: no metrics
	// upstreamHost is the upstream's host[:port], for the upstream span.
	upstreamHost string
}

// prefixGroup is every route that shares one path prefix. The longest
// matching prefix owns a request; within it the method picks the route, and
// a method no route of the group takes is answered 405.
type prefixGroup struct {
	prefix  string
	trimmed string // prefix without its trailing slash
	routes  []*route
	allow   string // value of the Allow header for a 405
	// folds are the groups an upstream that routes case-insensitively
	// could pick for a path this group owns: the other prefixes that,
	// compared without case, extend this one. Computed once, so the
	// per-request check is a few EqualFolds, and none for most routes.
	folds []*prefixGroup
}

type router struct {
	groups []*prefixGroup // longest prefix first
}

func newRouter(routes []*route) (*router, error) {
	byPrefix := map[string]*prefixGroup{}
	rt := &router{}
	for _, r := range routes {
		g := byPrefix[r.PathPrefix]
		if g == nil {
			g = &prefixGroup{prefix: r.PathPrefix, trimmed: strings.TrimSuffix(r.PathPrefix, "/")}
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
	for _, g := range rt.groups {
		for _, h := range rt.groups {
			if h == g || !foldPrefixMatch(g.trimmed, h.trimmed) {
				continue
			}
			if strings.EqualFold(g.trimmed, h.trimmed) {
				return nil, fmt.Errorf("routes %s and %s: prefixes %q and %q differ only in case; an upstream that routes case-insensitively cannot tell them apart", g.routes[0].Name, h.routes[0].Name, g.prefix, h.prefix)
			}
			g.folds = append(g.folds, h)
		}
	}
	return rt, nil
}

// ambiguous returns an error when an upstream could route path (owned by
// group g, served by r) elsewhere: when a path that differs only in case
// would belong to another prefix (Express, ASP.NET, IIS route without
// case), or, for path parameters, when the route does not take them or the
// path without them (as Tomcat and Spring read it) belongs to another
// prefix.
func (rt *router) ambiguous(g *prefixGroup, r *route, path string) error {
	for _, h := range g.folds {
		if foldPrefixMatch(h.trimmed, path) {
			return errPath("it differs only in case from a path of route " + h.routes[0].Name)
		}
	}
	if strings.IndexByte(path, ';') < 0 {
		return nil
	}
	if !r.AllowPathParams {
		return errPath("path parameter (;) on a route that does not allow them")
	}
	bare := stripParams(path)
	if rt.group(bare) != g {
		return errPath("without its path parameters it belongs to another route")
	}
	for _, h := range g.folds {
		if foldPrefixMatch(h.trimmed, bare) {
			return errPath("without its path parameters it differs only in case from a path of route " + h.routes[0].Name)
		}
	}
	return nil
}

// group returns the group owning path, or nil.
func (rt *router) group(path string) *prefixGroup {
	for _, g := range rt.groups {
		if segmentPrefix(g.trimmed, path) {
			return g
		}
	}
	return nil
}

// stripParams removes the ";…" parameters of every segment, as Tomcat and
// Spring do before routing.
func stripParams(path string) string {
	var b strings.Builder
	for path != "" {
		seg, rest, found := strings.Cut(path, "/")
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i]
		}
		b.WriteString(seg)
		if found {
			b.WriteByte('/')
		}
		path = rest
	}
	return b.String()
}

// foldPrefixMatch is prefixMatch without case, on a trimmed prefix.
func foldPrefixMatch(trimmed, path string) bool {
	if len(path) < len(trimmed) || !strings.EqualFold(path[:len(trimmed)], trimmed) {
		return false
	}
	return len(path) == len(trimmed) || path[len(trimmed)] == '/' || trimmed == ""
}

// match returns the route for path and method. When a group owns the path
// but no route takes the method, it returns the group and a nil route.
func (rt *router) match(path, method string) (*route, *prefixGroup) {
	for _, g := range rt.groups {
		if !segmentPrefix(g.trimmed, path) {
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

// segmentPrefix matches a prefix without its trailing slash on segment
// boundaries: the prefix "/a" (of "/a/" or "/a") matches "/a", "/a/" and
// "/a/b", not "/ab".
func segmentPrefix(p, path string) bool {
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
