package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// AdvanceTOTPStep sets totp_last_step to step if it is lower, in one
// statement (compare-and-set).
func (s *DB) AdvanceTOTPStep(ctx context.Context, username string, step int64) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE users SET totp_last_step = ? WHERE username = ? AND totp_last_step < ?`, step, username, step)
	if err != nil {
		return false, fmt.Errorf("advance totp step of %s: %w", username, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, nil
	}
	if _, err := s.GetUser(ctx, username); err != nil {
		return false, err
	}
	return false, nil
}

// RecordSignIn moves last_sign_in_at forward to at, in one statement.
func (s *DB) RecordSignIn(ctx context.Context, username string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE users SET last_sign_in_at = max(last_sign_in_at, ?) WHERE username = ?`, nanos(at), username)
	if err != nil {
		return fmt.Errorf("record sign-in of %s: %w", username, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return store.NotFound("user", username)
	}
	return nil
}

// RecordLoginFailure counts a failure in one upsert.
func (s *DB) RecordLoginFailure(ctx context.Context, username string, now time.Time, p store.LockoutPolicy) (store.Lockout, bool, error) {
	n, win, until := nanos(now), int64(p.Window), nanos(now.Add(p.Duration))
	// f is the count after this failure; SET expressions see the old row.
	const f = `(CASE WHEN login_failures.window_start + :win <= :now THEN 1 ELSE login_failures.failures + 1 END)`
	var (
		lo            store.Lockout
		start, until2 int64
	)
	err := s.db.QueryRowContext(ctx, `INSERT INTO login_failures (username, failures, window_start, locked_until)
		VALUES (:user, CASE WHEN 1 >= :max THEN 0 ELSE 1 END, :now, CASE WHEN 1 >= :max THEN :until ELSE 0 END)
		ON CONFLICT(username) DO UPDATE SET
			failures     = CASE WHEN `+f+` >= :max THEN 0 ELSE `+f+` END,
			window_start = CASE WHEN `+f+` >= :max OR `+f+` = 1 THEN :now ELSE login_failures.window_start END,
			locked_until = CASE WHEN `+f+` >= :max THEN :until ELSE login_failures.locked_until END
		RETURNING failures, window_start, locked_until`,
		sql.Named("user", username), sql.Named("max", p.MaxFailures), sql.Named("now", n), sql.Named("win", win), sql.Named("until", until)).
		Scan(&lo.Failures, &start, &until2)
	if err != nil {
		return store.Lockout{}, false, fmt.Errorf("record login failure of %s: %w", username, err)
	}
	lo.WindowStart, lo.LockedUntil = fromNanos(start), fromNanos(until2)
	return lo, until2 == until, nil
}

// GetLockout returns the failure state of a user.
func (s *DB) GetLockout(ctx context.Context, username string) (store.Lockout, error) {
	var (
		lo           store.Lockout
		start, until int64
	)
	err := s.db.QueryRowContext(ctx, `SELECT failures, window_start, locked_until FROM login_failures WHERE username = ?`, username).Scan(&lo.Failures, &start, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Lockout{}, nil
	}
	if err != nil {
		return store.Lockout{}, fmt.Errorf("get lockout of %s: %w", username, err)
	}
	lo.WindowStart, lo.LockedUntil = fromNanos(start), fromNanos(until)
	return lo, nil
}

// ClearLoginFailures forgets a user's failures and lock.
func (s *DB) ClearLoginFailures(ctx context.Context, username string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM login_failures WHERE username = ?`, username); err != nil {
		return fmt.Errorf("clear login failures of %s: %w", username, err)
	}
	return nil
}

// DeleteOtherSessions ends a user's sessions but keep.
func (s *DB) DeleteOtherSessions(ctx context.Context, username string, keep []byte) error {
	if keep == nil {
		return s.DeleteUserSessions(ctx, username)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE username = ? AND id_hash <> ?`, username, keep); err != nil {
		return fmt.Errorf("delete other sessions of %s: %w", username, err)
	}
	return nil
}
