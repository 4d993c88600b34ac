package authn

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/totp"
)

const settingsKey = "authentication"

// Users manages people: accounts, passwords, second factors, sign-in with
// lockout, and sessions. It is safe for concurrent use.
type Users struct {
	store    store.Store
	pepper   []byte  // CSRF tokens (version 1 of the pepper)
	peppers  *Pepper // the TOTP seal (the newest version seals)
	clock    gatehouse.Clock
	log      *slog.Logger
	pats     *PATs
	inv      Invalidator
	settings atomic.Pointer[AuthSettings]
	dummy    string // a hash to verify against for unknown users (equal timing)
	hasher   *password.Hasher
}

// UsersConfig configures Users.
type UsersConfig struct {
	Store store.Store
	// Pepper keys CSRF tokens and, when Peppers is nil, the TOTP seal.
	Pepper []byte
	// Peppers seal TOTP secrets under the newest version; a sealed
	// secret names its version (none: version 1, Pepper).
	Peppers *Pepper
	Clock   gatehouse.Clock
	Logger  *slog.Logger
	PATs    *PATs
	// Invalidator tells other replicas of disabled users and settings
	// changes; nil publishes nothing.
	Invalidator Invalidator
	// Hasher bounds the memory of concurrent password hashes; nil: one
	// with the default budget.
	Hasher *password.Hasher
}

// NewUsers loads Settings → Authentication (defaults on first start).
func NewUsers(ctx context.Context, cfg UsersConfig) (*Users, error) {
	if cfg.Clock == nil {
		cfg.Clock = gatehouse.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Hasher == nil {
		cfg.Hasher = password.NewHasher(password.HasherConfig{})
	}
	if cfg.Peppers == nil {
		cfg.Peppers = versionOne(cfg.Pepper)
	}
	u := &Users{store: cfg.Store, pepper: cfg.Pepper, peppers: cfg.Peppers, clock: cfg.Clock, log: cfg.Logger.WithGroup("users"),
		pats: cfg.PATs, inv: cfg.Invalidator, hasher: cfg.Hasher}
	if err := u.reloadSettings(ctx); err != nil {
		return nil, err
	}
	var err error
	if u.dummy, err = u.hasher.Hash(ctx, "gatehouse-timing-equaliser", u.Settings().Argon2); err != nil {
		return nil, err
	}
	return u, nil
}

// reloadSettings reads Settings → Authentication from the store (defaults
// when none are stored) and makes them current.
func (u *Users) reloadSettings(ctx context.Context) error {
	s := DefaultAuthSettings()
	raw, err := u.store.GetSetting(ctx, settingsKey)
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("decode authentication settings: %w", err)
		}
	case gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND:
		return err
	}
	u.settings.Store(&s)
	return nil
}

// Settings returns Settings → Authentication.
func (u *Users) Settings() AuthSettings { return *u.settings.Load() }

// SetSettings validates and stores new settings, returning the old ones.
func (u *Users) SetSettings(ctx context.Context, s AuthSettings) (AuthSettings, error) {
	if err := s.Validate(); err != nil {
		return AuthSettings{}, err
	}
	if s.TOTPRequiredRoles == nil {
		s.TOTPRequiredRoles = []string{}
	}
	raw, _ := json.Marshal(s)
	if err := u.store.PutSetting(ctx, settingsKey, raw); err != nil {
		return AuthSettings{}, err
	}
	old := u.settings.Swap(&s)
	publish(ctx, u.inv, u.log, Invalidation{Kind: InvalidateSettings})
	return *old, nil
}

// NewUser describes an account to create.
type NewUser struct {
	Username string
	Role     string
	Scopes   []string
	Password string
	// Lineage records who creates it.
	Lineage store.Lineage
}

