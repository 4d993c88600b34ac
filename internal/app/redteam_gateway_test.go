package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Gateway holes found by the red team (copied from branch w-red), closed:
// forward-auth headers a backend reads as the path or method, Upgrade
// tunnels, the pre-auth limit at /auth/verify, and body controls under
// forward-auth.

// TestRedForwardAuthPathHeadersReachBackend: behind the README's nginx
// snippet, a caller sends an allowed request (the public route, or a read
// it is allowed) with a header that common backends read as the request
// path (X-Original-URL: IIS URL Rewrite, Symfony < 3.4.14 / Zend /
// Laminas; X-Rewrite-URL: Symfony, Magento) or as the method
// (X-HTTP-Method-Override & co: Express method-override, Spring
// HiddenHttpMethodFilter variants, ASP.NET Web API, Google APIs). Gatehouse
// checks the request line nginx saw and answers 200; nginx passes the
// header to the backend, which serves the admin path or another method.
// In proxy mode Gatehouse scrubs exactly these headers (scrubForwarded,
// method override); in forward-auth it must refuse them (it cannot remove
// them), or the snippet must clear them.
func TestRedForwardAuthPathHeadersReachBackend(t *testing.T) {
	h, base, keys := redNginx(t, "", "")
	client := loopbackClient(t, "127.0.0.2")
	tests := []struct {
		name, method, path, key string
		forged                  hdr
	}{
		{"X-Original-URL on public route", "GET", "/public/x", "", hdr{"X-Original-URL", "/api/v1/signals/admin/x"}},
		{"x-original-url lower", "GET", "/public/x", "", hdr{"x-original-url", "/api/v1/signals/admin/x"}},
		{"X-Rewrite-URL on public route", "GET", "/public/x", "", hdr{"X-Rewrite-URL", "/api/v1/signals/admin/x"}},
		{"X-Original-URL with reader", "GET", "/api/v1/signals/x", "read:signals", hdr{"X-Original-URL", "/api/v1/signals/admin/x"}},
		{"X-HTTP-Method-Override on reader GET", "GET", "/api/v1/signals/x", "read:signals", hdr{"X-HTTP-Method-Override", "DELETE"}},
		{"X-HTTP-Method-Override on writer POST", "POST", "/api/v1/signals/x", "write:signals", hdr{"X-HTTP-Method-Override", "DELETE"}},
		{"X-Method-Override", "POST", "/api/v1/signals/x", "write:signals", hdr{"X-Method-Override", "DELETE"}},
		{"X-HTTP-Method", "POST", "/api/v1/signals/x", "write:signals", hdr{"X-HTTP-Method", "DELETE"}},
		{"X-Forwarded-Prefix", "GET", "/public/x", "", hdr{"X-Forwarded-Prefix", "/api/v1/signals/admin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.up.take()
			req, _ := http.NewRequest(tt.method, base+tt.path, strings.NewReader(""))
			req.Header[tt.forged.k] = []string{tt.forged.v}
			if tt.key != "" {
				req.Header.Set("Authorization", "Bearer "+keys[tt.key].Key)
			}
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			got := h.up.take()
			if res.StatusCode == 200 && got != nil {
				for k, vs := range got.Header {
					if strings.EqualFold(k, tt.forged.k) {
						t.Errorf("checked %s %s, answered 200, and the backend received %s: %v", tt.method, tt.path, k, vs)
					}
				}
			}
		})
	}
}

// TestRedForwardAuthEscapesPreAuthLimit: the pre-authentication limit
// spares forward-auth checks whose client address is the TCP peer (meant
// for a proxy that sent no trusted X-Forwarded-For). forward_auth.
// trusted_proxies is optional, so with it unset any caller that talks to
// /auth/verify directly is "the proxy": a flood of well-formed random keys
// is never answered 429, each is looked up in the store and each is its
// own audit event. The same flood on a route is cut off (control).
func TestRedForwardAuthEscapesPreAuthLimit(t *testing.T) {
	h := MustStartWith(t, "forward_auth:\n  proxy: nginx\n")
	real := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})
	bogus := flipLast(real.Key)
	const n = 60
	count := func(url string, hdrs ...string) (limited int) {
		for i := 0; i < n; i++ {
			res := h.do("GET", url, nil, append(hdrs, "Authorization: Bearer "+bogus)...)
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == 429 {
				limited++
			}
		}
		return limited
	}
	verify := count(h.base+"/auth/verify", "X-Original-Method: GET", "X-Original-URI: /api/v1/signals/x", "X-Original-Host: app.example")
	if verify == 0 {
		t.Errorf("%d failed forward-auth checks from one direct caller, none answered 429 (pre-auth limit skipped)", n)
	}
	if n := len(h.auditEvents("authn.failure")); n >= 60 {
		t.Logf("and %d authn.failure events recorded one by one", n)
	}
	h.clock.Advance(2 * time.Minute)
	if route := count(h.base + "/api/v1/signals/x"); route == 0 {
		t.Fatalf("control: the same flood on a route was not limited either")
	}
}

