package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/store"
)

// uniqueViolation is the SQLSTATE of a duplicate key.
const uniqueViolation = "23505"

const userColumns = `username, role, scopes, password_hash, password_changed_at, password_expired, password_history, totp_secret, totp_enabled, totp_last_step, created_at, disabled_at, created_by, created_by_root, last_sign_in_at`

// CreateUser inserts u; a taken username is ECONFLICT.
func (s *DB) CreateUser(ctx context.Context, u *store.User) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		u.Username, u.Role, nonNil(u.Scopes), u.PasswordHash, nanos(u.PasswordChangedAt), u.PasswordExpired,
		nonNil(u.PasswordHistory), u.TOTPSecret, u.TOTPEnabled, u.TOTPLastStep, nanos(u.CreatedAt), nanos(u.DisabledAt), u.CreatedBy, u.CreatedByRoot, nanos(u.LastSignInAt))
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == uniqueViolation {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "user %q already exists", u.Username)
	}
	if err != nil {
		return fmt.Errorf("insert user %s: %w", u.Username, err)
	}
	return nil
}

// GetUser returns a user, ENOTFOUND if none.
func (s *DB) GetUser(ctx context.Context, username string) (*store.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username = $1`, username))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.NotFound("user", username)
	}
	if err != nil {
		return nil, fmt.Errorf("get user %s: %w", username, err)
	}
	return u, nil
}

// ListUsers returns every user, ordered by username.
func (s *DB) ListUsers(ctx context.Context) ([]*store.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out, err := collect(rows, scanUser)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// ListUsersPage returns one page of accounts (see store.Store).
func (s *DB) ListUsersPage(ctx context.Context, q store.UserQuery) ([]*store.User, error) {
	where, args := q.Where(store.PostgreSQL)
	return page(ctx, s, "users", `SELECT `+userColumns+` FROM users WHERE `+where+` ORDER BY username`, args, q.Limit, scanUser)
}

// UpdateUser writes every mutable field of u (all but CreatedAt); a missing
// user is ENOTFOUND. A write that may end an enabled admin (u is not one)
// runs in a transaction holding the admins lock (lockAdmins), so that two
// replicas removing the last two admins at once are serialised and the
// second sees the first's change.
func (s *DB) UpdateUser(ctx context.Context, u *store.User) error {
	const update = `UPDATE users SET role = $1, scopes = $2, password_hash = $3, password_changed_at = $4, password_expired = $5,
		password_history = $6, totp_secret = $7, totp_enabled = $8, totp_last_step = GREATEST(totp_last_step, $9), disabled_at = $10 WHERE username = $11`
	args := []any{u.Role, nonNil(u.Scopes), u.PasswordHash, nanos(u.PasswordChangedAt), u.PasswordExpired,
		nonNil(u.PasswordHistory), u.TOTPSecret, u.TOTPEnabled, u.TOTPLastStep, nanos(u.DisabledAt), u.Username}
	if u.Role == store.RoleAdmin && u.DisabledAt.IsZero() {
		tag, err := s.pool.Exec(ctx, update, args...)
		if err != nil {
			return fmt.Errorf("update user %s: %w", u.Username, err)
		}
		if tag.RowsAffected() != 1 {
			return store.NotFound("user", u.Username)
		}
		return nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("update user %s: %w", u.Username, err)
	}
	defer tx.Rollback(ctx)
	if err := lockAdmins(ctx, tx); err != nil {
		return fmt.Errorf("update user %s: %w", u.Username, err)
	}
	tag, err := tx.Exec(ctx, update+` AND `+keepsAdmin(12), append(args, store.RoleAdmin)...)
	if err != nil {
		return fmt.Errorf("update user %s: %w", u.Username, err)
	}
	if tag.RowsAffected() != 1 {
		return whyNotWritten(ctx, tx, u.Username)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("update user %s: commit: %w", u.Username, err)
	}
	return nil
}

// adminsLockID is the pg_advisory_xact_lock key held by every write that
// may end an enabled admin: the bytes of "ghadmins".
const adminsLockID int64 = 0x6768_6164_6d69_6e73

// lockAdmins takes the admins lock for the rest of tx. Under READ
// COMMITTED each later statement of tx sees every change committed by the
// previous holder.
func lockAdmins(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, adminsLockID); err != nil {
		return fmt.Errorf("lock admins: %w", err)
	}
	return nil
}

// keepsAdmin is the condition under which the row of users may stop being
// an enabled admin: it is not one, or another enabled admin remains. $n is
// store.RoleAdmin.
func keepsAdmin(n int) string {
	p := fmt.Sprintf("$%d", n)
	return `(NOT (users.role = ` + p + ` AND users.disabled_at = 0)
		OR EXISTS (SELECT 1 FROM users o WHERE o.username <> users.username AND o.role = ` + p + ` AND o.disabled_at = 0))`
}

// whyNotWritten explains a conditional write of username's row that
// changed nothing: the user is missing, or is the last enabled admin.
func whyNotWritten(ctx context.Context, tx pgx.Tx, username string) error {
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE username = $1)`, username).Scan(&exists); err != nil {
		return fmt.Errorf("write user %s: %w", username, err)
	}
	if !exists {
		return store.NotFound("user", username)
	}
	return store.LastAdmin(username)
}

