// Package store defines where Gatehouse keeps its durable state — API keys
// and settings — as the Store interface. Implementations live in
// subpackages named for their database (store/sqlite, store/postgres), and
// every one of them passes the conformance suite in store/storetest.
package store

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Key is a stored API key. The secret itself is never stored: Hash is
// HMAC-SHA-256 of the whole key under the server's pepper.
type Key struct {
	ID          string
	Name        string
	Hash        []byte
	Scopes      []string
	Tier        string
	CreatedAt   time.Time
	ExpiresAt   time.Time // zero: never
	RevokedAt   time.Time // zero: not revoked
	RotatedTo   string    // id of the key that replaced this one
	RotatedFrom string    // id of the key this one replaced
	Lineage
	LastUsedAt time.Time // zero: never used (or not yet recorded)
}

// Client is a stored OAuth service client. Only the HMAC of its secret is
// stored.
type Client struct {
	ID              string
	Name            string
	SecretHash      []byte
	Scopes          []string
	Tier            string
	CreatedAt       time.Time
	SecretRotatedAt time.Time // zero: never rotated
	RevokedAt       time.Time // zero: not revoked
	ExpiresAt       time.Time // zero: never
	Lineage
	LastUsedAt time.Time // zero: never used (or not yet recorded)
}

// User is an administrator, security engineer or auditor of Gatehouse.
type User struct {
	Username          string
	Role              string
	Scopes            []string // gateway scopes the user may delegate to PATs
	PasswordHash      string   // PHC-encoded argon2id
	PasswordChangedAt time.Time
	PasswordExpired   bool     // set by an admin reset: must change at next login
	PasswordHistory   []string // previous hashes, newest first
	TOTPSecret        []byte   // sealed; nil: not enrolled
	TOTPEnabled       bool
	TOTPLastStep      int64 // last accepted TOTP step (replay protection)
	CreatedAt         time.Time
	DisabledAt        time.Time
	Lineage
	// LastSignInAt is the user's latest complete sign-in (password, and
	// the second factor where one is enrolled or required); zero: never.
	// UpdateUser leaves it alone: only RecordSignIn moves it, forward.
	LastSignInAt time.Time
}

// Session is a signed-in browser or CLI session. Only a hash of its id is
// stored.
type Session struct {
	IDHash     []byte
	Username   string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	Restricted string // "" or the one thing it may do (e.g. "totp_enrollment")
}

// PAT is a personal access token. Only its HMAC is stored.
type PAT struct {
	ID        string
	Username  string
	Name      string
	Hash      []byte
	Scopes    []string
	Role      string // admin-API role the token carries ("" for none)
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt time.Time
	Lineage
	LastUsedAt time.Time // zero: never used (or not yet recorded)
}

// Lineage records who created a credential. CreatedBy is the direct
// creator as "kind:id" (user:alice, pat:pat_…, api_key:key_…,
// admin_token:admin-token); CreatedByRoot is the person or bootstrap
// token at the end of the chain of creators. Both are "" for credentials
// created before lineage was recorded.
type Lineage struct {
	CreatedBy     string
	CreatedByRoot string
}

// CredentialKind names a table of credentials whose use is recorded.
type CredentialKind string

// The credentials whose last use is recorded.
const (
	CredentialKey    CredentialKind = "key"
	CredentialClient CredentialKind = "client"
	CredentialPAT    CredentialKind = "pat"
)

// Use is one credential's latest use, for RecordUses.
type Use struct {
	Kind CredentialKind
	ID   string
	At   time.Time
}

// LockoutPolicy is when repeated failed sign-ins lock an account.
type LockoutPolicy struct {
	MaxFailures int           // failures within Window that lock
	Window      time.Duration // how long a failure counts
	Duration    time.Duration // how long the lock lasts
}

// KeyQuery selects one page of keys for ListKeysPage.
type KeyQuery struct {
	After  PageCursor // the last key of the previous page; zero: from the start
	Limit  int        // the most keys to return; at least 1
	Status KeyStatus  // "": any
	Name   string     // a case-insensitive substring of the name; "": any
	Now    time.Time  // the time Status is judged at
}

// ClientQuery selects one page of clients for ListClientsPage.
type ClientQuery struct {
	After  PageCursor // the last client of the previous page; zero: from the start
	Limit  int        // the most clients to return; at least 1
	Status KeyStatus  // active, expired or revoked at Now (as for keys); "": any
	// Name is a case-insensitive substring of the name, or the exact id;
	// "": any.
	Name string
	// IDs, when not nil, keeps only the clients with these ids (an
	// empty, non-nil IDs keeps none).
	IDs []string
	Now time.Time // the time Status is judged at
}

