package secrets

import (
	"context"
	"fmt"
	"strings"
)

// EnvPrefix starts the name of every environment variable the env and
// dotenv providers read: secret db-password is GATEHOUSE_SECRET_DB_PASSWORD.
// No other variable can be reached through a secret reference.
const EnvPrefix = "GATEHOUSE_SECRET_"

// MasterKeyEnv holds the master key that seals generated secrets in
// PostgreSQL. It is read only by the sealing code, never as a secret
// reference.
const MasterKeyEnv = EnvPrefix + "MASTER_KEY"

// MasterKeyPreviousEnv holds the master keys replaced by MasterKeyEnv
// that still open what they sealed, while `gatehouse secrets reseal`
// re-seals it (docs/secrets.md, rotating the master key). Like
// MasterKeyEnv, never a secret reference.
const MasterKeyPreviousEnv = MasterKeyEnv + "_PREVIOUS"

// IsMasterKeyEnv reports whether variable v holds a master key (current
// or previous): no secret reference may read it.
func IsMasterKeyEnv(v string) bool { return v == MasterKeyEnv || v == MasterKeyPreviousEnv }

// EnvName returns the environment variable that holds secret name.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// checkEnvName checks name and refuses the master key, which is not a
// secret a reference may read.
func checkEnvName(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if IsMasterKeyEnv(EnvName(name)) {
		return fmt.Errorf("%w %q: the master key is not readable as a secret", ErrInvalidName, name)
	}
	return nil
}

// Env reads secrets from environment variables named EnvPrefix plus the
// secret's name in capitals ('-' as '_'). Values are taken as they are;
// binary secrets such as the pepper are given in base64.
type Env struct {
	// Getenv reads a variable; nil means os.Getenv is not consulted and
	// nothing is found (callers pass os.Getenv or a test's map).
	Getenv func(string) string
}

var _ Provider = Env{}

// Name implements Provider.
func (Env) Name() string { return "env" }

// Get implements Provider. An empty variable counts as unset.
func (e Env) Get(ctx context.Context, name string) (Secret, error) {
	if err := checkEnvName(name); err != nil {
		return Secret{}, err
	}
	v := ""
	if e.Getenv != nil {
		v = e.Getenv(EnvName(name))
	}
	if v == "" {
		return Secret{}, fmt.Errorf("secret %s (environment variable %s): %w", name, EnvName(name), ErrNotFound)
	}
	return Secret{Value: []byte(v), Version: 1, Where: "env " + EnvName(name)}, nil
}
