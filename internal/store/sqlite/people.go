package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/store"
)

const userColumns = `username, role, scopes, password_hash, password_changed_at, password_expired, password_history, totp_secret, totp_enabled, totp_last_step, created_at, disabled_at, created_by, created_by_root, last_sign_in_at`

// CreateUser inserts u; a taken username is ECONFLICT.
func (s *DB) CreateUser(ctx context.Context, u *store.User) error {
	hist, _ := json.Marshal(nonNil(u.PasswordHistory))
	_, err := s.db.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.Username, u.Role, strings.Join(u.Scopes, " "), u.PasswordHash, nanos(u.PasswordChangedAt), boolInt(u.PasswordExpired),
		string(hist), u.TOTPSecret, boolInt(u.TOTPEnabled), u.TOTPLastStep, nanos(u.CreatedAt), nanos(u.DisabledAt), u.CreatedBy, u.CreatedByRoot, nanos(u.LastSignInAt))
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "user %q already exists", u.Username)
	}
	if err != nil {
		return fmt.Errorf("insert user %s: %w", u.Username, err)
	}
	return nil
}

// GetUser returns a user.
func (s *DB) GetUser(ctx context.Context, username string) (*store.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, username))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("user", username)
	}
	if err != nil {
		return nil, fmt.Errorf("get user %s: %w", username, err)
	}
	return u, nil
}

// ListUsers returns every user by name.
func (s *DB) ListUsers(ctx context.Context) ([]*store.User, error) {
	return list(ctx, s.db, "users", `SELECT `+userColumns+` FROM users ORDER BY username`, nil, scanUser)
}

// ListUsersPage returns one page of accounts (see store.Store).
func (s *DB) ListUsersPage(ctx context.Context, q store.UserQuery) ([]*store.User, error) {
	where, args := q.Where(store.SQLite)
	return page(ctx, s.db, "users", `SELECT `+userColumns+` FROM users WHERE `+where+` ORDER BY username`, args, q.Limit, scanUser)
}

// UpdateUser writes u's mutable fields. The statement keeps an enabled
// admin (its condition and its write are one step: SQLite runs writers
// one at a time).
func (s *DB) UpdateUser(ctx context.Context, u *store.User) error {
	hist, _ := json.Marshal(nonNil(u.PasswordHistory))
	stillAdmin := u.Role == store.RoleAdmin && u.DisabledAt.IsZero()
	res, err := s.db.ExecContext(ctx, `UPDATE users SET role = ?, scopes = ?, password_hash = ?, password_changed_at = ?, password_expired = ?,
		password_history = ?, totp_secret = ?, totp_enabled = ?, totp_last_step = max(totp_last_step, ?), disabled_at = ? WHERE username = ?
		AND (? OR `+keepsAdmin+`)`,
		u.Role, strings.Join(u.Scopes, " "), u.PasswordHash, nanos(u.PasswordChangedAt), boolInt(u.PasswordExpired),
		string(hist), u.TOTPSecret, boolInt(u.TOTPEnabled), u.TOTPLastStep, nanos(u.DisabledAt), u.Username,
		boolInt(stillAdmin), store.RoleAdmin, store.RoleAdmin)
	if err != nil {
		return fmt.Errorf("update user %s: %w", u.Username, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return s.whyNotWritten(ctx, s.db, u.Username)
	}
	return nil
}

// keepsAdmin is the condition under which the row of users may stop being
// an enabled admin: it is not one, or another enabled admin remains. Its
// two parameters are store.RoleAdmin.
const keepsAdmin = `(NOT (users.role = ? AND users.disabled_at = 0)
		OR EXISTS (SELECT 1 FROM users o WHERE o.username <> users.username AND o.role = ? AND o.disabled_at = 0))`

// whyNotWritten explains a conditional write of username's row that
// changed nothing: the user is missing, or is the last enabled admin.
func (s *DB) whyNotWritten(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, username string) error {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE username = ?`, username).Scan(&n); err != nil {
		return fmt.Errorf("update user %s: %w", username, err)
	}
	if n == 0 {
		return store.NotFound("user", username)
	}
	return store.LastAdmin(username)
}

func scanUser(row scanner) (*store.User, error) {
	var (
		u                          store.User
		scopes, hist               string
		changed, created, disabled int64
		signedIn                   int64
		expired, totp              int
	)
	if err := row.Scan(&u.Username, &u.Role, &scopes, &u.PasswordHash, &changed, &expired, &hist, &u.TOTPSecret, &totp, &u.TOTPLastStep, &created, &disabled, &u.CreatedBy, &u.CreatedByRoot, &signedIn); err != nil {
		return nil, err
	}
	u.Scopes = strings.Fields(scopes)
	json.Unmarshal([]byte(hist), &u.PasswordHistory)
	u.PasswordExpired, u.TOTPEnabled = expired == 1, totp == 1
	u.PasswordChangedAt, u.CreatedAt, u.DisabledAt, u.LastSignInAt = fromNanos(changed), fromNanos(created), fromNanos(disabled), fromNanos(signedIn)
	return &u, nil
}

// CreateSession inserts a session.
func (s *DB) CreateSession(ctx context.Context, se *store.Session) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (id_hash, username, created_at, last_seen_at, expires_at, restricted) VALUES (?, ?, ?, ?, ?, ?)`,
		se.IDHash, se.Username, nanos(se.CreatedAt), nanos(se.LastSeenAt), nanos(se.ExpiresAt), se.Restricted)
	if err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	return nil
}

