package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pgauth"
	"github.com/gatehouse/gatehouse/internal/secrets"
	secretspg "github.com/gatehouse/gatehouse/internal/secrets/postgres"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Names of the status entries that are not secrets of a provider: the
// oldest in use of the credentials kept hashed in the store, and the
// Vault login.
const (
	statusAPIKeys         = "api-keys"
	statusClientSecrets   = "client-secrets"
	statusVaultToken      = "vault-token"
	statusAppRoleSecretID = "approle-secret-id"
	statusMasterKey       = "master-key"
)

// statusNames are every name `gatehouse secrets status` may list, for
// telling an unknown name (404) from one this deployment does not use
// (409).
var statusNames = []string{secrets.Pepper, secrets.SigningKeys, secrets.AuditKey, secrets.BackupIdentity,
	statusVaultToken, statusAppRoleSecretID, statusMasterKey, statusAPIKeys, statusClientSecrets,
	statusStorePassword, statusRedisPassword}

// metricClass is the class label of gatehouse_secret_age_seconds for a
// status entry (the first three as they were before the status listing).
var metricClass = map[string]string{
	secrets.SigningKeys: "signing_key", statusAPIKeys: "api_key", statusClientSecrets: "client_secret",
	secrets.Pepper: "pepper", secrets.AuditKey: "audit_key", secrets.BackupIdentity: "backup_identity",
	statusVaultToken: "vault_token", statusAppRoleSecretID: "approle_secret_id",
}

// secretStatusEvery is how long a status computed for readiness and
// metrics is reused: it lists every key and client, and ages change by
// the day.
const secretStatusEvery = time.Minute

// cadence is how often secrets of class should rotate: Settings →
// Authentication's secret_rotation where set, else the config's
// secrets.cadence (defaults applied).
func (a *App) cadence(class string) time.Duration {
	if d := a.users.Settings().SecretRotation.For(class); d > 0 {
		return d
	}
	return time.Duration(a.cfg.Secrets.Cadence[class])
}

// loaded returns the newest record of secret name read at start.
func (s *Secrets) loaded(name string) (LoadedSecret, bool) {
	for i := len(s.Loaded) - 1; i >= 0; i-- {
		if s.Loaded[i].Name == name {
			return s.Loaded[i], true
		}
	}
	return LoadedSecret{}, false
}

