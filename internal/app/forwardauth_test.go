package app_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// fwdFamily names the headers one proxy writes to say which request a
// forward-auth call checks; an empty family is envoy (the request line).
type fwdFamily struct{ method, uri, host string }

var (
	nginxHeaders     = fwdFamily{"X-Original-Method", "X-Original-URI", "X-Original-Host"}
	forwardedHeaders = fwdFamily{"X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Host"}
)

func familyOf(proxy string) fwdFamily {
	switch proxy {
	case "nginx":
		return nginxHeaders
	case "envoy":
		return fwdFamily{}
	}
	return forwardedHeaders
}

// hdr is one header line exactly as sent (name case kept).
type hdr struct{ k, v string }

// verifyCall sends a forward-auth check the way proxy would for method
// and uri on host app.example, plus extra header lines, and returns the
// status and body.
func (h *harness) verifyCall(client *http.Client, proxy, method, uri string, extra ...hdr) (int, http.Header, string) {
	h.t.Helper()
	f := familyOf(proxy)
	var req *http.Request
	var err error
	if proxy == "envoy" {
		req, err = http.NewRequest(method, h.base+"/auth/verify"+uri, nil)
	} else {
		req, err = http.NewRequest("GET", h.base+"/auth/verify", nil)
	}
	if err != nil {
		h.t.Fatal(err)
	}
	req.Host = "app.example"
	if f.method != "" {
		req.Header[f.method] = []string{method}
		req.Header[f.uri] = []string{uri}
		req.Header[f.host] = []string{"app.example"}
	}
	for _, e := range extra {
		req.Header[e.k] = append(req.Header[e.k], e.v) // as written: no canonicalisation
	}
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

// steering returns header lines of every family but proxy's that point a
// check at the public route, in the given case.
func steering(proxy string, lower bool) [][]hdr {
	c := func(s string) string {
		if lower {
			return strings.ToLower(s)
		}
		return s
	}
	var out [][]hdr
	for _, f := range []fwdFamily{nginxHeaders, forwardedHeaders} {
		if f == familyOf(proxy) {
			continue
		}
		out = append(out,
			[]hdr{{c(f.method), "GET"}, {c(f.uri), "/public/x"}},
			[]hdr{{c(f.uri), "/public/x"}},
			[]hdr{{c(f.method), "GET"}, {c(f.uri), "/api/v1/signals/admin/x"}, {c(f.host), "other.example"}},
		)
	}
	return append(out, []hdr{{c("X-Envoy-Original-Path"), "/public/x"}})
}

// TestForwardAuthProxyFamilies is the forward-auth matrix against the
// listener: for each proxy, the legitimate checks pass, and no header of
// another family — upper or lower case, with or without a credential —
// changes the request that is checked; a missing or repeated header of
// the proxy's own family, and any inbound X-Gatehouse-* header, are 403.
func TestForwardAuthProxyFamilies(t *testing.T) {
	for _, proxy := range []string{"nginx", "traefik", "caddy", "envoy"} {
		t.Run(proxy, func(t *testing.T) {
			h := MustStartWith(t, "forward_auth:\n  proxy: "+proxy+"\n")
			reader := h.createKey(map[string]any{"name": "r", "scopes": []string{"read:signals"}})
			boss := h.createKey(map[string]any{"name": "b", "scopes": []string{"signals:admin"}})
			auth := hdr{"Authorization", "Bearer " + reader.Key}

			t.Run("legitimate", func(t *testing.T) {
				tests := []struct {
					name, method, uri string
					extra             []hdr
					status            int
				}{
					{"reader reads", "GET", "/api/v1/signals/x?y=1", []hdr{auth}, 200},
					{"reader with X-API-Key", "GET", "/api/v1/signals/x", []hdr{{"X-API-Key", reader.Key}}, 200},
					{"anonymous on public route", "GET", "/public/x", nil, 200},
					{"anonymous on protected route", "GET", "/api/v1/signals/x", nil, 401},
					{"reader on admin subtree", "GET", "/api/v1/signals/admin/x", []hdr{auth}, 403},
					{"reader posts", "POST", "/api/v1/signals/x", []hdr{auth}, 403},
					{"admin on admin subtree", "GET", "/api/v1/signals/admin/x", []hdr{{"X-API-Key", boss.Key}}, 200},
					{"traversal", "GET", "/api/v1/signals/../signals/admin/x", []hdr{auth}, 403},
					{"unknown route", "GET", "/nowhere", []hdr{auth}, 403},
				}
				for _, tt := range tests {
					t.Run(tt.name, func(t *testing.T) {
						code, rh, body := h.verifyCall(nil, proxy, tt.method, tt.uri, tt.extra...)
						if code != tt.status {
							t.Fatalf("status %d, want %d: %s", code, tt.status, body)
						}
						if code == 200 && tt.name == "reader reads" && (rh.Get("X-Gatehouse-Principal") != reader.ID || rh.Get("X-Gatehouse-Scopes") != "read:signals") {
							t.Errorf("answer headers: %v", rh)
						}
					})
				}
			})

			t.Run("other families cannot steer", func(t *testing.T) {
				for _, lower := range []bool{false, true} {
					for i, forged := range steering(proxy, lower) {
						for _, cred := range [][]hdr{nil, {auth}} {
							name := fmt.Sprintf("lower=%v/%d/%s/credential=%v", lower, i, forged[0].k, cred != nil)
							t.Run(name, func(t *testing.T) {
								code, _, body := h.verifyCall(nil, proxy, "GET", "/api/v1/signals/admin/x", append(forged, cred...)...)
								if code != 403 {
									t.Fatalf("status %d, want 403: %s", code, body)
								}
								if !strings.Contains(body, "disagrees") {
									t.Errorf("refusal does not say why: %s", body)
								}
							})
						}
					}
				}
			})

			t.Run("agreeing headers of another family are harmless", func(t *testing.T) {
				extra := []hdr{auth}
				for _, f := range []fwdFamily{nginxHeaders, forwardedHeaders} {
					if f != familyOf(proxy) {
						extra = append(extra, hdr{f.uri, "/api/v1/signals/x"}, hdr{strings.ToLower(f.method), "get"}, hdr{f.host, "APP.example"})
					}
				}
				code, _, body := h.verifyCall(nil, proxy, "GET", "/api/v1/signals/x", extra...)
				if code != 200 {
					t.Fatalf("status %d: %s", code, body)
				}
			})

			if proxy != "envoy" {
				f := familyOf(proxy)
				t.Run("no fallback to another family", func(t *testing.T) {
					for _, other := range []fwdFamily{nginxHeaders, forwardedHeaders} {
						if other == f {
							continue
						}
						// Only the other family, pointing at the public route.
						req, _ := http.NewRequest("GET", h.base+"/auth/verify", nil)
						req.Header[other.method] = []string{"GET"}
						req.Header[other.uri] = []string{"/public/x"}
						req.Header[other.host] = []string{"app.example"}
						res, err := http.DefaultClient.Do(req)
						if err != nil {
							t.Fatal(err)
						}
						b, _ := io.ReadAll(res.Body)
						res.Body.Close()
						if res.StatusCode != 403 || !strings.Contains(strings.ToLower(string(b)), strings.ToLower(f.uri)) {
							t.Errorf("%s only: %d %s; want 403 naming %s", other.uri, res.StatusCode, b, f.uri)
						}
					}
				})
				t.Run("own family repeated or missing", func(t *testing.T) {
					tests := []struct {
						name  string
						extra []hdr
					}{
						{"uri twice, different", []hdr{{f.uri, "/public/x"}}},
						{"uri twice, lower case", []hdr{{strings.ToLower(f.uri), "/public/x"}}},
						{"uri twice, same", []hdr{{f.uri, "/api/v1/signals/admin/x"}}},
						{"method twice", []hdr{{f.method, "GET"}}},
						{"host twice", []hdr{{strings.ToLower(f.host), "other.example"}}},
					}
					for _, tt := range tests {
						t.Run(tt.name, func(t *testing.T) {
							if code, _, body := h.verifyCall(nil, proxy, "GET", "/api/v1/signals/admin/x", tt.extra...); code != 403 {
								t.Fatalf("status %d, want 403: %s", code, body)
							}
						})
					}
					req, _ := http.NewRequest("GET", h.base+"/auth/verify", nil)
					req.Header[f.method] = []string{"GET"}
					req.Header[f.uri] = []string{"/public/x"}
					if res := h.do2(req); res != 403 {
						t.Errorf("without %s: %d, want 403", f.host, res)
					}
				})
			} else {
				t.Run("envoy needs the path after /auth/verify", func(t *testing.T) {
					res := h.do("GET", h.base+"/auth/verify", nil)
					if res.StatusCode != 403 {
						t.Errorf("bare /auth/verify: %d, want 403", res.StatusCode)
					}
				})
			}

			t.Run("inbound X-Gatehouse headers", func(t *testing.T) {
				for _, name := range []string{"X-Gatehouse-Principal", "x-gatehouse-scopes", "X-GATEHOUSE-DECISION-ID", "X_Gatehouse_Principal", "x-gatehouse-tier"} {
					for _, cred := range [][]hdr{nil, {auth}} {
						code, _, body := h.verifyCall(nil, proxy, "GET", "/public/x", append([]hdr{{name, "key_admin"}}, cred...)...)
						if code != 403 {
							t.Errorf("%s (credential %v): %d, want 403: %s", name, cred != nil, code, body)
						}
					}
				}
				if code, _, body := h.verifyCall(nil, proxy, "GET", "/public/x", hdr{"X_Api_Key", reader.Key}); code != 403 {
					t.Errorf("X_Api_Key: %d, want 403: %s", code, body)
				}
			})

			t.Run("malformed forwarded values", func(t *testing.T) {
				for _, uri := range []string{"http://evil.example/public/x", "//evil.example/public/x", "/public/%2e%2e/api/v1/signals/admin/x"} {
					if proxy == "envoy" && strings.HasPrefix(uri, "http") {
						continue // cannot be a request-line path after /auth/verify
					}
					if code, _, body := h.verifyCall(nil, proxy, "GET", uri); code != 403 {
						t.Errorf("uri %q: %d, want 403: %s", uri, code, body)
					}
				}
			})

			if got, _ := h.up.lastRequest(); got != nil {
				t.Errorf("forward-auth reached the upstream: %s", got.URL.Path)
			}
		})
	}
}

// do2 sends req and returns its status.
func (h *harness) do2(req *http.Request) int {
	h.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// TestForwardAuthNotConfigured: with no forward_auth.proxy, no header is
// safe to read, so every check is refused with a message saying what to
// configure.
func TestForwardAuthNotConfigured(t *testing.T) {
	h := MustStart(t)
	for _, proxy := range []string{"nginx", "traefik", "envoy"} {
		code, _, body := h.verifyCall(nil, proxy, "GET", "/public/x")
		if code != 403 || !strings.Contains(body, "forward_auth.proxy") {
			t.Errorf("%s headers: %d %s; want 403 naming forward_auth.proxy", proxy, code, body)
		}
	}
	if ev := h.auditEvents("forward_auth.refused"); len(ev) == 0 {
		t.Error("refused forward-auth calls are not audited")
	}
	if n := strings.Count(h.logs.String(), "forward_auth.proxy is not set"); n != 1 {
		t.Errorf("operator warned %d times, want once", n)
	}
}

// loopbackClient dials from the given local loopback address, so a test
// can be a second peer (127.0.0.2) next to 127.0.0.1.
func loopbackClient(t *testing.T, local string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// TestForwardAuthTrustedProxies: with forward_auth.trusted_proxies only
// those peers are answered.
func TestForwardAuthTrustedProxies(t *testing.T) {
	h := MustStartWith(t, "forward_auth:\n  proxy: nginx\n  trusted_proxies: [127.0.0.2]\n")
	other := loopbackClient(t, "127.0.0.2")
	if code, _, body := h.verifyCall(other, "nginx", "GET", "/public/x"); code != 200 {
		t.Fatalf("from the trusted proxy: %d %s", code, body)
	}
	code, _, body := h.verifyCall(nil, "nginx", "GET", "/public/x")
	if code != 403 || !strings.Contains(body, "trusted_proxies") {
		t.Fatalf("from 127.0.0.1: %d %s; want 403", code, body)
	}
}

// TestREADMEProxySnippets checks what can be checked here of the Traefik
// and Caddy snippets (neither proxy runs in these tests): Traefik's
// authResponseHeadersRegex — Go regexp, as Traefik uses — strips every
// spelling of an X-Gatehouse-* header and nothing else, and the Caddy
// route removes inbound X-Gatehouse-* before the check and the
// credentials after it.
func TestREADMEProxySnippets(t *testing.T) {
	traefik := readmeSnippet(t, "**Traefik** (`ForwardAuth`", "yaml")
	m := regexp.MustCompile(`authResponseHeadersRegex: "([^"]+)"`).FindStringSubmatch(traefik)
	if m == nil {
		t.Fatalf("no authResponseHeadersRegex in:\n%s", traefik)
	}
	re := regexp.MustCompile(m[1])
	for _, name := range []string{"X-Gatehouse-Principal", "X-Gatehouse-Scopes", "X-Gatehouse-Tier", http.CanonicalHeaderKey("x-gatehouse-decision-id"), "X_gatehouse_principal", "X-GATEHOUSE-ROLE"} {
		if !re.MatchString(name) {
			t.Errorf("Traefik regex %q does not strip %s", m[1], name)
		}
	}
	for _, name := range []string{"Authorization", "X-Gatehousex", "X-My-Gatehouse-Principal", "Content-Type"} {
		if re.MatchString(name) {
			t.Errorf("Traefik regex %q strips %s", m[1], name)
		}
	}
	for _, want := range []string{"trustForwardHeader: false", "Authorization: \"\"", "X-API-Key: \"\"", "middlewares: [gatehouse, gatehouse-no-credentials]"} {
		if !strings.Contains(traefik, want) {
			t.Errorf("Traefik snippet lacks %q", want)
		}
	}
	caddy := readmeSnippet(t, "**Caddy** (`forward_auth`", "caddy")
	order := []string{"route {", "request_header -X-Gatehouse-*", "forward_auth 127.0.0.1:8080", "uri /auth/verify", "copy_headers X-Gatehouse-Principal X-Gatehouse-Scopes X-Gatehouse-Decision-Id", "request_header -Authorization", "request_header -X-API-Key", "reverse_proxy"}
	at := 0
	for _, want := range order {
		i := strings.Index(caddy[at:], want)
		if i < 0 {
			t.Fatalf("Caddy snippet lacks %q after position %d:\n%s", want, at, caddy)
		}
		at += i + len(want)
	}
}
