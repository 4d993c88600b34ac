package secrets

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"
)

// Secret is one version of a named secret as a Provider returns it.
type Secret struct {
	// Value is the secret itself. It is never logged, audited or shown.
	Value []byte
	// Version is the provider's version of the value: Vault's KV v2
	// version, the sealed row's version, 1 for env, dotenv and files
	// (which keep no history).
	Version int
	// Created is when this version was written (the file's modification
	// time for files; zero when the provider cannot tell, as for env).
	Created time.Time
	// Where says where the secret lives without its value, for status
	// listings: "env GATEHOUSE_SECRET_PEPPER", "vault secret/gatehouse/pepper".
	Where string
}

// Provider reads named secrets. Implementations are safe for concurrent
// use. Get returns an error wrapping ErrNotFound when the provider holds
// no secret of that name, and ErrInvalidName for a name outside Name's
// syntax; errors never carry a secret value.
type Provider interface {
	// Name is the provider's kind: env, dotenv, file, vault or sealed.
	Name() string
	Get(ctx context.Context, name string) (Secret, error)
}

// Writer is a Provider that can also store secrets, with check-and-set:
// Put writes value as the next version of name only if the current
// version is cas (0: only if there is none) and returns the stored
// Secret; otherwise it fails with an error wrapping ErrConflict, and the
// caller reads the secret that won.
type Writer interface {
	Provider
	Put(ctx context.Context, name string, value []byte, cas int) (Secret, error)
}

// Versioner is a Provider that tells the current version of a secret
// without reading its value (Vault's KV metadata, the sealed table's
// newest row): 0 when there is none. Pollers use it to notice a
// rotation made elsewhere.
type Versioner interface {
	CurrentVersion(ctx context.Context, name string) (int, error)
}

// Errors callers branch on.
var (
	ErrNotFound    = errors.New("secret not found")
	ErrConflict    = errors.New("secret changed meanwhile (check-and-set failed)")
	ErrInvalidName = errors.New("invalid secret name")
	ErrReadOnly    = errors.New("secrets provider is read-only")
)

// nameRE is the syntax of secret names: lowercase letters, digits, '-'
// and '_', starting with a letter, at most 64 characters. It keeps names
// from reaching outside their provider (no '/', '.', or variable names
// other than GATEHOUSE_SECRET_*).
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// CheckName returns an error wrapping ErrInvalidName unless name is a
// valid secret name.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w %q: use lowercase letters, digits, '-' and '_', starting with a letter (at most 64)", ErrInvalidName, name)
	}
	return nil
}

// The secrets Gatehouse itself uses, by name.
const (
	// Pepper is the HMAC key of every stored key, token and secret hash
	// (32 bytes, raw or base64).
	Pepper = "pepper"
	// SigningKeys is the JWT signing key set (JSON).
	SigningKeys = "signing-keys"
	// AuditKey is the audit checkpoint signing key (a signed-note
	// private key, PRIVATE+KEY+…).
	AuditKey = "audit-key"
	// BackupIdentity is the age identity that opens backups
	// (AGE-SECRET-KEY-1…).
	BackupIdentity = "backup-identity"
)

// Ensure returns the secret name from w, creating it when w has none:
// first from fallback (a secret the deployment already has elsewhere,
// such as a file from before; nil for none), else from generate. When
// another replica creates it at the same time (check-and-set conflict),
// the one that won is returned, so every replica ends with the same
// value.
func Ensure(ctx context.Context, w Writer, name string, fallback Provider, generate func() ([]byte, error)) (Secret, error) {
	s, err := w.Get(ctx, name)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Secret{}, err
	}
	var value []byte
	if fallback != nil {
		f, err := fallback.Get(ctx, name)
		switch {
		case err == nil:
			value = f.Value
		case !errors.Is(err, ErrNotFound):
			return Secret{}, err
		}
	}
	if value == nil {
		if value, err = generate(); err != nil {
			return Secret{}, fmt.Errorf("generate secret %s: %w", name, err)
		}
	}
	s, err = w.Put(ctx, name, value, 0)
	if errors.Is(err, ErrConflict) {
		return w.Get(ctx, name)
	}
	return s, err
}

// First is a Provider that asks each provider in turn and returns the
// first secret found.
type First []Provider

// Name implements Provider: the first provider's name.
func (f First) Name() string {
	if len(f) == 0 {
		return "none"
	}
	return f[0].Name()
}

// Get implements Provider.
func (f First) Get(ctx context.Context, name string) (Secret, error) {
	for _, p := range f {
		s, err := p.Get(ctx, name)
		if !errors.Is(err, ErrNotFound) {
			return s, err
		}
	}
	return Secret{}, fmt.Errorf("secret %s: %w", name, ErrNotFound)
}

// Blob keeps one secret that is replaced as a whole, such as the JWT
// signing key set, in a Writer: Load reads it (nil when there is none)
// and Save writes the next version with check-and-set on the version
// Load (or the last Save) saw, so two replicas cannot overwrite each
// other's rotation unseen. It satisfies authn.SigningKeyStore. Its owner
// serializes Load and Save; Stored may be called concurrently with them.
type Blob struct {
	W    Writer
	Name string

	mu      sync.Mutex
	version int
	where   string
}

// Load returns the secret's value, or nil and no error when there is none.
func (b *Blob) Load(ctx context.Context) ([]byte, error) {
	s, err := b.W.Get(ctx, b.Name)
	if errors.Is(err, ErrNotFound) {
		b.set(0, "")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	b.set(s.Version, s.Where)
	return s.Value, nil
}

// Save stores data as the next version.
func (b *Blob) Save(ctx context.Context, data []byte) error {
	version, _ := b.Stored()
	s, err := b.W.Put(ctx, b.Name, data, version)
	if err != nil {
		return err
	}
	b.set(s.Version, s.Where)
	return nil
}

// Changed reports whether the stored secret may differ from the version
// last loaded or saved: asked of the Writer when it is a Versioner,
// otherwise always true (a reload reads the value).
func (b *Blob) Changed(ctx context.Context) (bool, error) {
	v, ok := b.W.(Versioner)
	if !ok {
		return true, nil
	}
	cur, err := v.CurrentVersion(ctx, b.Name)
	if err != nil {
		return false, err
	}
	version, _ := b.Stored()
	return cur != version, nil
}

// Stored is the version last loaded or saved and where it lives (0 and
// "" before any, or when there is none).
func (b *Blob) Stored() (version int, where string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.version, b.where
}

func (b *Blob) set(version int, where string) {
	b.mu.Lock()
	b.version, b.where = version, where
	b.mu.Unlock()
}
