package gateway

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/httpjson"
)

// serveVerify is forward-auth (nginx auth_request, Traefik ForwardAuth,
// Caddy forward_auth): it runs routing, authentication and authorization
// on the forwarded method and URI and answers 200 with the principal's
// headers, or 401/403 (and 429 once limits apply). Anything that is not
// allowed — an unknown route, a method the route does not take, a path
// that could be read two ways — is 403, which every proxy passes on.
func (g *Gateway) serveVerify(w http.ResponseWriter, r *http.Request) error {
	err := g.verify.ServeHTTP(w, r)
	switch gatehouse.ErrorCode(err) {
	case gatehouse.ENOTFOUND, gatehouse.EMETHOD, gatehouse.EINVALID, gatehouse.ETOOLARGE:
		w.Header().Del("Allow")
		exchangeFrom(r.Context()).outcome = gatehouse.OutcomeDenied
		return &gatehouse.Error{Code: gatehouse.EFORBIDDEN, Message: gatehouse.ErrorMessage(err)}
	}
	return err
}

// Proxies forward-auth can sit behind (ForwardAuth.Proxy).
const (
	ProxyNginx   = "nginx"
	ProxyTraefik = "traefik"
	ProxyCaddy   = "caddy"
	ProxyEnvoy   = "envoy"
)

// ForwardAuth configures forward-auth (GET /auth/verify).
type ForwardAuth struct {
	// Proxy names the proxy in front. Only its headers say which request
	// is checked:
	//   - nginx: X-Original-Method, X-Original-URI, X-Original-Host (set
	//     with proxy_set_header in the auth_request location);
	//   - traefik, caddy: X-Forwarded-Method, X-Forwarded-Uri,
	//     X-Forwarded-Host (which both set, replacing the client's);
	//   - envoy: the request line of the ext_authz HTTP check (the method,
	//     and the path after path_prefix /auth/verify) and its Host.
	// "" refuses every forward-auth call: no header is safe to read until
	// the operator says which proxy writes them.
	Proxy string
	// TrustedProxies, if set, are the only peers whose forward-auth calls
	// are answered; others get 403.
	TrustedProxies []netip.Prefix
}

// forwardAuth is ForwardAuth compiled.
type forwardAuth struct {
	proxy   string
	family  headerFamily
	foreign []foreignHeader
	trusted trustedProxies
}

// headerFamily is the set of headers one kind of proxy writes to name the
// checked request; empty names mean the request line and Host (envoy).
type headerFamily struct {
	method, uri, host string
}

// foreignHeader is a header of another family: if present it must agree
// with the configured family's value for the same part.
type foreignHeader struct {
	name string
	part int // partMethod, partURI or partHost
}

const (
	partMethod = iota
	partURI
	partHost
)

var (
	nginxFamily     = headerFamily{"X-Original-Method", "X-Original-Uri", "X-Original-Host"}
	forwardedFamily = headerFamily{"X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Host"}
	envoyFamily     = headerFamily{}
	// envoyOriginalPath is what Envoy sets when a route rewrites a path;
	// in a check request it is only ever another proxy's or the client's.
	envoyOriginalPath = foreignHeader{"X-Envoy-Original-Path", partURI}
)

func (f headerFamily) headers() []foreignHeader {
	if f.method == "" {
		return nil
	}
	return []foreignHeader{{f.method, partMethod}, {f.uri, partURI}, {f.host, partHost}}
}

func newForwardAuth(c ForwardAuth) (forwardAuth, error) {
	f := forwardAuth{proxy: c.Proxy, trusted: newTrustedProxies(c.TrustedProxies)}
	switch c.Proxy {
	case "":
		return f, nil
	case ProxyNginx:
		f.family = nginxFamily
	case ProxyTraefik, ProxyCaddy:
		f.family = forwardedFamily
	case ProxyEnvoy:
		f.family = envoyFamily
	default:
		return f, fmt.Errorf("gateway: forward-auth proxy %q: must be nginx, traefik, caddy or envoy", c.Proxy)
	}
	for _, o := range []headerFamily{nginxFamily, forwardedFamily} {
		if o != f.family {
			f.foreign = append(f.foreign, o.headers()...)
		}
	}
	f.foreign = append(f.foreign, envoyOriginalPath)
	return f, nil
}