// GetSession returns the session with the given id hash.
func (s *DB) GetSession(ctx context.Context, idHash []byte) (*store.Session, error) {
	var se store.Session
	var created, seen, expires int64
	err := s.db.QueryRowContext(ctx, `SELECT id_hash, username, created_at, last_seen_at, expires_at, restricted FROM sessions WHERE id_hash = ?`, idHash).
		Scan(&se.IDHash, &se.Username, &created, &seen, &expires, &se.Restricted)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("session", "")
	}
	if err != nil {
		return nil, fmt.Errorf("get session: %w", err)
	}
	se.CreatedAt, se.LastSeenAt, se.ExpiresAt = fromNanos(created), fromNanos(seen), fromNanos(expires)
	return &se, nil
}

// TouchSession records activity on a session.
func (s *DB) TouchSession(ctx context.Context, idHash []byte, t time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?`, nanos(t), idHash); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession ends a session.
func (s *DB) DeleteSession(ctx context.Context, idHash []byte) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteUser removes an account with its sessions, sign-in failures and
// personal access tokens.
func (s *DB) DeleteUser(ctx context.Context, username string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", username, err)
	}
	defer tx.Rollback()
	for _, table := range []string{"sessions", "login_failures", "pats"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE username = ?`, username); err != nil { // #nosec G202 -- table comes from a constant list in this function, never from input
			return fmt.Errorf("delete user %s: %s: %w", username, table, err)
		}
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE username = ? AND `+keepsAdmin, username, store.RoleAdmin, store.RoleAdmin)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", username, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return s.whyNotWritten(ctx, tx, username)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete user %s: commit: %w", username, err)
	}
	return nil
}

// DeleteUserSessions ends all sessions of a user.
func (s *DB) DeleteUserSessions(ctx context.Context, username string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE username = ?`, username); err != nil {
		return fmt.Errorf("delete sessions of %s: %w", username, err)
	}
	return nil
}

const patColumns = `id, username, name, hash, scopes, role, created_at, expires_at, revoked_at, created_by, created_by_root, last_used_at`

// CreatePAT inserts a personal access token.
func (s *DB) CreatePAT(ctx context.Context, p *store.PAT) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO pats (`+patColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.Username, p.Name, p.Hash, strings.Join(p.Scopes, " "), p.Role, nanos(p.CreatedAt), nanos(p.ExpiresAt), nanos(p.RevokedAt),
		p.CreatedBy, p.CreatedByRoot, nanos(p.LastUsedAt))
	if err != nil {
		return fmt.Errorf("insert token %s: %w", p.ID, err)
	}
	return nil
}

// GetPAT returns a token.
func (s *DB) GetPAT(ctx context.Context, id string) (*store.PAT, error) {
	p, err := scanPAT(s.db.QueryRowContext(ctx, `SELECT `+patColumns+` FROM pats WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("token", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get token %s: %w", id, err)
	}
	return p, nil
}

// ListPATs lists tokens of one user, or all for "".
func (s *DB) ListPATs(ctx context.Context, username string) ([]*store.PAT, error) {
	q, args := `SELECT `+patColumns+` FROM pats ORDER BY created_at, id`, []any{}
	if username != "" {
		q, args = `SELECT `+patColumns+` FROM pats WHERE username = ? ORDER BY created_at, id`, []any{username}
	}
	return list(ctx, s.db, "tokens", q, args, scanPAT)
}

// ListPATsPage returns one page of tokens (see store.Store).
func (s *DB) ListPATsPage(ctx context.Context, q store.PATQuery) ([]*store.PAT, error) {
	where, args := q.Where(store.SQLite)
	return page(ctx, s.db, "tokens", `SELECT `+patColumns+` FROM pats WHERE `+where+` ORDER BY created_at, id`, args, q.Limit, scanPAT)
}

// RevokePAT revokes a token.
func (s *DB) RevokePAT(ctx context.Context, id string, t time.Time) (*store.PAT, error) {
	if _, err := s.db.ExecContext(ctx, `UPDATE pats SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, nanos(t), id); err != nil {
		return nil, fmt.Errorf("revoke token %s: %w", id, err)
	}
	return s.GetPAT(ctx, id)
}

func scanPAT(row scanner) (*store.PAT, error) {
	var (
		p                         store.PAT
		scopes                    string
		created, expires, revoked int64
		used                      int64
	)
	if err := row.Scan(&p.ID, &p.Username, &p.Name, &p.Hash, &scopes, &p.Role, &created, &expires, &revoked, &p.CreatedBy, &p.CreatedByRoot, &used); err != nil {
		return nil, err
	}
	p.Scopes = strings.Fields(scopes)
	p.CreatedAt, p.ExpiresAt, p.RevokedAt, p.LastUsedAt = fromNanos(created), fromNanos(expires), fromNanos(revoked), fromNanos(used)
	return &p, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
