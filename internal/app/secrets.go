package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/backup"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pgauth"
	"github.com/gatehouse/gatehouse/internal/secrets"
	secretspg "github.com/gatehouse/gatehouse/internal/secrets/postgres"
	"github.com/gatehouse/gatehouse/internal/secrets/vault"
)

// Secrets are the server secrets of one process, read through the
// provider the config's secrets section names (docs/secrets.md).
type Secrets struct {
	// Provider is the configured provider: it answers secret references
	// (database and Redis passwords, the backup identity) and may hold
	// the generated secrets in place of Generated.
	Provider secrets.Provider
	// Generated is where the secrets Gatehouse generates live: Vault
	// with the vault provider, PostgreSQL sealed under the master key
	// when GATEHOUSE_SECRET_MASTER_KEY is set, else files in the data dir.
	Generated secrets.Writer
	// Legacy are the data dir's files (server.secret, signing-keys.json,
	// audit/log.key): what a deployment from before, or a restore,
	// leaves, imported into Generated when that holds none.
	Legacy secrets.Files

	// Vault is the vault provider (nil with another provider).
	Vault *vault.Provider
	// Sealed is the sealed store in PostgreSQL when Generated is it (nil
	// otherwise): the master key's rotation re-seals it.
	Sealed *secretspg.Store
	// StorePassword and RedisPassword are the passwords the config names
	// by reference (store.password_secret,
	// ratelimit.redis_password_secret), nil when it names none: new
	// connections ask them, so a rotation needs no restart.
	StorePassword *secrets.Ref
	RedisPassword *secrets.Ref
	// keys holds the JWT signing key set in Generated (SigningKeys).
	keys *secrets.Blob

	// Pepper is version 1 of the key-hash pepper (the pepper secret):
	// the root of the keys derived from it that are neither credential
	// hashes nor the TOTP seal (CSRF tokens, source-address
	// pseudonyms). Peppers holds every version, for credential hashes
	// and the TOTP seal.
	Pepper  []byte
	Peppers *authn.Pepper
	pepper  atomic.Pointer[pepperState]
	// AuditSigner and AuditVKey are the audit checkpoint key read at
	// start (the active key of the audit-key ring); AuditKeys is the ring
	// as last read or rotated.
	AuditSigner note.Signer
	AuditVKey   string
	auditKey    atomic.Pointer[auditKeyState]
	// Loaded lists the secrets read at start, without values, for the
	// audit log and `secrets status`.
	Loaded []LoadedSecret

	closers []func()
}

// LoadedSecret is a secret read at start, described without its value.
type LoadedSecret struct {
	Name     string
	Provider string
	Where    string
	Version  int
	Secret   secrets.Secret `json:"-"`
}

// SecretsOptions are the inputs of OpenSecrets.
type SecretsOptions struct {
	Getenv func(string) string
	Logger *slog.Logger
	// ReadOnly opens an existing deployment's secrets without creating
	// any (offline commands): a missing pepper is ErrNoSecrets.
	ReadOnly bool
}

// ErrNoSecrets is returned by a read-only OpenSecrets when the deployment
// has no pepper yet (it never started).
var ErrNoSecrets = errors.New("no server secrets: this deployment has never started")

// legacyFiles are the files of the data dir that held the generated
// secrets before the secrets providers, and still do by default.
func legacyFiles(cfg *config.Config, dataDir string) secrets.Files {
	return secrets.Files{Dir: dataDir, Paths: map[string]string{
		secrets.Pepper:      filepath.Join(dataDir, SecretFile),
		secrets.SigningKeys: filepath.Join(dataDir, "signing-keys.json"),
		secrets.AuditKey:    filepath.Join(AuditDir(cfg, dataDir), "log.key"),
	}}
}

