package gateway

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authz"
)

// TestPreAuthStateBounded floods the per-source failure state from many
// addresses (unknown routes, each from a new address): it never holds more
// than its bound, and an address that is limited stays limited through the
// flood of addresses with a full bucket left.
func TestPreAuthStateBounded(t *testing.T) {
	clock := gatehouse.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	const sources = 1024
	g, err := New(Config{Authenticator: nopAuthn{}, Authorizer: nopAuthz{}, Clock: clock,
		PreAuth: PreAuthConfig{Failures: 3, Per: time.Minute, Sources: sources}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(ip string) int {
		r := httptest.NewRequest("GET", "/nowhere", nil)
		r.RemoteAddr = ip + ":1234"
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		return w.Code
	}
	for i := 0; i < 4; i++ {
		get("198.51.100.7")
	}
	if code := get("198.51.100.7"); code != 429 {
		t.Fatalf("limited address: %d", code)
	}
	for i := 0; i < 50*sources; i++ {
		get(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
		if n := g.pre.len(); n > sources {
			t.Fatalf("after %d addresses the state holds %d, more than %d", i+1, n, sources)
		}
	}
	if code := get("198.51.100.7"); code != 429 {
		t.Errorf("a flood of other addresses lifted a limit in force: %d", code)
	}
}

type nopAuthn struct{}

func (nopAuthn) Authenticate(context.Context, string) (*gatehouse.Principal, error) {
	return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "no")
}

type nopAuthz struct{}

func (nopAuthz) Decide(context.Context, *authz.Input) (authz.Decision, error) {
	return authz.Decision{}, nil
}

// BenchmarkPreAuthBlocked is the limit's cost on the allowed path: one
// lookup of an address that has no entry, in a table of 10,000.
func BenchmarkPreAuthBlocked(b *testing.B) {
	p := newPreAuth(PreAuthConfig{Failures: 20, Per: time.Minute}, 64)
	now := time.Now()
	for i := 0; i < 10_000; i++ {
		p.fail(fmt.Sprintf("10.0.%d.%d", i>>8, i&255), now)
	}
	b.ReportAllocs()
	for b.Loop() {
		if blocked, _ := p.blocked("192.0.2.44", now); blocked {
			b.Fatal("blocked")
		}
	}
}