// SecretsStatus lists every secret of the deployment with its age against
// its class's cadence, never a value.
func (a *App) SecretsStatus(ctx context.Context) ([]secrets.Status, error) {
	now := a.clock.Now()
	var out []secrets.Status
	add := func(st secrets.Status, created time.Time) {
		st.Age(created, a.cadence(st.Class), now)
		out = append(out, st)
	}
	fromLoaded := func(name, class, rotate string) {
		if l, ok := a.secrets.loaded(name); ok {
			add(secrets.Status{Name: name, Class: class, Provider: l.Provider, Where: l.Where, Version: l.Version, Rotate: rotate}, l.Secret.Created)
		}
	}
	if a.secrets.pepper.Load() != nil {
		st, err := a.pepperStatus(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}

	// Signing keys: the active key's age, wherever the key set lives.
	version, where := a.secrets.keys.Stored()
	var active time.Time
	for _, k := range a.tokens.SigningKeys() {
		if k.Active {
			active = k.CreatedAt
		}
	}
	add(secrets.Status{Name: secrets.SigningKeys, Class: secrets.ClassSigningKeys, Provider: a.secrets.Generated.Name(), Where: where, Version: version,
		Rotatable: true, Rotate: "gatehouse secrets rotate signing-keys (or gatehouse signing-keys rotate); on schedule every auth.signing_key_rotation"}, active)

	if st := a.secrets.auditKey.Load(); st != nil {
		// The ring in use, which a rotation replaces.
		s := secrets.Status{Name: secrets.AuditKey, Class: secrets.ClassAuditKey, Provider: st.provider, Where: st.where, Version: st.secret.Version,
			Rotatable: a.secrets.auditKeyRotatable(),
			Rotate:    "gatehouse secrets rotate audit-key: a new key, and a hand-over checkpoint signed by the old and the new one (docs/audit.md, Key rotation)"}
		if !s.Rotatable {
			s.Rotate = "give a new ring in " + st.provider + " (the new key, then the old one, one per line) and restart: the hand-over is written at start (docs/secrets.md)"
		}
		add(s, st.secret.Created)
	}

	const backupRotate = "gatehouse backup keygen, list the new recipient in backup.recipients, keep the old identity until the backups made under it are pruned (docs/recovery.md)"
	if a.backups != nil {
		if f := a.cfg.Backup.IdentityFile; f != "" {
			if fi, err := os.Stat(f); err == nil {
				add(secrets.Status{Name: secrets.BackupIdentity, Class: secrets.ClassBackupIdentity, Provider: "file", Where: "file " + f, Version: 1, Rotate: backupRotate}, fi.ModTime())
			}
		} else {
			fromLoaded(secrets.BackupIdentity, secrets.ClassBackupIdentity, backupRotate)
		}
	}

	if a.secrets.Sealed != nil {
		st, err := a.masterKeyStatus(ctx)
		if err != nil {
			return nil, err
		}
		add(st, time.Time{})
	}

	if v := a.secrets.Vault; v != nil {
		vc := a.cfg.Secrets.Vault
		info, err := v.Token(ctx)
		if err != nil {
			return nil, fmt.Errorf("look up the vault token: %w", err)
		}
		created := info.Created
		if created.IsZero() {
			created = info.LoginAt
		}
		renews := "not renewable"
		if info.Renewable {
			renews = "renewed before it expires"
		}
		st := secrets.Status{Name: statusVaultToken, Class: secrets.ClassVaultToken, Provider: "vault",
			Where: fmt.Sprintf("vault token of %s auth at %s (ttl left %s, %s)", vc.Auth, vc.Address, info.TTL.Round(time.Second), renews)}
		if vc.Auth != "token" || vc.TokenFile != "" {
			st.Rotatable, st.Rotate = true, "gatehouse secrets rotate vault-token logs in to Vault anew"
			if vc.Auth == "token" {
				st.Rotate = "write a new token to " + vc.TokenFile + ", then gatehouse secrets rotate vault-token reads it"
			}
		} else {
			st.Rotate = "give a new token in VAULT_TOKEN and restart, or use secrets.vault.token_file, approle or kubernetes auth"
		}
		add(st, created)
		if vc.Auth == "approle" {
			if fi, err := os.Stat(vc.SecretIDFile); err == nil {
				add(secrets.Status{Name: statusAppRoleSecretID, Class: secrets.ClassAppRoleSecretID, Provider: "file",
					Where:  "file " + vc.SecretIDFile + " (read at each vault login)",
					Rotate: "write a new secret-id to " + vc.SecretIDFile + " (vault write -f auth/" + vc.AuthMount + "/role/<role>/secret-id); it is read at the next login: gatehouse secrets rotate vault-token"}, fi.ModTime())
			}
		}
	}

	for _, st := range a.passwordStatus() {
		created := time.Time{}
		if st.CreatedAt != nil {
			created = *st.CreatedAt
		}
		add(st, created)
	}

	// Credentials kept hashed in the store: the oldest in use of each kind.
	keys, err := a.keys.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	var oldestKey *store.Key
	n := 0
	for _, k := range keys {
		if k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || k.ExpiresAt.After(now)) {
			n++
			if oldestKey == nil || k.CreatedAt.Before(oldestKey.CreatedAt) {
				oldestKey = k
			}
		}
	}
	if oldestKey != nil {
		add(secrets.Status{Name: statusAPIKeys, Class: secrets.ClassAPIKeys, Provider: "store",
			Where:  fmt.Sprintf("hashed in the %s store: oldest of %d active API keys is %s (%s)", a.cfg.Store.Driver, n, oldestKey.ID, oldestKey.Name),
			Rotate: "gatehouse keys rotate " + oldestKey.ID + " [--grace 24h]"}, oldestKey.CreatedAt)
	}
	clients, err := a.clients.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	var oldestClient *store.Client
	n = 0
	for _, c := range clients {
		if clientActive(c, now) {
			n++
			if oldestClient == nil || clientSecretCreated(c).Before(clientSecretCreated(oldestClient)) {
				oldestClient = c
			}
		}
	}
	if oldestClient != nil {
		add(secrets.Status{Name: statusClientSecrets, Class: secrets.ClassAPIKeys, Provider: "store",
			Where:  fmt.Sprintf("hashed in the %s store: oldest of %d active client secrets is %s's (%s)", a.cfg.Store.Driver, n, oldestClient.ID, oldestClient.Name),
			Rotate: "gatehouse clients rotate " + oldestClient.ID}, clientSecretCreated(oldestClient))
	}
	return out, nil
}

