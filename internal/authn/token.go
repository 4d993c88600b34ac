package authn

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"hash/crc32"
	"math/big"
)

// Token prefixes. A prefix names the kind of credential so secret scanners
// and the redactor recognise it and the gateway routes it to the right
// verifier without a store lookup.
const (
	PrefixAPIKey     = "gk_"
	PrefixAdminToken = "gadm_"
	PrefixClient     = "gcs_"
	PrefixPAT        = "gpat_"
)

// Token layout: PREFIX + ID (16 base32 chars, 80 bits) + "_" +
// SECRET (32 base62 chars, ~190 bits) + CHECKSUM (6 base62 chars, CRC-32 of
// everything before it).
const (
	idLen       = 16
	secretLen   = 32
	checksumLen = 6
	bodyLen     = idLen + 1 + secretLen + checksumLen
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewToken returns a fresh token with the given prefix and its id part.
func NewToken(prefix string) (token, id string, err error) {
	raw := make([]byte, 10)
	if _, err := rand.Read(raw); err != nil {
		return "", "", fmt.Errorf("generate token id: %w", err)
	}
	id = idEncoding.EncodeToString(raw)
	token, err = newTokenWithID(prefix, id)
	return token, id, err
}

// newTokenWithID returns a token with a fresh secret for an existing id
// part (a rotated client secret keeps its client's id).
func newTokenWithID(prefix, id string) (string, error) {
	secret, err := randomBase62(secretLen)
	if err != nil {
		return "", err
	}
	body := prefix + id + "_" + secret
	return body + checksum(body), nil
}

// ParseToken checks that s is a well-formed token with the given prefix and
// a valid checksum, and returns its id part (a substring of s). It does not
// allocate.
func ParseToken(prefix, s string) (id string, ok bool) {
	if len(s) != len(prefix)+bodyLen || s[:len(prefix)] != prefix {
		return "", false
	}
	rest := s[len(prefix):]
	if rest[idLen] != '_' {
		return "", false
	}
	for i := 0; i < idLen; i++ {
		c := rest[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return "", false
		}
	}
	for i := idLen + 1; i < len(rest); i++ {
		if !isBase62(rest[i]) {
			return "", false
		}
	}
	n := len(s) - checksumLen
	sum := crc32String(s[:n])
	want := s[n:]
	for i := checksumLen - 1; i >= 0; i-- {
		if want[i] != base62[sum%62] {
			return "", false
		}
		sum /= 62
	}
	return rest[:idLen], true
}

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

func checksum(body string) string {
	sum := crc32String(body)
	var b [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		b[i] = base62[sum%62]
		sum /= 62
	}
	return string(b[:])
}

var crcTable = crc32.MakeTable(crc32.IEEE)

// crc32String is CRC-32 (IEEE) of s without converting it to a []byte.
func crc32String(s string) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crcTable[byte(crc)^s[i]] ^ (crc >> 8)
	}
	return ^crc
}

func randomBase62(n int) (string, error) {
	b := make([]byte, n)
	max := big.NewInt(62)
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("generate token secret: %w", err)
		}
		b[i] = base62[v.Int64()]
	}
	return string(b), nil
}
