// Package postgres implements store.Store on PostgreSQL through a pgx
// connection pool, so that several Gatehouse replicas can share one
// database. The schema is embedded and migrated at Open under an advisory
// lock, which makes replicas that start at the same moment safe.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse/internal/pgauth"

	"github.com/gatehouse/gatehouse/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrateLockID is the pg_advisory_lock key held while migrating: the bytes
// of "gatehous". Advisory locks are scoped to one database, so deployments
// sharing a cluster but not a database do not wait for one another.
const migrateLockID int64 = 0x6761746568_6f7573

// DB is a store.Store backed by a PostgreSQL database. It is safe for
// concurrent use.
type DB struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*DB)(nil)

// Open connects to the database named by dsn (a postgres:// URL or
// key=value string, as libpq accepts), checks that it answers and applies
// pending migrations. Several processes may Open the same database at once:
// migrations run one process at a time and each is applied exactly once.
// The error never contains the DSN's password.
func Open(ctx context.Context, dsn string) (*DB, error) {
	return OpenConfig(ctx, Config{DSN: dsn})
}

// Config says which database a DB opens and how its connections log in.
type Config struct {
	// DSN names the database: a postgres:// URL or key=value string.
	DSN string
	// Password, when set, gives every new connection its password (a
	// secret reference that follows rotations) in place of the DSN's.
	Password pgauth.Password
}

// OpenConfig is Open with the password of each new connection read from
// cfg.Password: a rotated password reaches new connections while the open
// ones live on.
func OpenConfig(ctx context.Context, c Config) (*DB, error) {
	cfg, err := pgauth.ParsePool(c.DSN, c.Password)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	s := &DB{pool: pool}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate postgres: %w", err)
	}
	return s, nil
}

// migrate applies every embedded migration not yet recorded in
// schema_migrations, each in its own transaction, while holding the
// migration advisory lock on one connection.
func (s *DB) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLockID); err != nil {
		// The lock may have been granted as ctx ended: end the session so
		// that it cannot stay held by a pooled connection.
		conn.Conn().Close(context.WithoutCancel(ctx))
		return fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, migrateLockID); err != nil {
			// Ending the session releases the lock; Release then drops
			// the closed connection from the pool.
			conn.Conn().Close(uctx)
		}
	}()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    TEXT PRIMARY KEY,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
	)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		if err := apply(ctx, conn.Conn(), version, name); err != nil {
			return fmt.Errorf("apply %s: %w", version, err)
		}
	}
	return nil
}

func apply(ctx context.Context, conn *pgx.Conn, version, name string) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	var done bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, version).Scan(&done); err != nil {
		return err
	}
	if done {
		return nil
	}
	body, err := migrations.ReadFile(name)
	if err != nil {
		return err
	}
	// Without arguments pgx uses the simple protocol, which allows the
	// several statements of a migration file in one Exec.
	if _, err := tx.Exec(ctx, string(body)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, version); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// Close closes every connection of the pool. Calling it again does nothing.
func (s *DB) Close() error {
	s.pool.Close()
	return nil
}

// Acquires returns how many times a connection was taken from the pool:
// every query or transaction takes one, so a flat count over a stretch of
// requests shows they made no round trip to the store.
func (s *DB) Acquires() int64 { return s.pool.Stat().AcquireCount() }

// Ping checks that the database answers.
func (s *DB) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

const keyColumns = `id, name, hash, scopes, tier, created_at, expires_at, revoked_at, rotated_to, rotated_from, created_by, created_by_root, last_used_at`

// CreateKey inserts k.
func (s *DB) CreateKey(ctx context.Context, k *store.Key) error {
	return insertKey(ctx, s.pool, k)
}

