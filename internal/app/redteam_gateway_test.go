package app_test

import (
	"fmt"
	"io"
	"net"
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
// In proxy mode Gatehouse scrubs exactly these headers (scrubHeaders,
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

// tunnelUpstream answers 101 to any Upgrade and then keeps reading HTTP
// requests on the connection, as an h2c upstream does (in HTTP/2 framing)
// and as WebSocket backends with their own sub-protocols do. It records
// every path it serves.
type tunnelUpstream struct {
	ln    net.Listener
	paths chan string
}

func newTunnelUpstream(t *testing.T) *tunnelUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &tunnelUpstream{ln: ln, paths: make(chan string, 100)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufioReader(c)
				upgraded := false
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					u.paths <- fmt.Sprintf("%s %s upgraded=%v", req.Method, req.URL.Path, upgraded)
					if up := req.Header.Get("Upgrade"); up != "" && !upgraded {
						fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", up)
						upgraded = true
						continue
					}
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	return u
}

// TestRedUpgradeTunnelsPastAuthz: any route passes Upgrade (h2c or
// websocket) to its upstream; once the upstream answers 101 the client's
// connection is a raw tunnel, and every request sent through it reaches
// the upstream with no route check, no authorization and no audit event.
// Here an anonymous caller upgrades on the public route and then asks the
// same upstream for the admin subtree. Envoy refuses upgrades unless a
// route enables them (upgrade_configs), nginx unless configured to pass
// Upgrade; h2c is never a thing to tunnel through a gateway.
func TestRedUpgradeTunnelsPastAuthz(t *testing.T) {
	up := newTunnelUpstream(t)
	h := MustStartFull(t, "", "  - name: pub-tunnel\n    path: /pub2/\n    upstream: http://"+up.ln.Addr().String()+"\n    public: true\n  - name: admin-tunnel\n    path: /pub2/admin/\n    upstream: http://"+up.ln.Addr().String()+"\n    scopes: [signals:admin]\n")
	for _, upgrade := range []string{"websocket", "h2c"} {
		t.Run(upgrade, func(t *testing.T) {
			c, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			extra := "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
			if upgrade == "h2c" {
				extra = "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
			}
			fmt.Fprintf(c, "GET /pub2/x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: %s\r\n%s\r\n", upgrade, extra)
			br := bufioReader(c)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 101 {
				t.Logf("upgrade refused: %d (defence holds)", res.StatusCode)
				return
			}
			<-up.paths
			fmt.Fprintf(c, "GET /pub2/admin/secret HTTP/1.1\r\nHost: x\r\n\r\n")
			select {
			case p := <-up.paths:
				t.Errorf("anonymous caller reached the upstream through a %s tunnel: %s", upgrade, p)
				if ev := h.requestEvents("/pub2/admin/secret"); len(ev) == 0 {
					t.Errorf("and no audit event names /pub2/admin/secret")
				}
			case <-time.After(time.Second):
			}
		})
	}
}

// TestWebSocketRouteOptIn: a route with websocket: true passes a
// WebSocket handshake (the upstream answers 101), refuses every other
// upgrade (h2c, a second token, a POST) with 400 JSON, and the route
// without it refuses the handshake too.
func TestWebSocketRouteOptIn(t *testing.T) {
	up := newTunnelUpstream(t)
	h := MustStartFull(t, "", "  - name: ws\n    path: /ws/\n    upstream: http://"+up.ln.Addr().String()+"\n    public: true\n    websocket: true\n  - name: plain\n    path: /plain/\n    upstream: http://"+up.ln.Addr().String()+"\n    public: true\n")
	tests := []struct {
		name, method, path, upgrade, connection string
		want                                    int
	}{
		{"websocket on ws route", "GET", "/ws/x", "websocket", "Upgrade", 101},
		{"WebSocket any case", "GET", "/ws/x", "WebSocket", "keep-alive, upgrade", 101},
		{"h2c on ws route", "GET", "/ws/x", "h2c", "Upgrade, HTTP2-Settings", 400},
		{"two protocols", "GET", "/ws/x", "websocket, h2c", "Upgrade", 400},
		{"POST websocket", "POST", "/ws/x", "websocket", "Upgrade", 400},
		{"no Connection upgrade", "GET", "/ws/x", "websocket", "keep-alive", 400},
		{"websocket on plain route", "GET", "/plain/x", "websocket", "Upgrade", 400},
		{"h2c on plain route", "GET", "/plain/x", "h2c", "Upgrade, HTTP2-Settings", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: %s\r\nUpgrade: %s\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n", tt.method, tt.path, tt.connection, tt.upgrade)
			res, err := http.ReadResponse(bufioReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.want)
			}
			if tt.want == 400 {
				if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("400 with Content-Type %q, want the JSON error", ct)
				}
				return
			}
			if p := <-up.paths; !strings.HasPrefix(p, "GET /ws/x ") {
				t.Errorf("upstream served %q, want the handshake on /ws/x", p)
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

// TestRedForwardAuthSkipsBodyControls: in forward-auth the body never
// reaches Gatehouse (the README snippet sends none and clears
// Content-Length), so a route's max_body — and likewise json_schema,
// the duplicate-key refusal and redaction — are not enforced: the route
// signals-write (max_body 1KiB) answers 413 through the proxy but passes
// an 8KiB body through nginx. Gatehouse should refuse forward-auth for
// routes with body controls (at config load), or have the proxy forward
// the length (X-Original-Content-Length) and enforce max_body on it, and
// say so in the README. Closed: the README's nginx snippet forwards
// X-Original-Content-Length and X-Original-Transfer-Encoding; a declared
// length over the cap, or a body of unknown length, is refused (403).
func TestRedForwardAuthSkipsBodyControls(t *testing.T) {
	h, base, keys := redNginx(t, "", "")
	writer := keys["write:signals"].Key
	big := strings.Repeat("x", 8<<10) // under nginx's in-memory body buffer
	// Control: through the proxy the cap holds.
	res := h.do("POST", h.base+"/api/v1/signals/x", strings.NewReader(big), "Authorization: Bearer "+writer)
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 413 {
		t.Fatalf("control: proxy mode answered %d to 8KiB on a 1KiB route", res.StatusCode)
	}
	client := loopbackClient(t, "127.0.0.2")
	// Design: the snippet forwards the body's framing; a declared length
	// over max_body, or a body of unknown length, is refused (403).
	tests := []struct {
		name    string
		body    string
		chunked bool
		allowed bool
	}{
		{"small body with length (control)", "{}", false, true},
		{"8KiB with Content-Length", big, false, false},
		{"8KiB chunked", big, true, false},
		{"small body chunked", "{}", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.up.take()
			var rd io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				rd = io.MultiReader(rd) // no length known: the client sends it chunked
			}
			req, _ := http.NewRequest("POST", base+"/api/v1/signals/x", rd)
			req.Header.Set("Authorization", "Bearer "+writer)
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			_, body := h.up.lastRequest()
			got := h.up.take()
			switch {
			case tt.allowed && res.StatusCode != 200:
				t.Errorf("a %d-byte body under the cap: %d, want 200", len(tt.body), res.StatusCode)
			case !tt.allowed && res.StatusCode == 200 && got != nil:
				t.Errorf("through nginx forward-auth, a %d-byte body (chunked %v) reached the backend of a route capped at 1KiB", len(body), tt.chunked)
			case !tt.allowed && res.StatusCode != 403:
				t.Errorf("refused with %d, want 403 (what nginx passes on)", res.StatusCode)
			}
		})
	}
}

// TestHTTP2SettingsNeverReachesUpstream: an h2c upgrade's settings header,
// sent without Upgrade (which would be refused), is removed before
// proxying, in any case and with '_' for '-'.
func TestHTTP2SettingsNeverReachesUpstream(t *testing.T) {
	h := MustStartWith(t, "")
	reader := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})
	for _, name := range []string{"HTTP2-Settings", "http2-settings", "HTTP2_Settings"} {
		t.Run(name, func(t *testing.T) {
			h.up.take()
			res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+reader.Key, name+": AAMAAABkAARAAAAAAAIAAAAA")
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			got := h.up.take()
			if res.StatusCode != 200 || got == nil {
				t.Fatalf("control: %d, upstream reached %v", res.StatusCode, got != nil)
			}
			for k := range got.Header {
				if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "http2-settings") {
					t.Errorf("upstream received %s", k)
				}
			}
		})
	}
}