// Create creates an account; the password must pass the policy.
func (u *Users) Create(ctx context.Context, n NewUser) (*store.User, error) {
	if !validUsername(n.Username) {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "username: 1 to 64 characters: lower-case letters, digits, '.', '_', '-', '@'")
	}
	if !ValidRole(n.Role) {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "role: must be one of %s", strings.Join(Roles(), ", "))
	}
	for _, sc := range n.Scopes {
		if err := ValidateScope(sc); err != nil {
			return nil, err
		}
	}
	s := u.Settings()
	if err := s.Password.Check(n.Password, n.Username, nil); err != nil {
		return nil, err
	}
	h, err := u.hasher.Hash(ctx, n.Password, s.Argon2)
	if err != nil {
		return nil, err
	}
	now := u.clock.Now().UTC()
	usr := &store.User{Username: n.Username, Role: n.Role, Scopes: n.Scopes, PasswordHash: h, PasswordChangedAt: now, CreatedAt: now, Lineage: n.Lineage}
	if err := u.store.CreateUser(ctx, usr); err != nil {
		return nil, err
	}
	return usr, nil
}

func validUsername(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("._-@", c)) {
			return false
		}
	}
	return true
}

// Get returns an account.
func (u *Users) Get(ctx context.Context, username string) (*store.User, error) {
	return u.store.GetUser(ctx, username)
}

// List returns every account.
func (u *Users) List(ctx context.Context) ([]*store.User, error) { return u.store.ListUsers(ctx) }

// Page returns one page of accounts (store.Store.ListUsersPage).
func (u *Users) Page(ctx context.Context, q store.UserQuery) ([]*store.User, error) {
	return u.store.ListUsersPage(ctx, q)
}

// Disable disables an account and ends its sessions and tokens at once.
func (u *Users) Disable(ctx context.Context, username string) (*store.User, error) {
	usr, err := u.store.GetUser(ctx, username)
	if err != nil {
		return nil, err
	}
	if usr.DisabledAt.IsZero() {
		usr.DisabledAt = u.clock.Now().UTC()
		if err := u.store.UpdateUser(ctx, usr); err != nil {
			return nil, err
		}
	}
	if err := u.store.DeleteUserSessions(ctx, username); err != nil {
		return nil, err
	}
	if err := u.pats.InvalidateUser(ctx, username); err != nil {
		return nil, err
	}
	publish(ctx, u.inv, u.log, Invalidation{Kind: InvalidateUser, ID: username})
	return usr, nil
}

// Enable re-enables a disabled account. Its sessions and tokens ended
// when it was disabled and stay ended.
func (u *Users) Enable(ctx context.Context, username string) (*store.User, error) {
	usr, err := u.store.GetUser(ctx, username)
	if err != nil {
		return nil, err
	}
	if !usr.DisabledAt.IsZero() {
		usr.DisabledAt = time.Time{}
		if err := u.store.UpdateUser(ctx, usr); err != nil {
			return nil, err
		}
		publish(ctx, u.inv, u.log, Invalidation{Kind: InvalidateUser, ID: username})
	}
	return usr, nil
}

// SetRole changes an account's role and returns its previous one. A
// demotion ends the account's sessions; its personal access tokens carry
// their own role and are the caller's to revoke.
func (u *Users) SetRole(ctx context.Context, username, role string) (string, *store.User, error) {
	if !ValidRole(role) {
		return "", nil, gatehouse.Errorf(gatehouse.EINVALID, "role: must be one of %s", strings.Join(Roles(), ", "))
	}
	usr, err := u.store.GetUser(ctx, username)
	if err != nil {
		return "", nil, err
	}
	old := usr.Role
	if old == role {
		return old, usr, nil
	}
	usr.Role = role
	if err := u.store.UpdateUser(ctx, usr); err != nil {
		return "", nil, err
	}
	if !RoleAtMost(old, role) {
		if err := u.store.DeleteUserSessions(ctx, username); err != nil {
			return "", nil, err
		}
	}
	publish(ctx, u.inv, u.log, Invalidation{Kind: InvalidateUser, ID: username})
	return old, usr, nil
}

// Delete disables an account (ending its sessions and tokens at once) and
// then removes it with its tokens and sign-in record.
func (u *Users) Delete(ctx context.Context, username string) error {
	if _, err := u.Disable(ctx, username); err != nil {
		return err
	}
	if err := u.store.DeleteUser(ctx, username); err != nil {
		return err
	}
	publish(ctx, u.inv, u.log, Invalidation{Kind: InvalidateUser, ID: username})
	return nil
}

