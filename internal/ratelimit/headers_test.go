package ratelimit_test

import (
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

func dump(h http.Header) string {
	var lines []string
	for k, v := range h {
		lines = append(lines, k+": "+strings.Join(v, ","))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestSetHeaders(t *testing.T) {
	lim := ratelimit.Limit{Requests: 600, Per: time.Minute}
	for _, tc := range []struct {
		name string
		d    ratelimit.Decision
		pol  string
		want string
	}{
		{"admitted", ratelimit.Decision{Allowed: true, Limit: 600, Remaining: 599, Window: time.Minute, Reset: 41200 * time.Millisecond}, "default",
			"Ratelimit-Policy: \"default\";q=600;w=60\nRatelimit: \"default\";r=599;t=42\nX-Ratelimit-Limit: 600\nX-Ratelimit-Remaining: 599\nX-Ratelimit-Reset: 42"},
		{"refused", ratelimit.Decision{Limit: 600, Window: time.Minute, Reset: 2500 * time.Millisecond, RetryAfter: 2500 * time.Millisecond}, "default",
			"Ratelimit-Policy: \"default\";q=600;w=60\nRatelimit: \"default\";r=0;t=3\nRetry-After: 3\nX-Ratelimit-Limit: 600\nX-Ratelimit-Remaining: 0\nX-Ratelimit-Reset: 3"},
		{"refused under a second", ratelimit.Decision{Limit: 600, Window: time.Minute, RetryAfter: time.Millisecond}, "default",
			"Ratelimit-Policy: \"default\";q=600;w=60\nRatelimit: \"default\";r=0;t=1\nRetry-After: 1\nX-Ratelimit-Limit: 600\nX-Ratelimit-Remaining: 0\nX-Ratelimit-Reset: 1"},
		{"name escaped", ratelimit.Decision{Allowed: true, Limit: 600, Remaining: 5, Window: time.Minute, Reset: time.Second}, `a"b\c` + "\x01",
			"Ratelimit-Policy: \"a\\\"b\\\\c_\";q=600;w=60\nRatelimit: \"a\\\"b\\\\c_\";r=5;t=1\nX-Ratelimit-Limit: 600\nX-Ratelimit-Remaining: 5\nX-Ratelimit-Reset: 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h1 := http.Header{}
			ratelimit.SetHeaders(h1, tc.d, tc.pol)
			if got := dump(h1); got != tc.want {
				t.Errorf("SetHeaders:\n%s\nwant\n%s", got, tc.want)
			}
			h2 := http.Header{}
			ratelimit.NewPolicy(tc.pol, lim).SetHeaders(h2, tc.d)
			if got := dump(h2); got != tc.want {
				t.Errorf("Policy.SetHeaders:\n%s\nwant\n%s", got, tc.want)
			}
			if h1.Get("RateLimit-Policy") == "" {
				t.Error("header not found through canonical lookup")
			}
		})
	}
}

func TestPolicySetHeadersAllocs(t *testing.T) {
	p := ratelimit.NewPolicy("default", ratelimit.Limit{Requests: 600, Per: time.Minute})
	h := http.Header{}
	d := ratelimit.Decision{Allowed: true, Limit: 600, Remaining: 431, Window: time.Minute, Reset: 7 * time.Second}
	// Its HeaderValues (3 before: the value slice, the RateLimit string
	// and the Remaining string above 99).
	if n := testing.AllocsPerRun(1000, func() { p.SetHeaders(h, d) }); n > 1 {
		t.Errorf("SetHeaders: %v allocations per call, want at most 1", n)
	}
	var hv ratelimit.HeaderValues
	if n := testing.AllocsPerRun(1000, func() { p.SetHeadersIn(h, d, &hv) }); n != 0 {
		t.Errorf("SetHeadersIn: %v allocations per call, want 0", n)
	}
}

// TestSetHeadersInValues: the values SetHeadersIn writes are SetHeaders',
// allowed or refused, and with a policy name and counts too long for
// HeaderValues' own bytes.
func TestSetHeadersInValues(t *testing.T) {
	for _, tt := range []struct {
		name string
		d    ratelimit.Decision
	}{
		{"default", ratelimit.Decision{Allowed: true, Limit: 600, Remaining: 431, Window: time.Minute, Reset: 7 * time.Second}},
		{"refused", ratelimit.Decision{Allowed: false, Limit: 600, Remaining: 0, Window: time.Minute, Reset: 7 * time.Second, RetryAfter: 2500 * time.Millisecond}},
		{strings.Repeat("long-policy-name-", 8), ratelimit.Decision{Allowed: true, Limit: 1 << 40, Remaining: 1<<40 - 1, Window: time.Hour, Reset: time.Hour}},
	} {
		t.Run(tt.name[:min(len(tt.name), 16)], func(t *testing.T) {
			p := ratelimit.NewPolicy(tt.name, ratelimit.Limit{Requests: tt.d.Limit, Per: tt.d.Window})
			want, got := http.Header{}, http.Header{}
			ratelimit.SetHeaders(want, tt.d, tt.name)
			var hv ratelimit.HeaderValues
			p.SetHeadersIn(got, tt.d, &hv)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("SetHeadersIn wrote %v, SetHeaders %v", got, want)
			}
		})
	}
}

func TestError(t *testing.T) {
	err := ratelimit.Error(ratelimit.Decision{RetryAfter: 1500 * time.Millisecond})
	if err.Code != gatehouse.ERATELIMITED || gatehouse.HTTPStatus(err.Code) != http.StatusTooManyRequests || !strings.Contains(err.Message, "2 seconds") {
		t.Fatalf("Error = %+v", err)
	}
}

func BenchmarkPolicySetHeaders(b *testing.B) {
	p := ratelimit.NewPolicy("default", ratelimit.Limit{Requests: 600, Per: time.Minute})
	h := http.Header{}
	d := ratelimit.Decision{Allowed: true, Limit: 600, Remaining: 431, Window: time.Minute, Reset: 7 * time.Second}
	b.ReportAllocs()
	for b.Loop() {
		p.SetHeaders(h, d)
	}
}

func ExampleSetHeaders() {
	h := http.Header{}
	d := ratelimit.Decision{Allowed: false, Limit: 60, Remaining: 0, Window: time.Minute, Reset: 12 * time.Second, RetryAfter: 12 * time.Second}
	ratelimit.SetHeaders(h, d, "free")
	for _, k := range []string{"RateLimit-Policy", "RateLimit", "Retry-After", "X-RateLimit-Remaining"} {
		fmt.Printf("%s: %s\n", k, h.Get(k))
	}
	// Output:
	// RateLimit-Policy: "free";q=60;w=60
	// RateLimit: "free";r=0;t=12
	// Retry-After: 12
	// X-RateLimit-Remaining: 0
}

func TestKey(t *testing.T) {
	for _, tc := range []struct {
		p    *gatehouse.Principal
		ip   string
		want string
	}{
		{nil, "203.0.113.7", "ip:203.0.113.7"},
		{&gatehouse.Principal{Kind: gatehouse.KindAnonymous}, "203.0.113.7", "ip:203.0.113.7"},
		{nil, "::ffff:203.0.113.7", "ip:203.0.113.7"},
		{nil, "2001:db8:1:2::1", "ip:2001:db8:1:2::/64"},
		{nil, "2001:db8:1:2:ffff:ffff:ffff:ffff", "ip:2001:db8:1:2::/64"},
		{&gatehouse.Principal{Kind: gatehouse.KindAnonymous}, "2001:db8:1:2::9", "ip:2001:db8:1:2::/64"},
		{nil, "not-an-ip", "ip:not-an-ip"},
		// Authenticated principals are keyed by principal, whatever the address.
		{&gatehouse.Principal{ID: "k_1", Kind: gatehouse.KindAPIKey}, "203.0.113.7", "api_key:k_1"},
		{&gatehouse.Principal{ID: "k_1", Kind: gatehouse.KindAPIKey}, "2001:db8:1:2::1", "api_key:k_1"},
		{&gatehouse.Principal{ID: "k_1", Kind: gatehouse.KindUser}, "203.0.113.7", "user:k_1"},
	} {
		if got := ratelimit.Key(tc.p, tc.ip, ratelimit.DefaultIPv6Prefix); got != tc.want {
			t.Errorf("Key(%+v, %q) = %q, want %q", tc.p, tc.ip, got, tc.want)
		}
	}
}
