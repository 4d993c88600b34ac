package redact_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/redact"
)

// makeToken builds a Gatehouse credential from its parts, computing the
// checksum independently of internal/authn: CRC-32 (IEEE) of everything
// before it, as 6 big-endian base62 digits.
func makeToken(prefix, id, secret string) string {
	const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	body := prefix + id + "_" + secret
	sum := crc32.ChecksumIEEE([]byte(body))
	var c [6]byte
	for i := 5; i >= 0; i-- {
		c[i] = base62[sum%62]
		sum /= 62
	}
	return body + string(c[:])
}

// fuzzSecrets are fixed secrets planted into fuzzed text; each pair is
// what is planted and the part that must not appear in the output, also
// after decoding its JSON escapes. After the plain secrets come the same
// written with escapes (see fuzzEscapes), four per secret.
func fuzzSecrets() [][2]string {
	plain := fuzzPlainSecrets()
	out := plain
	for _, s := range plain {
		for _, e := range fuzzEscapes(s[0]) {
			out = append(out, [2]string{e, s[1]})
		}
	}
	return out
}

// fuzzEscapes writes s with JSON escapes: its first escapable character,
// one in the middle, all of them, and all of them one level down.
func fuzzEscapes(s string) [4]string {
	first, mid := 0, len(s)/2
	for first < len(s)-1 && !escapable(s, first) {
		first++
	}
	for mid < len(s)-1 && !escapable(s, mid) {
		mid++
	}
	all := func(int) bool { return true }
	return [4]string{
		escapeAt(s, 1, false, func(i int) bool { return i == first }),
		escapeAt(s, 1, true, func(i int) bool { return i == mid }),
		escapeAt(escapeSlashes(s, 1), 1, false, all),
		escapeAt(s, 2, false, all),
	}
}

func fuzzPlainSecrets() [][2]string {
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	der, err := x509.MarshalPKCS8PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		panic(err)
	}
	edPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	gk := makeToken("gk_", "abcdefghijklmnop", "0123456789abcdefghijABCDEFGHIJKL")
	gadm := makeToken("gadm_", "zz234567abcdefgh", "ZYXWVUTSRQPONMLKJIHGFEDCBA987654")
	gcs := makeToken("gcs_", "mnopqrstuvwxyz23", "aaaaaaaaaabbbbbbbbbbccccccccccdd")
	return [][2]string{
		{gk, gk},
		{gadm, gadm},
		{gcs, gcs},
		{jwtHS256, jwtHS256},
		{jwtNone, jwtNone},
		{awsKey, awsKey},
		{"AWS_SECRET_ACCESS_KEY=" + awsSecret, awsSecret},
		{ghpToken, ghpToken},
		{ghPAT, ghPAT},
		{slackBot, slackBot},
		{"https://" + slackHook, "services/T0"},
		{edPEM, strings.Split(edPEM, "\n")[1]},
		{`{"client_secret":"s3cr3t-Value!"}`, "s3cr3t-Value!"},
		{`{"log":"{\"api_key\":\"k3y-Value\"}"}`, "k3y-Value"},
		{"Authorization: Bearer 8f2a9c1e7b4d4e0f9a6b3c2d1e0f9a8b", "8f2a9c1e7b4d4e0f9a6b3c2d1e0f9a8b"},
		{"Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="},
		{"/cb?state=x&access_token=ya29.a0AfH6SMxyz", "ya29"},
		{"\nDB_PASSWORD=pa55w0rd-env", "pa55w0rd-env"},
		{visa, visa},
		{visaSpaced, visaSpaced},
		{mcDashed, mcDashed},
		{amex, amex},
	}
}

// FuzzRedact plants known secrets, plain or written with JSON escapes and
// set apart by white space, at fuzzed positions in fuzzed text, feeds the
// result to a Writer in two fuzzed pieces, and checks that no planted
// secret comes out, as it is or once its escapes are decoded, and that the
// stream agrees with the one-shot path.
func FuzzRedact(f *testing.F) {
	secrets := fuzzSecrets()
	r := redact.New()
	f.Add([]byte("hello world"), uint8(0), uint16(5), uint8(3), uint16(0), uint16(7))
	f.Add([]byte(`{"a":1,"password":"x","b":[1,2,3]}`), uint8(11), uint16(8), uint8(13), uint16(20), uint16(30))
	f.Add([]byte("4111 1111 2026-11-22 eyJ gk_ -----BEGIN"), uint8(14), uint16(10), uint8(6), uint16(30), uint16(12))
	f.Add([]byte(`{"a":"caf\u00e9 \/x\\u0067 \u00","b":"\"}`), uint8(len(secrets)-1), uint16(9), uint8(len(secrets)-30), uint16(17), uint16(25))
	f.Fuzz(func(t *testing.T, text []byte, which1 uint8, pos1 uint16, which2 uint8, pos2 uint16, split uint16) {
		s1 := secrets[int(which1)%len(secrets)]
		s2 := secrets[int(which2)%len(secrets)]
		// Both positions index the original text; plant the later one
		// first so neither secret lands inside the other.
		p1, p2 := int(pos1)%(len(text)+1), int(pos2)%(len(text)+1)
		if p1 < p2 {
			p1, p2 = p2, p1
			s1, s2 = s2, s1
		}
		in := plant(plant(text, s1[0], p1), s2[0], p2)

		want := r.Bytes(in)
		// The fuzzed text may hold a copy of a secret that is not one in
		// its context (inside a longer digit run, say); only the planted
		// copies must go.
		for _, s := range [][2]string{s1, s2} {
			if bytes.Count(want, []byte(s[1])) > bytes.Count(text, []byte(s[1])) {
				t.Fatalf("secret %q survived in %q", s[1], want)
			}
			if strings.Count(unescape(string(want)), s[1]) > strings.Count(unescape(string(text)), s[1]) {
				t.Fatalf("escaped secret %q survived in %q", s[1], want)
			}
		}
		var buf bytes.Buffer
		w := r.Writer(&buf)
		cut := int(split) % (len(in) + 1)
		w.Write(in[:cut])
		w.Write(in[cut:])
		w.Close()
		if !bytes.Equal(buf.Bytes(), want) {
			t.Fatalf("split at %d: stream %q != one-shot %q", cut, buf.Bytes(), want)
		}
	})
}

// plant inserts " secret\n" into text at pos.
func plant(text []byte, secret string, pos int) []byte {
	out := make([]byte, 0, len(text)+len(secret)+2)
	out = append(out, text[:pos]...)
	out = append(out, ' ')
	out = append(out, secret...)
	out = append(out, '\n')
	return append(out, text[pos:]...)
}
