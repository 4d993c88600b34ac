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

// TestParseMasterKeys: the current key and the previous ones
// (GATEHOUSE_SECRET_MASTER_KEY_PREVIOUS); a key opens what a previous one
// sealed only when given as previous; a malformed previous key is an
// error naming the variable, never quoting it.
func TestParseMasterKeys(t *testing.T) {
	k1, t1 := newMasterKey(t)
	k2, t2 := newMasterKey(t)
	_, t3 := newMasterKey(t)
	old, err := k1.Seal("pepper", 1, []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, current, previous string
		wantErr                 string
		opensOld                bool
		previousIDs             int
	}{
		{name: "current only", current: t2},
		{name: "one previous", current: t2, previous: t1, opensOld: true, previousIDs: 1},
		{name: "list with spaces and commas", current: t2, previous: t3 + ", " + t1 + "\n", opensOld: true, previousIDs: 2},
		{name: "previous equal to current is dropped", current: t1, previous: t1, opensOld: true},
		{name: "malformed previous", current: t2, previous: t1 + ",not-a-key", wantErr: "GATEHOUSE_SECRET_MASTER_KEY_PREVIOUS (key 2 of 2) must be 32 random bytes"},
		{name: "malformed current", current: "short", previous: t1, wantErr: "GATEHOUSE_SECRET_MASTER_KEY must be 32 random bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := secrets.ParseMasterKeys(c.current, c.previous)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				if strings.Contains(err.Error(), t1) || strings.Contains(err.Error(), "not-a-key") {
					t.Fatalf("error quotes a key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(k.PreviousIDs()) != c.previousIDs {
				t.Errorf("previous ids %v, want %d", k.PreviousIDs(), c.previousIDs)
			}
			v, err := k.Open("pepper", 1, old)
			if c.opensOld != (err == nil) {
				t.Fatalf("open a row sealed under the old key: %q %v", v, err)
			}
			if err != nil && (!errors.Is(err, secrets.ErrMasterKeyMismatch) || !strings.Contains(err.Error(), k1.ID()) ||
				!strings.Contains(err.Error(), "GATEHOUSE_SECRET_MASTER_KEY_PREVIOUS")) {
				t.Fatalf("unknown key id: %v", err)
			}
			// New values are sealed under the current key only.
			s, err := k.Seal("pepper", 2, []byte("w"))
			if err != nil || s.KeyID != k.ID() {
				t.Fatalf("seal: %v %s", err, s.KeyID)
			}
			if c.current == t2 {
				if _, err := k1.Open("pepper", 2, s); !errors.Is(err, secrets.ErrMasterKeyMismatch) {
					t.Fatalf("the old key opens a new row: %v", err)
				}
				if _, err := k2.Open("pepper", 2, s); err != nil {
					t.Fatalf("the current key alone: %v", err)
				}
			}
		})
	}
}