// OpenSecrets opens the provider cfg names, resolves the secret
// references of cfg in place (store.password_secret,
// ratelimit.redis_password_secret) and loads, creating them on first
// start, the pepper and the audit checkpoint key. Close releases it.
func OpenSecrets(ctx context.Context, cfg *config.Config, dataDir string, opts SecretsOptions) (_ *Secrets, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	log := opts.Logger.WithGroup("secrets")
	s := &Secrets{Legacy: legacyFiles(cfg, dataDir)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	sc := cfg.Secrets
	switch sc.Provider {
	case config.SecretsFile, "":
		f := s.Legacy
		if sc.Dir != "" {
			f.Dir = sc.Dir
		}
		s.Provider = f
	case config.SecretsEnv:
		s.Provider = secrets.Env{Getenv: opts.Getenv}
	case config.SecretsDotenv:
		d, err := secrets.OpenDotenv(sc.Dotenv)
		if err != nil {
			return nil, fmt.Errorf("secrets.dotenv: %w", err)
		}
		if cfg.Mode == config.ModeProd {
			log.Warn("secrets come from a .env file in prod mode: it is meant for local development; use env, file or vault", "file", sc.Dotenv)
		}
		s.Provider = d
	case config.SecretsVault:
		v := sc.Vault
		vp, err := vault.Open(ctx, vault.Config{
			Address: v.Address, Namespace: v.Namespace, Mount: v.Mount, Path: v.Path, Auth: v.Auth, TokenFile: v.TokenFile,
			RoleID: v.RoleID, SecretIDFile: v.SecretIDFile, SecretIDWrapped: v.SecretIDWrapped,
			Role: v.Role, KubernetesTokenFile: v.KubernetesTokenFile, AuthMount: v.AuthMount, CAFile: v.CAFile,
			Getenv: opts.Getenv, Logger: opts.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("secrets.vault: %w", err)
		}
		s.closers = append(s.closers, vp.Close)
		s.Vault = vp
		s.Provider = vp
	default:
		return nil, fmt.Errorf("secrets.provider %q: unknown", sc.Provider)
	}
	if err := s.resolveRefs(ctx, cfg); err != nil {
		return nil, err
	}

	// Where generated secrets live.
	if w, ok := s.Provider.(secrets.Writer); ok && sc.Provider != config.SecretsFile {
		s.Generated = w
	} else if mk := opts.Getenv(secrets.MasterKeyEnv); mk != "" {
		if cfg.Store.Driver != "postgres" {
			return nil, fmt.Errorf("%s is set but the store is %s: sealed secrets live in PostgreSQL (store.driver postgres)", secrets.MasterKeyEnv, cfg.Store.Driver)
		}
		key, err := secrets.ParseMasterKeys(mk, opts.Getenv(secrets.MasterKeyPreviousEnv))
		if err != nil {
			return nil, err
		}
		st, err := secretspg.OpenPassword(ctx, cfg.Store.DSN, key, s.storePassword())
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, st.Close)
		// Every row must open under one of the keys given: a replica
		// missing the key of some row refuses to start, naming it.
		if err := st.CheckKeys(ctx); err != nil {
			return nil, err
		}
		s.Generated, s.Sealed = st, st
	} else if opts.Getenv(secrets.MasterKeyPreviousEnv) != "" {
		return nil, fmt.Errorf("%s is set without %s: give the new master key in %s and the old one in %s", secrets.MasterKeyPreviousEnv, secrets.MasterKeyEnv, secrets.MasterKeyEnv, secrets.MasterKeyPreviousEnv)
	} else {
		s.Generated = s.Legacy
	}
	s.keys = &secrets.Blob{W: s.Generated, Name: secrets.SigningKeys}

	pepper, err := s.ensure(ctx, secrets.Pepper, opts.ReadOnly, func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	})
	if errors.Is(err, secrets.ErrNotFound) && opts.ReadOnly {
		return nil, ErrNoSecrets
	}
	if err != nil {
		return nil, err
	}
	if err := s.loadPepper(ctx, pepper, opts.ReadOnly); err != nil {
		return nil, err
	}
	if opts.ReadOnly {
		return s, nil
	}
	ak, err := s.ensure(ctx, secrets.AuditKey, false, func() ([]byte, error) {
		k, err := audit.GenerateSignerKey(cfg.Audit.Origin)
		return []byte(k), err
	})
	if err != nil {
		return nil, err
	}
	ring, err := audit.ParseKeyRing(string(ak.Value), cfg.Audit.Origin)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", secrets.AuditKey, err)
	}
	s.AuditSigner, s.AuditVKey = ring.Active.Signer, ring.Active.VerifierKey
	l := s.Loaded[len(s.Loaded)-1]
	s.auditKey.Store(&auditKeyState{ring: ring, secret: ak, provider: l.Provider, where: l.Where})
	// Signing keys: imported from the data dir's file when the store of
	// generated secrets has none; Tokens creates them otherwise.
	if s.Generated.Name() != s.Legacy.Name() {
		if _, err := s.ensure(ctx, secrets.SigningKeys, true, nil); err != nil && !errors.Is(err, secrets.ErrNotFound) {
			return nil, err
		}
	}
	return s, nil
}

