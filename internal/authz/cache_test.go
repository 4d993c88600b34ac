package authz_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authz"
)

// wideDeps is a custom policy that reads most input fields, so that the
// differential test exercises every part of the cache key.
const wideDeps = `package gatehouse.authz

default allow := false

allow if {
	input.principal.kind == "user"
	input.request.method in {"GET", "HEAD"}
	input.request.segments[0] == "public"
}

allow if {
	input.principal.tier == "gold"
	startswith(input.request.path, "/gold/")
	input.request.host == "gold.example"
}

allow if {
	input.principal.id == "root"
	net.cidr_contains("10.0.0.0/8", input.request.source_ip)
}

allow if {
	some s in input.principal.scopes
	s == concat(":", [input.action, input.resource])
	input.mode == "dev"
	input.route.tool == ""
}

reasons contains sprintf("%s %s by %s/%s", [input.request.method, input.request.path, input.principal.kind, input.principal.id])

reasons contains sprintf("route %v", [input.route.name]) if input.route
`

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// genInput draws an input from small vocabularies, so inputs repeat and
// the cache is hit, while irrelevant fields vary between hits.
func genInput(r *rand.Rand) *authz.Input {
	scopePool := []string{"read:signals", "admin", "debug", "agents", "tools:execute:web_search",
		"tools:execute:*", "a", "b", "http.request:x", "tool.execute:tool:web_search"}
	var scopes []string
	for _, s := range scopePool {
		if r.IntN(5) == 0 {
			scopes = append(scopes, s)
		}
	}
	if scopes == nil && r.IntN(2) == 0 {
		scopes = []string{}
	}
	p := authz.PrincipalInput{
		ID:     pick(r, "root", "k1", "k2", ""),
		Kind:   pick(r, "api_key", "user", "anonymous"),
		Scopes: scopes,
		Tier:   pick(r, "", "free", "gold"),
	}
	if r.IntN(2) == 0 {
		p.ScopesFingerprint = authz.FingerprintScopes(p.Scopes)
	}
	path := pick(r, "/public/x", "/gold/y", "/api/v1/signals/1", "/", "")
	in := &authz.Input{
		Principal: p,
		Request: authz.RequestInput{
			Method:   pick(r, "GET", "POST", "HEAD"),
			Path:     path,
			Host:     pick(r, "gold.example", "api.example"),
			SourceIP: pick(r, "10.1.2.3", "192.0.2.7", ""),
		},
		Route: pick(r,
			nil,
			&authz.RouteInput{Name: "signals-read", Scopes: []string{"read:signals"}},
			&authz.RouteInput{Name: "both", Scopes: []string{"a", "b"}},
			&authz.RouteInput{Name: "search", Scopes: []string{"agents"}, Tool: "web_search"},
			&authz.RouteInput{Name: "pprof", Scopes: []string{"debug"}},
			&authz.RouteInput{Name: "open", Scopes: []string{}},
		),
		Action:   pick(r, "", "http.request", "tool.execute", "keys.delete"),
		Resource: pick(r, "", "x", "tool:web_search", "tool:other", "tool:"),
		Mode:     pick(r, "prod", "dev"),
	}
	if r.IntN(4) == 0 {
		in.Request.Segments = pick(r, []string{"public"}, []string{}, []string{"gold", "y"})
	}
	return in
}