// ResetPassword sets a password chosen by an administrator; it is expired
// at once, so the user must set their own at the next sign-in.
func (u *Users) ResetPassword(ctx context.Context, username, pw string) (*store.User, error) {
	usr, err := u.store.GetUser(ctx, username)
	if err != nil {
		return nil, err
	}
	if err := u.setPassword(ctx, usr, pw); err != nil {
		return nil, err
	}
	usr.PasswordExpired = true
	if err := u.store.UpdateUser(ctx, usr); err != nil {
		return nil, err
	}
	return usr, u.store.DeleteUserSessions(ctx, username)
}

// ChangePassword is a person changing their own password; current must
// be right (see Reauthenticate). It ends every other session of theirs:
// all but keepSession, the session id the change was made with ("" when
// made with a token). Personal access tokens keep working unless
// revokeTokens, since they are separate, scoped, expiring credentials that
// a routine change (an expired password) should not break; after a
// suspected compromise, revoke them with the change.
func (u *Users) ChangePassword(ctx context.Context, username, current, next, keepSession string, revokeTokens bool) error {
	usr, err := u.Reauthenticate(ctx, username, current)
	if err != nil {
		return err
	}
	if err := u.setPassword(ctx, usr, next); err != nil {
		return err
	}
	usr.PasswordExpired = false
	if err := u.store.UpdateUser(ctx, usr); err != nil {
		return err
	}
	var keep []byte
	if keepSession != "" {
		h := sha256.Sum256([]byte(keepSession))
		keep = h[:]
	}
	if err := u.store.DeleteOtherSessions(ctx, username, keep); err != nil {
		return err
	}
	if revokeTokens {
		if err := u.revokeTokens(ctx, username); err != nil {
			return err
		}
	}
	publish(ctx, u.inv, u.log, Invalidation{Kind: InvalidateUser, ID: username})
	return nil
}

