// Package sqlite implements store.Store on an embedded SQLite database
// (modernc.org/sqlite, pure Go, so the binary needs no C toolchain).
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/gatehouse/gatehouse/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a store.Store backed by one SQLite file.
type DB struct {
	db *sql.DB
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the database at path and applies pending
// migrations. Writes are synchronous (synchronous=FULL): a revocation that
// was acknowledged survives a crash.
// init registers gatehouse_lower(s) with the driver: strings.ToLower of a
// text value (NULL stays NULL), the case folding the list filters use
// (store.Dialect), where SQLite's lower() folds ASCII only.
func init() {
	sqlite.MustRegisterDeterministicScalarFunction("gatehouse_lower", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		switch v := args[0].(type) {
		case string:
			return strings.ToLower(v), nil
		case []byte:
			return strings.ToLower(string(v)), nil
		default:
			return v, nil
		}
	})
}

func Open(ctx context.Context, path string) (*DB, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	s := &DB{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate sqlite %s: %w", path, err)
	}
	return s, nil
}

func (s *DB) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		if err := s.apply(ctx, version, name); err != nil {
			return fmt.Errorf("apply %s: %w", version, err)
		}
	}
	return nil
}

func (s *DB) apply(ctx context.Context, version, name string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	body, err := migrations.ReadFile(name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, time.Now().Unix()); err != nil {
		return err
	}
	return tx.Commit()
}

// Close closes the database.
func (s *DB) Close() error { return s.db.Close() }

// Ping checks the database answers a query.
func (s *DB) Ping(ctx context.Context) error {
	var one int
	return s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
}

const keyColumns = `id, name, hash, scopes, tier, created_at, expires_at, revoked_at, rotated_to, rotated_from, created_by, created_by_root, last_used_at`

// CreateKey inserts k.
func (s *DB) CreateKey(ctx context.Context, k *store.Key) error {
	return insertKey(ctx, s.db, k)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertKey(ctx context.Context, db execer, k *store.Key) error {
	_, err := db.ExecContext(ctx, `INSERT INTO api_keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Name, k.Hash, strings.Join(k.Scopes, " "), k.Tier,
		nanos(k.CreatedAt), nanos(k.ExpiresAt), nanos(k.RevokedAt), k.RotatedTo, k.RotatedFrom, k.CreatedBy, k.CreatedByRoot, nanos(k.LastUsedAt))
	if err != nil {
		return fmt.Errorf("insert key %s: %w", k.ID, err)
	}
	return nil
}

// GetKey returns the key with the given id.
func (s *DB) GetKey(ctx context.Context, id string) (*store.Key, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, id)
	k, err := scanKey(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("key", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get key %s: %w", id, err)
	}
	return k, nil
}

// ListKeys returns every key, oldest first.
func (s *DB) ListKeys(ctx context.Context) ([]*store.Key, error) {
	return list(ctx, s.db, "keys", `SELECT `+keyColumns+` FROM api_keys ORDER BY created_at, id`, nil, scanKey)
}

// ListKeysPage returns one page of keys (see store.Store).
func (s *DB) ListKeysPage(ctx context.Context, q store.KeyQuery) ([]*store.Key, error) {
	where, args := q.Where(store.SQLite)
	return page(ctx, s.db, "keys", `SELECT `+keyColumns+` FROM api_keys WHERE `+where+` ORDER BY created_at, id`, args, q.Limit, scanKey)
}

// page runs query (a SELECT with its WHERE and ORDER BY, built from fixed
// fragments) with args and a LIMIT of limit (at least 1), and scans each
// row; what names the list in errors.
func page[T any](ctx context.Context, db *sql.DB, what, query string, args []any, limit int, scan func(scanner) (*T, error)) ([]*T, error) {
	return list(ctx, db, what, query+` LIMIT ?`, append(args, max(limit, 1)), scan) // #nosec G202 -- query is built from fixed fragments; values are placeholders
}

// list runs query with args and scans every row; what names the list in
// errors.
func list[T any](ctx context.Context, db *sql.DB, what, query string, args []any, scan func(scanner) (*T, error)) ([]*T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return out, nil
}

// RevokeKey marks the key revoked.
func (s *DB) RevokeKey(ctx context.Context, id string, t time.Time) (*store.Key, error) {
	if _, err := s.db.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, nanos(t), id); err != nil {
		return nil, fmt.Errorf("revoke key %s: %w", id, err)
	}
	return s.GetKey(ctx, id)
}

// RotateKey stores next and links old to it, in one transaction.
func (s *DB) RotateKey(ctx context.Context, oldID string, oldExpiresAt time.Time, next *store.Key) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("rotate key %s: %w", oldID, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE api_keys SET rotated_to = ?, expires_at = ? WHERE id = ? AND revoked_at = 0 AND rotated_to = ''`,
		next.ID, nanos(oldExpiresAt), oldID)
	if err != nil {
		return fmt.Errorf("rotate key %s: %w", oldID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return store.NotFound("active key", oldID)
	}
	if err := insertKey(ctx, tx, next); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("rotate key %s: commit: %w", oldID, err)
	}
	return nil
}

// GetSetting returns a stored setting.
func (s *DB) GetSetting(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := s.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("setting", name)
	}
	if err != nil {
		return nil, fmt.Errorf("get setting %s: %w", name, err)
	}
	return v, nil
}

// PutSetting stores a setting, replacing any value.
func (s *DB) PutSetting(ctx context.Context, name string, value []byte) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value`, name, value)
	if err != nil {
		return fmt.Errorf("put setting %s: %w", name, err)
	}
	return nil
}

// PutSettingIfAbsent stores a setting unless one exists.
func (s *DB) PutSettingIfAbsent(ctx context.Context, name string, value []byte) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT(name) DO NOTHING`, name, value)
	if err != nil {
		return false, fmt.Errorf("put setting %s: %w", name, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanKey(row scanner) (*store.Key, error) {
	var (
		k                         store.Key
		scopes                    string
		created, expires, revoked int64
		used                      int64
	)
	if err := row.Scan(&k.ID, &k.Name, &k.Hash, &scopes, &k.Tier, &created, &expires, &revoked, &k.RotatedTo, &k.RotatedFrom, &k.CreatedBy, &k.CreatedByRoot, &used); err != nil {
		return nil, err
	}
	k.Scopes = strings.Fields(scopes)
	k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.LastUsedAt = fromNanos(created), fromNanos(expires), fromNanos(revoked), fromNanos(used)
	return &k, nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
