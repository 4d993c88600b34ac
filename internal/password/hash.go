package password

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// ErrMalformedHash is returned (wrapped) by Verify and Decode when an encoded
// hash is not a well-formed argon2id PHC string within this package's limits.
// It means stored data is corrupt, not that the password is wrong.
var ErrMalformedHash = errors.New("malformed password hash")

// Limits on argon2id parameters. Validate refuses parameters outside them;
// Decode refuses encodings outside the structural ones (so a corrupt or
// hostile stored hash cannot make Verify allocate gigabytes).
const (
	// MinMemoryTime is the OWASP floor for memory × passes, in KiB-passes:
	// every OWASP argon2id configuration (m=47104 t=1, m=19456 t=2,
	// m=12288 t=3, m=9216 t=4, m=7168 t=5) reaches it.
	MinMemoryTime = 7168 * 5
	// MaxMemoryKiB is the most memory one hash may use (1 GiB).
	MaxMemoryKiB = 1 << 20
	// MaxTime is the most passes one hash may make.
	MaxTime = 64
	// MinKeyLen and MaxKeyLen bound the derived key length in bytes.
	MinKeyLen, MaxKeyLen = 16, 128
	// MinSaltLen and MaxSaltLen bound the salt length in bytes.
	MinSaltLen, MaxSaltLen = 16, 128
)

// Params are the argon2id cost parameters. The JSON form is what settings
// store. The zero value is not valid; start from DefaultParams.
type Params struct {
	Time      uint32 `json:"time"`       // passes over memory (t)
	MemoryKiB uint32 `json:"memory_kib"` // memory in KiB (m)
	Threads   uint8  `json:"threads"`    // lanes (p)
	KeyLen    uint32 `json:"key_len"`    // derived key length in bytes
	SaltLen   uint32 `json:"salt_len"`   // random salt length in bytes
}

// DefaultParams returns OWASP's recommended argon2id configuration:
// m=19 MiB, t=2, p=1, with a 32-byte key and a 16-byte salt. One hash takes
// a few tens of milliseconds on one core.
func DefaultParams() Params {
	return Params{Time: 2, MemoryKiB: 19 * 1024, Threads: 1, KeyLen: 32, SaltLen: 16}
}

// Validate reports whether p is safe to hash new passwords with. It returns
// an EINVALID *gatehouse.Error naming the offending field, so settings can
// show it to the admin. It refuses parameters weaker than MinMemoryTime.
func (p Params) Validate() error {
	switch {
	case p.Threads < 1:
		return invalid("argon2id: threads must be at least 1")
	case p.Time < 1 || p.Time > MaxTime:
		return invalid("argon2id: time must be between 1 and %d", MaxTime)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > MaxMemoryKiB:
		return invalid("argon2id: memory_kib must be between %d (8 × threads) and %d", 8*uint32(p.Threads), MaxMemoryKiB)
	case uint64(p.MemoryKiB)*uint64(p.Time) < MinMemoryTime:
		return invalid("argon2id: memory_kib × time is %d, below the OWASP floor of %d (e.g. m=19456 t=2)", uint64(p.MemoryKiB)*uint64(p.Time), MinMemoryTime)
	case p.KeyLen < MinKeyLen || p.KeyLen > MaxKeyLen:
		return invalid("argon2id: key_len must be between %d and %d bytes", MinKeyLen, MaxKeyLen)
	case p.SaltLen < MinSaltLen || p.SaltLen > MaxSaltLen:
		return invalid("argon2id: salt_len must be between %d and %d bytes", MinSaltLen, MaxSaltLen)
	}
	return nil
}

// Hash derives an argon2id hash of pw with a fresh random salt and returns it
// in PHC string format:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// with salt and hash in unpadded standard base64. It returns Validate's
// error when p is not acceptable. Hash is safe for concurrent use; its cost
// is set by p.
func Hash(pw string, p Params) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	return encode(p, salt, key), nil
}

