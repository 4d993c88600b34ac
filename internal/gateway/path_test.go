package gateway_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

func TestCheckPath(t *testing.T) {
	tests := []struct {
		name, path string
		ok         bool
	}{
		{"root", "/", true},
		{"one segment", "/a", true},
		{"trailing slash", "/a/", true},
		{"dot inside", "/a/b.c", true},
		{"leading dots", "/a/..b", true},
		{"encoded letter", "/a/%41", true},
		{"path parameter (the route decides)", "/a;b/c", true},
		{"encoded path parameter (the route decides)", "/a%3Bb/c", true},
		{"tilde", "/%7Euser", true},
		{"dot file", "/a/.well", true},
		{"inner encoded space", "/a/b%20c", true},
		{"inner plus", "/a/b+c", true},
		{"NFKC-stable letters", "/a/%C3%BCber", true},
		{"raw UTF-8", "/a/über", true},
		{"CJK", "/a/%E6%97%A5%E6%9C%AC", true},

		{"empty", "", false},
		{"relative", "a", false},
		{"asterisk", "*", false},
		{"dot-dot", "/a/../b", false},
		{"lone dot-dot", "/..", false},
		{"trailing dot segment", "/a/.", false},
		{"leading dot segment", "/./a", false},
		{"double slash", "/a//b", false},
		{"leading double slash", "//a", false},
		{"backslash", "/a\\b", false},
		{"encoded dot-dot", "/a/%2e%2e/b", false},
		{"encoded dot upper", "/a/%2E/b", false},
		{"encoded slash", "/a%2fb", false},
		{"encoded slash upper", "/a%2Fb", false},
		{"encoded backslash", "/a%5cb", false},
		{"double encoding", "/a/%252e", false},
		{"encoded NUL", "/a/%00", false},
		{"NUL", "/a/\x00", false},
		{"encoded LF", "/a/%0a", false},
		{"encoded tab", "/a/%09b", false},
		{"tab", "/a/\tb", false},
		{"DEL", "/a/%7f", false},
		{"lone percent", "/a/%", false},
		{"short escape", "/a/%4", false},
		{"non-hex escape", "/a/%zz", false},
		{"IIS %u dot", "/a/%u002e%u002e/b", false},
		{"IIS %u slash", "/a%u2215b", false},
		{"matrix dot-dot", "/a/..;x/b", false},
		{"Tomcat /.;/", "/a/.;/b", false},
		{"encoded matrix dot-dot", "/a/..%3Bx/b", false},
		{"parameter-only segment", "/a/;x/b", false},
		{"encoded parameter-only segment", "/a/%3bx/b", false},
		{"raw space", "/a b", false},
		{"fragment", "/a#b", false},
		{"raw query mark", "/?", false},
		{"encoded fragment", "/a%23b", false},
		{"encoded query", "/a%3Fb", false},
		{"encoded query lower", "/a%3fb", false},
		{"trailing dot", "/a/admin./b", false},
		{"trailing dots", "/a/b..", false},
		{"trailing dot last", "/a/admin.", false},
		{"trailing dot before parameter", "/a/admin.;x/b", false},
		{"trailing encoded space", "/a/admin%20/b", false},
		{"trailing plus", "/a/admin+/b", false},
		{"trailing encoded plus", "/a/admin%2b", false},
		{"overlong slash", "/a/%C0%AFb", false},
		{"overlong dot-dot", "/a/%C0%AE%C0%AE/b", false},
		{"3-byte overlong slash", "/a/%E0%80%AF", false},
		{"surrogate", "/a/%ED%A0%80", false},
		{"invalid byte", "/a/%FF", false},
		{"truncated sequence", "/a/%C3", false},
		{"raw invalid byte", "/a/\xff", false},
		{"fullwidth solidus", "/a%EF%BC%8Fb", false},
		{"fullwidth dots", "/a/%EF%BC%8E%EF%BC%8E/b", false},
		{"fullwidth letter", "/a/%EF%BD%81dmin", false},
		{"one dot leader", "/a/%E2%80%A4%E2%80%A4/b", false},
		{"small full stop", "/a/%EF%B9%92", false},
		{"fullwidth reverse solidus", "/a%EF%BC%BCb", false},
		{"ligature", "/a/%EF%AC%81le", false},
		{"no-break space", "/a/admin%C2%A0", false},
		{"ideographic space", "/a/admin%E3%80%80", false},
		{"Kelvin sign", "/a/%E2%84%AAey", false},
		{"long s", "/a/%C5%BFecret", false},
		{"dotless i", "/a/adm%C4%B1n", false},
		{"dotted capital I", "/a/%C4%B0d", false},
		{"soft hyphen", "/a/ad%C2%ADmin", false},
		{"zero-width space", "/a/ad%E2%80%8Bmin", false},
		{"right-to-left override", "/a/%E2%80%AEnimda", false},
		{"BOM", "/a/%EF%BB%BFadmin", false},
		{"division slash", "/a%E2%88%95b", false},
		{"fraction slash", "/a%E2%81%84b", false},
		{"set minus", "/a%E2%88%96b", false},
		{"yen sign", "/a%C2%A5b", false},
		{"won sign", "/a%E2%82%A9b", false},
		{"ideographic full stop", "/a/%E3%80%82%E3%80%82/b", false},
	}
	for _, tt := range tests {
		err := gateway.CheckPath(tt.path)
		if tt.ok && err != nil {
			t.Errorf("%s: CheckPath(%q) = %v, want ok", tt.name, tt.path, err)
		}
		if !tt.ok && err == nil {
			t.Errorf("%s: CheckPath(%q) accepted", tt.name, tt.path)
		}
		if err != nil && gatehouse.ErrorCode(err) != gatehouse.EINVALID {
			t.Errorf("%s: %v is not EINVALID", tt.name, err)
		}
	}
}

