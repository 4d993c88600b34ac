package authn

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

// AuthSettings is Settings → Authentication: how people sign in.
type AuthSettings struct {
	Password password.Policy `json:"password_policy"`
	// Argon2 are the parameters of new hashes; a sign-in with a hash made
	// under other parameters rehashes it.
	Argon2            password.Params `json:"argon2"`
	BasicAuth         bool            `json:"basic_auth"` // HTTP Basic on the admin API
	Lockout           LockoutSettings `json:"lockout"`
	Session           SessionSettings `json:"session"`
	TOTPRequiredRoles []string        `json:"totp_required_roles"`
	// SignInLimits bound sign-in attempts (session and HTTP Basic) on the
	// admin listener, before any password is hashed.
	SignInLimits SignInLimits `json:"sign_in_limits"`
	// SecretRotation is the rotation cadence of each class of server
	// secret, for `gatehouse secrets status`; zero keeps the config's.
	SecretRotation SecretRotation `json:"secret_rotation"`
}

// SecretRotation overrides, per class of server secret, the rotation
// cadence the config's secrets.cadence gives; a zero field keeps the
// config's.
type SecretRotation struct {
	APIKeys         Duration `json:"api_keys"`
	SigningKeys     Duration `json:"signing_keys"`
	Pepper          Duration `json:"pepper"`
	AuditKey        Duration `json:"audit_key"`
	BackupIdentity  Duration `json:"backup_identity"`
	VaultToken      Duration `json:"vault_token"`
	AppRoleSecretID Duration `json:"approle_secret_id"`
}

// fields maps each class (the config's secrets.cadence keys) to its field.
func (r *SecretRotation) fields() map[string]*Duration {
	return map[string]*Duration{
		"api_keys": &r.APIKeys, "signing_keys": &r.SigningKeys, "pepper": &r.Pepper, "audit_key": &r.AuditKey,
		"backup_identity": &r.BackupIdentity, "vault_token": &r.VaultToken, "approle_secret_id": &r.AppRoleSecretID,
	}
}

// For returns the cadence set for class, 0 when none is (or the class is
// unknown).
func (r SecretRotation) For(class string) time.Duration {
	if d, ok := r.fields()[class]; ok {
		return time.Duration(*d)
	}
	return 0
}

// SignInLimits are rate limits on sign-in attempts, successful or not (each
// costs a password hash). Beyond them the admin API answers 429 with
// Retry-After. They are kept per process, in bounded memory; the lockout
// (in the store) is what protects an account across replicas.
type SignInLimits struct {
	PerSource   ratelimit.Limit `json:"per_source"`   // per client address
	PerUsername ratelimit.Limit `json:"per_username"` // per username tried, existing or not
}

// LockoutSettings locks an account after repeated failed logins.
type LockoutSettings struct {
	MaxFailures int      `json:"max_failures"`
	Window      Duration `json:"window"`
	Duration    Duration `json:"duration"`
}

// SessionSettings bounds sessions.
type SessionSettings struct {
	IdleTimeout     Duration `json:"idle_timeout"`
	AbsoluteTimeout Duration `json:"absolute_timeout"`
}

// Duration is a time.Duration written as a string ("30m") in JSON.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' {
		return errors.New(`a duration is a string such as "30m"`)
	}
	text := string(b[1 : len(b)-1])
	v, err := time.ParseDuration(text)
	if n, ok := strings.CutSuffix(text, "d"); ok && err != nil {
		// Whole days, as the config writes cadences: 90d.
		if days, derr := strconv.Atoi(n); derr == nil && days >= 0 && days <= 100*365 {
			v, err = time.Duration(days)*24*time.Hour, nil
		}
	}
	if err != nil {
		return fmt.Errorf("invalid duration %s", b)
	}
	*d = Duration(v)
	return nil
}

// DefaultAuthSettings are the settings of a new deployment.
func DefaultAuthSettings() AuthSettings {
	return AuthSettings{
		Password:          password.DefaultPolicy(),
		Argon2:            password.DefaultParams(),
		BasicAuth:         true,
		Lockout:           LockoutSettings{MaxFailures: 5, Window: Duration(15 * time.Minute), Duration: Duration(15 * time.Minute)},
		Session:           SessionSettings{IdleTimeout: Duration(30 * time.Minute), AbsoluteTimeout: Duration(12 * time.Hour)},
		TOTPRequiredRoles: []string{},
		SignInLimits: SignInLimits{
			PerSource:   ratelimit.Limit{Requests: 30, Per: time.Minute},
			PerUsername: ratelimit.Limit{Requests: 10, Per: time.Minute},
		},
	}
}

// Validate refuses unsafe settings, naming the field and the reason.
func (s AuthSettings) Validate() error {
	bad := func(field, format string, args ...any) error {
		return gatehouse.Errorf(gatehouse.EINVALID, "%s: %s", field, fmt.Sprintf(format, args...))
	}
	if err := s.Password.Validate(); err != nil {
		return err
	}
	if err := s.Argon2.Validate(); err != nil {
		return err
	}
	switch {
	case s.Lockout.MaxFailures < 1 || s.Lockout.MaxFailures > 100:
		return bad("lockout.max_failures", "must be 1 to 100")
	case s.Lockout.Window < Duration(time.Minute) || s.Lockout.Duration < Duration(time.Minute):
		return bad("lockout", "window and duration must be at least 1m")
	case s.Session.IdleTimeout < Duration(time.Minute):
		return bad("session.idle_timeout", "must be at least 1m")
	case s.Session.AbsoluteTimeout < s.Session.IdleTimeout || s.Session.AbsoluteTimeout > Duration(7*24*time.Hour):
		return bad("session.absolute_timeout", "must be between idle_timeout and 168h")
	}
	if err := s.SignInLimits.PerSource.Validate(); err != nil {
		return bad("sign_in_limits.per_source", "%v", err)
	}
	if err := s.SignInLimits.PerUsername.Validate(); err != nil {
		return bad("sign_in_limits.per_username", "%v", err)
	}
	for class, d := range s.SecretRotation.fields() {
		if *d != 0 && *d < Duration(time.Hour) {
			return bad("secret_rotation."+class, "must be at least 1h, or 0s for the config's secrets.cadence")
		}
	}
	for _, r := range s.TOTPRequiredRoles {
		if !ValidRole(r) {
			return bad("totp_required_roles", "%q is not one of %v", r, Roles())
		}
	}
	return nil
}

// TOTPRequired reports whether role must use a second factor.
func (s AuthSettings) TOTPRequired(role string) bool {
	return slices.Contains(s.TOTPRequiredRoles, role)
}