func encode(p Params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	var sb strings.Builder
	sb.Grow(40 + b64.EncodedLen(len(salt)) + b64.EncodedLen(len(key)))
	sb.WriteString("$argon2id$v=")
	sb.WriteString(strconv.Itoa(argon2.Version))
	sb.WriteString("$m=")
	sb.WriteString(strconv.FormatUint(uint64(p.MemoryKiB), 10))
	sb.WriteString(",t=")
	sb.WriteString(strconv.FormatUint(uint64(p.Time), 10))
	sb.WriteString(",p=")
	sb.WriteString(strconv.FormatUint(uint64(p.Threads), 10))
	sb.WriteByte('$')
	sb.WriteString(b64.EncodeToString(salt))
	sb.WriteByte('$')
	sb.WriteString(b64.EncodeToString(key))
	return sb.String()
}

// Verify reports whether pw matches the encoded argon2id hash, comparing the
// derived keys in constant time. When it matches, rehash reports whether the
// hash was made with parameters other than current, so the caller should
// store Hash(pw, current) in its place (rehash is always false when ok is
// false). A malformed encoding yields an error wrapping ErrMalformedHash and
// never panics. Verify is safe for concurrent use; servers should call it
// through a Hasher, which bounds the memory of concurrent hashes.
//
// To keep login timing from revealing whether a username exists, callers
// should Verify the submitted password against a hash made once with the
// current parameters (of any random password) when the user is unknown.
func Verify(pw, encoded string, current Params) (ok, rehash bool, err error) {
	p, salt, key, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	return verifyDecoded(pw, p, salt, key, current)
}

// Decode parses an encoded hash and returns the parameters it was made with
// (SaltLen and KeyLen are those of the stored salt and key). It returns an
// error wrapping ErrMalformedHash when encoded is not a well-formed argon2id
// v=19 PHC string within MaxMemoryKiB, MaxTime and the key and salt bounds
// (MinSaltLen is relaxed to 8 bytes to accept hashes made elsewhere).
func Decode(encoded string) (Params, error) {
	p, _, _, err := decode(encoded)
	return p, err
}

func decode(encoded string) (p Params, salt, key []byte, err error) {
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return p, nil, nil, malformed("want 5 '$'-separated fields")
	}
	if parts[1] != "argon2id" {
		return p, nil, nil, malformed("algorithm is not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, malformed("version is not v=19")
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return p, nil, nil, malformed("want parameters m, t and p")
	}
	m, err1 := param(kv[0], "m=", 32)
	t, err2 := param(kv[1], "t=", 32)
	th, err3 := param(kv[2], "p=", 8)
	if err := errors.Join(err1, err2, err3); err != nil {
		return p, nil, nil, err
	}
	p = Params{Time: uint32(t), MemoryKiB: uint32(m), Threads: uint8(th)}
	if p.Threads < 1 || p.Time < 1 || p.Time > MaxTime ||
		p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > MaxMemoryKiB {
		return Params{}, nil, nil, malformed("parameters out of range")
	}
	b64 := base64.RawStdEncoding.Strict()
	salt, err = b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > MaxSaltLen {
		return Params{}, nil, nil, malformed("bad salt")
	}
	key, err = b64.DecodeString(parts[5])
	if err != nil || len(key) < MinKeyLen || len(key) > MaxKeyLen {
		return Params{}, nil, nil, malformed("bad key")
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}

// param parses "name=digits" into an unsigned integer of the given bit size,
// refusing signs, leading zeros and empty values.
func param(s, name string, bits int) (uint64, error) {
	v, ok := strings.CutPrefix(s, name)
	if !ok || v == "" || (len(v) > 1 && v[0] == '0') || v[0] < '0' || v[0] > '9' {
		return 0, malformed("bad parameter " + strings.TrimSuffix(name, "="))
	}
	n, err := strconv.ParseUint(v, 10, bits)
	if err != nil {
		return 0, malformed("bad parameter " + strings.TrimSuffix(name, "="))
	}
	return n, nil
}

func malformed(why string) error {
	return fmt.Errorf("%w: %s", ErrMalformedHash, why)
}
