package gateway_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/gateway"
)

func TestCheckPath(t *testing.T) {
	ok := []string{"/", "/a", "/a/", "/a/b.c", "/a/..b", "/a/b..", "/a/%41", "/a;b/c", "/%7Euser", "/a/.well", "/a/b%20c"}
	bad := []string{"", "a", "/a/../b", "/..", "/a/.", "/./a", "/a//b", "//a", "/a\\b", "/a/%2e%2e/b", "/a/%2E/b",
		"/a%2fb", "/a%2Fb", "/a%5cb", "/a/%252e", "/a/%00", "/a/\x00", "/a/%0a", "/a/%7f", "/a/%", "/a/%4", "/a/%zz", "/a/..;x/b", "/a/.;/b"}
	for _, p := range ok {
		if err := gateway.CheckPath(p); err != nil {
			t.Errorf("CheckPath(%q) = %v, want ok", p, err)
		}
	}
	for _, p := range bad {
		if err := gateway.CheckPath(p); err == nil {
			t.Errorf("CheckPath(%q) accepted", p)
		}
	}
}

// FuzzCheckPath: whatever CheckPath accepts decodes to a path with no dot
// segment, no empty segment, no backslash and no control character, so the
// decoded and the raw form name the same resource.
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"/a/b", "/a/../b", "/a/%2e%2e", "/a%2fb", "/%252e", "/a//b", "/a/%41"} {
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
		if strings.ContainsAny(dec, "\\\x00") || strings.Contains(dec[1:], "//") {
			t.Fatalf("accepted %q decoding to %q", raw, dec)
		}
		for _, seg := range strings.Split(dec, "/") {
			if i := strings.IndexByte(seg, ';'); i >= 0 {
				seg = seg[:i]
			}
			if seg == "." || seg == ".." {
				t.Fatalf("accepted %q with dot segment (decoded %q)", raw, dec)
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
