package authn_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/cputime"
	"github.com/gatehouse/gatehouse/internal/secrets"
)

func MustOpenTokens(tb testing.TB, alg string) *authn.Tokens {
	tb.Helper()
	return MustOpenTokensAt(tb, alg, filepath.Join(tb.TempDir(), "signing-keys.json"))
}

// MustOpenTokensAt opens a token service keeping its signing keys at path.
func MustOpenTokensAt(tb testing.TB, alg, path string) *authn.Tokens {
	tb.Helper()
	tok, err := authn.NewTokens(context.Background(), authn.TokensConfig{
		Issuer: "https://gatehouse.test", Alg: alg, Keys: secrets.File{Path: path},
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
	cpu0 := processCPU(b)
	for b.Loop() {
		if _, err := tok.Authenticate(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, processCPU(b)-cpu0)
}

// BenchmarkVerifyJWTCacheMiss: full EdDSA verification of a new token
// (the signing-key rotation clears the cache between calls is too slow, so
// each iteration verifies a distinct pre-issued token). cpu-µs/op is the
// process's CPU time (user+system, GC included, issuing excluded) per
// verification: unlike ns/op it holds on a shared, loaded machine.
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
	var cpu time.Duration
	cpu0 := processCPU(b)
	for b.Loop() {
		if i == n {
			b.StopTimer()
			cpu += processCPU(b) - cpu0
			for j := range toks {
				toks[j], _, _ = tok.Issue(p, []string{"a"})
			}
			i = 0
			cpu0 = processCPU(b)
			b.StartTimer()
		}
		if _, err := tok.Authenticate(ctx, toks[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportCPU(b, cpu+processCPU(b)-cpu0)
}

// BenchmarkEd25519Verify is the floor of BenchmarkVerifyJWTCacheMiss: one
// crypto/ed25519.Verify of an issued token's signing input (header.claims)
// and signature, nothing else, so that the miss path's cost beyond the
// signature check can be read off on the same machine.
func BenchmarkEd25519Verify(b *testing.B) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	_, s := benchTokens(b)
	in := []byte(s[:strings.LastIndexByte(s, '.')])
	sig := ed25519.Sign(priv, in)
	b.ReportAllocs()
	cpu0 := processCPU(b)
	for b.Loop() {
		if !ed25519.Verify(pub, in, sig) {
			b.Fatal("signature does not verify")
		}
	}
	reportCPU(b, processCPU(b)-cpu0)
}

// processCPU is the CPU time the process has used so far.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	d, err := cputime.Process()
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func reportCPU(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(b.N), "cpu-µs/op")
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

// FuzzAuthenticateJWT: no input panics, and no input but the issued
// token itself authenticates: a token has one spelling (no padding, no
// set trailing bits, no skipped newlines), and a forgery fails.
func FuzzAuthenticateJWT(f *testing.F) {
	tok := MustOpenTokens(f, authn.AlgEdDSA)
	good, _, err := tok.Issue(gatehouse.NewPrincipal("cl_x", gatehouse.KindClient, "x", []string{"a"}, ""), []string{"a"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(mutateLast(good, 1))
	f.Add(good + "==")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("eyJ.eyJ.")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := tok.Authenticate(context.Background(), s)
		if err == nil && (s != good || p.ID != "cl_x" || p.ScopesHeader != "a") {
			t.Fatalf("accepted %q as %+v", s, p)
		}
	})
}

// ownKey is the active signing key of a token service, read back from its
// key file as an attacker who stole it (or Gatehouse itself) would: the
// abuse tests sign exactly the bytes they want with it.
type ownKey struct {
	kid  string
	priv crypto.Signer
}

func mustReadOwnKey(tb testing.TB, path string) ownKey {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var keys []struct {
		KID     string `json:"kid"`
		Private []byte `json:"private_pkcs8"`
	}
	if err := json.Unmarshal(data, &keys); err != nil || len(keys) == 0 {
		tb.Fatalf("signing keys %s: %v", path, err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(keys[len(keys)-1].Private)
	if err != nil {
		tb.Fatal(err)
	}
	return ownKey{kid: keys[len(keys)-1].KID, priv: priv.(crypto.Signer)}
}

// signRaw signs header and claims, given as the exact JSON text, over their
// base64url encodings: EdDSA, or ES256 as R||S.
func (k ownKey) signRaw(tb testing.TB, header, claims string) string {
	tb.Helper()
	in := b64(header) + "." + b64(claims)
	var sig []byte
	switch p := k.priv.(type) {
	case ed25519.PrivateKey:
		sig = ed25519.Sign(p, []byte(in))
	case *ecdsa.PrivateKey:
		d := sha256.Sum256([]byte(in))
		r, s, err := ecdsa.Sign(rand.Reader, p, d[:])
		if err != nil {
			tb.Fatal(err)
		}
		sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// claimsJSON is a valid claim set of the test service at now, with extra
// members appended verbatim (",..." text, so that keys can repeat).
func claimsJSON(now time.Time, extra string) string {
	return fmt.Sprintf(`{"iss":"https://gatehouse.test","sub":"cl_x","aud":"gatehouse","iat":%d,"nbf":%d,"exp":%d,"jti":"j1","scope":"a"%s}`,
		now.Unix(), now.Unix(), now.Add(15*time.Minute).Unix(), extra)
}

// timedClaims is a valid claim set with the given iat, nbf and exp text.
func timedClaims(iat, nbf, exp string) string {
	return `{"iss":"https://gatehouse.test","sub":"cl_x","aud":"gatehouse","iat":` + iat + `,"nbf":` + nbf + `,"exp":` + exp + `,"scope":"a"}`
}

// mutateLast changes the last character of a token part to the one whose
// index differs by d (a different spelling of the same bytes when only
// unused trailing bits change).
func mutateLast(s string, d int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[(i+d)%64])
}

// TestOwnJWTAbuse: forged, tampered and ambiguous tokens against
// Gatehouse's own keys. Every token but the controls is refused with
// EUNAUTHORIZED; the ones signed with the real key show that the refusal
// comes from the check named, not from a bad signature.
func TestOwnJWTAbuse(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := gatehouse.NewFakeClock(now)
	keyPath := filepath.Join(t.TempDir(), "signing-keys.json")
	tok, err := authn.NewTokens(context.Background(), authn.TokensConfig{
		Issuer: "https://gatehouse.test", Clock: clock, Keys: secrets.File{Path: keyPath},
	})
	if err != nil {
		t.Fatal(err)
	}
	k := mustReadOwnKey(t, keyPath)
	other := mustReadOwnKey(t, func() string {
		p := filepath.Join(t.TempDir(), "other.json")
		MustOpenTokensAt(t, authn.AlgEdDSA, p)
		return p
	}())
	hdr := `{"alg":"EdDSA","kid":"` + k.kid + `","typ":"JWT"}`
	good := k.signRaw(t, hdr, claimsJSON(now, ""))
	parts := strings.Split(good, ".")
	pub := k.priv.Public().(ed25519.PublicKey)
	hs := func(secret []byte) string {
		in := b64(`{"alg":"HS256","kid":"`+k.kid+`","typ":"JWT"}`) + "." + b64(claimsJSON(now, ""))
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	// A token of exactly MaxJWTBytes, and one byte more.
	sized := func(n int) string {
		pad := ""
		for {
			s := k.signRaw(t, hdr, claimsJSON(now, `,"pad":"`+pad+`"`))
			if len(s) >= n {
				if len(s) > n { // base64 grows 4 for 3: trim from the padding claim
					pad = pad[:len(pad)-1]
					continue
				}
				return s
			}
			pad += strings.Repeat("x", max(1, (n-len(s))*3/4))
		}
	}
	unix := func(d time.Duration) string { return fmt.Sprint(now.Add(d).Unix()) }
	nowS, later := unix(0), unix(15*time.Minute)
	cases := []struct {
		name   string
		token  string
		accept bool
	}{
		{"control: signed with the key", good, true},
		{"control: header without typ", k.signRaw(t, `{"alg":"EdDSA","kid":"`+k.kid+`"}`, claimsJSON(now, "")), true},

		{"alg none, no signature", b64(`{"alg":"none","kid":"`+k.kid+`"}`) + "." + parts[1] + ".", false},
		{"alg none, signature kept", b64(`{"alg":"none","kid":"`+k.kid+`"}`) + "." + parts[1] + "." + parts[2], false},
		{"alg none, signed", k.signRaw(t, `{"alg":"none","kid":"`+k.kid+`"}`, claimsJSON(now, "")), false},
		{"HS256 with the public key as secret", hs(pub), false},
		{"HS256 with the JWKS as secret", hs(tok.JWKS()), false},
		{"ES256 header on the EdDSA key", k.signRaw(t, `{"alg":"ES256","kid":"`+k.kid+`"}`, claimsJSON(now, "")), false},
		{"alg lower case", k.signRaw(t, `{"alg":"eddsa","kid":"`+k.kid+`"}`, claimsJSON(now, "")), false},

		{"unknown kid", k.signRaw(t, `{"alg":"EdDSA","kid":"nope"}`, claimsJSON(now, "")), false},
		{"no kid", k.signRaw(t, `{"alg":"EdDSA"}`, claimsJSON(now, "")), false},
		{"kid of this key, signed by another", other.signRaw(t, hdr, claimsJSON(now, "")), false},
		{"kid as a number", k.signRaw(t, `{"alg":"EdDSA","kid":1}`, claimsJSON(now, "")), false},

		{"payload tampered", parts[0] + "." + b64(claimsJSON(now, `,"tier":"gold"`)) + "." + parts[2], false},
		{"signature tampered", parts[0] + "." + parts[1] + "." + mutateLast(parts[2][:40], 1) + parts[2][40:], false},
		{"signature truncated", parts[0] + "." + parts[1] + "." + parts[2][:80], false},
		{"signature empty", parts[0] + "." + parts[1] + ".", false},
		{"four parts", good + ".", false},
		{"two parts", parts[0] + "." + parts[1], false},

		{"duplicated alg in header", k.signRaw(t, `{"alg":"EdDSA","kid":"`+k.kid+`","alg":"EdDSA"}`, claimsJSON(now, "")), false},
		{"duplicated kid in header, escaped", k.signRaw(t, `{"alg":"EdDSA","kid":"`+k.kid+`","\u006bid":"x"}`, claimsJSON(now, "")), false},
		{"crit header", k.signRaw(t, `{"alg":"EdDSA","kid":"`+k.kid+`","crit":["exp"],"exp":1}`, claimsJSON(now, "")), false},
		{"b64 header", k.signRaw(t, `{"alg":"EdDSA","kid":"`+k.kid+`","b64":true}`, claimsJSON(now, "")), false},
		{"header not an object", k.signRaw(t, `["EdDSA"]`, claimsJSON(now, "")), false},
		{"duplicated sub in claims", k.signRaw(t, hdr, claimsJSON(now, `,"sub":"cl_admin"`)), false},
		{"duplicated scope in claims", k.signRaw(t, hdr, claimsJSON(now, `,"scope":"admin"`)), false},
		{"duplicated exp in claims, escaped", k.signRaw(t, hdr, claimsJSON(now, `,"\u0065xp":`+unix(time.Hour))), false},
		{"claims not an object", k.signRaw(t, hdr, `"cl_x"`), false},
		{"trailing data after claims", k.signRaw(t, hdr, claimsJSON(now, "")+`{}`), false},

		{"exactly MaxJWTBytes", sized(authn.MaxJWTBytes), true},
		{"one byte over MaxJWTBytes", sized(authn.MaxJWTBytes + 1), false},

		{"exp at now-leeway", k.signRaw(t, hdr, timedClaims(unix(-time.Hour), unix(-time.Hour), unix(-authn.Leeway))), true},
		{"exp a second before now-leeway", k.signRaw(t, hdr, timedClaims(unix(-time.Hour), unix(-time.Hour), unix(-authn.Leeway-time.Second))), false},
		{"nbf at now+leeway", k.signRaw(t, hdr, timedClaims(nowS, unix(authn.Leeway), later)), true},
		{"nbf a second after now+leeway", k.signRaw(t, hdr, timedClaims(nowS, unix(authn.Leeway+time.Second), later)), false},
		{"iat a second after now+leeway", k.signRaw(t, hdr, timedClaims(unix(authn.Leeway+time.Second), nowS, later)), false},
		{"no exp", k.signRaw(t, hdr, `{"iss":"https://gatehouse.test","sub":"cl_x","aud":"gatehouse","scope":"a"}`), false},
		{"exp null", k.signRaw(t, hdr, timedClaims(nowS, nowS, "null")), false},
		{"exp as a string", k.signRaw(t, hdr, timedClaims(nowS, nowS, `"`+later+`"`)), false},
		{"exp beyond int64", k.signRaw(t, hdr, timedClaims(nowS, nowS, "1e300")), false},
		{"nbf far negative overflow", k.signRaw(t, hdr, timedClaims(nowS, "-1e300", later)), false},
		{"EXP upper case only", k.signRaw(t, hdr, `{"iss":"https://gatehouse.test","sub":"cl_x","aud":"gatehouse","EXP":`+later+`}`), false},
		{"wrong issuer", k.signRaw(t, hdr, `{"iss":"https://evil.test","sub":"cl_x","aud":"gatehouse","exp":`+later+`}`), false},
		{"wrong audience", k.signRaw(t, hdr, `{"iss":"https://gatehouse.test","sub":"cl_x","aud":["other"],"exp":`+later+`}`), false},
		{"audience null", k.signRaw(t, hdr, `{"iss":"https://gatehouse.test","sub":"cl_x","aud":null,"exp":`+later+`}`), false},

		{"header padded", parts[0] + "=." + parts[1] + "." + parts[2], false},
		{"signature padded", good + "==", false},
		{"signature trailing bits set", parts[0] + "." + parts[1] + "." + mutateLast(parts[2], 1), false},
		{"signature with a newline", parts[0] + "." + parts[1] + "." + parts[2][:40] + "\n" + parts[2][40:], false},
		{"signature in standard base64", parts[0] + "." + parts[1] + "." + base64.RawStdEncoding.EncodeToString([]byte{0xfb, 0xff}) + parts[2][3:], false},
		{"header with a space", " " + good, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := tok.Authenticate(context.Background(), c.token)
			switch {
			case c.accept && (err != nil || p.ID != "cl_x" || p.ScopesHeader != "a"):
				t.Fatalf("refused: %+v %v", p, err)
			case !c.accept && err == nil:
				t.Fatalf("accepted as %+v", p)
			case !c.accept && gatehouse.ErrorCode(err) != gatehouse.EUNAUTHORIZED:
				t.Fatalf("refused with %v, want EUNAUTHORIZED", err)
			}
		})
	}
	// The trailing-bits case must really be another spelling of the same
	// signature, or it tests nothing.
	a, _ := base64.RawURLEncoding.DecodeString(parts[2])
	b, _ := base64.RawURLEncoding.DecodeString(mutateLast(parts[2], 1))
	if !bytes.Equal(a, b) {
		t.Fatal("mutateLast changed the signature bytes, not only the unused bits")
	}
}

// TestOwnJWTES256Signatures: an ES256 signature is R||S of 32 bytes each;
// the ASN.1 form and other lengths are refused.
func TestOwnJWTES256Signatures(t *testing.T) {
	keyPath := filepath.Join(t.TempDir(), "signing-keys.json")
	tok := MustOpenTokensAt(t, authn.AlgES256, keyPath)
	k := mustReadOwnKey(t, keyPath)
	hdr := `{"alg":"ES256","kid":"` + k.kid + `"}`
	claims := claimsJSON(time.Now(), "")
	good := k.signRaw(t, hdr, claims)
	in := good[:strings.LastIndexByte(good, '.')]
	d := sha256.Sum256([]byte(in))
	der, err := ecdsa.SignASN1(rand.Reader, k.priv.(*ecdsa.PrivateKey), d[:])
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(good[len(in)+1:])
	for _, c := range []struct {
		name   string
		token  string
		accept bool
	}{
		{"R||S", good, true},
		{"ASN.1 DER", in + "." + base64.RawURLEncoding.EncodeToString(der), false},
		{"R||S with a leading zero byte", in + "." + base64.RawURLEncoding.EncodeToString(append([]byte{0}, raw...)), false},
		{"R only", in + "." + base64.RawURLEncoding.EncodeToString(raw[:32]), false},
		{"EdDSA header on the ES256 key", k.signRaw(t, `{"alg":"EdDSA","kid":"`+k.kid+`"}`, claims), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := tok.Authenticate(context.Background(), c.token); (err == nil) != c.accept {
				t.Fatalf("accept %v, got err %v", c.accept, err)
			}
		})
	}
}

// TestVerifyJWTCacheMissAllocs: verifying a new token of Gatehouse's own
// (split, decode, Ed25519 verify, claims, cache entry, principal) stays
// within its allocation budget.
func TestVerifyJWTCacheMissAllocs(t *testing.T) {
	tok := MustOpenTokens(t, authn.AlgEdDSA)
	p := gatehouse.NewPrincipal("cl_x", gatehouse.KindClient, "x", []string{"a"}, "")
	const runs = 50
	toks := make([]string, runs+1)
	for i := range toks {
		toks[i], _, _ = tok.Issue(p, []string{"a"})
	}
	ctx := context.Background()
	i := 0
	allocs := testing.AllocsPerRun(runs, func() {
		if _, err := tok.Authenticate(ctx, toks[i]); err != nil {
			t.Fatal(err)
		}
		i++
	})
	const budget = 40 // 38 measured: 34 of them in go-jose's JSON decoder
	if allocs > budget {
		t.Fatalf("cache miss: %.0f allocations, budget %d", allocs, budget)
	}
}
