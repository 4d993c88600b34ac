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
	if EnvName(name) == MasterKeyEnv {
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
