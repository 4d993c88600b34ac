package authn_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/secrets"
)

func MustOpenTokens(tb testing.TB, alg string) *authn.Tokens {
	tb.Helper()
	tok, err := authn.NewTokens(context.Background(), authn.TokensConfig{
		Issuer: "https://gatehouse.test", Alg: alg,
		Keys: secrets.File{Path: filepath.Join(tb.TempDir(), "signing-keys.json")},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func TestTokensRoundTrip(t *testing.T) {
	for _, alg := range []string{authn.AlgEdDSA, authn.AlgES256} {
		t.Run(alg, func(t *testing.T) {
			tok := MustOpenTokens(t, alg)
			p := gatehouse.NewPrincipal("cl_x", gatehouse.KindClient, "x", []string{"a", "b"}, "free")
			s, exp, err := tok.Issue(p, []string{"a"})
			if err != nil || time.Until(exp) < 14*time.Minute {
				t.Fatalf("issue: %v, exp %v", err, exp)
			}
			got, err := tok.Authenticate(context.Background(), s)
			if err != nil || got.ID != "cl_x" || got.ScopesHeader != "a" || got.Tier != "free" || got.Kind != gatehouse.KindClient {
				t.Fatalf("authenticate: %+v %v", got, err)
			}
		})
	}
}

func benchTokens(b *testing.B) (*authn.Tokens, string) {
	tok := MustOpenTokens(b, authn.AlgEdDSA)
	s, _, err := tok.Issue(gatehouse.NewPrincipal("cl_x", gatehouse.KindClient, "x", []string{"a"}, ""), []string{"a"})
	if err != nil {
		b.Fatal(err)
	}
	return tok, s
}

// BenchmarkVerifyJWTCacheHit: a token seen before.
func BenchmarkVerifyJWTCacheHit(b *testing.B) {
	tok, s := benchTokens(b)
	ctx := context.Background()
	tok.Authenticate(ctx, s)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tok.Authenticate(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyJWTCacheMiss: full EdDSA verification of a new token
// (the signing-key rotation clears the cache between calls is too slow, so
// each iteration verifies a distinct pre-issued token).
func BenchmarkVerifyJWTCacheMiss(b *testing.B) {
	tok, _ := benchTokens(b)
	p := gatehouse.NewPrincipal("cl_x", gatehouse.KindClient, "x", []string{"a"}, "")
	const n = 4096
	toks := make([]string, n)
	for i := range toks {
		toks[i], _, _ = tok.Issue(p, []string{"a"})
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == n {
			b.StopTimer()
			for j := range toks {
				toks[j], _, _ = tok.Issue(p, []string{"a"})
			}
			i = 0
			b.StartTimer()
		}
		if _, err := tok.Authenticate(ctx, toks[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkIssueJWT(b *testing.B) {
	tok, _ := benchTokens(b)
	p := gatehouse.NewPrincipal("cl_x", gatehouse.KindClient, "x", []string{"a"}, "")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tok.Issue(p, []string{"a"}); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzAuthenticateJWT: no input panics, and no input authenticates as
// anything but the issued token's principal (a different encoding of the
// same signed token may; a forgery may not).
func FuzzAuthenticateJWT(f *testing.F) {
	tok := MustOpenTokens(f, authn.AlgEdDSA)
	good, _, err := tok.Issue(gatehouse.NewPrincipal("cl_x", gatehouse.KindClient, "x", []string{"a"}, ""), []string{"a"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("eyJ.eyJ.")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := tok.Authenticate(context.Background(), s)
		if err == nil && (p.ID != "cl_x" || p.ScopesHeader != "a") {
			t.Fatalf("accepted %q as %+v", s, p)
		}
	})
}
