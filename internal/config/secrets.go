package config

import (
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/secrets"
)

// SecretsConfig says where the server's secrets come from (docs/secrets.md).
// Provider is file (the default: files of mode 0600, Dir/<name>, with the
// pepper, signing keys and audit key at their places in the data dir),
// env (GATEHOUSE_SECRET_<NAME> variables), dotenv (the same names in a
// .env file; development only) or vault (HashiCorp Vault or OpenBao KV
// v2). Secrets Gatehouse generates (pepper, signing keys, audit key) are
// written to Vault with the vault provider; otherwise, with
// GATEHOUSE_SECRET_MASTER_KEY set, sealed in PostgreSQL; otherwise to
// files in the data dir. A secret a read-only provider holds (env,
// dotenv) is used in place of the generated one.
type SecretsConfig struct {
	Provider string `yaml:"provider"`
	// Dir is the file provider's directory for secrets other than the
	// data dir's own (database password…); default: the data dir.
	Dir string `yaml:"dir"`
	// Dotenv is the dotenv provider's file (default .env).
	Dotenv string      `yaml:"dotenv"`
	Vault  VaultConfig `yaml:"vault"`
	// Cadence is how often each class of secret should be rotated, for
	// `gatehouse secrets status` and /health/ready (defaults: api_keys
	// 90d, signing_keys auth.signing_rotation, pepper, audit_key and
	// backup_identity 365d, vault_token 30d, approle_secret_id 90d, store_password and redis_password 90d).
	Cadence map[string]Duration `yaml:"cadence"`
	// Poll is how often the secret references (store.password_secret,
	// ratelimit.redis_password_secret) are read again, so that a rotated
	// password reaches new connections without a restart (default:
	// vault.poll with Vault, 10s with files; the environment and a .env
	// file are read at start only).
	Poll Duration `yaml:"poll"`
}

// VaultConfig configures the vault provider. Auth is token (a token in
// TokenFile, or VAULT_TOKEN), approle (RoleID, and a secret-id read from
// SecretIDFile at every login, response-wrapped when SecretIDWrapped) or
// kubernetes (Role, with the service-account token in
// KubernetesTokenFile). Secrets live at Mount/data/Path/<name>.
type VaultConfig struct {
	Address   string `yaml:"address"`
	Namespace string `yaml:"namespace"`
	Mount     string `yaml:"mount"` // default secret
	Path      string `yaml:"path"`  // default gatehouse
	Auth      string `yaml:"auth"`  // token (default) | approle | kubernetes
	TokenFile string `yaml:"token_file"`
	// AppRole.
	RoleID          string `yaml:"role_id"`
	SecretIDFile    string `yaml:"secret_id_file"`
	SecretIDWrapped bool   `yaml:"secret_id_wrapped"`
	// Kubernetes.
	Role                string `yaml:"role"`
	KubernetesTokenFile string `yaml:"kubernetes_token_file"` // default /var/run/secrets/kubernetes.io/serviceaccount/token
	// AuthMount is where the auth method is mounted (default approle or
	// kubernetes).
	AuthMount string `yaml:"auth_mount"`
	CAFile    string `yaml:"ca_file"`
	// Poll is how often the KV metadata is polled for new versions
	// (default 1m).
	Poll Duration `yaml:"poll"`
}

// Secret providers.
const (
	SecretsFile   = "file"
	SecretsEnv    = "env"
	SecretsDotenv = "dotenv"
	SecretsVault  = "vault"
)

// SecretClasses are the classes of secret with a rotation cadence.
var SecretClasses = []string{"api_keys", "signing_keys", "pepper", "audit_key", "backup_identity", "vault_token", "approle_secret_id", "master_key", "store_password", "redis_password"}