// ensure returns generated secret name: the configured provider's when
// it is read-only and holds one (an operator's own), else the store of
// generated secrets', imported from the data dir's files or generated
// when it has none. With generate nil (or readOnly), nothing is
// generated: a missing secret is ErrNotFound.
func (s *Secrets) ensure(ctx context.Context, name string, readOnly bool, generate func() ([]byte, error)) (secrets.Secret, error) {
	provider := s.Generated.Name()
	sec, err := func() (secrets.Secret, error) {
		if _, ok := s.Provider.(secrets.Writer); !ok {
			sec, err := s.Provider.Get(ctx, name)
			if !errors.Is(err, secrets.ErrNotFound) {
				provider = s.Provider.Name()
				return sec, err
			}
		}
		var fallback secrets.Provider
		if s.Generated.Name() != s.Legacy.Name() {
			fallback = s.Legacy
		}
		if readOnly || generate == nil {
			sec, err := s.Generated.Get(ctx, name)
			if errors.Is(err, secrets.ErrNotFound) && fallback != nil {
				if old, ferr := fallback.Get(ctx, name); ferr == nil {
					if readOnly {
						return old, nil
					}
					return s.Generated.Put(ctx, name, old.Value, 0)
				}
			}
			return sec, err
		}
		return secrets.Ensure(ctx, s.Generated, name, fallback, generate)
	}()
	if err != nil {
		return secrets.Secret{}, fmt.Errorf("secret %s: %w", name, err)
	}
	s.Loaded = append(s.Loaded, LoadedSecret{Name: name, Provider: provider, Where: sec.Where, Version: sec.Version, Secret: sec})
	return sec, nil
}

// Names of the status entries of passwords given inline in the config
// rather than by reference (`gatehouse check` warns of them).
const (
	statusStorePassword = "store-password"
	statusRedisPassword = "redis-password"
)

// resolveRefs reads the passwords the config names by reference
// (store.password_secret, ratelimit.redis_password_secret) into Refs that
// follow their rotations, and sets the value read now into the store DSN
// and the Redis URL, for what connects once (offline commands); the pools
// of serve ask the Refs at each new connection.
func (s *Secrets) resolveRefs(ctx context.Context, cfg *config.Config) error {
	if name := cfg.Store.PasswordSecret; name != "" {
		ref, err := secrets.NewRef(ctx, s.Provider, name, "store.password_secret", nil)
		if err != nil {
			return err
		}
		dsn, err := pgauth.WithPassword(cfg.Store.DSN, ref.Value())
		if err != nil {
			return fmt.Errorf("store.dsn: %w", err)
		}
		cfg.Store.DSN = dsn
		s.StorePassword = ref
		s.loadedRef(ref)
	}
	if name := cfg.RateLimit.RedisPasswordSecret; name != "" {
		ref, err := secrets.NewRef(ctx, s.Provider, name, "ratelimit.redis_password_secret", nil)
		if err != nil {
			return err
		}
		u, err := url.Parse(cfg.RateLimit.RedisURL)
		if err != nil {
			return errors.New("ratelimit.redis_url: not a URL")
		}
		user := ""
		if u.User != nil {
			user = u.User.Username()
		}
		u.User = url.UserPassword(user, ref.Value())
		cfg.RateLimit.RedisURL = u.String()
		s.RedisPassword = ref
		s.loadedRef(ref)
	}
	return nil
}

// loadedRef records a reference read at start in Loaded, for the
// secrets.read event.
func (s *Secrets) loadedRef(r *secrets.Ref) {
	st := r.Status()
	s.Loaded = append(s.Loaded, LoadedSecret{Name: st.Name, Provider: st.Provider, Where: st.Where, Version: st.Version,
		Secret: secrets.Secret{Version: st.Version, Created: st.Created, Where: st.Where}})
}