// TestCacheDifferential proves cached and uncached decisions agree on
// thousands of generated inputs, across reloads between policies with
// different dependencies.
func TestCacheDifferential(t *testing.T) {
	n := 4000
	if testing.Short() {
		n = 1000
	}
	dir := t.TempDir()
	policies := []map[string]string{
		defaultFiles(t),
		{"authz.rego": wideDeps},
		defaultFiles(t),
		{"authz.rego": allowAll},
		{"authz.rego": wideDeps},
	}
	writeFiles(t, dir, policies[0])
	e := MustNewEngine(t, authz.Config{Dir: dir}, authz.Options{CacheSize: 512})
	r := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	var hits, allows int
	for round, files := range policies {
		if round > 0 {
			writeFiles(t, dir, files)
			if err := e.Reload(ctx); err != nil {
				t.Fatalf("reload %d: %v", round, err)
			}
			if e.CacheLen() != 0 {
				t.Fatalf("round %d: cache not empty after reload", round)
			}
		}
		if s := e.Status(); !s.Cache {
			t.Fatalf("round %d: cache disabled: %s", round, s.CacheDisabled)
		}
		for i := range n {
			in := genInput(r)
			cached, err1 := e.Decide(ctx, in)
			plain, err2 := e.DecideUncached(ctx, in)
			if err1 != nil || err2 != nil {
				t.Fatalf("round %d input %d: errors %v, %v", round, i, err1, err2)
			}
			if cached.Allow != plain.Allow || !slices.Equal(cached.Reasons, plain.Reasons) {
				t.Fatalf("round %d input %d %+v (route %+v): cached %v %q (hit %v), uncached %v %q",
					round, i, in, in.Route, cached.Allow, cached.Reasons, cached.Cached, plain.Allow, plain.Reasons)
			}
			if cached.Cached {
				hits++
			}
			if plain.Allow {
				allows++
			}
		}
		if e.CacheLen() > 512 {
			t.Errorf("cache holds %d entries, bound is 512", e.CacheLen())
		}
	}
	t.Logf("%d inputs, %d cache hits, %d allowed", n*len(policies), hits, allows)
	if hits == 0 || allows == 0 || allows == n*len(policies) {
		t.Errorf("degenerate test: %d hits, %d allows", hits, allows)
	}
}

// TestCacheDependencies checks which policies are cached and on what.
func TestCacheDependencies(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		fields string // "" when not cached
		why    string
	}{
		{"wide", wideDeps, "principal.id,principal.kind,principal.scopes,principal.tier,request.method,request.path,request.host,request.source_ip,route.name,route.scopes,route.tool,action,resource,mode", ""},
		{"no input", allowAll, "", ""},
		{"whole principal", "package gatehouse.authz\n\nallow if input.principal.id == \"x\"\nallow if input.principal == {}\n", "principal.id,principal.kind,principal.scopes,principal.tier", ""},
		{"headers", "package gatehouse.authz\n\nallow if input.request.headers[\"x-team\"] == \"a\"\n", "", "authz.rego:3: reads request.headers"},
		{"whole request", "package gatehouse.authz\n\nallow if count(input.request) > 0\n", "", "reads the whole request"},
		{"whole input", "package gatehouse.authz\n\nallow if { x := input; x.mode == \"dev\" }\n", "", "reads the whole input"},
		{"dynamic field", "package gatehouse.authz\n\nallow if { some k; input[k] == \"dev\" }\n", "", "variable"},
		{"time", "package gatehouse.authz\n\nallow if time.now_ns() > 0\n", "", "non-deterministic builtin time.now_ns"},
		{"http.send", "package gatehouse.authz\n\nallow if http.send({\"method\": \"GET\", \"url\": \"http://127.0.0.1:1\"}).status_code == 200\n", "", "http.send"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"authz.rego": tt.policy})
			e := MustNewEngine(t, authz.Config{Dir: dir}, authz.Options{})
			s := e.Status()
			if tt.why != "" {
				if s.Cache || !strings.Contains(s.CacheDisabled, tt.why) {
					t.Errorf("cache %v (%q), want disabled because %q", s.Cache, s.CacheDisabled, tt.why)
				}
				return
			}
			if !s.Cache || strings.Join(s.CacheKeyFields, ",") != tt.fields {
				t.Errorf("cache %v on %q (%s), want on %q", s.Cache, s.CacheKeyFields, s.CacheDisabled, tt.fields)
			}
		})
	}
}