// revokeTokens revokes every active personal access token of username.
func (u *Users) revokeTokens(ctx context.Context, username string) error {
	all, err := u.pats.List(ctx, username)
	if err != nil {
		return err
	}
	for _, t := range all {
		if t.RevokedAt.IsZero() {
			if _, err := u.pats.Revoke(ctx, t.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// ErrReauthFailed refuses a change that needs the current password when it
// is wrong or the account is locked.
var ErrReauthFailed = gatehouse.Errorf(gatehouse.EFORBIDDEN, "current_password: wrong, or the account is locked (try again later)")

// Reauthenticate checks the current password of a signed-in person before
// a change that a stolen session or token alone must not make (password,
// second factor). A wrong password counts toward the account's lockout; a
// right one does not clear it (only a complete sign-in does), so a stolen
// token cannot reset the count between guesses of the second factor.
func (u *Users) Reauthenticate(ctx context.Context, username, current string) (*store.User, error) {
	s := u.Settings()
	now := u.clock.Now()
	usr, err := u.store.GetUser(ctx, username)
	if err != nil {
		return nil, err
	}
	lo, err := u.store.GetLockout(ctx, username)
	if err != nil {
		return nil, err
	}
	if lo.Locked(now) {
		if _, _, err := u.hasher.Verify(ctx, current, u.dummy, s.Argon2); errors.Is(err, password.ErrBusy) {
			return nil, err
		}
		return nil, ErrReauthFailed
	}
	if current == "" {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "current_password: required for this change")
	}
	ok, _, err := u.hasher.Verify(ctx, current, usr.PasswordHash, s.Argon2)
	if err != nil && !errors.Is(err, password.ErrMalformedHash) {
		return nil, err // not an answer about the password: no failure counted
	}
	if !ok {
		if _, err := u.fail(ctx, usr, now, s); err != nil {
			return nil, err
		}
		return nil, ErrReauthFailed
	}
	return usr, nil
}

// setPassword checks next against the policy (including history) and
// sets it on usr (not yet stored).
func (u *Users) setPassword(ctx context.Context, usr *store.User, next string) error {
	s := u.Settings()
	hist := append([]string{usr.PasswordHash}, usr.PasswordHistory...)
	if len(hist) > s.Password.History {
		hist = hist[:s.Password.History]
	}
	if err := s.Password.CheckWith(ctx, u.hasher, next, usr.Username, hist); err != nil {
		return err
	}
	h, err := u.hasher.Hash(ctx, next, s.Argon2)
	if err != nil {
		return err
	}
	usr.PasswordHistory = hist
	usr.PasswordHash, usr.PasswordChangedAt = h, u.clock.Now().UTC()
	return nil
}

// Sign-in errors. A wrong username and a wrong password give the same
// answer, as does a locked account, so answers never reveal whether an
// account exists.
var (
	ErrLoginFailed     = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid username or password, or one-time code (totp_code) for accounts with a second factor; or the account is locked: try again later")
	ErrPasswordExpired = gatehouse.Errorf(gatehouse.EFORBIDDEN, "password expired: sign in with new_password to set a new one")
)

// Login is a sign-in attempt.
type Login struct {
	Username, Password string
	TOTPCode           string
	NewPassword        string // to replace an expired password
}

// LoginResult is a successful sign-in.
type LoginResult struct {
	User       *store.User
	Restricted string // "" or "totp_enrollment": the session may only enrol a second factor
	// Locked reports that this attempt locked the account (for audit).
	Locked bool
}

// Authenticate checks a sign-in with lockout. It takes as long for an
// unknown username as for a wrong password. Every outcome is for the
// caller to audit; failures return ErrLoginFailed and, when the attempt
// locked the account, LoginResult.Locked.
//
// A wrong or missing one-time code is a failure like a wrong password:
// it counts toward the same lockout and gets the same answer, so the
// answer never tells whether the password was right. The count lives in
// the store (it survives restarts and is shared by replicas) and only a
// complete sign-in clears it. Unknown usernames leave no state at all.
func (u *Users) Authenticate(ctx context.Context, l Login) (LoginResult, error) {
	s := u.Settings()
	now := u.clock.Now()
	usr, err := u.store.GetUser(ctx, l.Username)
	if err != nil && gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
		return LoginResult{}, err
	}
	hash := u.dummy
	var lo store.Lockout
	if usr != nil {
		hash = usr.PasswordHash
		if lo, err = u.store.GetLockout(ctx, usr.Username); err != nil {
			return LoginResult{}, err
		}
		if lo.Locked(now) {
			// Same cost as a real attempt (and the same refusal when busy).
			if _, _, err := u.hasher.Verify(ctx, l.Password, u.dummy, s.Argon2); errors.Is(err, password.ErrBusy) {
				return LoginResult{}, err
			}
			return LoginResult{}, ErrLoginFailed
		}
	}
	ok, rehash, err := u.hasher.Verify(ctx, l.Password, hash, s.Argon2)
	if err != nil && !errors.Is(err, password.ErrMalformedHash) {
		// Not an answer about the password: no failure is counted.
		return LoginResult{}, err
	}
	if ok && usr != nil && usr.DisabledAt.IsZero() && usr.TOTPEnabled {
		switch err := u.checkTOTP(ctx, usr, l.TOTPCode); {
		case err == errBadTOTP:
			ok = false
		case err != nil:
			return LoginResult{}, err
		}
	}
	if usr == nil || !ok || !usr.DisabledAt.IsZero() {
		locked, err := u.fail(ctx, usr, now, s)
		if err != nil {
			return LoginResult{}, err
		}
		return LoginResult{Locked: locked}, ErrLoginFailed
	}
	if lo.Failures > 0 || !lo.LockedUntil.IsZero() {
		if err := u.store.ClearLoginFailures(ctx, usr.Username); err != nil {
			return LoginResult{}, err
		}
	}
	expired := usr.PasswordExpired || s.Password.Expired(usr.PasswordChangedAt, now)
	if expired {
		if l.NewPassword == "" {
			return LoginResult{}, ErrPasswordExpired
		}
		if err := u.setPassword(ctx, usr, l.NewPassword); err != nil {
			return LoginResult{}, err
		}
		usr.PasswordExpired, rehash = false, false
		if err := u.store.UpdateUser(ctx, usr); err != nil {
			return LoginResult{}, err
		}
	}
	if rehash {
		if h, err := u.hasher.Hash(ctx, l.Password, s.Argon2); err == nil {
			usr.PasswordHash = h
			if err := u.store.UpdateUser(ctx, usr); err != nil {
				return LoginResult{}, err
			}
		}
	}
	res := LoginResult{User: usr}
	if s.TOTPRequired(usr.Role) && !usr.TOTPEnabled {
		// Not complete until a second factor is enrolled (CompleteSession).
		res.Restricted = RestrictedTOTPEnrollment
		return res, nil
	}
	if err := u.recordSignIn(ctx, usr, now); err != nil {
		return LoginResult{}, err
	}
	return res, nil
}

// recordSignIn records a complete sign-in of usr at now in the store (it
// only ever moves forward) and on usr.
func (u *Users) recordSignIn(ctx context.Context, usr *store.User, now time.Time) error {
	now = now.UTC()
	if err := u.store.RecordSignIn(ctx, usr.Username, now); err != nil {
		return fmt.Errorf("record sign-in: %w", err)
	}
	if now.After(usr.LastSignInAt) {
		usr.LastSignInAt = now
	}
	return nil
}

// RestrictedTOTPEnrollment marks a session that may only enrol a second
// factor (its role requires one and the user has none yet).
const RestrictedTOTPEnrollment = "totp_enrollment"

// fail records a failed attempt of an existing account in the store and
// reports whether it locked the account. Unknown usernames (usr nil) are
// not recorded: their answers are the same anyway, and a flood of made-up
// names can neither fill the store nor push a real account's count out.
func (u *Users) fail(ctx context.Context, usr *store.User, now time.Time, s AuthSettings) (bool, error) {
	if usr == nil {
		return false, nil
	}
	_, locked, err := u.store.RecordLoginFailure(ctx, usr.Username, now.UTC(), store.LockoutPolicy{
		MaxFailures: s.Lockout.MaxFailures, Window: time.Duration(s.Lockout.Window), Duration: time.Duration(s.Lockout.Duration),
	})
	if locked {
		u.log.WarnContext(ctx, "account locked after repeated failed sign-ins", "username", usr.Username)
	}
	return locked, err
}

// Unlock ends a lock and forgets the failures of an account (an
// administrator's action).
func (u *Users) Unlock(ctx context.Context, username string) (*store.User, error) {
	usr, err := u.store.GetUser(ctx, username)
	if err != nil {
		return nil, err
	}
	return usr, u.store.ClearLoginFailures(ctx, username)
}

// Lockout returns the sign-in failure state of an account.
func (u *Users) Lockout(ctx context.Context, username string) (store.Lockout, error) {
	return u.store.GetLockout(ctx, username)
}

// ResetTOTP removes an account's second factor (an administrator's action,
// for a lost authenticator) and ends its sessions; the next sign-in enrols
// a new one where the role requires it.
func (u *Users) ResetTOTP(ctx context.Context, username string) (*store.User, error) {
	usr, err := u.store.GetUser(ctx, username)
	if err != nil {
		return nil, err
	}
	usr.TOTPSecret, usr.TOTPEnabled = nil, false
	if err := u.store.UpdateUser(ctx, usr); err != nil {
		return nil, err
	}
	if err := u.store.DeleteUserSessions(ctx, username); err != nil {
		return nil, err
	}
	publish(ctx, u.inv, u.log, Invalidation{Kind: InvalidateUser, ID: username})
	return usr, nil
}

// TOTP enrolment.

// EnrollTOTP starts enrolment: a new secret, not active until confirmed.
// It needs the current password (see Reauthenticate).
func (u *Users) EnrollTOTP(ctx context.Context, username, current, issuer string) (secret, uri string, err error) {
	usr, err := u.Reauthenticate(ctx, username, current)
	if err != nil {
		return "", "", err
	}
	if usr.TOTPEnabled {
		return "", "", gatehouse.Errorf(gatehouse.ECONFLICT, "a second factor is already enrolled: remove it first (DELETE /v1/me/totp with your password and a code), or an administrator can reset it")
	}
	if secret, err = totp.GenerateSecret(); err != nil {
		return "", "", err
	}
	if usr.TOTPSecret, err = u.seal(secret); err != nil {
		return "", "", err
	}
	if err := u.store.UpdateUser(ctx, usr); err != nil {
		return "", "", err
	}
	return secret, totp.URI(issuer, username, secret), nil
}

// ConfirmTOTP activates an enrolled secret with a first valid code.
func (u *Users) ConfirmTOTP(ctx context.Context, username, code string) error {
	usr, err := u.store.GetUser(ctx, username)
	if err != nil {
		return err
	}
	if usr.TOTPSecret == nil || usr.TOTPEnabled {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "no second factor enrolment in progress")
	}
	if err := u.checkTOTP(ctx, usr, code); err != nil {
		return err
	}
	usr.TOTPEnabled = true
	return u.store.UpdateUser(ctx, usr)
}

// RemoveTOTP removes one's own second factor; it needs the current
// password and a current code, and a wrong one counts toward the lockout.
// It is refused when the user's role must use a second factor.
func (u *Users) RemoveTOTP(ctx context.Context, username, current, code string) error {
	usr, err := u.Reauthenticate(ctx, username, current)
	if err != nil {
		return err
	}
	if !usr.TOTPEnabled {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "no second factor is enrolled")
	}
	// A role that must use a second factor cannot drop it: the next
	// sign-in would only force enrolment again, and in between a stolen
	// password alone would do. A lost one is replaced by an admin's reset.
	if u.Settings().TOTPRequired(usr.Role) {
		return gatehouse.Errorf(gatehouse.EFORBIDDEN, "role %s must use a second factor, so it cannot be removed; to replace a lost one, ask an admin to reset it", usr.Role)
	}
	switch err := u.checkTOTP(ctx, usr, code); {
	case err == errBadTOTP:
		if _, err := u.fail(ctx, usr, u.clock.Now(), u.Settings()); err != nil {
			return err
		}
		return errBadTOTP
	case err != nil:
		return err
	}
	usr.TOTPSecret, usr.TOTPEnabled = nil, false
	return u.store.UpdateUser(ctx, usr)
}