// refs are the secret references the config holds.
func (s *Secrets) refs() []*secrets.Ref {
	var out []*secrets.Ref
	for _, r := range []*secrets.Ref{s.StorePassword, s.RedisPassword} {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

// storePassword is the password source of the store's new connections:
// the reference's current value, or nil (the DSN's own).
func (s *Secrets) storePassword() pgauth.Password {
	if s.StorePassword == nil {
		return nil
	}
	return s.StorePassword.Password
}

// storeDSN is the store's DSN with the password in use now, for what
// connects once (a verification, a backup): a rotated password since start
// is the one it carries.
func (a *App) storeDSN(ctx context.Context) (string, error) {
	pw := a.secrets.storePassword()
	if pw == nil {
		return a.cfg.Store.DSN, nil
	}
	p, err := pw(ctx)
	if err != nil {
		return "", err
	}
	dsn, err := pgauth.WithPassword(a.cfg.Store.DSN, p)
	if err != nil {
		return "", fmt.Errorf("store.dsn: %w", err)
	}
	return dsn, nil
}

// explainAuthFailure names the secret a refused password came from when
// PostgreSQL answers invalid_password (28P01) with store.password_secret
// set. Other errors (and nil) come back as they are. Never a value. (A
// Redis that refuses the password does not stop the start: the limiter
// starts degraded, and readiness says WRONGPASS.)
func (s *Secrets) explainAuthFailure(err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if r := s.StorePassword; r != nil && errors.As(err, &pe) && pe.Code == "28P01" {
		st := r.Status()
		return fmt.Errorf("%w (the password is secret %s of the %s provider, version %d, for store.password_secret: if it was rotated, the database and the secret must hold the same one)", err, st.Name, st.Provider, st.Version)
	}
	return err
}

// refsPollDefault is how often references to file secrets are read again
// when secrets.poll is not set.
const refsPollDefault = 10 * time.Second

// refsPoll is how often the secret references are read again:
// secrets.poll when set, else secrets.vault.poll with Vault (the KV
// metadata's current_version) and refsPollDefault with files (their
// content and modification time); never from the environment or a .env
// file, which are read at start.
func refsPoll(cfg *config.Config) time.Duration {
	switch cfg.Secrets.Provider {
	case config.SecretsEnv, config.SecretsDotenv:
		return 0
	}
	if p := time.Duration(cfg.Secrets.Poll); p > 0 {
		return p
	}
	if cfg.Secrets.Provider == config.SecretsVault {
		return time.Duration(cfg.Secrets.Vault.Poll)
	}
	return refsPollDefault
}

// runRefs reads the secret references again every refsPoll until ctx
// ends. A new value is used by new connections; open ones live on. Each
// change is logged and audited as secrets.reload (name, provider,
// version, never a value); a failed read keeps the value in use and is
// logged and shown by `secrets status` and /health/ready.
func (a *App) runRefs(ctx context.Context) {
	every := refsPoll(a.cfg)
	for _, r := range a.secrets.refs() {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			r.Run(ctx, every, func(st secrets.RefStatus) {
				a.log.Info("secret reference reloaded: new connections use the new value", "secret", st.Name, "for", st.What, "provider", st.Provider, "version", st.Version)
				a.system(ctx, "secrets.reload", map[string]any{"name": st.Name, "for": st.What, "provider": st.Provider, "where": st.Where, "version": st.Version})
			}, func(err error) {
				a.log.Warn("secret reference: reload failed; the value read before stays in use", "secret", r.Name(), "err", err)
			})
		}()
	}
}

// ReloadSecretRefs reads every secret reference again now, as the poll
// does, and reports which changed.
func (a *App) ReloadSecretRefs(ctx context.Context) ([]string, error) {
	var changed []string
	var errs []error
	for _, r := range a.secrets.refs() {
		ok, err := r.Reload(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			changed = append(changed, r.Name())
			st := r.Status()
			a.system(ctx, "secrets.reload", map[string]any{"name": st.Name, "for": st.What, "provider": st.Provider, "where": st.Where, "version": st.Version})
		}
	}
	return changed, errors.Join(errs...)
}

// decodePepper accepts the pepper as 32 raw bytes (the data dir's
// server.secret) or as base64 of 32 bytes (an environment variable, a
// .env file, Vault). Errors never quote it.
func decodePepper(v []byte) ([]byte, error) {
	if len(v) == 32 {
		return v, nil
	}
	t := strings.TrimSpace(string(v))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(t); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, fmt.Errorf("secret %s: must be 32 bytes, raw or in base64 (openssl rand -base64 32)", secrets.Pepper)
}

// sealedPoll is how often replicas on the sealed store look for a
// rotation made by another (one indexed query).
const sealedPoll = 10 * time.Second

// reloadEvery is how often shared generated secrets are checked for a
// new version: secrets.vault.poll with Vault, sealedPoll with the sealed
// store, never with files (one process per data dir).
func (s *Secrets) reloadEvery(cfg *config.Config) time.Duration {
	switch {
	case s.Vault != nil:
		return time.Duration(cfg.Secrets.Vault.Poll)
	case s.Generated.Name() == "sealed":
		return sealedPoll
	}
	return 0
}

// SigningKeys is where the JWT signing keys are kept: one Blob, whose
// owner (the token service) serializes its loads and saves.
func (s *Secrets) SigningKeys() *secrets.Blob { return s.keys }

// BackupIdentities returns the age identities of backup-identity from the
// provider, or nil when it holds none.
func (s *Secrets) BackupIdentities(ctx context.Context) (backup.Identities, error) {
	sec, err := s.Provider.Get(ctx, secrets.BackupIdentity)
	if errors.Is(err, secrets.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("backup identity: %w", err)
	}
	ids, err := age.ParseIdentities(strings.NewReader(string(sec.Value)))
	if err != nil {
		return nil, fmt.Errorf("secret %s holds no age identity (AGE-SECRET-KEY-1…, as `gatehouse backup keygen` prints)", secrets.BackupIdentity)
	}
	s.Loaded = append(s.Loaded, LoadedSecret{Name: secrets.BackupIdentity, Provider: s.Provider.Name(), Where: sec.Where, Version: sec.Version, Secret: sec})
	return func(context.Context) ([]age.Identity, error) { return ids, nil }, nil
}

// backupSecrets gives backups the server secrets under the names of the
// backup format, read from wherever they live now.
type backupSecrets struct{ s *Secrets }

// Load implements backup.Secrets.
func (b backupSecrets) Load(ctx context.Context) ([]backup.Secret, error) {
	out := []backup.Secret{{Name: "server.secret", Data: b.s.Pepper}}
	if st := b.s.pepper.Load(); st != nil && st.stored {
		// Every version as it is now: a rotation since start added one.
		out = append(out, backup.Secret{Name: secrets.PepperVersions, Data: st.set.Marshal()})
	}
	// A Blob of its own: loading the token service's would move the
	// version its next check-and-set expects.
	keys, err := (&secrets.Blob{W: b.s.Generated, Name: secrets.SigningKeys}).Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("read secret signing-keys: %w", err)
	}
	if keys != nil {
		out = append(out, backup.Secret{Name: "signing-keys.json", Data: keys})
	}
	if st := b.s.auditKey.Load(); st != nil {
		// The ring as it is now: a rotation since start replaced it.
		out = append(out, backup.Secret{Name: "audit-log.key", Data: st.ring.Marshal()})
	}
	return out, nil
}

// Close releases the provider's connections.
func (s *Secrets) Close() {
	for _, c := range s.closers {
		c()
	}
	s.closers = nil
}

// auditSecretsLoaded records which secrets the process read at start and
// where from (one event; never a value).
func (a *App) auditSecretsLoaded(ctx context.Context) {
	var list []map[string]any
	for _, l := range a.secrets.Loaded {
		list = append(list, map[string]any{"name": l.Name, "provider": l.Provider, "where": l.Where, "version": l.Version})
	}
	a.system(ctx, "secrets.read", map[string]any{"provider": a.secrets.Provider.Name(), "generated": a.secrets.Generated.Name(), "secrets": list})
}