// execer is what a pool and a transaction have in common for writes.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func insertKey(ctx context.Context, db execer, k *store.Key) error {
	_, err := db.Exec(ctx, `INSERT INTO api_keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		k.ID, k.Name, k.Hash, nonNil(k.Scopes), k.Tier,
		nanos(k.CreatedAt), nanos(k.ExpiresAt), nanos(k.RevokedAt), k.RotatedTo, k.RotatedFrom, k.CreatedBy, k.CreatedByRoot, nanos(k.LastUsedAt))
	if err != nil {
		return fmt.Errorf("insert key %s: %w", k.ID, err)
	}
	return nil
}

// GetKey returns the key with the given id, ENOTFOUND if there is none.
func (s *DB) GetKey(ctx context.Context, id string) (*store.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.NotFound("key", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get key %s: %w", id, err)
	}
	return k, nil
}

// ListKeys returns every key, oldest first (ties by id).
func (s *DB) ListKeys(ctx context.Context) ([]*store.Key, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	keys, err := collect(rows, scanKey)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return keys, nil
}

// ListKeysPage returns one page of keys (see store.Store).
func (s *DB) ListKeysPage(ctx context.Context, q store.KeyQuery) ([]*store.Key, error) {
	where, args := q.Where(store.PostgreSQL)
	return page(ctx, s, "keys", `SELECT `+keyColumns+` FROM api_keys WHERE `+where+` ORDER BY created_at, id`, args, q.Limit, scanKey)
}

// page runs query (a SELECT with its WHERE and ORDER BY, built from fixed
// fragments) with args and a LIMIT of limit (at least 1), and scans each
// row; what names the list in errors.
func page[T any](ctx context.Context, s *DB, what, query string, args []any, limit int, scan func(scanner) (*T, error)) ([]*T, error) {
	args = append(args, max(limit, 1))
	rows, err := s.pool.Query(ctx, query+` LIMIT `+store.PostgreSQL.Arg(len(args)), args...) // #nosec G202 -- query is built from fixed fragments; values are placeholders
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	out, err := collect(rows, scan)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return out, nil
}

// RevokeKey marks the key revoked at t and returns it; revoking twice keeps
// the first time. A missing key is ENOTFOUND.
func (s *DB) RevokeKey(ctx context.Context, id string, t time.Time) (*store.Key, error) {
	if _, err := s.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0`, nanos(t), id); err != nil {
		return nil, fmt.Errorf("revoke key %s: %w", id, err)
	}
	return s.GetKey(ctx, id)
}

// RotateKey stores next and, in the same transaction, links the old key to
// it and sets the old key's expiry. An old key that is missing, revoked or
// already rotated is ENOTFOUND ("active key") and nothing changes; of
// concurrent rotations of one key exactly one succeeds.
func (s *DB) RotateKey(ctx context.Context, oldID string, oldExpiresAt time.Time, next *store.Key) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("rotate key %s: %w", oldID, err)
	}
	defer tx.Rollback(ctx)
	// The row lock taken here makes a concurrent rotation wait, then find
	// rotated_to set and match nothing.
	tag, err := tx.Exec(ctx, `UPDATE api_keys SET rotated_to = $1, expires_at = $2 WHERE id = $3 AND revoked_at = 0 AND rotated_to = ''`,
		next.ID, nanos(oldExpiresAt), oldID)
	if err != nil {
		return fmt.Errorf("rotate key %s: %w", oldID, err)
	}
	if tag.RowsAffected() != 1 {
		return store.NotFound("active key", oldID)
	}
	if err := insertKey(ctx, tx, next); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("rotate key %s: commit: %w", oldID, err)
	}
	return nil
}

// GetSetting returns the value stored under name, ENOTFOUND if none.
func (s *DB) GetSetting(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM settings WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.NotFound("setting", name)
	}
	if err != nil {
		return nil, fmt.Errorf("get setting %s: %w", name, err)
	}
	return v, nil
}

// PutSetting stores value under name, replacing any value.
func (s *DB) PutSetting(ctx context.Context, name string, value []byte) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
		name, value)
	if err != nil {
		return fmt.Errorf("put setting %s: %w", name, err)
	}
	return nil
}

// PutSettingIfAbsent stores value under name unless a value exists, and
// reports whether it stored it. Of concurrent callers exactly one stores.
func (s *DB) PutSettingIfAbsent(ctx context.Context, name string, value []byte) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
		name, value)
	if err != nil {
		return false, fmt.Errorf("put setting %s: %w", name, err)
	}
	return tag.RowsAffected() == 1, nil
}

// scanner is a pgx.Row or pgx.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanKey(row scanner) (*store.Key, error) {
	var (
		k                         store.Key
		created, expires, revoked int64
		used                      int64
	)
	if err := row.Scan(&k.ID, &k.Name, &k.Hash, &k.Scopes, &k.Tier, &created, &expires, &revoked, &k.RotatedTo, &k.RotatedFrom, &k.CreatedBy, &k.CreatedByRoot, &used); err != nil {
		return nil, err
	}
	k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.LastUsedAt = fromNanos(created), fromNanos(expires), fromNanos(revoked), fromNanos(used)
	return &k, nil
}

// collect scans every row with scan and closes rows.
func collect[T any](rows pgx.Rows, scan func(scanner) (*T, error)) ([]*T, error) {
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// nanos is t as unix nanoseconds; the zero time ("unset") is 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is the inverse of nanos, in UTC.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// nonNil keeps a nil slice from being sent as SQL NULL to a NOT NULL
// array column.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