var errBadTOTP = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "totp_code: invalid or already used")

// checkTOTP verifies code and takes its step with a compare-and-set in the
// store, so that a code is accepted once even by parallel requests (on
// any replica).
func (u *Users) checkTOTP(ctx context.Context, usr *store.User, code string) error {
	if code == "" || usr.TOTPSecret == nil {
		return errBadTOTP
	}
	secret, err := u.open(ctx, usr.TOTPSecret)
	if err != nil {
		return err
	}
	ok, step := totp.Verify(secret, code, u.clock.Now(), 1)
	if !ok || step <= usr.TOTPLastStep {
		return errBadTOTP
	}
	won, err := u.store.AdvanceTOTPStep(ctx, usr.Username, step)
	if err != nil {
		return err
	}
	if !won {
		return errBadTOTP
	}
	usr.TOTPLastStep = step
	return nil
}

// totpAEAD is the TOTP seal's cipher under one pepper version's key.
func totpAEAD(key []byte) (cipher.AEAD, error) {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("gatehouse totp seal v1"))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encrypts a TOTP secret under the newest pepper version: the
// version's marker and number (none for version 1, the format from
// before versions), the nonce, the ciphertext.
func (u *Users) seal(secret string) ([]byte, error) {
	v, key := u.peppers.newestKey()
	g, err := totpAEAD(key)
	if err != nil {
		return nil, err
	}
	var out []byte
	if v > 1 {
		out = binary.AppendUvarint([]byte{hashMarker}, v)
	}
	nonce := make([]byte, g.NonceSize())
	rand.Read(nonce)
	out = append(out, nonce...)
	return g.Seal(out, nonce, []byte(secret), nil), nil
}

