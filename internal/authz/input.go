package authz

import (
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/gatehouse/gatehouse"
)

// Actions the default policy knows. Gateway and forward-auth traffic sends
// ActionHTTPRequest; the decision API passes the caller's action through.
const (
	ActionHTTPRequest = "http.request"
	ActionToolExecute = "tool.execute"
)

// Modes for Input.Mode, as in the config file.
const (
	ModeProd = "prod"
	ModeDev  = "dev"
)

// Input is the input document of a decision. Its JSON form is exactly what
// a policy sees as `input`:
//
//	{"principal": {"id", "kind", "scopes", "tier"},
//	 "request":   {"method", "path", "segments", "host", "source_ip", "headers"},
//	 "route":     {"name", "scopes", "tool"} or null,
//	 "action": "...", "resource": "...", "mode": "prod" | "dev"}
//
// Every string field is always present (empty when unknown), so a policy
// never has to guard against a missing field except route, which is null
// when no route matched (the decision API).
type Input struct {
	Principal PrincipalInput `json:"principal"`
	Request   RequestInput   `json:"request"`
	// Route is the matched route, or nil. Build it once per configured route
	// with NewRouteInput, not per request.
	Route    *RouteInput `json:"route"`
	Action   string      `json:"action"`
	Resource string      `json:"resource"`
	Mode     string      `json:"mode"`
}

// PrincipalInput is the caller as the policy sees it. It never holds a
// credential.
type PrincipalInput struct {
	ID     string   `json:"id"`
	Kind   string   `json:"kind"`
	Scopes []string `json:"scopes"`
	Tier   string   `json:"tier"`
	// ScopesFingerprint, when not zero, must equal
	// FingerprintScopes(Scopes); the decision cache then keys on these 32
	// bytes instead of the scope strings. Compute it once per principal
	// (when the credential is verified), not per request. A zero value is
	// always correct, merely a little slower for principals with many
	// scopes.
	ScopesFingerprint Fingerprint `json:"-"`
}

// RequestInput describes the HTTP request being authorized.
type RequestInput struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	// Segments is Path split on "/" without empty parts. When nil the engine
	// derives it from Path.
	Segments []string `json:"segments"`
	Host     string   `json:"host"`
	SourceIP string   `json:"source_ip"`
	// Headers holds only allow-listed headers, names in lower case (see
	// FilterHeaders). Never put credentials here.
	Headers map[string]string `json:"headers"`
}

// RouteInput is the matched route as the policy sees it.
type RouteInput struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	Tool   string   `json:"tool"`
}

// Fingerprint identifies an ordered list of scopes (SHA-256 of the
// length-prefixed list). The zero value means "not computed".
type Fingerprint [32]byte

// FingerprintScopes returns the fingerprint of scopes, in order. It never
// returns the zero Fingerprint. gatehouse.NewPrincipal computes the same
// value once per principal (Principal.Fingerprint).
func FingerprintScopes(scopes []string) Fingerprint {
	return Fingerprint(gatehouse.FingerprintScopes(scopes))
}

// NewPrincipalInput returns the policy view of p; a nil p is anonymous.
// fp is p's scope fingerprint (FingerprintScopes(p.Scopes)) or zero.
func NewPrincipalInput(p *gatehouse.Principal, fp Fingerprint) PrincipalInput {
	if p == nil {
		return PrincipalInput{Kind: string(gatehouse.KindAnonymous), Scopes: []string{}}
	}
	scopes := p.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return PrincipalInput{ID: p.ID, Kind: string(p.Kind), Scopes: scopes, Tier: p.Tier, ScopesFingerprint: fp}
}

// NewRouteInput returns the policy view of r, or nil for a nil r. Call it
// once per route when the configuration loads.
func NewRouteInput(r *gatehouse.Route) *RouteInput {
	if r == nil {
		return nil
	}
	scopes := r.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return &RouteInput{Name: r.Name, Scopes: scopes, Tool: r.Tool}
}

// FilterHeaders returns the headers of h named in allow (case-insensitive),
// keyed by lower-case name, multiple values joined with ", ". It returns nil
// when none is present.
func FilterHeaders(h http.Header, allow []string) map[string]string {
	var out map[string]string
	for _, name := range allow {
		vs := h.Values(name)
		if len(vs) == 0 {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(allow))
		}
		out[strings.ToLower(name)] = strings.Join(vs, ", ")
	}
	return out
}

// SplitPath returns the non-empty "/"-separated segments of p.
func SplitPath(p string) []string {
	segs := make([]string, 0, strings.Count(p, "/")+1)
	for s := range strings.SplitSeq(p, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	return segs
}

// astValue builds the Rego value of in directly, avoiding a JSON round trip.
func (in *Input) astValue() ast.Value {
	p := in.Principal
	principal := ast.NewObject(
		ast.Item(ast.InternedTerm("id"), ast.StringTerm(p.ID)),
		ast.Item(ast.InternedTerm("kind"), ast.StringTerm(p.Kind)),
		ast.Item(ast.InternedTerm("scopes"), stringsTerm(p.Scopes)),
		ast.Item(ast.InternedTerm("tier"), ast.StringTerm(p.Tier)),
	)
	r := in.Request
	segs := r.Segments
	if segs == nil {
		segs = SplitPath(r.Path)
	}
	headers := ast.NewObject()
	for _, k := range slices.Sorted(maps.Keys(r.Headers)) {
		headers.Insert(ast.StringTerm(k), ast.StringTerm(r.Headers[k]))
	}
	request := ast.NewObject(
		ast.Item(ast.InternedTerm("method"), ast.StringTerm(r.Method)),
		ast.Item(ast.InternedTerm("path"), ast.StringTerm(r.Path)),
		ast.Item(ast.InternedTerm("segments"), stringsTerm(segs)),
		ast.Item(ast.InternedTerm("host"), ast.StringTerm(r.Host)),
		ast.Item(ast.InternedTerm("source_ip"), ast.StringTerm(r.SourceIP)),
		ast.Item(ast.InternedTerm("headers"), ast.NewTerm(headers)),
	)
	route := ast.NullTerm()
	if rt := in.Route; rt != nil {
		route = ast.ObjectTerm(
			ast.Item(ast.InternedTerm("name"), ast.StringTerm(rt.Name)),
			ast.Item(ast.InternedTerm("scopes"), stringsTerm(rt.Scopes)),
			ast.Item(ast.InternedTerm("tool"), ast.StringTerm(rt.Tool)),
		)
	}
	return ast.NewObject(
		ast.Item(ast.InternedTerm("principal"), ast.NewTerm(principal)),
		ast.Item(ast.InternedTerm("request"), ast.NewTerm(request)),
		ast.Item(ast.InternedTerm("route"), route),
		ast.Item(ast.InternedTerm("action"), ast.StringTerm(in.Action)),
		ast.Item(ast.InternedTerm("resource"), ast.StringTerm(in.Resource)),
		ast.Item(ast.InternedTerm("mode"), ast.StringTerm(in.Mode)),
	)
}

func stringsTerm(ss []string) *ast.Term {
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(ts...)
}
