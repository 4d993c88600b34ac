package secrets_test

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/secrets"
)

func newMasterKey(t *testing.T) (*secrets.MasterKey, string) {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	text := base64.StdEncoding.EncodeToString(b)
	k, err := secrets.ParseMasterKey(text)
	if err != nil {
		t.Fatal(err)
	}
	return k, text
}

func TestSeal(t *testing.T) {
	k, text := newMasterKey(t)
	other, _ := newMasterKey(t)
	value := []byte("the pepper, 32 bytes long......!")
	s, err := k.Seal("pepper", 1, value)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(s.Ciphertext)+string(s.WrappedKey), "pepper, 32") {
		t.Fatal("plaintext in the sealed value")
	}
	if got, err := k.Open("pepper", 1, s); err != nil || string(got) != string(value) {
		t.Fatalf("open: %q %v", got, err)
	}
	flip := func(b []byte, i int) []byte { c := append([]byte(nil), b...); c[i%len(c)] ^= 1; return c }
	cases := []struct {
		name    string
		key     *secrets.MasterKey
		secret  string
		version int
		s       secrets.Sealed
		want    error
	}{
		{"wrong master key", other, "pepper", 1, s, secrets.ErrMasterKeyMismatch},
		{"wrong master key with the right id", other, "pepper", 1, secrets.Sealed{KeyID: other.ID(), WrappedKey: s.WrappedKey, Ciphertext: s.Ciphertext}, secrets.ErrTampered},
		{"moved to another name", k, "audit-key", 1, s, secrets.ErrTampered},
		{"moved to another version", k, "pepper", 2, s, secrets.ErrTampered},
		{"ciphertext byte flipped", k, "pepper", 1, secrets.Sealed{KeyID: s.KeyID, WrappedKey: s.WrappedKey, Ciphertext: flip(s.Ciphertext, 20)}, secrets.ErrTampered},
		{"wrapped key byte flipped", k, "pepper", 1, secrets.Sealed{KeyID: s.KeyID, WrappedKey: flip(s.WrappedKey, 15), Ciphertext: s.Ciphertext}, secrets.ErrTampered},
		{"truncated", k, "pepper", 1, secrets.Sealed{KeyID: s.KeyID, WrappedKey: s.WrappedKey[:5], Ciphertext: s.Ciphertext}, secrets.ErrTampered},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.key.Open(tt.secret, tt.version, tt.s)
			if !errors.Is(err, tt.want) || got != nil {
				t.Fatalf("open: %q %v, want %v", got, err, tt.want)
			}
			if strings.Contains(err.Error(), text) {
				t.Fatalf("error carries the master key: %v", err)
			}
		})
	}
	for _, bad := range []string{"", "short", base64.StdEncoding.EncodeToString(make([]byte, 16)), "not base64 at all but long enough to be 32 bytes......"} {
		_, err := secrets.ParseMasterKey(bad)
		if err == nil || (bad != "" && strings.Contains(err.Error(), bad)) {
			t.Errorf("master key %q: %v", bad, err)
		}
	}
}