var errForwardAuthOff = gatehouse.Errorf(gatehouse.EFORBIDDEN, "forward-auth is not configured: set forward_auth.proxy (nginx, traefik, caddy or envoy) in the config so Gatehouse knows which proxy's headers to read")

// forwardedTarget replaces the request's method, path and host with the
// ones the configured proxy forwarded, on a copy. It refuses (403) a call
// from a peer outside forward_auth.trusted_proxies, a missing or repeated
// header of the proxy's family, a header of another family that
// disagrees with it, and any inbound X-Gatehouse-* header (which would
// otherwise ride along to the backend next to the ones Gatehouse answers).
func (g *Gateway) forwardedTarget(next Handler) Handler {
	return HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		f := &g.fwd
		ex := exchangeFrom(r.Context())
		method, uri, host, err := f.target(r)
		if err != nil {
			ex.eventType = "forward_auth.refused"
			if err == errForwardAuthOff {
				g.fwdOff.Do(func() {
					g.log.WarnContext(r.Context(), "forward-auth call refused: forward_auth.proxy is not set, so /auth/verify answers 403 to every call; set it to the proxy in front (nginx, traefik, caddy or envoy)", "request_id", ex.requestID)
				})
			}
			return err
		}
		rawPath, _, _ := strings.Cut(uri, "?")
		if err := CheckPath(rawPath); err != nil {
			return err
		}
		path, err := url.PathUnescape(rawPath)
		if err != nil {
			return gatehouse.Errorf(gatehouse.EINVALID, "invalid forwarded URI")
		}
		t := new(http.Request)
		*t = *r
		t.Method = strings.ToUpper(method)
		t.URL = &url.URL{Path: path, RawPath: rawPath}
		t.Host = host
		ex.target = t
		return next.ServeHTTP(w, t)
	})
}

// target reads the checked method, URI and host from r.
func (f *forwardAuth) target(r *http.Request) (method, uri, host string, err error) {
	if f.proxy == "" {
		return "", "", "", errForwardAuthOff
	}
	if len(f.trusted) > 0 {
		if a, err := netip.ParseAddr(sourceIP(r)); err != nil || !f.trusted.contains(a) {
			return "", "", "", gatehouse.Errorf(gatehouse.EFORBIDDEN, "forward-auth is answered only for the proxies in forward_auth.trusted_proxies")
		}
	}
	for k := range r.Header {
		switch {
		case hasFoldPrefix(k, "x-gatehouse-"):
			return "", "", "", gatehouse.Errorf(gatehouse.EFORBIDDEN, "the request carries an X-Gatehouse-* header; only Gatehouse sets those")
		case foldEqual(k, "authorization") && k != "Authorization", foldEqual(k, "x-api-key") && k != "X-Api-Key":
			return "", "", "", gatehouse.Errorf(gatehouse.EFORBIDDEN, "credential header spelled with '_'; use Authorization or X-API-Key")
		case rereadHeader(k):
			return "", "", "", gatehouse.Errorf(gatehouse.EFORBIDDEN, "forward-auth (%s): the request carries %s, which backends may read as its path, prefix or method; the proxy passes it on and Gatehouse cannot remove it, so the check is refused", f.proxy, k)
		}
	}
	if f.proxy == ProxyEnvoy {
		method, host = r.Method, r.Host
		rest, ok := strings.CutPrefix(r.RequestURI, "/auth/verify")
		if !ok || rest == "" || rest[0] != '/' {
			return "", "", "", gatehouse.Errorf(gatehouse.EFORBIDDEN, "forward-auth (envoy) checks the path after /auth/verify: set the ext_authz http_service path_prefix to /auth/verify")
		}
		uri = rest
	} else {
		if r.URL.Path != "/auth/verify" {
			return "", "", "", gatehouse.Errorf(gatehouse.EFORBIDDEN, "forward-auth (%s) is answered at /auth/verify; the checked request is named by headers, not the path", f.proxy)
		}
		var ok bool
		if method, ok = single(r.Header, f.family.method); ok {
			if uri, ok = single(r.Header, f.family.uri); ok {
				host, ok = single(r.Header, f.family.host)
			}
		}
		if !ok {
			return "", "", "", gatehouse.Errorf(gatehouse.EFORBIDDEN, "forward-auth (%s) needs exactly one each of %s, %s and %s", f.proxy, f.family.method, f.family.uri, f.family.host)
		}
	}
	if !validMethod(method) || uri == "" || uri[0] != '/' || !validHost(host) {
		return "", "", "", gatehouse.Errorf(gatehouse.EFORBIDDEN, "forward-auth (%s): malformed forwarded method, URI or host", f.proxy)
	}
	for _, o := range f.foreign {
		for _, v := range r.Header[o.name] {
			var agree bool
			switch o.part {
			case partMethod:
				agree = strings.EqualFold(v, method)
			case partURI:
				agree = v == uri
			default:
				agree = strings.EqualFold(v, host)
			}
			if !agree {
				return "", "", "", gatehouse.Errorf(gatehouse.EFORBIDDEN, "forward-auth (%s): %s disagrees with the request %s forwarded; refusing to guess which one the backend serves", f.proxy, o.name, f.proxy)
			}
		}
	}
	return method, uri, host, nil
}