// open decrypts a sealed TOTP secret under the version it names. A
// sealed value from before versions begins with its random nonce, which
// may look like a marker: what does not open as marked is opened as
// version 1 (GCM authenticates either way).
func (u *Users) open(ctx context.Context, sealed []byte) (string, error) {
	if len(sealed) > 1 && sealed[0] == hashMarker {
		if v, n := binary.Uvarint(sealed[1:]); n > 0 && v >= 2 && v <= MaxPepperVersion {
			if key, ok := u.peppers.key(ctx, v); ok {
				if s, err := openTOTP(key, sealed[1+n:]); err == nil {
					return s, nil
				}
			}
		}
	}
	key, ok := u.peppers.key(ctx, 1)
	if !ok {
		return "", errors.New("open TOTP secret: pepper version 1 is not held")
	}
	s, err := openTOTP(key, sealed)
	if err != nil {
		return "", fmt.Errorf("open TOTP secret: %w", err)
	}
	return s, nil
}

func openTOTP(key, sealed []byte) (string, error) {
	g, err := totpAEAD(key)
	if err != nil {
		return "", err
	}
	if len(sealed) < g.NonceSize() {
		return "", errors.New("sealed TOTP secret too short")
	}
	b, err := g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], nil)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// Sessions.

// SessionCookie is the name of the session cookie.
const SessionCookie = "gatehouse_session"

