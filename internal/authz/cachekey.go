package authz

import (
	"encoding/binary"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// keyField is one input field a cache key can hold; a policy's dependencies
// are a set of them (a bit mask).
type keyField uint32

const (
	fPrincipalID keyField = 1 << iota
	fPrincipalKind
	fPrincipalScopes
	fPrincipalTier
	fRequestMethod
	fRequestPath // also covers request.segments, derived from the path
	fRequestHost
	fRequestSourceIP
	fRouteName
	fRouteScopes
	fRouteTool
	fAction
	fResource
	fMode

	fPrincipal = fPrincipalID | fPrincipalKind | fPrincipalScopes | fPrincipalTier
	fRoute     = fRouteName | fRouteScopes | fRouteTool
)

// keyFieldNames maps the input paths a cache key can cover to their field.
// request.headers is deliberately absent: a policy reading headers is not
// cached.
func keyFieldNames() [15]struct {
	name string
	f    keyField
} {
	return [...]struct {
		name string
		f    keyField
	}{
		{"principal.id", fPrincipalID},
		{"principal.kind", fPrincipalKind},
		{"principal.scopes", fPrincipalScopes},
		{"principal.tier", fPrincipalTier},
		{"request.method", fRequestMethod},
		{"request.path", fRequestPath},
		{"request.segments", fRequestPath},
		{"request.host", fRequestHost},
		{"request.source_ip", fRequestSourceIP},
		{"route.name", fRouteName},
		{"route.scopes", fRouteScopes},
		{"route.tool", fRouteTool},
		{"action", fAction},
		{"resource", fResource},
		{"mode", fMode},
	}
}

// names lists the input paths in m, in a fixed order.
func (m keyField) names() []string {
	var out []string
	for _, kf := range keyFieldNames() {
		if m&kf.f != 0 && kf.name != "request.segments" {
			out = append(out, kf.name)
		}
	}
	return out
}

// inputDeps finds which input fields the modules can read, by walking every
// reference to `input` in them. ok is false, with the reason, when the
// dependencies cannot be bounded: the whole input or request.headers is
// read, a field is selected by a variable, or a non-deterministic builtin
// (time, randomness, network) is called. Then decisions must not be cached.
func inputDeps(modules map[string]*ast.Module) (mask keyField, ok bool, why string) {
	var problem string
	var vis *ast.GenericVisitor
	fail := func(format string, args ...any) {
		if problem == "" {
			problem = fmt.Sprintf(format, args...)
		}
	}
	visit := func(x any) bool {
		if problem != "" {
			return true
		}
		switch x := x.(type) {
		case *ast.Expr:
			if x.IsCall() {
				checkBuiltin(x.Operator().String(), x.Location, fail)
			}
		case ast.Call:
			if len(x) > 0 {
				if r, isRef := x[0].Value.(ast.Ref); isRef {
					checkBuiltin(r.String(), x[0].Location, fail)
				}
			}
		case *ast.Term:
			switch v := x.Value.(type) {
			case ast.Var:
				if v.Equal(ast.InputRootDocument.Value) {
					fail("%s: reads the whole input", where(x.Location))
				}
			case ast.Ref:
				if !v[0].Equal(ast.InputRootDocument) {
					return false
				}
				f, err := refField(v)
				if err != "" {
					fail("%s: %s", where(x.Location), err)
					return true
				}
				mask |= f
				for _, t := range v[1:] {
					vis.Walk(t)
				}
				return true
			}
		}
		return false
	}
	vis = ast.NewGenericVisitor(visit)
	for _, m := range modules {
		vis.Walk(m)
	}
	if problem != "" {
		return 0, false, problem
	}
	return mask, true, ""
}

func checkBuiltin(name string, loc *ast.Location, fail func(string, ...any)) {
	if b, ok := ast.BuiltinMap[name]; ok && b.Nondeterministic {
		fail("%s: calls non-deterministic builtin %s", where(loc), name)
		return
	}
	switch name {
	case "crypto.x509.parse_and_verify_certificates",
		"crypto.x509.parse_and_verify_certificates_with_options":
		// Not flagged by OPA, but the answer depends on the current time.
		fail("%s: calls time-dependent builtin %s", where(loc), name)
	}
}

func where(loc *ast.Location) string {
	if loc == nil {
		return "policy"
	}
	return fmt.Sprintf("%s:%d", loc.File, loc.Row)
}

// refField maps a reference input.a.b… to the fields it can read.
func refField(r ast.Ref) (keyField, string) {
	if len(r) < 2 {
		return 0, "reads the whole input"
	}
	top, ok := r[1].Value.(ast.String)
	if !ok {
		return 0, "selects an input field with a variable"
	}
	var whole keyField
	switch top {
	case "action":
		return fAction, ""
	case "resource":
		return fResource, ""
	case "mode":
		return fMode, ""
	case "principal":
		whole = fPrincipal
	case "route":
		whole = fRoute
	case "request":
		whole = 0 // the whole request includes headers
	default:
		// The engine never sets other fields: they are always undefined.
		return 0, ""
	}
	if len(r) == 2 {
		if whole == 0 {
			return 0, "reads the whole request (headers included)"
		}
		return whole, ""
	}
	sub, ok := r[2].Value.(ast.String)
	if !ok {
		if whole == 0 {
			return 0, "selects a request field with a variable"
		}
		return whole, ""
	}
	path := string(top) + "." + string(sub)
	for _, kf := range keyFieldNames() {
		if kf.name == path {
			return kf.f, ""
		}
	}
	if path == "request.headers" {
		return 0, "reads request.headers"
	}
	return 0, "" // an unknown field: always undefined
}

// appendKey appends to b the cache key of in under mask: every covered
// field, length-prefixed so that distinct inputs never share a key.
func appendKey(b []byte, in *Input, mask keyField) []byte {
	if mask&fPrincipalID != 0 {
		b = appendStr(b, in.Principal.ID)
	}
	if mask&fPrincipalKind != 0 {
		b = appendStr(b, in.Principal.Kind)
	}
	if mask&fPrincipalScopes != 0 {
		if fp := &in.Principal.ScopesFingerprint; *fp != (Fingerprint{}) {
			b = append(b, 'F')
			b = append(b, fp[:]...)
		} else {
			b = append(b, 'S')
			b = appendList(b, in.Principal.Scopes)
		}
	}
	if mask&fPrincipalTier != 0 {
		b = appendStr(b, in.Principal.Tier)
	}
	if mask&fRequestMethod != 0 {
		b = appendStr(b, in.Request.Method)
	}
	if mask&fRequestPath != 0 {
		b = appendStr(b, in.Request.Path)
		if in.Request.Segments != nil {
			// Segments given explicitly need not match the path.
			b = appendList(b, in.Request.Segments)
		} else {
			b = append(b, 0xff)
		}
	}
	if mask&fRequestHost != 0 {
		b = appendStr(b, in.Request.Host)
	}
	if mask&fRequestSourceIP != 0 {
		b = appendStr(b, in.Request.SourceIP)
	}
	if mask&fRoute != 0 {
		if in.Route == nil {
			b = append(b, 0)
		} else {
			b = append(b, 1)
			if mask&fRouteName != 0 {
				b = appendStr(b, in.Route.Name)
			}
			if mask&fRouteScopes != 0 {
				b = appendList(b, in.Route.Scopes)
			}
			if mask&fRouteTool != 0 {
				b = appendStr(b, in.Route.Tool)
			}
		}
	}
	if mask&fAction != 0 {
		b = appendStr(b, in.Action)
	}
	if mask&fResource != 0 {
		b = appendStr(b, in.Resource)
	}
	if mask&fMode != 0 {
		b = appendStr(b, in.Mode)
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendList(b []byte, ss []string) []byte {
	if ss == nil {
		// nil and empty differ in JSON only; the engine sends [] for both.
		ss = ss[:0]
	}
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}