// rereadHeader reports whether a header of a forward-auth check is one a
// backend could read as the request's path, prefix or method instead of
// the request line the proxy checked: X-Original-URL and X-Rewrite-URL
// (IIS URL Rewrite, Symfony, Zend/Laminas, Magento), any X-Original-*
// other than nginx's three (checked against the request like every other
// family's), X-Forwarded-Prefix (Spring, ASP.NET, Traefik's StripPrefix)
// and the method-override headers, each in any case and with '_' for '-'.
// In proxy mode Gatehouse removes these before proxying; forward-auth
// cannot change the request the proxy sends on, so it refuses the check.
func rereadHeader(k string) bool {
	if hasFoldPrefix(k, "x-original-") {
		// nginx's names, canonical (a '_' spelling is another header to a
		// backend that folds it, and one Gatehouse does not read).
		return k != nginxFamily.method && k != nginxFamily.uri && k != nginxFamily.host &&
			k != nginxContentLength && k != nginxTransferEncoding
	}
	return foldEqual(k, "x-rewrite-url") || foldEqual(k, "x-forwarded-prefix") || isMethodOverride(k)
}

// The headers the README's nginx snippet sets from the checked request's
// body framing ($content_length, $http_transfer_encoding); nginx replaces
// a caller's and sends none when the value is empty.
const (
	nginxContentLength    = "X-Original-Content-Length"
	nginxTransferEncoding = "X-Original-Transfer-Encoding"
)

// verifyBody holds a forward-auth check to its route's max_body, as far as
// the proxy says what body follows: the body itself never reaches
// Gatehouse. Behind nginx a declared length over the cap is refused, and
// so is a body of unknown length (Transfer-Encoding, e.g. chunked), which
// nothing would bound. Other proxies send no length, so max_body does not
// apply through them (New warns); json_schema, content_types and redact
// never apply through forward-auth.
func (g *Gateway) verifyBody(next Handler) Handler {
	return HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		max := exchangeFrom(r.Context()).route.MaxBody
		if g.fwd.proxy != ProxyNginx || max <= 0 {
			return next.ServeHTTP(w, r)
		}
		if te := r.Header[nginxTransferEncoding]; len(te) > 0 {
			return gatehouse.Errorf(gatehouse.EFORBIDDEN, "forward-auth (nginx): a request body of unknown length (Transfer-Encoding) cannot be held to the route's max_body of %d bytes; send it with Content-Length", max)
		}
		cl := r.Header[nginxContentLength]
		if len(cl) == 0 {
			return next.ServeHTTP(w, r)
		}
		n, err := strconv.ParseInt(cl[0], 10, 64)
		if len(cl) != 1 || err != nil || n < 0 {
			return gatehouse.Errorf(gatehouse.EFORBIDDEN, "forward-auth (nginx): malformed or repeated %s", nginxContentLength)
		}
		if n > max {
			return tooLarge(max)
		}
		return next.ServeHTTP(w, r)
	})
}