// NewSession starts a session for a signed-in user and returns its id
// (for the cookie) and CSRF token.
func (u *Users) NewSession(ctx context.Context, res LoginResult) (id, csrf string, expires time.Time, err error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", "", time.Time{}, err
	}
	id = base64.RawURLEncoding.EncodeToString(raw)
	now := u.clock.Now().UTC()
	s := u.Settings()
	expires = now.Add(time.Duration(s.Session.AbsoluteTimeout))
	h := sha256.Sum256([]byte(id))
	err = u.store.CreateSession(ctx, &store.Session{IDHash: h[:], Username: res.User.Username, CreatedAt: now, LastSeenAt: now, ExpiresAt: expires, Restricted: res.Restricted})
	return id, u.CSRFToken(id), expires, err
}

// ErrNotRestricted refuses CompleteSession for a session that is not
// restricted to enrolling a second factor, or whose user has none
// confirmed yet.
var ErrNotRestricted = gatehouse.Errorf(gatehouse.ECONFLICT, "this session is not waiting for a second factor: confirm one first (POST /v1/me/totp/verify)")

// CompleteSession ends a session restricted to enrolling a second factor
// (RestrictedTOTPEnrollment) once its user has confirmed one, and starts
// a full session in its place: the sign-in is now complete (recorded as
// the user's last sign-in). The new session has a new id, CSRF token and
// lifetime; the old id stops working at once (so an id fixed or seen
// before the second factor never carries more than enrolment), and so
// does every other session of the user, all made without the second
// factor. It returns the user and the new session (as NewSession);
// ErrSessionExpired for an unknown or ended session, ErrUserDisabled for
// a disabled user, ErrNotRestricted otherwise.
func (u *Users) CompleteSession(ctx context.Context, id string) (usr *store.User, newID, csrf string, expires time.Time, err error) {
	old := sha256.Sum256([]byte(id))
	se, err := u.store.GetSession(ctx, old[:])
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return nil, "", "", time.Time{}, ErrSessionExpired
	}
	if err != nil {
		return nil, "", "", time.Time{}, err
	}
	if usr, err = u.store.GetUser(ctx, se.Username); err != nil {
		return nil, "", "", time.Time{}, err
	}
	switch {
	case !usr.DisabledAt.IsZero():
		return nil, "", "", time.Time{}, ErrUserDisabled
	case se.Restricted != RestrictedTOTPEnrollment || !usr.TOTPEnabled:
		return nil, "", "", time.Time{}, ErrNotRestricted
	}
	if newID, csrf, expires, err = u.NewSession(ctx, LoginResult{User: usr}); err != nil {
		return nil, "", "", time.Time{}, err
	}
	keep := sha256.Sum256([]byte(newID))
	if err := u.store.DeleteOtherSessions(ctx, usr.Username, keep[:]); err != nil {
		// The new id is not handed out: it goes unused and expires.
		return nil, "", "", time.Time{}, fmt.Errorf("end the restricted session: %w", err)
	}
	if err := u.recordSignIn(ctx, usr, u.clock.Now()); err != nil {
		return nil, "", "", time.Time{}, err
	}
	return usr, newID, csrf, expires, nil
}

