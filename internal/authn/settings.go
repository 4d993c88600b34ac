package authn

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse"
)

// AuthSettings is Settings → Authentication: how people sign in.
type AuthSettings struct {
	Password          PasswordSettings `json:"password_policy"`
	Argon2            Argon2Settings   `json:"argon2"`
	BasicAuth         bool             `json:"basic_auth"` // HTTP Basic on the admin API
	Lockout           LockoutSettings  `json:"lockout"`
	Session           SessionSettings  `json:"session"`
	TOTPRequiredRoles []string         `json:"totp_required_roles"`
}

// PasswordSettings is the password policy.
type PasswordSettings struct {
	MinLength      int  `json:"min_length"`
	MinStrength    int  `json:"min_strength"` // 0–4, zxcvbn scale
	History        int  `json:"history"`      // refuse the last N passwords
	MaxAgeDays     int  `json:"max_age_days"` // 0: never expires
	ForbidUsername bool `json:"forbid_username"`
	CheckCommon    bool `json:"check_common"`
}

// Argon2Settings are the argon2id parameters of new hashes; a login with a
// hash made under other parameters rehashes it.
type Argon2Settings struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
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
	v, err := time.ParseDuration(string(b[1 : len(b)-1]))
	if err != nil {
		return fmt.Errorf("invalid duration %s", b)
	}
	*d = Duration(v)
	return nil
}

// DefaultAuthSettings are the settings of a new deployment.
func DefaultAuthSettings() AuthSettings {
	return AuthSettings{
		Password:          PasswordSettings{MinLength: 12, MinStrength: 3, History: 5, MaxAgeDays: 90, ForbidUsername: true, CheckCommon: true},
		Argon2:            Argon2Settings{Time: 2, MemoryKiB: 19 * 1024, Threads: 1},
		BasicAuth:         true,
		Lockout:           LockoutSettings{MaxFailures: 5, Window: Duration(15 * time.Minute), Duration: Duration(15 * time.Minute)},
		Session:           SessionSettings{IdleTimeout: Duration(30 * time.Minute), AbsoluteTimeout: Duration(12 * time.Hour)},
		TOTPRequiredRoles: []string{},
	}
}

// Validate refuses unsafe settings, naming the field and the reason.
func (s AuthSettings) Validate() error {
	bad := func(field, format string, args ...any) error {
		return gatehouse.Errorf(gatehouse.EINVALID, "%s: %s", field, fmt.Sprintf(format, args...))
	}
	p := s.Password
	switch {
	case p.MinLength < 8:
		return bad("password_policy.min_length", "must be at least 8 (NIST SP 800-63B), not %d", p.MinLength)
	case p.MinLength > 128:
		return bad("password_policy.min_length", "must be at most 128")
	case p.MinStrength < 0 || p.MinStrength > 4:
		return bad("password_policy.min_strength", "must be 0 to 4")
	case p.History < 0 || p.History > 24:
		return bad("password_policy.history", "must be 0 to 24")
	case p.MaxAgeDays < 0 || p.MaxAgeDays > 365:
		return bad("password_policy.max_age_days", "must be 0 (never) to 365")
	case s.Argon2.Time < 1 || s.Argon2.Threads < 1:
		return bad("argon2", "time and threads must be at least 1")
	case s.Argon2.MemoryKiB < 8*1024 || s.Argon2.MemoryKiB > 1024*1024:
		return bad("argon2.memory_kib", "must be 8192 (8 MiB) to 1048576 (1 GiB)")
	case s.Lockout.MaxFailures < 1 || s.Lockout.MaxFailures > 100:
		return bad("lockout.max_failures", "must be 1 to 100")
	case s.Lockout.Window < Duration(time.Minute) || s.Lockout.Duration < Duration(time.Minute):
		return bad("lockout", "window and duration must be at least 1m")
	case s.Session.IdleTimeout < Duration(time.Minute):
		return bad("session.idle_timeout", "must be at least 1m")
	case s.Session.AbsoluteTimeout < s.Session.IdleTimeout || s.Session.AbsoluteTimeout > Duration(7*24*time.Hour):
		return bad("session.absolute_timeout", "must be between idle_timeout and 168h")
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