// masterKeyStatus is the master key's entry: its id and how many sealed
// rows are under it and under previous keys.
func (a *App) masterKeyStatus(ctx context.Context) (secrets.Status, error) {
	sealed := a.secrets.Sealed
	counts, err := sealed.KeyCounts(ctx)
	if err != nil {
		return secrets.Status{}, err
	}
	current, previous, total := counts[sealed.KeyID()], 0, 0
	for _, n := range counts {
		total += n
	}
	previous = total - current
	where := fmt.Sprintf("%s, key id %s: %d of %d sealed rows in PostgreSQL", secrets.MasterKeyEnv, sealed.KeyID(), current, total)
	if ids := sealed.PreviousKeyIDs(); len(ids) > 0 {
		where += fmt.Sprintf("; previous key id %s in %s", strings.Join(ids, ", "), secrets.MasterKeyPreviousEnv)
	}
	if previous > 0 {
		where += fmt.Sprintf("; %d rows still under a previous key: gatehouse secrets reseal", previous)
	}
	return secrets.Status{Name: statusMasterKey, Class: secrets.ClassMasterKey, Provider: "env", Where: where, Version: 0,
		KeyID: sealed.KeyID(), PreviousKeyIDs: sealed.PreviousKeyIDs(), SealedUnderPrevious: &previous, Rotatable: true,
		Rotate: "give the new key in " + secrets.MasterKeyEnv + " and the old one in " + secrets.MasterKeyPreviousEnv +
			" to every replica, then gatehouse secrets reseal (or gatehouse secrets rotate master-key), then remove " +
			secrets.MasterKeyPreviousEnv + " (docs/secrets.md, Rotating the master key)"}, nil
}

// secretStatusCache keeps the last status for readiness, metrics and
// the daily overdue event.
type secretStatusCache struct {
	mu   sync.Mutex
	at   time.Time
	last []secrets.Status
	err  error
}

// cachedSecretsStatus is the status computed at most once a
// secretStatusEvery (or by the last GET /v1/secrets).
func (a *App) cachedSecretsStatus(ctx context.Context) ([]secrets.Status, error) {
	c := &a.statusCache
	c.mu.Lock()
	fresh := !c.at.IsZero() && a.clock.Now().Sub(c.at) < secretStatusEvery && !a.clock.Now().Before(c.at)
	last, err := c.last, c.err
	c.mu.Unlock()
	if fresh {
		return last, err
	}
	return a.refreshSecretsStatus(ctx)
}

