package compliance

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// canonical returns the canonical JSON of v: v marshalled, read back as
// generic JSON (numbers kept as written) and marshalled again, so object
// keys are sorted and whitespace is gone. Producer and verifier compute
// it the same way from whatever they hold.
func canonical(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return canonicalBytes(b)
}

// canonicalBytes is canonical of JSON text.
func canonicalBytes(b []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var g any
	if err := dec.Decode(&g); err != nil {
		return nil, err
	}
	return json.Marshal(g)
}

func canonicalString(v any) string {
	b, err := canonical(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// digest is the hex SHA-256 of v's canonical JSON.
func digest(v any) string {
	b, err := canonical(v)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
