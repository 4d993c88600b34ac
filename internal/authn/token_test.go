package authn_test

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authn"
)

func TestTokenRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		tok, id, err := authn.NewToken(authn.PrefixAPIKey)
		if err != nil {
			t.Fatal(err)
		}
		if seen[tok] {
			t.Fatal("duplicate token")
		}
		seen[tok] = true
		got, ok := authn.ParseToken(authn.PrefixAPIKey, tok)
		if !ok || got != id {
			t.Fatalf("ParseToken(%q) = %q, %v; want %q", tok, got, ok, id)
		}
		if !strings.HasPrefix(tok, "gk_") || len(tok) != 58 {
			t.Fatalf("token %q: want gk_ prefix and 58 chars", tok)
		}
	}
}

func TestParseTokenRefusesDamage(t *testing.T) {
	tok, _, _ := authn.NewToken(authn.PrefixAPIKey)
	tests := map[string]string{
		"empty":          "",
		"prefix only":    "gk_",
		"other prefix":   "gx_" + tok[3:],
		"admin prefix":   authn.PrefixAdminToken + tok[3:],
		"truncated":      tok[:len(tok)-1],
		"extended":       tok + "A",
		"uppercase id":   tok[:3] + strings.ToUpper(tok[3:19]) + tok[19:],
		"missing sep":    tok[:19] + "x" + tok[20:],
		"bad char":       tok[:25] + "-" + tok[26:],
		"swapped chars":  tok[:30] + string(tok[31]) + string(tok[30]) + tok[32:],
		"checksum wrong": tok[:len(tok)-6] + "000000",
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			if s == tok {
				t.Skip("mutation produced the same token")
			}
			if _, ok := authn.ParseToken(authn.PrefixAPIKey, s); ok {
				t.Errorf("ParseToken accepted %q", s)
			}
		})
	}
	// Every single-character change is caught by the checksum or the
	// alphabet check.
	for i := 3; i < len(tok); i++ {
		for _, c := range []byte("aZ09_") {
			if tok[i] == c {
				continue
			}
			m := tok[:i] + string(c) + tok[i+1:]
			if _, ok := authn.ParseToken(authn.PrefixAPIKey, m); ok {
				t.Fatalf("single change at %d accepted: %q", i, m)
			}
		}
	}
}

func FuzzParseToken(f *testing.F) {
	tok, _, _ := authn.NewToken(authn.PrefixAPIKey)
	f.Add(tok)
	f.Add("gk_")
	f.Add("gk_aaaaaaaaaaaaaaaa_" + strings.Repeat("0", 38))
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := authn.ParseToken(authn.PrefixAPIKey, s)
		if ok && (!strings.HasPrefix(s, "gk_") || len(id) != 16 || !strings.Contains(s, id)) {
			t.Fatalf("accepted %q with id %q", s, id)
		}
	})
}
