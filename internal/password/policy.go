package password

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds that Policy.Validate enforces.
const (
	// MinMinLength is the lowest MinLength a policy may set (NIST SP 800-63B).
	MinMinLength = 8
	// MaxLength is the longest password any policy accepts, in characters.
	// It is not a setting: it only bounds the work one password can cause.
	MaxLength = 256
	// MaxHistory is the most previous passwords a policy may remember.
	MaxHistory = 24
	// MaxMaxAgeDays is the longest MaxAgeDays a policy may set (one year).
	MaxMaxAgeDays = 366
)

// Policy decides which new passwords are acceptable and when a password
// expires. It is part of the authentication settings; the JSON field names
// are the settings keys. The zero value is not valid (Validate refuses
// MinLength 0); start from DefaultPolicy, and decode settings JSON on top of
// it so that omitted fields keep their defaults. A Policy is a value: Check and
// Validate do not modify it and are safe for concurrent use.
type Policy struct {
	// MinLength is the fewest characters (Unicode code points) a password
	// may have; at least MinMinLength. Default 12.
	MinLength int `json:"min_length"`
	// MinStrength is the lowest Strength score accepted, 0 to 4; 0 turns the
	// strength check off. Default 3.
	MinStrength int `json:"min_strength"`
	// History is how many previous passwords a new one must differ from,
	// 0 to MaxHistory; 0 turns the check off. Default 5.
	History int `json:"history"`
	// MaxAgeDays is how many whole days a password stays valid after it was
	// set, 0 to MaxMaxAgeDays; 0 means passwords never expire. An expired
	// password may only be used to set a new one. Default 90 (quarterly
	// rotation). It is a count of days rather than a Go duration so that the
	// settings JSON reads "max_age_days": 90.
	MaxAgeDays int `json:"max_age_days"`
	// ForbidUsername refuses passwords that contain the username, compared
	// case-insensitively (and, for an email address, its local part).
	// Default true.
	ForbidUsername bool `json:"forbid_username"`
	// CheckCommon refuses passwords on the embedded list of 30,000 common
	// passwords, compared case-insensitively. Default true.
	CheckCommon bool `json:"check_common"`
}

// DefaultPolicy returns the baseline policy: at least 12 characters,
// strength at least 3 of 4, not one of the last 5, expiry after 90 days, no
// username, nothing from the common-password list.
func DefaultPolicy() Policy {
	return Policy{
		MinLength:      12,
		MinStrength:    3,
		History:        5,
		MaxAgeDays:     90,
		ForbidUsername: true,
		CheckCommon:    true,
	}
}

// Validate reports whether p is an acceptable policy. It returns an EINVALID
// *gatehouse.Error whose message says which setting is out of range and why,
// for example "password policy: min_length 6 is below the minimum of 8".
func (p Policy) Validate() error {
	switch {
	case p.MinLength < MinMinLength:
		return invalid("password policy: min_length %d is below the minimum of %d", p.MinLength, MinMinLength)
	case p.MinLength > MaxLength:
		return invalid("password policy: min_length %d is above the maximum of %d", p.MinLength, MaxLength)
	case p.MinStrength < 0 || p.MinStrength > MaxStrength:
		return invalid("password policy: min_strength %d is not between 0 and %d", p.MinStrength, MaxStrength)
	case p.History < 0 || p.History > MaxHistory:
		return invalid("password policy: history %d is not between 0 and %d", p.History, MaxHistory)
	case p.MaxAgeDays < 0 || p.MaxAgeDays > MaxMaxAgeDays:
		return invalid("password policy: max_age_days %d is not between 0 (never expire) and %d", p.MaxAgeDays, MaxMaxAgeDays)
	}
	return nil
}

// MaxAge returns MaxAgeDays as a duration, or 0 when passwords never expire.
func (p Policy) MaxAge() time.Duration {
	return time.Duration(p.MaxAgeDays) * 24 * time.Hour
}

// Expired reports whether a password set at changedAt has expired at now
// (read now from a gatehouse.Clock). It is false when MaxAgeDays is 0.
func (p Policy) Expired(changedAt, now time.Time) bool {
	return p.MaxAgeDays > 0 && !now.Before(changedAt.Add(p.MaxAge()))
}

// Check reports whether pw is acceptable as the new password of username.
// previous holds the encoded hashes of the user's earlier passwords, newest
// first; only the first History of them are compared.
//
// The rules run cheapest first and Check stops at the first that fails,
// returning an EINVALID *gatehouse.Error whose message names it:
//
//	password: too short: at least 12 characters
//	password: too long: at most 256 characters
//	password: contains the username
//	password: is a commonly used password
//	password: too guessable (strength 1 of 4, need 3): <hint>
//	password: same as one of the last 5
//
// A previous hash that cannot be decoded yields a non-EINVALID error
// wrapping ErrMalformedHash (corrupt stored data, not the user's fault).
// Check does not validate p; callers hold policies that passed Validate.
// Servers call CheckWith, so the history comparisons share the Hasher's
// memory budget.
func (p *Policy) Check(pw, username string, previous []string) error {
	return p.CheckWith(context.Background(), nil, pw, username, previous)
}

// CheckWith is Check with the history compared through h (nil: directly);
// it fails with ErrBusy when h has no room within its queue wait.
func (p *Policy) CheckWith(ctx context.Context, h *Hasher, pw, username string, previous []string) error {
	n := utf8.RuneCountInString(pw)
	if n < p.MinLength {
		return invalid("password: too short: at least %d characters", p.MinLength)
	}
	if n > MaxLength {
		return invalid("password: too long: at most %d characters", MaxLength)
	}
	if p.ForbidUsername && containsUsername(pw, username) {
		return invalid("password: contains the username")
	}
	if p.CheckCommon && IsCommon(pw) {
		return invalid("password: is a commonly used password")
	}
	if p.MinStrength > 0 {
		var inputs []string
		if username != "" {
			inputs = usernameParts(username)
		}
		if score, hint := Strength(pw, inputs...); score < p.MinStrength {
			return invalid("password: too guessable (strength %d of %d, need %d): %s", score, MaxStrength, p.MinStrength, hint)
		}
	}
	if p.History > 0 {
		if len(previous) > p.History {
			previous = previous[:p.History]
		}
		for i, enc := range previous {
			var ok bool
			var err error
			if h != nil {
				ok, _, err = h.Verify(ctx, pw, enc, Params{})
			} else {
				ok, _, err = Verify(pw, enc, Params{})
			}
			if errors.Is(err, ErrBusy) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			if err != nil {
				return fmt.Errorf("password history entry %d: %w", i, err)
			}
			if ok {
				return invalid("password: same as one of the last %d", p.History)
			}
		}
	}
	return nil
}

// minUsernameLen is the shortest username (or email local part) that the
// username rule looks for: a one- or two-letter name would forbid too much
// by accident.
const minUsernameLen = 3

// usernameParts returns the lower-cased forms of username the username rule
// and the strength estimate look for: the whole name and, for an email
// address, its local part.
func usernameParts(username string) []string {
	u := strings.ToLower(username)
	parts := []string{u}
	if local, _, ok := strings.Cut(u, "@"); ok && local != "" {
		parts = append(parts, local)
	}
	return parts
}

func containsUsername(pw, username string) bool {
	lpw := strings.ToLower(pw)
	for _, u := range usernameParts(username) {
		if utf8.RuneCountInString(u) >= minUsernameLen && strings.Contains(lpw, u) {
			return true
		}
	}
	return false
}