func scanUser(row scanner) (*store.User, error) {
	var (
		u                          store.User
		changed, created, disabled int64
		signedIn                   int64
	)
	if err := row.Scan(&u.Username, &u.Role, &u.Scopes, &u.PasswordHash, &changed, &u.PasswordExpired, &u.PasswordHistory,
		&u.TOTPSecret, &u.TOTPEnabled, &u.TOTPLastStep, &created, &disabled, &u.CreatedBy, &u.CreatedByRoot, &signedIn); err != nil {
		return nil, err
	}
	u.PasswordChangedAt, u.CreatedAt, u.DisabledAt, u.LastSignInAt = fromNanos(changed), fromNanos(created), fromNanos(disabled), fromNanos(signedIn)
	return &u, nil
}

const sessionColumns = `id_hash, username, created_at, last_seen_at, expires_at, restricted`

// CreateSession inserts a session of an existing user.
func (s *DB) CreateSession(ctx context.Context, se *store.Session) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		se.IDHash, se.Username, nanos(se.CreatedAt), nanos(se.LastSeenAt), nanos(se.ExpiresAt), se.Restricted)
	if err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	return nil
}

// GetSession returns the session with the given id hash, ENOTFOUND if none.
func (s *DB) GetSession(ctx context.Context, idHash []byte) (*store.Session, error) {
	var (
		se                     store.Session
		created, seen, expires int64
	)
	err := s.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id_hash = $1`, idHash).
		Scan(&se.IDHash, &se.Username, &created, &seen, &expires, &se.Restricted)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.NotFound("session", "")
	}
	if err != nil {
		return nil, fmt.Errorf("get session: %w", err)
	}
	se.CreatedAt, se.LastSeenAt, se.ExpiresAt = fromNanos(created), fromNanos(seen), fromNanos(expires)
	return &se, nil
}

// TouchSession records activity on a session at t. Touching a session that
// does not exist is not an error.
func (s *DB) TouchSession(ctx context.Context, idHash []byte, t time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2`, nanos(t), idHash); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession ends a session; deleting a missing one is not an error.
func (s *DB) DeleteSession(ctx context.Context, idHash []byte) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteUser removes an account with its sessions, sign-in failures and
// personal access tokens.
func (s *DB) DeleteUser(ctx context.Context, username string) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", username, err)
	}
	defer tx.Rollback(ctx)
	if err := lockAdmins(ctx, tx); err != nil {
		return fmt.Errorf("delete user %s: %w", username, err)
	}
	for _, table := range []string{"sessions", "login_failures", "pats"} {
		if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE username = $1`, username); err != nil {
			return fmt.Errorf("delete user %s: %s: %w", username, table, err)
		}
	}
	tag, err := tx.Exec(ctx, `DELETE FROM users WHERE username = $1 AND `+keepsAdmin(2), username, store.RoleAdmin)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", username, err)
	}
	if tag.RowsAffected() != 1 {
		return whyNotWritten(ctx, tx, username)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("delete user %s: commit: %w", username, err)
	}
	return nil
}

// DeleteUserSessions ends every session of a user.
func (s *DB) DeleteUserSessions(ctx context.Context, username string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE username = $1`, username); err != nil {
		return fmt.Errorf("delete sessions of %s: %w", username, err)
	}
	return nil
}

