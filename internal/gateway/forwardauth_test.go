package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/gateway"
)

// TestForwardAuthRefusesRereadHeaders: a forward-auth check carrying a
// header some backend reads as the request's path, prefix or method is
// refused (403) for every proxy kind, in any case and with '_' for '-';
// the proxy would pass it on to the backend, where it would override the
// request line Gatehouse checked. The same check without it is allowed.
func TestForwardAuthRefusesRereadHeaders(t *testing.T) {
	families := map[string][3]string{
		gateway.ProxyNginx:   {"X-Original-Method", "X-Original-Uri", "X-Original-Host"},
		gateway.ProxyTraefik: {"X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Host"},
		gateway.ProxyCaddy:   {"X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Host"},
	}
	forged := []string{
		"X-Original-Url", "x-original-url", "X_Original_URL", "X-Original-Path", "X-Original_Uri",
		"X-Rewrite-Url", "X_Rewrite_Url",
		"X-Forwarded-Prefix", "X_Forwarded_Prefix",
		"X-Http-Method-Override", "X_HTTP_Method_Override", "X-Method-Override", "X-Http-Method", "x_http_method",
	}
	for proxy, fam := range families {
		g, tok := MustOpenGatewayWith(t, "http://127.0.0.1:1", func(c *gateway.Config) {
			c.ForwardAuth = gateway.ForwardAuth{Proxy: proxy}
		})
		check := func(extra string) int {
			r := httptest.NewRequest("GET", "/auth/verify", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			r.Header[fam[0]] = []string{"GET"}
			r.Header[fam[1]] = []string{"/api/x"}
			r.Header[fam[2]] = []string{"api.example"}
			if extra != "" {
				r.Header[extra] = []string{"/api/admin"}
			}
			w := httptest.NewRecorder()
			g.ServeHTTP(w, r)
			return w.Code
		}
		if code := check(""); code != http.StatusOK {
			t.Fatalf("%s: control check: %d, want 200", proxy, code)
		}
		for _, k := range forged {
			if code := check(k); code != http.StatusForbidden {
				t.Errorf("%s: check with %s: %d, want 403", proxy, k, code)
			}
		}
	}
}
