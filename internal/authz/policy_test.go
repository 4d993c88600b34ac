package authz_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authz"
)

// TestDefaultPolicy checks the embedded default policy's decisions through
// the engine, cached and uncached.
func TestDefaultPolicy(t *testing.T) {
	signals := &authz.RouteInput{Name: "signals-read", Scopes: []string{"read:signals"}}
	twoScopes := &authz.RouteInput{Name: "both", Scopes: []string{"a", "b"}}
	search := &authz.RouteInput{Name: "search", Scopes: []string{"agents"}, Tool: "web_search"}
	pprof := &authz.RouteInput{Name: "pprof", Scopes: []string{"debug"}}
	open := &authz.RouteInput{Name: "open", Scopes: []string{}}

	tests := []struct {
		name    string
		in      *authz.Input
		allow   bool
		reasons []string
	}{
		{"route scope held", routeInput(principal("read:signals"), signals, "prod"), true,
			[]string{"route signals-read: required scopes held"}},
		{"route scope missing", routeInput(principal("write:signals"), signals, "prod"), false,
			[]string{"missing scope read:signals"}},
		{"no scopes at all", routeInput(principal(), signals, "prod"), false,
			[]string{"missing scope read:signals"}},
		{"all route scopes required", routeInput(principal("a"), twoScopes, "prod"), false,
			[]string{"missing scope b"}},
		{"all route scopes held", routeInput(principal("b", "a"), twoScopes, "prod"), true, nil},
		{"route without scopes", routeInput(principal(), open, "prod"), true, nil},
		{"anonymous on scoped route", routeInput(authz.NewPrincipalInput(nil, authz.Fingerprint{}), signals, "prod"), false,
			[]string{"missing scope read:signals"}},
		{"no route", routeInput(principal("read:signals"), nil, "prod"), false, []string{"no route matched"}},
		{"empty action is a route request", &authz.Input{Principal: principal("read:signals"), Route: signals, Mode: "prod"}, true, nil},

		{"admin on route", routeInput(principal("admin"), signals, "prod"), true,
			[]string{"admin scope grants every permission"}},
		{"admin on tool route", routeInput(principal("admin"), search, "prod"), true, nil},
		{"admin on debug route in prod", routeInput(principal("admin"), pprof, "prod"), true, nil},
		{"admin executes any tool", toolInput(principal("admin"), "tool:rm_rf", "prod"), true, nil},
		{"admin unknown action", &authz.Input{Principal: principal("admin"), Action: "keys.delete", Mode: "prod"}, true, nil},

		{"debug in dev", routeInput(principal("debug"), pprof, "dev"), true, nil},
		{"debug in prod", routeInput(principal("debug"), pprof, "prod"), false,
			[]string{"missing scope debug", "scope debug is honoured only in dev mode"}},
		{"debug grants nothing else in dev", routeInput(principal("debug"), signals, "dev"), false,
			[]string{"missing scope read:signals"}},

		{"tool route without tool scope", routeInput(principal("agents"), search, "prod"), false,
			[]string{"missing scope tools:execute:web_search or tools:execute:*"}},
		{"tool route with named tool scope", routeInput(principal("agents", "tools:execute:web_search"), search, "prod"), true, nil},
		{"tool route with wildcard tool scope", routeInput(principal("agents", "tools:execute:*"), search, "prod"), true, nil},
		{"tool route with other tool scope", routeInput(principal("agents", "tools:execute:web_fetch"), search, "prod"), false, nil},
		{"tool route tool scope without route scope", routeInput(principal("tools:execute:*"), search, "prod"), false,
			[]string{"missing scope agents"}},

		{"tool.execute named", toolInput(principal("tools:execute:web_search"), "tool:web_search", "prod"), true,
			[]string{"tool web_search: execution scope held"}},
		{"tool.execute wildcard", toolInput(principal("tools:execute:*"), "tool:web_search", "prod"), true, nil},
		{"tool.execute other tool", toolInput(principal("tools:execute:web_fetch"), "tool:web_search", "prod"), false,
			[]string{"missing scope tools:execute:web_search or tools:execute:*"}},
		{"tool.execute no scope", toolInput(principal("read:signals"), "tool:web_search", "dev"), false, nil},
		{"tool.execute resource not a tool", toolInput(principal("tools:execute:*"), "web_search", "prod"), false,
			[]string{`resource "web_search" is not a tool (want tool:NAME)`}},
		{"tool.execute empty tool name", toolInput(principal("tools:execute:*"), "tool:", "prod"), false,
			[]string{"invalid resource: tool name is empty"}},
		{"unknown action", &authz.Input{Principal: principal("tools:execute:*"), Action: "keys.delete", Resource: "tool:x", Mode: "prod"}, false,
			[]string{"unknown action keys.delete"}},
	}
	e := MustNewEngine(t, authz.Config{}, authz.Options{})
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, decide := range []struct {
				name string
				f    func(context.Context, *authz.Input) (authz.Decision, error)
			}{{"uncached", e.DecideUncached}, {"cached", e.Decide}, {"cache hit", e.Decide}} {
				d, err := decide.f(ctx, tt.in)
				if err != nil {
					t.Fatalf("%s: %v", decide.name, err)
				}
				if d.Allow != tt.allow {
					t.Errorf("%s: allow = %v, want %v (reasons %q)", decide.name, d.Allow, tt.allow, d.Reasons)
				}
				if tt.reasons != nil && !slices.Equal(d.Reasons, tt.reasons) {
					t.Errorf("%s: reasons = %q, want %q", decide.name, d.Reasons, tt.reasons)
				}
				if len(d.Reasons) == 0 {
					t.Errorf("%s: no reasons", decide.name)
				}
				if d.Revision == "" || d.DecisionID.IsZero() {
					t.Errorf("%s: revision %q, decision id %v", decide.name, d.Revision, d.DecisionID)
				}
			}
		})
	}
}