// seenUpstream is an upstream that remembers the request target and path
// of each request it served.
type seenUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	uris []string
}

func newSeenUpstream(t *testing.T) *seenUpstream {
	u := &seenUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.uris = append(u.uris, r.RequestURI)
		u.mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *seenUpstream) take() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.uris
	u.uris = nil
	return s
}

// rawStatus sends one request line and headers as written, so no client
// library cleans the path first.
func rawStatus(t *testing.T, addr, target string, headers ...string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"+strings.Join(headers, "\r\n")+"\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: read response: %v", target, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// TestPathMatrix sends every variant of encoding, case and path parameter
// through a real listener, to a layout of nested prefixes where the
// caller's key may read /api/ and /p/ but not /api/admin/ or /p/admin/.
// Nothing may reach an upstream that could read it as an admin path, and
// what does reach the upstream is exactly the path that was authorized and
// audited. The same matrix goes through forward-auth, where a refusal is
// 403.
func TestPathMatrix(t *testing.T) {
	up := newSeenUpstream(t)
	aud := &memAuditor{}
	br := gatehouse.Breaker{ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20, OpenTimeout: 30 * time.Second, HalfOpenRequests: 1}
	g, tok := MustOpenGatewayWith(t, up.URL, func(c *gateway.Config) {
		c.Auditor = aud
		c.ForwardAuth = gateway.ForwardAuth{Proxy: gateway.ProxyTraefik}
		c.Routes = []gatehouse.Route{
			{Name: "root", PathPrefix: "/", Upstream: up.URL, Scopes: []string{"bench"}, Breaker: br},
			{Name: "api", PathPrefix: "/api/", Upstream: up.URL, Scopes: []string{"bench"}, Breaker: br},
			{Name: "api-admin", PathPrefix: "/api/admin/", Upstream: up.URL, Scopes: []string{"admin"}, Breaker: br},
			{Name: "params", PathPrefix: "/p/", Upstream: up.URL, Scopes: []string{"bench"}, Breaker: br, AllowPathParams: true},
			{Name: "params-admin", PathPrefix: "/p/admin/", Upstream: up.URL, Scopes: []string{"admin"}, Breaker: br, AllowPathParams: true},
			{Name: "strip", PathPrefix: "/s/", Upstream: up.URL + "/base", Scopes: []string{"bench"}, Breaker: br, StripPrefix: true},
			{Name: "strip-admin", PathPrefix: "/s/admin/", Upstream: up.URL + "/base/admin", Scopes: []string{"admin"}, Breaker: br, StripPrefix: true},
		}
	})
	front := httptest.NewServer(g)
	defer front.Close()
	addr := strings.TrimPrefix(front.URL, "http://")

	tests := []struct {
		name, target string
		status       int
		upstream     string // request target the upstream saw, for 200
	}{
		{"plain", "/api/x", 200, "/api/x"},
		{"encoded unreserved is forwarded decoded", "/api/sign%61ls", 200, "/api/signals"},
		{"longer name is not the admin prefix", "/api/adminx/y", 200, "/api/adminx/y"},
		{"admin subtree", "/api/admin/y", 403, ""},
		{"admin prefix itself", "/api/admin", 403, ""},
		{"upper-case admin", "/api/ADMIN/y", 400, ""},
		{"mixed-case admin", "/api/Admin", 400, ""},
		{"upper-case api under the root route", "/API/x", 400, ""},
		{"upper-case everything", "/API/ADMIN/y", 400, ""},
		{"case variant with no longer route is fine", "/api/X", 200, "/api/X"},
		{"path parameter hides admin", "/api/admin;x/y", 400, ""},
		{"encoded path parameter hides admin", "/api/admin%3Bx/y", 400, ""},
		{"encoded lower path parameter hides admin", "/api/admin%3bx/y", 400, ""},
		{"path parameter on a route without opt-in", "/api/x;jsessionid=1", 400, ""},
		{"path parameter on the root route", "/x;a", 400, ""},
		{"opted-in path parameter", "/p/x;v=1", 200, "/p/x;v=1"},
		{"opted-in encoded path parameter", "/p/x%3Bv=1/y", 200, "/p/x;v=1/y"},
		{"opted-in parameter hiding admin", "/p/admin;x/y", 400, ""},
		{"opted-in parameter-only segment", "/p/;x/admin/y", 400, ""},
		{"opted-in Tomcat dot", "/p/.;/admin/y", 400, ""},
		{"opted-in dot-dot parameter", "/p/x/..;/admin/y", 400, ""},
		{"opted-in upper-case admin", "/p/ADMIN/y", 400, ""},
		{"opted-in upper-case admin with parameter", "/p/ADMIN;x/y", 400, ""},
		{"opted-in admin", "/p/admin/y", 403, ""},
		{"strip prefix", "/s/x", 200, "/base/x"},
		{"strip prefix upper-case admin", "/s/ADMIN/x", 400, ""},
		{"strip prefix parameter", "/s/admin;x/x", 400, ""},
		{"trailing dot (IIS)", "/api/admin./y", 400, ""},
		{"trailing encoded space (IIS)", "/api/admin%20/y", 400, ""},
		{"trailing plus", "/api/admin+/y", 400, ""},
		{"trailing encoded plus", "/api/admin%2B/y", 400, ""},
		{"overlong slash", "/api%C0%AFadmin/y", 400, ""},
		{"overlong dot-dot", "/api/x/%C0%AE%C0%AE/admin/y", 400, ""},
		{"invalid UTF-8", "/api/%FF", 400, ""},
		{"IIS %u", "/api/%u0061dmin/y", 400, ""},
		{"fullwidth letters", "/api/%EF%BD%81%EF%BD%84%EF%BD%8D%EF%BD%89%EF%BD%8E/y", 400, ""},
		{"fullwidth solidus", "/api%EF%BC%8Fadmin/y", 400, ""},
		{"fullwidth dots", "/api/x/%EF%BC%8E%EF%BC%8E/admin/y", 400, ""},
		{"Kelvin sign", "/api/%E2%84%AA", 400, ""},
		{"long s", "/api/%C5%BFecret", 400, ""},
		{"dotless i in admin", "/api/adm%C4%B1n/y", 400, ""},
		{"soft hyphen in admin", "/api/ad%C2%ADmin/y", 400, ""},
		{"no-break space", "/api/admin%C2%A0/y", 400, ""},
		{"division slash", "/api%E2%88%95admin/y", 400, ""},
		{"NFKC-stable non-ASCII is forwarded", "/api/%C3%BCber", 200, "/api/%C3%BCber"},
		{"raw UTF-8 is forwarded encoded", "/api/über", 200, "/api/%C3%BCber"},
		{"encoded NUL", "/api/admin%00/y", 400, ""},
		{"encoded tab", "/api/admin%09/y", 400, ""},
		{"encoded fragment", "/api/admin%23/y", 400, ""},
		{"encoded query", "/api/admin%3F/y", 400, ""},
		{"raw fragment", "/api/x#/../admin", 400, ""},
		{"two question marks: one reading", "/api/x?a=1?b=2", 200, "/api/x?a=1?b=2"},
		{"dot-dot", "/api/x/../admin/y", 400, ""},
		{"encoded dot-dot mixed case", "/api/x/%2e%2E/admin/y", 400, ""},
		{"double slash", "/api//admin/y", 400, ""},
		{"absolute form with parameter", "http://x/api/admin;x/y", 400, ""},
		{"absolute form upper case", "http://x/api/ADMIN/y", 400, ""},
		{"absolute form plain", "http://x/api/x", 200, "/api/x"},
	}
	key := "X-API-Key: " + tok
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up.take()
			got := rawStatus(t, addr, tt.target, key)
			seen := up.take()
			if got != tt.status {
				t.Fatalf("%s: status %d, want %d (upstream saw %q)", tt.target, got, tt.status, seen)
			}
			if tt.status != 200 {
				if len(seen) != 0 {
					t.Fatalf("%s reached the upstream as %q", tt.target, seen)
				}
				return
			}
			if len(seen) != 1 || seen[0] != tt.upstream {
				t.Fatalf("%s: upstream saw %q, want %q", tt.target, seen, tt.upstream)
			}
			// What was authorized and audited is what the upstream saw.
			e := aud.last()
			u, _ := url.Parse(seen[0])
			if want := u.Path; !strings.HasSuffix(want, strings.TrimPrefix(e.Request.Path, "/s")) || e.Request.Status != 200 {
				t.Errorf("%s: audited %q (status %d), upstream path %q", tt.target, e.Request.Path, e.Request.Status, want)
			}
		})
		if strings.HasPrefix(tt.target, "http:") || strings.ContainsAny(tt.target, "?") {
			continue
		}
		t.Run("forward-auth/"+tt.name, func(t *testing.T) {
			want := tt.status
			if want == 400 {
				want = 403
			}
			if got := rawStatus(t, addr, "/auth/verify", key, "X-Forwarded-Method: GET", "X-Forwarded-Host: x", "X-Forwarded-Uri: "+tt.target); got != want {
				t.Fatalf("forward-auth %s: %d, want %d", tt.target, got, want)
			}
		})
	}
	if seen := up.take(); len(seen) != 0 {
		t.Fatalf("forward-auth reached the upstream: %q", seen)
	}
}

