package gateway_test

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/lockdown"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/ratelimit/service"
	"github.com/gatehouse/gatehouse/internal/store/sqlite"
)

// mustOpenHotPathGate is MustOpenHotPath (serve's defaults) with gate
// asked before the policy, as serve asks its lockdown; nil: no gate.
func mustOpenHotPathGate(tb testing.TB, gate gateway.Gate) (*gateway.Gateway, string) {
	tb.Helper()
	lim, err := service.New(context.Background(), ratelimit.Config{Default: ratelimit.Limit{Requests: 1 << 30, Per: time.Minute}}, service.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { lim.Close() })
	return MustOpenGatewayWith(tb, memUpstreamURL, func(c *gateway.Config) {
		c.Transport = memTransport()
		c.RateLimiter = lim
		c.Auditor = nopAuditor{}
		c.AccessLog = true
		c.Logger = slog.New(slog.NewJSONHandler(discard{}, nil))
		c.AccessLogWriter = discard{}
		c.MaxHeaderBytes = 32 << 10
		c.Metrics = metrics.New(metrics.Options{})
		if gate != nil {
			c.Gate = gate
		}
	})
}

// mustOpenLockdown returns a lockdown on a store of its own, off.
func mustOpenLockdown(tb testing.TB) *lockdown.Lockdown {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "l.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	l := lockdown.New(st)
	if err := l.Reload(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return l
}

// TestGateCostsNoAllocation: with no lockdown in force the gate adds no
// allocation to a proxied request (it is one atomic load), and a lockdown
// that admits the caller adds none either; a lockdown that does not admit
// it refuses with 503 before the policy.
func TestGateCostsNoAllocation(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	w := &discardWriter{h: http.Header{}}
	count := func(h http.Handler, req *http.Request) float64 {
		serveOnce(t, h, w, req)
		return testing.AllocsPerRun(200, func() { serveOnce(t, h, w, req) })
	}
	none, key := mustOpenHotPathGate(t, nil)
	base := count(none, proxiedRequest(key))
	l := mustOpenLockdown(t)
	gated, key2 := mustOpenHotPathGate(t, l)
	off := count(gated, proxiedRequest(key2))
	t.Logf("allocations per proxied request: no gate %.0f, lockdown off %.0f", base, off)
	if off != base {
		t.Errorf("the gate with no lockdown adds %.0f allocations per request", off-base)
	}
	if _, err := l.Set(context.Background(), lockdown.State{Incident: "inc_1", Allow: []string{"api_key:" + keyID(t, key2)}}); err != nil {
		t.Fatal(err)
	}
	if on := count(gated, proxiedRequest(key2)); on != base {
		t.Errorf("a lockdown that admits the caller adds %.0f allocations per request", on-base)
	}
	if _, err := l.Set(context.Background(), lockdown.State{Incident: "inc_1", Allow: []string{"admin"}}); err != nil {
		t.Fatal(err)
	}
	clear(w.h)
	w.status = 0
	gated.ServeHTTP(w, proxiedRequest(key2))
	if w.status != http.StatusServiceUnavailable {
		t.Errorf("a lockdown that does not admit the caller: %d, want 503", w.status)
	}
}

// keyID is the id of the API key tok.
func keyID(tb testing.TB, tok string) string {
	tb.Helper()
	id, ok := authn.ParseToken(authn.PrefixAPIKey, tok)
	if !ok {
		tb.Fatalf("not an API key: %q", tok)
	}
	return authn.KeyIDPrefix + id
}

// BenchmarkRequestPathGate measures a proxied request (serve's defaults)
// with no gate, with the lockdown gate off, and with a lockdown in force
// that admits the caller.
func BenchmarkRequestPathGate(b *testing.B) {
	l := mustOpenLockdown(b)
	for _, c := range []struct {
		name string
		gate gateway.Gate
		on   bool
	}{
		{"none", nil, false},
		{"lockdown-off", l, false},
		{"lockdown-admits", l, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			g, key := mustOpenHotPathGate(b, c.gate)
			if c.on {
				l.Set(context.Background(), lockdown.State{Incident: "inc_1", Allow: []string{"api_key:" + keyID(b, key)}})
			}
			req := proxiedRequest(key)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				serveOnce(b, g, w, req)
			}
		})
	}
}
