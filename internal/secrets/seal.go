package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MasterKey seals secrets with envelope encryption: each value is
// encrypted with AES-256-GCM under a data key of its own, and the data
// key is encrypted (wrapped) with AES-256-GCM under a key derived from the
// master key. Both carry the secret's name and version as additional
// data, so a sealed value cannot be moved to another name or version.
// The master key is 32 bytes, given in base64 (or hex) in
// GATEHOUSE_SECRET_MASTER_KEY; its ID (a hash, not the key) is stored
// with every sealed value, so a replica given another key says so instead
// of producing garbage. A MasterKey is safe for concurrent use.
type MasterKey struct {
	kek cipher.AEAD
	id  string
	// previous are older master keys that still open what they sealed
	// (GATEHOUSE_SECRET_MASTER_KEY_PREVIOUS) while a rotation re-seals
	// it; Seal never uses them.
	previous []*MasterKey
}

// Sealed is a sealed secret value as stored: the master key's ID, the
// wrapped data key and the ciphertext (each with its nonce first).
type Sealed struct {
	KeyID      string
	WrappedKey []byte
	Ciphertext []byte
}

// ErrMasterKeyMismatch is returned when a value was sealed under another
// master key than the one given.
var ErrMasterKeyMismatch = errors.New("sealed under another master key")

// ErrTampered is returned when a sealed value fails authentication.
var ErrTampered = errors.New("sealed secret fails authentication: altered or corrupt")

// ParseMasterKey decodes a master key: 32 bytes in standard or URL-safe
// base64 (padded or not) or in hex. Errors never quote the input.
func ParseMasterKey(text string) (*MasterKey, error) {
	text = strings.TrimSpace(text)
	var raw []byte
	for _, dec := range []func(string) ([]byte, error){
		base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString, hex.DecodeString,
	} {
		if b, err := dec(text); err == nil && len(b) == 32 {
			raw = b
			break
		}
	}
	if raw == nil {
		return nil, fmt.Errorf("%s must be 32 random bytes in base64 (openssl rand -base64 32)", MasterKeyEnv)
	}
	kek, err := hkdf.Key(sha256.New, raw, nil, "gatehouse secrets key-encryption key v1", 32)
	if err != nil {
		return nil, fmt.Errorf("derive master key: %w", err)
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	mac := hmac.New(sha256.New, raw)
	mac.Write([]byte("gatehouse secrets master key id v1"))
	return &MasterKey{kek: aead, id: hex.EncodeToString(mac.Sum(nil)[:8])}, nil
}

// ParseMasterKeys decodes the current master key and the previous ones
// (GATEHOUSE_SECRET_MASTER_KEY_PREVIOUS: one or more keys separated by
// commas or white space, "" for none). A previous key equal to the
// current one is dropped. Errors name the variable, never the input.
func ParseMasterKeys(current, previous string) (*MasterKey, error) {
	m, err := ParseMasterKey(current)
	if err != nil {
		return nil, err
	}
	fields := strings.FieldsFunc(previous, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	var prev []*MasterKey
	for i, f := range fields {
		p, err := ParseMasterKey(f)
		if err != nil {
			return nil, fmt.Errorf("%s (key %d of %d) must be 32 random bytes in base64, like %s", MasterKeyPreviousEnv, i+1, len(fields), MasterKeyEnv)
		}
		if p.id != m.id {
			prev = append(prev, p)
		}
	}
	return m.WithPrevious(prev...), nil
}

// ID names the master key without revealing it: 16 hex digits.
func (m *MasterKey) ID() string { return m.id }

// WithPrevious returns m able to open also what the previous keys sealed;
// it still seals under m.
func (m *MasterKey) WithPrevious(prev ...*MasterKey) *MasterKey {
	c := *m
	c.previous = nil
	for _, p := range prev {
		c.previous = append(c.previous, &MasterKey{kek: p.kek, id: p.id})
	}
	return &c
}

// PreviousIDs are the ids of the previous keys m opens with.
func (m *MasterKey) PreviousIDs() []string {
	ids := make([]string, len(m.previous))
	for i, p := range m.previous {
		ids[i] = p.id
	}
	return ids
}

// Knows reports whether m (or one of its previous keys) has key id.
func (m *MasterKey) Knows(id string) bool { return m.byID(id) != nil }

func (m *MasterKey) byID(id string) *MasterKey {
	if id == m.id {
		return m
	}
	for _, p := range m.previous {
		if p.id == id {
			return p
		}
	}
	return nil
}

// UnknownKeyError is the error for a value sealed under key id, which
// none of m's keys has: it says what to do.
func (m *MasterKey) UnknownKeyError(what, id string) error {
	held := m.id
	if len(m.previous) > 0 {
		held += " (and previous " + strings.Join(m.PreviousIDs(), ", ") + " in " + MasterKeyPreviousEnv + ")"
	}
	return fmt.Errorf("%s is %w (key id %s); %s holds key id %s: give every replica the same master key, "+
		"or, while rotating it, the old key in %s until gatehouse secrets reseal has re-sealed every row",
		what, ErrMasterKeyMismatch, id, MasterKeyEnv, held, MasterKeyPreviousEnv)
}

func sealAD(kind, name string, version int) []byte {
	return []byte("gatehouse sealed " + kind + " v1\x00" + name + "\x00" + strconv.Itoa(version))
}

// Seal encrypts value as version of secret name.
func (m *MasterKey) Seal(name string, version int, value []byte) (Sealed, error) {
	dek := make([]byte, 32)
	if _, err := rand.Read(dek); err != nil {
		return Sealed{}, fmt.Errorf("seal secret %s: %w", name, err)
	}
	aead, err := newGCM(dek)
	if err != nil {
		return Sealed{}, fmt.Errorf("seal secret %s: %w", name, err)
	}
	wrapped, err := sealWith(m.kek, dek, sealAD("data key", name, version))
	if err != nil {
		return Sealed{}, fmt.Errorf("seal secret %s: %w", name, err)
	}
	ct, err := sealWith(aead, value, sealAD("value", name, version))
	if err != nil {
		return Sealed{}, fmt.Errorf("seal secret %s: %w", name, err)
	}
	return Sealed{KeyID: m.id, WrappedKey: wrapped, Ciphertext: ct}, nil
}

// Open decrypts s, sealed as version of secret name, under whichever of
// m's keys (the current one or a previous one) s names. It fails with an
// error wrapping ErrMasterKeyMismatch when s was sealed under a master
// key m does not have, and ErrTampered when s does not authenticate.
func (m *MasterKey) Open(name string, version int, s Sealed) ([]byte, error) {
	k := m.byID(s.KeyID)
	if k == nil {
		return nil, m.UnknownKeyError(fmt.Sprintf("secret %s version %d", name, version), s.KeyID)
	}
	dek, err := openWith(k.kek, s.WrappedKey, sealAD("data key", name, version))
	if err != nil {
		return nil, fmt.Errorf("secret %s version %d: %w", name, version, ErrTampered)
	}
	aead, err := newGCM(dek)
	if err != nil {
		return nil, fmt.Errorf("secret %s version %d: %w", name, version, ErrTampered)
	}
	v, err := openWith(aead, s.Ciphertext, sealAD("value", name, version))
	if err != nil {
		return nil, fmt.Errorf("secret %s version %d: %w", name, version, ErrTampered)
	}
	return v, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func sealWith(aead cipher.AEAD, plaintext, ad []byte) ([]byte, error) {
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plaintext, ad), nil
}

func openWith(aead cipher.AEAD, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("short sealed value")
	}
	return aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], ad)
}
