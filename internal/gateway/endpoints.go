package gateway

import (
	"net/http"
	"net/url"
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
	case gatehouse.ENOTFOUND, gatehouse.EMETHOD, gatehouse.EINVALID:
		w.Header().Del("Allow")
		exchangeFrom(r.Context()).outcome = gatehouse.OutcomeDenied
		return &gatehouse.Error{Code: gatehouse.EFORBIDDEN, Message: gatehouse.ErrorMessage(err)}
	}
	return err
}

// forwardedTarget replaces the request's method and path with the
// forwarded ones, on a copy.
func (g *Gateway) forwardedTarget(next Handler) Handler {
	return HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		method := firstHeader(r.Header, "X-Forwarded-Method", "X-Original-Method")
		uri := firstHeader(r.Header, "X-Forwarded-Uri", "X-Original-Uri")
		if method == "" || uri == "" {
			return gatehouse.Errorf(gatehouse.EINVALID, "forward-auth needs X-Forwarded-Method and X-Forwarded-Uri (or nginx's X-Original-Method and X-Original-URI)")
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
		exchangeFrom(r.Context()).target = t
		return next.ServeHTTP(w, t)
	})
}

func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
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