func (s *SecretsConfig) applyDefaults(c *Config) {
	if s.Provider == "" {
		s.Provider = SecretsFile
	}
	if s.Provider == SecretsDotenv && s.Dotenv == "" {
		s.Dotenv = ".env"
	}
	if s.Provider == SecretsVault {
		v := &s.Vault
		if v.Mount == "" {
			v.Mount = "secret"
		}
		if v.Path == "" {
			v.Path = "gatehouse"
		}
		if v.Auth == "" {
			v.Auth = "token"
		}
		if v.Auth == "kubernetes" && v.KubernetesTokenFile == "" {
			v.KubernetesTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
		}
		if v.AuthMount == "" && v.Auth != "token" {
			v.AuthMount = v.Auth
		}
		if v.Poll == 0 {
			v.Poll = Duration(time.Minute)
		}
	}
	defaults := map[string]time.Duration{
		"api_keys": 90 * 24 * time.Hour, "signing_keys": time.Duration(c.Auth.SigningRotation),
		"pepper": 365 * 24 * time.Hour, "audit_key": 365 * 24 * time.Hour, "backup_identity": 365 * 24 * time.Hour,
		"vault_token": 30 * 24 * time.Hour, "approle_secret_id": 90 * 24 * time.Hour,
		"store_password": 90 * 24 * time.Hour, "redis_password": 90 * 24 * time.Hour,
		// The master key is the operator's: its age is not known, the
		// cadence is shown for the record.
		"master_key": 365 * 24 * time.Hour,
	}
	if s.Cadence == nil {
		s.Cadence = map[string]Duration{}
	}
	for k, d := range defaults {
		if _, ok := s.Cadence[k]; !ok {
			s.Cadence[k] = Duration(d)
		}
	}
}

// validateSecrets checks the secrets section and the secret references
// of other sections.
func (c *Config) validateSecrets(p *problems) {
	s := &c.Secrets
	switch s.Provider {
	case SecretsFile, SecretsEnv, SecretsVault:
	case SecretsDotenv:
		if c.Mode == ModeProd {
			// Allowed, but serve warns: a .env file is for development.
			break
		}
	default:
		p.add("secrets.provider", "must be file, env, dotenv or vault, not %q", s.Provider)
	}
	if s.Provider != SecretsDotenv && s.Dotenv != "" {
		p.add("secrets.dotenv", "set but provider is %s", s.Provider)
	}
	if s.Provider != SecretsFile && s.Dir != "" {
		p.add("secrets.dir", "set but provider is %s", s.Provider)
	}
	v := s.Vault
	if s.Provider == SecretsVault {
		if u, err := url.Parse(v.Address); v.Address == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			p.add("secrets.vault.address", "must be the Vault address, https://vault.example:8200 (no credentials in it)")
		} else if u.Scheme == "http" && c.Mode == ModeProd && !loopbackHost(u.Hostname()) {
			p.add("secrets.vault.address", "is plain http in prod mode: the Vault token would cross the network in clear; use https")
		}
		switch v.Auth {
		case "token":
		case "approle":
			if v.RoleID == "" {
				p.add("secrets.vault.role_id", "approle auth needs the role id")
			}
			if v.SecretIDFile == "" {
				p.add("secrets.vault.secret_id_file", "approle auth needs the file the secret-id is read from at each login")
			}
		case "kubernetes":
			if v.Role == "" {
				p.add("secrets.vault.role", "kubernetes auth needs the Vault role")
			}
		default:
			p.add("secrets.vault.auth", "must be token, approle or kubernetes, not %q", v.Auth)
		}
		if v.Poll < Duration(time.Second) {
			p.add("secrets.vault.poll", "must be at least 1s")
		}
	} else if v != (VaultConfig{}) {
		p.add("secrets.vault", "set but provider is %s", s.Provider)
	}
	if s.Poll != 0 && s.Poll < Duration(100*time.Millisecond) {
		p.add("secrets.poll", "must be at least 100ms")
	}
	for _, k := range slices.Sorted(maps.Keys(s.Cadence)) {
		if !slices.Contains(SecretClasses, k) {
			p.add("secrets.cadence."+k, "unknown class; classes are %s", strings.Join(SecretClasses, ", "))
		} else if s.Cadence[k] < Duration(time.Hour) {
			p.add("secrets.cadence."+k, "must be at least 1h")
		}
	}
	refs := []struct{ path, name string }{
		{"store.password_secret", c.Store.PasswordSecret},
		{"ratelimit.redis_password_secret", c.RateLimit.RedisPasswordSecret},
	}
	for _, r := range refs {
		if r.name == "" {
			continue
		}
		if err := secrets.CheckName(r.name); err != nil {
			p.add(r.path, "%q is not a secret name: lowercase letters, digits, '-' and '_', starting with a letter", r.name)
		} else if secrets.IsMasterKeyEnv(secrets.EnvName(r.name)) {
			p.add(r.path, "the master key is not readable as a secret")
		}
	}
	if c.Store.PasswordSecret != "" && c.Store.Driver != "postgres" {
		p.add("store.password_secret", "set but driver is %s", c.Store.Driver)
	}
	if c.RateLimit.RedisPasswordSecret != "" && c.RateLimit.Backend != "redis" {
		p.add("ratelimit.redis_password_secret", "set but backend is %s", c.RateLimit.Backend)
	}
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