// CSRFToken is the CSRF token bound to a session id.
func (u *Users) CSRFToken(id string) string {
	m := hmac.New(sha256.New, u.pepper)
	m.Write([]byte("csrf|" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// ErrSessionExpired refuses an unknown, idle or expired session.
var ErrSessionExpired = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "session expired or unknown: sign in again")

// Session returns the principal of a session id, enforcing the idle and
// absolute timeouts and the account's state, and records the activity.
func (u *Users) Session(ctx context.Context, id string) (*gatehouse.Principal, string, error) {
	_, usr, restricted, err := u.session(ctx, id)
	if err != nil {
		return nil, "", err
	}
	return UserPrincipal(usr), restricted, nil
}

// SessionState is what CheckSession finds of a live session.
type SessionState struct {
	User *store.User
	// Restricted is "" or what the session may only do
	// (RestrictedTOTPEnrollment).
	Restricted string
	// Ends is when the session ends if left idle from now: the earlier of
	// its absolute end and the idle timeout.
	Ends time.Time
}

// CheckSession is Session for the admin console's page views: the same
// checks (idle and absolute timeouts, the account disabled) with the same
// errors, and the same record of activity, but it returns the account and
// when the session ends, so that a page view needs no GET /v1/me.
func (u *Users) CheckSession(ctx context.Context, id string) (SessionState, error) {
	ends, usr, restricted, err := u.session(ctx, id)
	if err != nil {
		return SessionState{}, err
	}
	return SessionState{User: usr, Restricted: restricted, Ends: ends}, nil
}

// session checks session id and records its activity: it returns when the
// session now ends if left idle, its user and its restriction.
func (u *Users) session(ctx context.Context, id string) (time.Time, *store.User, string, error) {
	h := sha256.Sum256([]byte(id))
	se, err := u.store.GetSession(ctx, h[:])
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return time.Time{}, nil, "", ErrSessionExpired
	}
	if err != nil {
		return time.Time{}, nil, "", err
	}
	now := u.clock.Now()
	idle := time.Duration(u.Settings().Session.IdleTimeout)
	if !now.Before(se.ExpiresAt) || now.Sub(se.LastSeenAt) >= idle {
		u.store.DeleteSession(ctx, h[:])
		return time.Time{}, nil, "", ErrSessionExpired
	}
	usr, err := u.store.GetUser(ctx, se.Username)
	if err != nil {
		return time.Time{}, nil, "", err
	}
	if !usr.DisabledAt.IsZero() {
		return time.Time{}, nil, "", ErrUserDisabled
	}
	if err := u.store.TouchSession(ctx, h[:], now.UTC()); err != nil {
		return time.Time{}, nil, "", err
	}
	ends := se.ExpiresAt
	if t := now.Add(idle); t.Before(ends) {
		ends = t
	}
	return ends, usr, se.Restricted, nil
}

// EndSession signs a session out.
func (u *Users) EndSession(ctx context.Context, id string) error {
	h := sha256.Sum256([]byte(id))
	return u.store.DeleteSession(ctx, h[:])
}

// UserPrincipal is the principal of a signed-in user (session or HTTP
// Basic).
func UserPrincipal(usr *store.User) *gatehouse.Principal {
	p := gatehouse.NewPrincipal(usr.Username, gatehouse.KindUser, usr.Username, usr.Scopes, "")
	p.Role = usr.Role
	return p
}
