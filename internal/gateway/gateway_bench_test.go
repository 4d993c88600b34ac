package gateway_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/store/sqlite"
)

// MustOpenGateway returns a gateway with one route to upstream and a key
// holding the route's scope.
func MustOpenGateway(tb testing.TB, upstream string) (*gateway.Gateway, string) {
	tb.Helper()
	return MustOpenGatewayWith(tb, upstream, nil)
}

// MustOpenGatewayWith lets a test adjust the config before the gateway is
// built.
func MustOpenGatewayWith(tb testing.TB, upstream string, adjust func(*gateway.Config)) (*gateway.Gateway, string) {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "g.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	// As in the app: every use is noted for last_used_at (in memory).
	keys, err := authn.NewKeys(authn.KeysConfig{Store: st, Pepper: make([]byte, 32), Usage: authn.NewUsage(authn.UsageConfig{Store: st})})
	if err != nil {
		tb.Fatal(err)
	}
	_, tok, err := keys.Create(context.Background(), authn.NewKey{Name: "b", Scopes: []string{"bench"}})
	if err != nil {
		tb.Fatal(err)
	}
	engine, err := authz.New(context.Background(), authz.Config{}, authz.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := gateway.Config{
		Routes:        []gatehouse.Route{{Name: "bench", PathPrefix: "/api/", Upstream: upstream, Scopes: []string{"bench"}, MaxBody: 1 << 20, Timeout: 30 * time.Second, Breaker: gatehouse.Breaker{ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20, OpenTimeout: 30 * time.Second, HalfOpenRequests: 1}}},
		Authenticator: keys,
		Authorizer:    engine,
		MaxHeaders:    100,
	}
	if adjust != nil {
		adjust(&cfg)
	}
	g, err := gateway.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return g, tok
}

// discardWriter is a ResponseWriter that keeps the status and nothing else.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(b), nil
}
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

// BenchmarkRequestPathRefused measures every step before the proxy, on a
// request refused at the scope check.
func BenchmarkRequestPathRefused(b *testing.B) {
	g, _ := MustOpenGateway(b, "http://127.0.0.1:1")
	req := httptest.NewRequest("GET", "/api/x", nil)
	req.Header.Set("X-API-Key", "gk_aaaaaaaaaaaaaaaa_bad")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		g.ServeHTTP(w, req)
	}
}

// BenchmarkRequestPathProxied measures a whole authenticated request
// through the proxy to a local upstream.
func BenchmarkRequestPathProxied(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer up.Close()
	g, tok := MustOpenGateway(b, up.URL)
	front := httptest.NewServer(g)
	defer front.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", front.URL+"/api/x", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Fatalf("status %d", res.StatusCode)
			}
		}
	})
}
