package secrets

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// PepperVersions is the secret holding every version of the key-hash
// pepper (JSON, PepperSet), written at the first rotation: until then
// the pepper secret alone is version 1.
const PepperVersions = "pepper-versions"

// PepperVersion is one version of the pepper.
type PepperVersion struct {
	Version int `json:"version"`
	// CreatedAt is when the version was made (zero for version 1 when
	// its provider could not tell).
	CreatedAt time.Time `json:"created_at"`
	// Value is the 32-byte HMAC key (base64 in JSON). Never logged.
	Value []byte `json:"value"`
}

// PepperSet is the content of the pepper-versions secret: every version
// still kept, oldest first. Credentials are hashed under the newest and
// verified under the version their stored hash names.
type PepperSet struct {
	Versions []PepperVersion `json:"versions"`
}

// maxPepperVersions bounds how many versions one set holds.
const maxPepperVersions = 1000

// ParsePepperSet decodes and checks the pepper-versions secret: at least
// one version, versions from 1 up, strictly increasing, each value 32
// bytes. Errors never quote a value.
func ParsePepperSet(b []byte) (PepperSet, error) {
	var s PepperSet
	if err := json.Unmarshal(b, &s); err != nil {
		return PepperSet{}, fmt.Errorf("secret %s: not a JSON list of versions", PepperVersions)
	}
	if err := s.Check(); err != nil {
		return PepperSet{}, err
	}
	return s, nil
}

// Check reports what is wrong with s, without a value.
func (s PepperSet) Check() error {
	switch {
	case len(s.Versions) == 0:
		return fmt.Errorf("secret %s: holds no version", PepperVersions)
	case len(s.Versions) > maxPepperVersions:
		return fmt.Errorf("secret %s: %d versions, at most %d", PepperVersions, len(s.Versions), maxPepperVersions)
	}
	prev := 0
	for _, v := range s.Versions {
		if v.Version <= prev {
			return fmt.Errorf("secret %s: version %d after %d: versions must increase from 1", PepperVersions, v.Version, prev)
		}
		if len(v.Value) != 32 {
			return fmt.Errorf("secret %s: version %d is %d bytes, want 32", PepperVersions, v.Version, len(v.Value))
		}
		prev = v.Version
	}
	return nil
}

// Marshal is the secret's stored form.
func (s PepperSet) Marshal() []byte {
	b, _ := json.Marshal(s) // #nosec G117 -- the pepper versions are this secret's value, stored only through a Writer
	return b
}

// Newest is the version new credentials are hashed under.
func (s PepperSet) Newest() PepperVersion { return s.Versions[len(s.Versions)-1] }

// Get returns version v.
func (s PepperSet) Get(v int) (PepperVersion, bool) {
	i := slices.IndexFunc(s.Versions, func(p PepperVersion) bool { return p.Version == v })
	if i < 0 {
		return PepperVersion{}, false
	}
	return s.Versions[i], true
}

// Rotate returns s with a new version after the newest, made at now from
// random (crypto/rand.Reader when nil); s is unchanged.
func (s PepperSet) Rotate(now time.Time, random io.Reader) (PepperSet, error) {
	if err := s.Check(); err != nil {
		return PepperSet{}, err
	}
	if len(s.Versions) >= maxPepperVersions {
		return PepperSet{}, errors.New("pepper: too many versions kept")
	}
	if random == nil {
		random = rand.Reader
	}
	v := PepperVersion{Version: s.Newest().Version + 1, CreatedAt: now.UTC(), Value: make([]byte, 32)}
	if _, err := io.ReadFull(random, v.Value); err != nil {
		return PepperSet{}, fmt.Errorf("generate pepper version %d: %w", v.Version, err)
	}
	return PepperSet{Versions: append(slices.Clone(s.Versions), v)}, nil
}