// TestUncachedPolicyStillDecides checks that a policy whose dependencies
// are unknown is evaluated every time.
func TestUncachedPolicyStillDecides(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"authz.rego": "package gatehouse.authz\n\nallow if input.request.headers[\"x-team\"] == \"a\"\n"})
	e := MustNewEngine(t, authz.Config{Dir: dir}, authz.Options{})
	in := routeInput(principal(), nil, "prod")
	for _, team := range []string{"a", "b", "a"} {
		in.Request.Headers = map[string]string{"x-team": team}
		d, err := e.Decide(context.Background(), in)
		if err != nil || d.Allow != (team == "a") || d.Cached {
			t.Errorf("team %s: %+v, %v", team, d, err)
		}
	}
}

func TestCacheDisabledByOption(t *testing.T) {
	e := MustNewEngine(t, authz.Config{}, authz.Options{CacheSize: -1})
	in := routeInput(principal("read:signals"), &authz.RouteInput{Name: "r", Scopes: []string{"read:signals"}}, "prod")
	for range 2 {
		if d, _ := e.Decide(context.Background(), in); d.Cached || !d.Allow {
			t.Errorf("decision = %+v", d)
		}
	}
	if s := e.Status(); s.Cache || s.CacheDisabled != "disabled by configuration" {
		t.Errorf("status = %+v", s)
	}
}

// TestCacheHitAllocations keeps the hit path allocation-free.
func TestCacheHitAllocations(t *testing.T) {
	e := MustNewEngine(t, authz.Config{}, authz.Options{})
	p := principal("read:signals", "agents")
	p.ScopesFingerprint = authz.FingerprintScopes(p.Scopes)
	in := routeInput(p, &authz.RouteInput{Name: "signals-read", Scopes: []string{"read:signals"}}, "prod")
	ctx := context.Background()
	if d, _ := e.Decide(ctx, in); d.Cached {
		t.Fatal("first decision cached")
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if d, err := e.Decide(ctx, in); err != nil || !d.Cached {
			t.Fatalf("not a hit: %+v %v", d, err)
		}
	})
	if allocs > 0 {
		t.Errorf("cache hit allocates %.1f times, want 0", allocs)
	}
}

// FuzzCacheAgreement decides fuzzer-chosen inputs with and without the
// cache under the default policy and requires the same answer.
func FuzzCacheAgreement(f *testing.F) {
	e := MustNewEngine(f, authz.Config{}, authz.Options{CacheSize: 256})
	f.Add("read:signals", "signals-read", "read:signals", "", "http.request", "", "prod", true)
	f.Add("tools:execute:*", "", "", "", "tool.execute", "tool:web_search", "prod", false)
	f.Add("debug", "pprof", "debug", "", "", "", "dev", true)
	f.Add("a\x00b", "r", "a", "t", "x", "tool:t", "dev", true)
	f.Fuzz(func(t *testing.T, scope, routeName, routeScope, tool, action, resource, mode string, fingerprint bool) {
		p := principal(scope, "agents")
		if fingerprint {
			p.ScopesFingerprint = authz.FingerprintScopes(p.Scopes)
		}
		in := &authz.Input{Principal: p, Action: action, Resource: resource, Mode: mode}
		if routeName != "" {
			in.Route = &authz.RouteInput{Name: routeName, Scopes: []string{routeScope}, Tool: tool}
		}
		ctx := context.Background()
		for range 2 { // miss, then hit
			cached, err1 := e.Decide(ctx, in)
			plain, err2 := e.DecideUncached(ctx, in)
			if (err1 == nil) != (err2 == nil) || cached.Allow != plain.Allow || !slices.Equal(cached.Reasons, plain.Reasons) {
				t.Fatalf("cached %v %q %v, uncached %v %q %v", cached.Allow, cached.Reasons, err1, plain.Allow, plain.Reasons, err2)
			}
		}
	})
}
