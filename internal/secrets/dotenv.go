package secrets

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/joho/godotenv"
)

// Dotenv reads secrets from a .env file (KEY=value lines, as godotenv
// parses them) under the same GATEHOUSE_SECRET_* names as Env. It is for
// local development: OpenDotenv refuses a file that group or others can
// read, and lines with other names are ignored, never exposed.
type Dotenv struct {
	path    string
	values  map[string]string
	created time.Time
}

var _ Provider = (*Dotenv)(nil)

// OpenDotenv reads the .env file at path once. The file must be readable
// only by its owner (chmod 600).
func OpenDotenv(path string) (*Dotenv, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open dotenv file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat dotenv file %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("dotenv file %s has mode %v: others can read its secrets; make it readable only by its owner (chmod 600 %s)", path, fi.Mode().Perm(), path)
	}
	all, err := godotenv.Parse(f)
	if err != nil {
		// godotenv's errors quote the line they fail on, which may hold
		// a secret: say only that the file does not parse.
		return nil, fmt.Errorf("dotenv file %s does not parse as KEY=value lines", path)
	}
	d := &Dotenv{path: path, values: map[string]string{}, created: fi.ModTime().UTC()}
	for k, v := range all {
		if strings.HasPrefix(k, EnvPrefix) && !IsMasterKeyEnv(k) {
			d.values[k] = v
		}
	}
	return d, nil
}

// Name implements Provider.
func (*Dotenv) Name() string { return "dotenv" }

// Get implements Provider.
func (d *Dotenv) Get(ctx context.Context, name string) (Secret, error) {
	if err := checkEnvName(name); err != nil {
		return Secret{}, err
	}
	v := d.values[EnvName(name)]
	if v == "" {
		return Secret{}, fmt.Errorf("secret %s (%s in %s): %w", name, EnvName(name), d.path, ErrNotFound)
	}
	return Secret{Value: []byte(v), Version: 1, Created: d.created, Where: "dotenv " + d.path + " " + EnvName(name)}, nil
}
