package gateway

import (
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// methodOverrideHeaders are the headers frameworks (Rails, Express's
// method-override, ASP.NET, Symfony, Laravel, Spring's
// HiddenHttpMethodFilter behind a proxy) read to turn a POST into another
// method. Canonical forms; scrubbedHeaders also removes their '_' spellings.
var methodOverrideHeaders = [...]string{"X-Http-Method-Override", "X-Method-Override", "X-Http-Method"}

// isMethodOverride reports whether header name k is one of
// methodOverrideHeaders in any case, with '_' read as '-'.
func isMethodOverride(k string) bool {
	return foldEqual(k, "x-http-method-override") || foldEqual(k, "x-method-override") || foldEqual(k, "x-http-method")
}

// overridableMethods are the methods an override may name.
var overridableMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPut: true, http.MethodPatch: true,
	http.MethodDelete: true, http.MethodOptions: true,
}

// methodOverride gives a method-override header one reading. On a route
// without method_override the headers never reach the upstream (the proxy
// removes them), so the upstream serves the method Gatehouse authorized.
// On a route with it, Gatehouse applies the override itself: a POST with
// one override value naming a known method is routed, rate-limited,
// authorized, audited and forwarded as that method, without the header.
// Conflicting, repeated or unknown values, or an override on another
// method, are refused.
func (g *Gateway) methodOverride(next Handler) Handler {
	return HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ex := exchangeFrom(r.Context())
		if !ex.route.MethodOverride {
			return next.ServeHTTP(w, r)
		}
		want := ""
		for _, name := range methodOverrideHeaders {
			for _, v := range r.Header[name] {
				if want != "" && v != want {
					return gatehouse.Errorf(gatehouse.EINVALID, "conflicting method-override headers")
				}
				want = v
			}
		}
		if want == "" {
			return next.ServeHTTP(w, r)
		}
		if r.Method != http.MethodPost {
			return gatehouse.Errorf(gatehouse.EINVALID, "a method override is accepted only on POST, not %s", r.Method)
		}
		if !overridableMethods[want] {
			return gatehouse.Errorf(gatehouse.EINVALID, "method override %q is not one of GET, HEAD, PUT, PATCH, DELETE, OPTIONS (upper case)", want)
		}
		// The overridden method picks the route, as it would upstream.
		rt, grp := g.router.match(r.URL.Path, want)
		switch {
		case rt == nil && grp != nil:
			w.Header().Set("Allow", grp.allow)
			return gatehouse.Errorf(gatehouse.EMETHOD, "method %s (from the method override) is not allowed on %s; allowed: %s", want, grp.prefix, grp.allow)
		case rt == nil:
			return gatehouse.Errorf(gatehouse.ENOTFOUND, "no route for %s %s", want, r.URL.Path)
		case !rt.MethodOverride:
			return gatehouse.Errorf(gatehouse.EINVALID, "route %s, which serves %s %s, does not take method overrides; send the method itself", rt.Name, want, r.URL.Path)
		}
		ex.route = rt
		r.Method = want
		for _, name := range methodOverrideHeaders {
			delete(r.Header, name)
		}
		return next.ServeHTTP(w, r)
	})
}

// upstreamFingerprintHeaders name the upstream's software and version; they
// are dropped from responses unless the route keeps them.
var upstreamFingerprintHeaders = [...]string{"Server", "X-Powered-By", "X-Aspnet-Version", "X-Aspnetmvc-Version"}

// upgradeStep refuses (400) a request that asks to switch protocols,
// unless its route has websocket: true and it is a WebSocket handshake
// (GET, Upgrade: websocket, Connection naming upgrade). After a 101 the
// connection is a tunnel to the upstream: whatever the client sends
// through it is not routed, authorized or audited, so only routes that
// opted in may open one, and only to WebSocket. h2c is never tunnelled:
// its "upgrade" would carry HTTP/2 requests past every check.
func (g *Gateway) upgradeStep(next Handler) Handler {
	return HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		up, ok := r.Header["Upgrade"]
		if !ok {
			return next.ServeHTTP(w, r)
		}
		rt := exchangeFrom(r.Context()).route
		if !rt.WebSocket {
			return gatehouse.Errorf(gatehouse.EINVALID, "route %s does not take protocol upgrades (Upgrade header); a route opts in to WebSocket with websocket: true", rt.Name)
		}
		if len(up) != 1 || !strings.EqualFold(strings.TrimSpace(up[0]), "websocket") || r.Method != http.MethodGet || !hasToken(r.Header["Connection"], "upgrade") {
			return gatehouse.Errorf(gatehouse.EINVALID, "route %s accepts only a WebSocket upgrade: GET with Upgrade: websocket and Connection: Upgrade", rt.Name)
		}
		return next.ServeHTTP(w, r)
	})
}

// hasToken reports whether a comma-separated header (all its lines) lists
// token, compared without case.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