// PATQuery selects one page of personal access tokens for ListPATsPage.
type PATQuery struct {
	After    PageCursor // the last token of the previous page; zero: from the start
	Limit    int        // the most tokens to return; at least 1
	Username string     // the owner; "": everyone's
	// Status is active, expired or revoked at Now; "": any. A token
	// always has an expiry: it is expired from that instant on.
	Status KeyStatus
	// Name is a case-insensitive substring of the name, or the exact id;
	// "": any.
	Name string
	Now  time.Time // the time Status is judged at
}

// UserQuery selects one page of accounts for ListUsersPage, in username
// order.
type UserQuery struct {
	After  string     // the last username of the previous page; "": from the start
	Limit  int        // the most accounts to return; at least 1
	Status UserStatus // "": any
	Role   string     // "": any
	Name   string     // a case-insensitive substring of the username; "": any
	Now    time.Time  // the time a sign-in lock is judged at
}

// UserStatus is an account's state at a moment, as a list filter.
type UserStatus string

// The account states a list can be filtered by: locked is an account
// under a sign-in lock (login_failures) at the query's time, whether
// enabled or not.
const (
	UserActive   UserStatus = "active" // not disabled
	UserDisabled UserStatus = "disabled"
	UserLocked   UserStatus = "locked"
)

// PageCursor is a position in a list ordered by creation time, then id.
type PageCursor struct {
	CreatedAt time.Time
	ID        string
}

// IsZero reports whether c is the start of the list.
func (c PageCursor) IsZero() bool { return c.ID == "" && c.CreatedAt.IsZero() }

// KeyStatus is a key's state at a moment, as a list filter.
type KeyStatus string

// The key states a list can be filtered by.
const (
	KeyActive  KeyStatus = "active"  // neither revoked nor expired
	KeyExpired KeyStatus = "expired" // not revoked, past its expiry
	KeyRevoked KeyStatus = "revoked"
)

// Lockout is the stored sign-in failure state of one user.
type Lockout struct {
	Failures    int       // failures counted since WindowStart
	WindowStart time.Time // when the counted failures began
	LockedUntil time.Time // zero or past: not locked
}

// Locked reports whether the account is locked at now.
func (l Lockout) Locked(now time.Time) bool { return now.Before(l.LockedUntil) }