// refreshSecretsStatus computes the status, keeps it for
// cachedSecretsStatus and records the daily overdue event when due.
func (a *App) refreshSecretsStatus(ctx context.Context) ([]secrets.Status, error) {
	c := &a.statusCache
	c.mu.Lock()
	defer c.mu.Unlock()
	now := a.clock.Now()
	c.last, c.err = a.SecretsStatus(ctx)
	c.at = now
	if c.err == nil {
		a.auditOverdue(ctx, c.last, now)
	}
	return c.last, c.err
}

// overdueSetting is the store setting that records, per UTC day, that
// the overdue event was recorded, so that every replica together records
// one a day.
const overdueSetting = "secrets.overdue_audited:"

// auditOverdue records secrets.overdue, once a UTC day for all replicas
// on one store, when any secret is past its cadence.
func (a *App) auditOverdue(ctx context.Context, list []secrets.Status, now time.Time) {
	var overdue []map[string]any
	for _, s := range list {
		if s.Overdue {
			overdue = append(overdue, map[string]any{"name": s.Name, "class": s.Class, "provider": s.Provider,
				"age_seconds": *s.AgeSeconds, "cadence_seconds": s.CadenceSeconds, "due_at": s.DueAt.Format(time.RFC3339)})
		}
	}
	if len(overdue) == 0 {
		return
	}
	day := now.UTC().Format(time.DateOnly)
	first, err := a.store.PutSettingIfAbsent(ctx, overdueSetting+day, []byte(`"`+day+`"`))
	if err != nil {
		a.log.Warn("record the daily overdue-secrets event", "err", err)
		return
	}
	if first {
		a.system(ctx, "secrets.overdue", map[string]any{"day": day, "secrets": overdue})
	}
}