// warnForwardAuthBody says at start which route controls a forward-auth
// check cannot apply, since the request body never reaches Gatehouse.
func (g *Gateway) warnForwardAuthBody(routes []*route) {
	if g.fwd.proxy == "" {
		return
	}
	var body []string
	for _, rt := range routes {
		if rt.JSONSchema != "" || len(rt.ContentTypes) > 0 || rt.Redact {
			body = append(body, rt.Name)
		}
	}
	if len(body) > 0 {
		g.log.Warn("forward-auth: json_schema, content_types and redact do not apply to requests checked through /auth/verify (the body and response never pass through Gatehouse); send these routes through Gatehouse as a proxy to enforce them", "proxy", g.fwd.proxy, "routes", body)
	}
	if g.fwd.proxy != ProxyNginx {
		g.log.Warn("forward-auth: max_body is not enforced through this proxy (it does not forward the body's length); bound bodies in the proxy", "proxy", g.fwd.proxy)
	}
}

// single returns the one value of header name; a missing, empty or
// repeated header is not ok.
func single(h http.Header, name string) (string, bool) {
	v := h[name]
	if len(v) != 1 || v[0] == "" {
		return "", false
	}
	return v[0], true
}

func validMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// verifyOK answers an allowed forward-auth check.
func verifyOK(w http.ResponseWriter, r *http.Request) error {
	ex := exchangeFrom(r.Context())
	h := w.Header()
	if p := ex.principal; p != nil {
		h["X-Gatehouse-Principal"] = []string{p.ID}
		h["X-Gatehouse-Scopes"] = []string{p.ScopesHeader}
	}
	h["X-Gatehouse-Decision-Id"] = []string{ex.decision.DecisionID.String()}
	w.WriteHeader(http.StatusOK)
	return nil
}

// AuthorizeRequest is the body of POST /v1/authorize.
type AuthorizeRequest struct {
	Action   string `json:"action"`
	Resource string `json:"resource"`
}

// AuthorizeResponse is its answer.
type AuthorizeResponse struct {
	Allow      bool     `json:"allow"`
	Reasons    []string `json:"reasons"`
	DecisionID string   `json:"decision_id"`
	Revision   string   `json:"policy_revision"`
}

// decisionAPI answers "may this caller do action on resource?" with 200
// and allow true or false.
func (g *Gateway) decisionAPI(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return gatehouse.Errorf(gatehouse.EMETHOD, "use POST on /v1/authorize")
	}
	var req AuthorizeRequest
	if err := httpjson.Decode(r, &req, 64<<10); err != nil {
		return err
	}
	switch {
	case req.Action == "":
		return gatehouse.Errorf(gatehouse.EINVALID, "action: is required (e.g. \"tool.execute\")")
	case req.Resource == "":
		return gatehouse.Errorf(gatehouse.EINVALID, "resource: is required (e.g. \"tool:web_search\")")
	}
	ex := exchangeFrom(r.Context())
	ex.action, ex.resource = req.Action, req.Resource
	d, err := g.decideFor(r, ex, req.Action, req.Resource)
	if err != nil {
		return err
	}
	reasons := d.Reasons
	if reasons == nil {
		reasons = []string{}
	}
	httpjson.Write(w, http.StatusOK, AuthorizeResponse{Allow: d.Allow, Reasons: reasons, DecisionID: d.DecisionID.String(), Revision: d.Revision})
	return nil
}

// Paths lists the paths the gateway answers itself, before routing: the
// health probes, forward-auth (and below /auth/verify/ behind Envoy), the
// decision API and Config.Endpoints, sorted. Everything else goes to the
// configured routes. The OpenAPI drift test reads it.
func (g *Gateway) Paths() []string {
	paths := []string{"/health", "/health/live", "/health/ready", "/auth/verify", "/v1/authorize"}
	for p := range g.cfg.Endpoints {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return paths
}