// Store is the durable state of one deployment. Implementations are safe
// for concurrent use. Lookups of missing rows return a *gatehouse.Error with
// code ENOTFOUND.
type Store interface {
	CreateKey(ctx context.Context, k *Key) error
	GetKey(ctx context.Context, id string) (*Key, error)
	ListKeys(ctx context.Context) ([]*Key, error)
	// ListKeysPage returns at most q.Limit keys after q.After that match
	// q's filters, oldest first (ties by id): one indexed range read, so
	// a page costs the same with ten keys or a million.
	ListKeysPage(ctx context.Context, q KeyQuery) ([]*Key, error)
	// RevokeKey marks the key revoked at t; revoking twice keeps the first time.
	RevokeKey(ctx context.Context, id string, t time.Time) (*Key, error)
	// RotateKey stores next and, in the same transaction, links old to it
	// and sets old's expiry to oldExpiresAt.
	RotateKey(ctx context.Context, oldID string, oldExpiresAt time.Time, next *Key) error

	CreateClient(ctx context.Context, c *Client) error
	GetClient(ctx context.Context, id string) (*Client, error)
	ListClients(ctx context.Context) ([]*Client, error)
	// ListClientsPage returns at most q.Limit clients after q.After that
	// match q's filters, oldest first (ties by id), in one indexed range
	// read.
	ListClientsPage(ctx context.Context, q ClientQuery) ([]*Client, error)
	// RevokeClient marks the client revoked at t; revoking twice keeps the
	// first time.
	RevokeClient(ctx context.Context, id string, t time.Time) (*Client, error)
	// SetClientSecret replaces the secret hash of an active client.
	SetClientSecret(ctx context.Context, id string, hash []byte, t time.Time) error

	CreateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, username string) (*User, error)
	ListUsers(ctx context.Context) ([]*User, error)
	// ListUsersPage returns at most q.Limit accounts after q.After that
	// match q's filters, in username order, in one indexed range read.
	ListUsersPage(ctx context.Context, q UserQuery) ([]*User, error)
	// UpdateUser writes every mutable field of u but LastSignInAt (see
	// RecordSignIn). TOTPLastStep never goes
	// back: the stored value becomes the larger of the two, so a stale
	// copy of u cannot reopen a used code. A write that would turn the
	// last enabled admin (RoleAdmin, not disabled) into anything else is
	// refused with ECONFLICT (LastAdmin), atomically: of two concurrent
	// writes, from any number of processes, that each remove one of the
	// last two admins, exactly one succeeds.
	UpdateUser(ctx context.Context, u *User) error
	// DeleteUser removes an account with its sessions, sign-in failures
	// and personal access tokens, in one transaction. A missing user is
	// ENOTFOUND; the last enabled admin is refused like in UpdateUser.
	DeleteUser(ctx context.Context, username string) error
	// AdvanceTOTPStep is the compare-and-set that makes a one-time code
	// one-time: it sets the user's TOTPLastStep to step only if the stored
	// value is below step, and reports whether it did. Of concurrent calls
	// with the same step exactly one reports true. A missing user is
	// ENOTFOUND.
	AdvanceTOTPStep(ctx context.Context, username string, step int64) (bool, error)
	// RecordSignIn sets the user's LastSignInAt to at unless it already
	// holds a later time (replicas may record out of order). A missing
	// user is ENOTFOUND.
	RecordSignIn(ctx context.Context, username string, at time.Time) error

	// RecordLoginFailure counts one failed sign-in of an existing user at
	// now under p, atomically (replicas share the count): failures older
	// than p.Window are forgotten, and the p.MaxFailures-th within it locks
	// the account until now+p.Duration and starts the count again. It
	// returns the state after the failure and whether this failure locked
	// the account.
	RecordLoginFailure(ctx context.Context, username string, now time.Time, p LockoutPolicy) (Lockout, bool, error)
	// GetLockout returns a user's failure count and lock (the zero Lockout
	// when none is recorded).
	GetLockout(ctx context.Context, username string) (Lockout, error)
	// ClearLoginFailures forgets a user's failures and lock (a successful
	// sign-in, or an administrator unlocking the account).
	ClearLoginFailures(ctx context.Context, username string) error

	CreateSession(ctx context.Context, s *Session) error
	GetSession(ctx context.Context, idHash []byte) (*Session, error)
	TouchSession(ctx context.Context, idHash []byte, t time.Time) error
	DeleteSession(ctx context.Context, idHash []byte) error
	// DeleteUserSessions ends every session of a user.
	DeleteUserSessions(ctx context.Context, username string) error
	// DeleteOtherSessions ends every session of a user but the one whose
	// id hash is keep (all of them when keep is nil).
	DeleteOtherSessions(ctx context.Context, username string, keep []byte) error

	CreatePAT(ctx context.Context, p *PAT) error
	GetPAT(ctx context.Context, id string) (*PAT, error)
	// ListPATs lists the tokens of username, or of everyone for "".
	ListPATs(ctx context.Context, username string) ([]*PAT, error)
	// ListPATsPage returns at most q.Limit tokens after q.After that match
	// q's filters, oldest first (ties by id), in one indexed range read.
	ListPATsPage(ctx context.Context, q PATQuery) ([]*PAT, error)
	RevokePAT(ctx context.Context, id string, t time.Time) (*PAT, error)

	// RecordUses sets each credential's LastUsedAt to At unless it already
	// holds a later time, in one batch; ids that match no row are ignored.
	RecordUses(ctx context.Context, uses []Use) error

	// GetSetting returns the value stored under name, ENOTFOUND if none.
	GetSetting(ctx context.Context, name string) ([]byte, error)
	// PutSetting stores value under name.
	PutSetting(ctx context.Context, name string, value []byte) error
	// PutSettingIfAbsent stores value under name unless a value exists, and
	// reports whether it stored it.
	PutSettingIfAbsent(ctx context.Context, name string, value []byte) (bool, error)

	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	Close() error
}

// RoleAdmin is the role of which the store keeps one enabled user at
// least (see UpdateUser).
const RoleAdmin = "admin"

// LastAdmin is the ECONFLICT refusal of a change that would leave no
// enabled admin: the admin API would be left to the bootstrap token,
// which may be disabled.
func LastAdmin(username string) error {
	return gatehouse.Errorf(gatehouse.ECONFLICT, "%s is the last enabled admin and cannot be disabled, demoted or deleted: make another user admin first", username)
}

// NotFound returns the ENOTFOUND error for a missing thing.
func NotFound(what, id string) error {
	return gatehouse.Errorf(gatehouse.ENOTFOUND, "%s %q not found", what, id)
}