func TestDecisionIDsUnique(t *testing.T) {
	e := MustNewEngine(t, authz.Config{}, authz.Options{})
	in := routeInput(principal("read:signals"), &authz.RouteInput{Name: "r", Scopes: []string{"read:signals"}}, "prod")
	seen := map[string]bool{}
	for range 1000 {
		d, err := e.Decide(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		id := d.DecisionID.String()
		if seen[id] {
			t.Fatalf("duplicate decision id %s", id)
		}
		seen[id] = true
	}
}

func TestNilInputDenies(t *testing.T) {
	e := MustNewEngine(t, authz.Config{}, authz.Options{})
	d, err := e.Decide(context.Background(), nil)
	if err == nil || d.Allow {
		t.Fatalf("Decide(nil) = %+v, %v; want denial and error", d, err)
	}
}

func TestInputHelpers(t *testing.T) {
	p := &gatehouse.Principal{ID: "u1", Kind: gatehouse.KindUser, Scopes: []string{"a", "b"}, Tier: "free"}
	fp := authz.FingerprintScopes(p.Scopes)
	pi := authz.NewPrincipalInput(p, fp)
	if pi.ID != "u1" || pi.Kind != "user" || pi.Tier != "free" || pi.ScopesFingerprint != fp {
		t.Errorf("NewPrincipalInput = %+v", pi)
	}
	if authz.FingerprintScopes([]string{"a", "b"}) == authz.FingerprintScopes([]string{"ab"}) {
		t.Error("fingerprint of [a b] equals [ab]")
	}
	if authz.FingerprintScopes([]string{"a", "b"}) == authz.FingerprintScopes([]string{"b", "a"}) {
		t.Error("fingerprint ignores order")
	}
	if got := authz.SplitPath("//api/v1//x/"); !slices.Equal(got, []string{"api", "v1", "x"}) {
		t.Errorf("SplitPath = %q", got)
	}
	rt := authz.NewRouteInput(&gatehouse.Route{Name: "r", Tool: "t"})
	if rt.Name != "r" || rt.Tool != "t" || rt.Scopes == nil {
		t.Errorf("NewRouteInput = %+v", rt)
	}
	h := http.Header{"X-Team": {"a", "b"}, "Authorization": {"Bearer secret"}}
	if got := authz.FilterHeaders(h, []string{"x-team", "X-Missing"}); len(got) != 1 || got["x-team"] != "a, b" {
		t.Errorf("FilterHeaders = %v", got)
	}
	if got := authz.FilterHeaders(h, nil); got != nil {
		t.Errorf("FilterHeaders(nil allow) = %v", got)
	}
	if authz.NewRouteInput(nil) != nil {
		t.Error("NewRouteInput(nil) != nil")
	}
}

func TestNewDecisionEvent(t *testing.T) {
	e := MustNewEngine(t, authz.Config{}, authz.Options{})
	in := routeInput(principal("x"), &authz.RouteInput{Name: "signals-read", Scopes: []string{"read:signals"}}, "prod")
	d, _ := e.Decide(context.Background(), in)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := authz.NewDecisionEvent(d, in, now)
	if ev.Type != authz.EventDecision || ev.Outcome != gatehouse.OutcomeDenied || ev.Reason != "missing scope read:signals" ||
		ev.Actor.ID != "k_1" || ev.Action != "http.request" || ev.Resource != "route:signals-read" ||
		ev.Details["revision"] != d.Revision || ev.ID != d.DecisionID.String() || !ev.Time.Equal(now) {
		t.Errorf("event = %+v", ev)
	}
	in = toolInput(principal("tools:execute:*"), "tool:web_search", "prod")
	d, _ = e.Decide(context.Background(), in)
	if ev := authz.NewDecisionEvent(d, in, now); ev.Outcome != gatehouse.OutcomeSuccess || ev.Resource != "tool:web_search" || ev.Action != "tool.execute" {
		t.Errorf("event = %+v", ev)
	}
}

// TestEvaluationErrorDenies checks that an evaluation error is a denial
// carrying ErrEvaluation, and is not cached.
func TestEvaluationErrorDenies(t *testing.T) {
	dir := t.TempDir()
	// A complete rule that gets two values is a runtime conflict error.
	writeFiles(t, dir, map[string]string{"authz.rego": `package gatehouse.authz

allow := true if input.mode == "dev"

allow := false if input.action == "x"
`})
	e := MustNewEngine(t, authz.Config{Dir: dir}, authz.Options{})
	in := &authz.Input{Mode: "dev", Action: "x"}
	for range 2 {
		d, err := e.Decide(context.Background(), in)
		if !errors.Is(err, authz.ErrEvaluation) || d.Allow || d.Cached || len(d.Reasons) == 0 {
			t.Fatalf("Decide = %+v, %v; want denial with ErrEvaluation", d, err)
		}
	}
	if d, err := e.Decide(context.Background(), &authz.Input{Mode: "dev"}); err != nil || !d.Allow {
		t.Errorf("Decide without conflict = %+v, %v", d, err)
	}
}