// runSecretsStatus computes the status hourly (and at start), so that the
// daily overdue event is recorded even with nobody asking.
func (a *App) runSecretsStatus(ctx context.Context) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		tick := time.NewTicker(time.Hour)
		defer tick.Stop()
		for {
			if _, err := a.cachedSecretsStatus(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("secrets status", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// secretsReady is the readiness check "secrets": failing, but not
// critical, while a secret is past its rotation cadence.
func (a *App) secretsReady() gateway.ReadinessCheck {
	return gateway.ReadinessCheck{Name: "secrets",
		Check: func(ctx context.Context) error {
			list, err := a.cachedSecretsStatus(ctx)
			if err != nil {
				return err
			}
			var late []string
			for _, s := range list {
				if s.Overdue {
					late = append(late, fmt.Sprintf("%s (%d days old, cadence %d days)", s.Name, *s.AgeSeconds/86400, s.CadenceSeconds/86400))
				}
			}
			if len(late) > 0 {
				return fmt.Errorf("past rotation cadence: %s; see gatehouse secrets status", strings.Join(late, ", "))
			}
			return a.refsReady()
		},
		Detail: func() string {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			list, err := a.cachedSecretsStatus(ctx)
			if err != nil {
				return "status unknown" + a.refsDetail()
			}
			var next *secrets.Status
			for i, s := range list {
				if s.DueAt != nil && !s.Overdue && (next == nil || s.DueAt.Before(*next.DueAt)) {
					next = &list[i]
				}
			}
			d := fmt.Sprintf("%d secrets tracked", len(list))
			if next != nil {
				d += fmt.Sprintf("; next due: %s on %s", next.Name, next.DueAt.Format(time.DateOnly))
			}
			return d + a.refsDetail()
		}}
}

// secretAges is the source of gatehouse_secret_age_seconds: when the
// value in use of each status entry was made, by metric class.
func (a *App) secretAges() func(ctx context.Context) map[string]time.Time {
	return func(ctx context.Context) map[string]time.Time {
		list, err := a.cachedSecretsStatus(ctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			a.log.Warn("metrics: secret ages", "err", err)
		}
		out := map[string]time.Time{}
		for _, s := range list {
			if c, ok := metricClass[s.Name]; ok && s.CreatedAt != nil {
				out[c] = *s.CreatedAt
			}
		}
		return out
	}
}

// RotateSecret rotates secret name where its provider allows: the JWT
// signing keys (the retired key stays in the JWKS until its tokens
// expire) and the Vault login. It returns the status before and after.
// A name not listed is ENOTFOUND; a secret that cannot be rotated here is
// ECONFLICT saying how it is rotated.
func (a *App) RotateSecret(ctx context.Context, name string) (before, after secrets.Status, err error) {
	if err := secrets.CheckName(name); err != nil {
		return before, after, gatehouse.Errorf(gatehouse.EINVALID, "%v", err)
	}
	find := func() (secrets.Status, bool, error) {
		list, err := a.SecretsStatus(ctx)
		if err != nil {
			return secrets.Status{}, false, err
		}
		for _, s := range list {
			if s.Name == name {
				return s, true, nil
			}
		}
		return secrets.Status{}, false, nil
	}
	before, ok, err := find()
	switch {
	case err != nil:
		return before, after, err
	case !ok && slices.Contains(statusNames, name):
		return before, after, gatehouse.Errorf(gatehouse.ECONFLICT, "this deployment has no %s to rotate", name)
	case !ok:
		return before, after, gatehouse.Errorf(gatehouse.ENOTFOUND, "no secret %q: gatehouse secrets status lists them (%s)", name, strings.Join(statusNames, ", "))
	case !before.Rotatable:
		return before, after, gatehouse.Errorf(gatehouse.ECONFLICT, "%s cannot be rotated by gatehouse secrets rotate: %s", name, before.Rotate)
	}
	switch name {
	case secrets.SigningKeys:
		err = a.tokens.Rotate(ctx, "secrets rotate")
	case secrets.Pepper:
		_, err = a.rotatePepper(ctx)
	case secrets.AuditKey:
		_, err = a.rotateAuditKey(ctx)
	case statusVaultToken:
		_, err = a.secrets.Vault.Relogin(ctx)
	case statusMasterKey:
		var res secretspg.ResealResult
		res, err = a.secrets.Sealed.Reseal(ctx)
		if err == nil {
			a.log.Info("re-sealed the sealed secrets under the current master key", "key_id", res.KeyID, "resealed", res.Resealed, "from", res.From, "rows", res.Total)
		}
	}
	if err != nil {
		return before, after, fmt.Errorf("rotate %s: %w", name, err)
	}
	after, _, err = find()
	if _, rerr := a.refreshSecretsStatus(ctx); rerr != nil {
		a.log.Warn("secrets status after a rotation", "err", rerr)
	}
	return before, after, err
}

// secretsAPI gives the admin API the secrets status and rotation.
type secretsAPI struct{ a *App }

func (s secretsAPI) Status(ctx context.Context) ([]secrets.Status, error) {
	return s.a.refreshSecretsStatus(ctx)
}

func (s secretsAPI) Rotate(ctx context.Context, name string) (secrets.Status, secrets.Status, error) {
	return s.a.RotateSecret(ctx, name)
}

// passwordStatus lists the store and Redis passwords: each secret
// reference (its name, provider, where, version and when it was read;
// never the value), or, for a password written inline in the DSN or URL,
// an entry that warns of it. CreatedAt holds when the value was made, for
// SecretsStatus to age.
func (a *App) passwordStatus() []secrets.Status {
	var out []secrets.Status
	ref := func(r *secrets.Ref, class, field, rotate string) {
		st := r.Status()
		s := secrets.Status{Name: st.Name, Class: class, Provider: st.Provider, Where: st.Where + " (" + field + ")", Version: st.Version, Rotate: rotate}
		if !st.Created.IsZero() {
			c := st.Created
			s.CreatedAt = &c
		}
		l := st.LoadedAt.UTC()
		s.LoadedAt = &l
		if st.Err != nil {
			s.ReloadError = fmt.Sprintf("%v (at %s; the value read at %s stays in use)", st.Err, st.ErrAt.UTC().Format(time.RFC3339), l.Format(time.RFC3339))
		}
		out = append(out, s)
	}
	every := "at start only (restart to use a new value)"
	if d := refsPoll(a.cfg); d > 0 {
		every = "within " + d.String()
	}
	if r := a.secrets.StorePassword; r != nil {
		ref(r, secrets.ClassStorePassword, "store.password_secret",
			"ALTER ROLE ... PASSWORD '...', then write the new password to this secret: new connections use it "+every+", open ones live on (docs/secrets.md, Rotating the database and Redis passwords)")
	} else if a.cfg.Store.Driver == "postgres" && pgauth.HasPassword(a.cfg.Store.DSN) {
		out = append(out, secrets.Status{Name: statusStorePassword, Class: secrets.ClassStorePassword, Provider: "config", Where: "inline in store.dsn",
			Rotate:  "move it to a secret named by store.password_secret, which rotates without a restart (docs/secrets.md)",
			Warning: inlinePasswordWarning("store.dsn", "store.password_secret")})
	}
	if r := a.secrets.RedisPassword; r != nil {
		ref(r, secrets.ClassRedisPassword, "ratelimit.redis_password_secret",
			"ACL SETUSER <user> >NEW (and later <OLD), then write the new password to this secret: new connections use it "+every+", open ones live on (docs/secrets.md, Rotating the database and Redis passwords)")
	} else if a.cfg.RateLimit.Backend == "redis" && redisURLHasPassword(a.cfg.RateLimit.RedisURL) {
		out = append(out, secrets.Status{Name: statusRedisPassword, Class: secrets.ClassRedisPassword, Provider: "config", Where: "inline in ratelimit.redis_url",
			Rotate:  "move it to a secret named by ratelimit.redis_password_secret, which rotates without a restart (docs/secrets.md)",
			Warning: inlinePasswordWarning("ratelimit.redis_url", "ratelimit.redis_password_secret")})
	}
	return out
}

// inlinePasswordWarning says why a password in the config itself is
// discouraged.
func inlinePasswordWarning(field, ref string) string {
	return "the password is written inline in " + field + ": it sits in the config in clear and cannot rotate without a restart; name a secret with " + ref + " instead (docs/secrets.md)"
}

// redisURLHasPassword reports whether a Redis URL carries a password.
func redisURLHasPassword(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return false
	}
	p, ok := u.User.Password()
	return ok && p != ""
}

// refsReady fails (the "secrets" check) while reading a secret
// reference again fails: the value read before stays in use, so a
// rotation made meanwhile would leave new connections failing.
func (a *App) refsReady() error {
	var failed []string
	for _, r := range a.secrets.refs() {
		if st := r.Status(); st.Err != nil {
			failed = append(failed, fmt.Sprintf("%v (since %s; the value read at %s stays in use)", st.Err, st.ErrAt.UTC().Format(time.RFC3339), st.LoadedAt.UTC().Format(time.RFC3339)))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("secret reference reload failed: %s", strings.Join(failed, "; "))
	}
	return nil
}

// refsDetail describes the secret references for /health/ready: name,
// provider, version and the age of the value in use; never the value,
// nor where it lives. Ages are by the host's clock, as the files' and
// Vault's times are.
func (a *App) refsDetail() string {
	var parts []string
	now := time.Now()
	for _, r := range a.secrets.refs() {
		st := r.Status()
		p := fmt.Sprintf("%s (%s: %s provider, version %d, read %s ago", st.Name, st.What, st.Provider, st.Version, now.Sub(st.LoadedAt).Round(time.Second))
		if !st.Created.IsZero() {
			p += fmt.Sprintf(", made %s ago", now.Sub(st.Created).Round(time.Second))
		}
		parts = append(parts, p+")")
	}
	if len(parts) == 0 {
		return ""
	}
	return "; references: " + strings.Join(parts, ", ")
}
