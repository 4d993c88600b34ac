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

// ID names the master key without revealing it: 16 hex digits.
func (m *MasterKey) ID() string { return m.id }

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

// Open decrypts s, sealed as version of secret name. It fails with an
// error wrapping ErrMasterKeyMismatch when s was sealed under another
// master key, and ErrTampered when s does not authenticate.
func (m *MasterKey) Open(name string, version int, s Sealed) ([]byte, error) {
	if s.KeyID != m.id {
		return nil, fmt.Errorf("secret %s version %d is %w (key id %s); %s holds key id %s: give every replica the same master key",
			name, version, ErrMasterKeyMismatch, s.KeyID, MasterKeyEnv, m.id)
	}
	dek, err := openWith(m.kek, s.WrappedKey, sealAD("data key", name, version))
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
