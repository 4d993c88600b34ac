package authz_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authz"
)

// The gateway builds the route input once per configured route and the
// principal's scope fingerprint once per credential, then decides per
// request.
func ExampleEngine_Decide() {
	ctx := context.Background()
	e, err := authz.New(ctx, authz.Config{}, authz.Options{Logger: quietLogger()})
	if err != nil {
		fmt.Println(err)
		return
	}
	route := authz.NewRouteInput(&gatehouse.Route{Name: "signals-read", Scopes: []string{"read:signals"}})
	p := &gatehouse.Principal{ID: "key_1", Kind: gatehouse.KindAPIKey, Scopes: []string{"read:signals"}}
	fp := authz.FingerprintScopes(p.Scopes)

	in := &authz.Input{
		Principal: authz.NewPrincipalInput(p, fp),
		Request:   authz.RequestInput{Method: "GET", Path: "/api/v1/signals/7"},
		Route:     route,
		Action:    authz.ActionHTTPRequest,
		Mode:      authz.ModeProd,
	}
	d, err := e.Decide(ctx, in)
	fmt.Println(d.Allow, d.Reasons, err)

	// The decision API: may this caller execute a tool?
	in = &authz.Input{
		Principal: authz.NewPrincipalInput(p, fp),
		Request:   authz.RequestInput{Method: "POST", Path: "/v1/authorize"},
		Action:    authz.ActionToolExecute,
		Resource:  "tool:web_search",
		Mode:      authz.ModeProd,
	}
	d, err = e.Decide(ctx, in)
	fmt.Println(d.Allow, d.Reasons, err)
	// Output:
	// true [route signals-read: required scopes held] <nil>
	// false [missing scope tools:execute:web_search or tools:execute:*] <nil>
}

// RunTests is what `gatehouse policy test [DIR]` calls.
func ExampleRunTests() {
	var out strings.Builder
	code, err := authz.RunTests(context.Background(), "testdata/failing", false, &out)
	// Durations vary from run to run.
	fmt.Print(regexp.MustCompile(`\(\S+\)`).ReplaceAllString(out.String(), "(…)"))
	fmt.Println("exit", code, err)
	// Output:
	// testdata/failing/authz_test.rego:5:
	// data.gatehouse.authz_test.test_anonymous_denied: FAIL (…)
	// --------------------------------------------------------------------------------
	// PASS: 1/2
	// FAIL: 1/2
	// exit 2 <nil>
}
