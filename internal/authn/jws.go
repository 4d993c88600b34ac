package authn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"math/big"
	"slices"
	"strings"
	"unsafe"

	"github.com/go-jose/go-jose/v4/json"
)

// MaxJWTBytes is the longest bearer JWT accepted. Gatehouse's own tokens
// are about 350 bytes and identity providers' rarely pass 8 KiB; a longer
// one is refused before it is hashed, decoded or parsed.
const MaxJWTBytes = 16 << 10

// b64 decodes the parts of a compact JWS: unpadded base64url with the
// unused bits of the last character zero, so that every token has exactly
// one spelling (the CR and LF the decoder skips are refused by length).
var b64 = base64.RawURLEncoding.Strict()

// compactJWS is a compact JWS split once. The signature is verified over
// signingInput, the token's own text up to its second dot, never over a
// re-encoding of what was decoded.
type compactJWS struct {
	alg, kid     string
	signingInput string
	payload      []byte
	sig          []byte
}

// jwsHeader is the protected header. The JSON decoder (go-jose's, as
// before) refuses duplicated keys and matches names case-sensitively, so
// no header reads differently here than in another JOSE library.
type jwsHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	// Crit and B64 (RFC 7797, unencoded payloads) are refused when
	// present: Gatehouse implements no header extension, and an
	// unencoded payload would change what the signature covers.
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
}

// parseCompact splits raw into its three parts and decodes them and the
// header, refusing a token with other than three parts,
// a non-canonical part, a bad header or an alg outside ExternalAlgs
// (never "none", never HMAC). It does not verify the signature.
func parseCompact(raw string) (compactJWS, error) {
	h, rest, ok := strings.Cut(raw, ".")
	if !ok {
		return compactJWS{}, errBadToken
	}
	p, s, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(s, '.') >= 0 {
		return compactJWS{}, errBadToken
	}
	// One buffer for the three decoded parts.
	buf := make([]byte, b64.DecodedLen(len(h))+b64.DecodedLen(len(p))+b64.DecodedLen(len(s)))
	header, buf, err := decodePart(buf, h)
	if err != nil {
		return compactJWS{}, err
	}
	payload, buf, err := decodePart(buf, p)
	if err != nil {
		return compactJWS{}, err
	}
	sig, _, err := decodePart(buf, s)
	if err != nil {
		return compactJWS{}, err
	}
	var hdr jwsHeader
	if err := decodeJOSE(header, &hdr); err != nil || hdr.Crit != nil || hdr.B64 != nil || !slices.Contains(ExternalAlgs, hdr.Alg) {
		return compactJWS{}, errBadToken
	}
	return compactJWS{alg: hdr.Alg, kid: hdr.Kid, signingInput: raw[:len(h)+1+len(p)], payload: payload, sig: sig}, nil
}

// decodeJOSE decodes JSON as go-jose always did for Gatehouse: duplicated
// keys refused, names matched case-sensitively.
func decodeJOSE(data []byte, v any) error { return json.Unmarshal(data, v) }

// decodePart decodes the base64url part into the front of buf, returning
// it and the rest of buf.
func decodePart(buf []byte, part string) (dec, rest []byte, err error) {
	n, err := b64.Decode(buf, unsafe.Slice(unsafe.StringData(part), len(part))) // #nosec G103 -- read-only view of a string's bytes, not retained
	if err != nil || b64.EncodedLen(n) != len(part) {
		return nil, nil, errBadToken
	}
	return buf[:n:n], buf[n:], nil
}

// verifyJWS reports whether sig is a signature of input by key under alg,
// as RFC 7518 defines each: Ed25519; ECDSA with R||S of the curve's size
// on the curve alg names; RSA PKCS #1 v1.5 or PSS. Any other pairing of
// key and alg fails.
func verifyJWS(alg string, key crypto.PublicKey, input string, sig []byte) bool {
	msg := unsafe.Slice(unsafe.StringData(input), len(input)) // #nosec G103 -- read-only view of a string's bytes, not retained
	switch k := key.(type) {
	case ed25519.PublicKey:
		return alg == AlgEdDSA && ed25519.Verify(k, msg, sig)
	case *ecdsa.PublicKey:
		var digest []byte
		switch {
		case alg == AlgES256 && k.Curve == elliptic.P256():
			d := sha256.Sum256(msg)
			digest = d[:]
		case alg == "ES384" && k.Curve == elliptic.P384():
			d := sha512.Sum384(msg)
			digest = d[:]
		default:
			return false
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(k, digest, r, s)
	case *rsa.PublicKey:
		var hash crypto.Hash
		switch alg {
		case "RS256", "PS256":
			hash = crypto.SHA256
		case "RS384", "PS384":
			hash = crypto.SHA384
		case "RS512", "PS512":
			hash = crypto.SHA512
		default:
			return false
		}
		h := hash.New()
		h.Write(msg)
		digest := h.Sum(nil)
		if alg[0] == 'P' {
			return rsa.VerifyPSS(k, hash, digest, sig, nil) == nil
		}
		return rsa.VerifyPKCS1v15(k, hash, digest, sig) == nil
	}
	return false
}