// TestCaseOnlyPrefixesRefused: two prefixes that differ only in case are a
// configuration error, since a case-insensitive upstream cannot tell them
// apart.
func TestCaseOnlyPrefixesRefused(t *testing.T) {
	_, err := gateway.New(gateway.Config{
		Routes: []gatehouse.Route{
			{Name: "a", PathPrefix: "/api/", Upstream: "http://127.0.0.1:1", Scopes: []string{"x"}},
			{Name: "b", PathPrefix: "/API", Upstream: "http://127.0.0.1:1", Scopes: []string{"y"}},
		},
		Authenticator: nopAuth{}, Authorizer: nopAuthz{},
	})
	if err == nil || !strings.Contains(err.Error(), "differ only in case") {
		t.Fatalf("New = %v, want a case collision error", err)
	}
}

// FuzzCheckPath: whatever CheckPath accepts decodes to a path with no dot
// segment (also with path parameters removed), no empty segment, no
// backslash, no control character, valid NFKC UTF-8 and no segment ending
// in a dot, space or plus, so the decoded and the raw form name the same
// resource.
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{
		"/a/b", "/a/../b", "/a/%2e%2e", "/a%2fb", "/%252e", "/a//b", "/a/%41",
		"/a;x/b", "/a%3Bx/b", "/a/.;/b", "/a/;x/b", "/a/admin.", "/a/admin%20", "/a+/b",
		"/%C0%AF", "/%C0%AE%C0%AE", "/%E0%80%AF", "/%ED%A0%80", "/%u002e", "/%EF%BC%8F", "/%EF%BC%8E",
		"/%E2%84%AA", "/%C5%BF", "/ad%C2%ADmin", "/a%23b", "/a%3Fb", "/a#b", "/a b", "/a/b%20c", "/%C3%BCber", "/über", "/a\tb",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if gateway.CheckPath(raw) != nil {
			return
		}
		dec, err := url.PathUnescape(raw)
		if err != nil {
			t.Fatalf("accepted %q, which does not decode: %v", raw, err)
		}
		if strings.ContainsAny(dec, "\\\x00#?") || strings.ContainsAny(raw, " ") || strings.Contains(dec[1:], "//") {
			t.Fatalf("accepted %q decoding to %q", raw, dec)
		}
		if !utf8.ValidString(dec) || !norm.NFKC.IsNormalString(dec) {
			t.Fatalf("accepted %q decoding to invalid or non-NFKC %q", raw, dec)
		}
		for i, seg := range strings.Split(dec, "/") {
			if j := strings.IndexByte(seg, ';'); j >= 0 {
				if j == 0 {
					t.Fatalf("accepted %q with a parameter-only segment", raw)
				}
				seg = seg[:j]
			}
			if seg == "." || seg == ".." {
				t.Fatalf("accepted %q with dot segment (decoded %q)", raw, dec)
			}
			if i > 0 && seg != "" && strings.ContainsAny(seg[len(seg)-1:], ". +") {
				t.Fatalf("accepted %q with a segment ending in %q", raw, seg[len(seg)-1:])
			}
		}
		for _, c := range []byte(dec) {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("accepted %q with control character", raw)
			}
		}
		if strings.Count(dec, "/") != strings.Count(raw, "/") {
			t.Fatalf("accepted %q whose decoded form %q has other segments", raw, dec)
		}
	})
}

type nopAuth struct{}

func (nopAuth) Authenticate(context.Context, string) (*gatehouse.Principal, error) {
	return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "no")
}

type nopAuthz struct{}

func (nopAuthz) Decide(context.Context, *authz.Input) (authz.Decision, error) {
	return authz.Decision{}, nil
}