const patColumns = `id, username, name, hash, scopes, role, created_at, expires_at, revoked_at, created_by, created_by_root, last_used_at`

// CreatePAT inserts a personal access token of an existing user.
func (s *DB) CreatePAT(ctx context.Context, p *store.PAT) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO pats (`+patColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		p.ID, p.Username, p.Name, p.Hash, nonNil(p.Scopes), p.Role, nanos(p.CreatedAt), nanos(p.ExpiresAt), nanos(p.RevokedAt),
		p.CreatedBy, p.CreatedByRoot, nanos(p.LastUsedAt))
	if err != nil {
		return fmt.Errorf("insert token %s: %w", p.ID, err)
	}
	return nil
}

// GetPAT returns a token, ENOTFOUND if none.
func (s *DB) GetPAT(ctx context.Context, id string) (*store.PAT, error) {
	p, err := scanPAT(s.pool.QueryRow(ctx, `SELECT `+patColumns+` FROM pats WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.NotFound("token", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get token %s: %w", id, err)
	}
	return p, nil
}

// ListPATs lists the tokens of username, or of everyone for "", oldest
// first (ties by id).
func (s *DB) ListPATs(ctx context.Context, username string) ([]*store.PAT, error) {
	q, args := `SELECT `+patColumns+` FROM pats ORDER BY created_at, id`, []any{}
	if username != "" {
		q, args = `SELECT `+patColumns+` FROM pats WHERE username = $1 ORDER BY created_at, id`, []any{username}
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	out, err := collect(rows, scanPAT)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// ListPATsPage returns one page of tokens (see store.Store).
func (s *DB) ListPATsPage(ctx context.Context, q store.PATQuery) ([]*store.PAT, error) {
	where, args := q.Where(store.PostgreSQL)
	return page(ctx, s, "tokens", `SELECT `+patColumns+` FROM pats WHERE `+where+` ORDER BY created_at, id`, args, q.Limit, scanPAT)
}

// RevokePAT marks a token revoked at t and returns it; revoking twice keeps
// the first time. A missing token is ENOTFOUND.
func (s *DB) RevokePAT(ctx context.Context, id string, t time.Time) (*store.PAT, error) {
	if _, err := s.pool.Exec(ctx, `UPDATE pats SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0`, nanos(t), id); err != nil {
		return nil, fmt.Errorf("revoke token %s: %w", id, err)
	}
	return s.GetPAT(ctx, id)
}

func scanPAT(row scanner) (*store.PAT, error) {
	var (
		p                         store.PAT
		created, expires, revoked int64
		used                      int64
	)
	if err := row.Scan(&p.ID, &p.Username, &p.Name, &p.Hash, &p.Scopes, &p.Role, &created, &expires, &revoked, &p.CreatedBy, &p.CreatedByRoot, &used); err != nil {
		return nil, err
	}
	p.CreatedAt, p.ExpiresAt, p.RevokedAt, p.LastUsedAt = fromNanos(created), fromNanos(expires), fromNanos(revoked), fromNanos(used)
	return &p, nil
}
