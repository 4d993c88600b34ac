// Package postgres keeps the secrets Gatehouse generates (signing keys,
// the audit key, the pepper) in PostgreSQL, sealed under the master key
// (secrets.MasterKey): every replica on the same database and with the
// same master key reads the same secrets, and the database never holds
// one in plaintext.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse/internal/pgauth"
	"github.com/gatehouse/gatehouse/internal/secrets"
)

// Store is a secrets.Writer on one PostgreSQL database. Every version
// written is kept (table gatehouse_secrets: name, version, key_id,
// wrapped_key, ciphertext, created_at). It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	key  *secrets.MasterKey
}

var (
	_ secrets.Writer    = (*Store)(nil)
	_ secrets.Versioner = (*Store)(nil)
)

const schema = `CREATE TABLE IF NOT EXISTS gatehouse_secrets (
	name        text        NOT NULL,
	version     integer     NOT NULL CHECK (version > 0),
	key_id      text        NOT NULL,
	wrapped_key bytea       NOT NULL,
	ciphertext  bytea       NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (name, version)
)`

// Open connects to the database dsn names and creates the table if it is
// missing.
func Open(ctx context.Context, dsn string, key *secrets.MasterKey) (*Store, error) {
	return OpenPassword(ctx, dsn, key, nil)
}

// OpenPassword is Open with the password of each new connection read
// from pw (the store's secret reference, which follows rotations); nil
// keeps the DSN's.
func OpenPassword(ctx context.Context, dsn string, key *secrets.MasterKey, pw pgauth.Password) (*Store, error) {
	cfg, err := pgauth.ParsePool(dsn, pw)
	if err != nil {
		return nil, errors.New("sealed secrets: the store DSN does not parse")
	}
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("sealed secrets: connect: %w", err)
	}
	if _, err := pool.Exec(ctx, schema); err != nil {
		var pe *pgconn.PgError
		// Two replicas creating the table at once: one loses the race
		// on the type's name, and the table is there.
		if !errors.As(err, &pe) || pe.Code != "23505" {
			pool.Close()
			return nil, fmt.Errorf("sealed secrets: create table: %w", err)
		}
	}
	return &Store{pool: pool, key: key}, nil
}

// Close releases the connections.
func (s *Store) Close() { s.pool.Close() }

// Name implements secrets.Provider.
func (*Store) Name() string { return "sealed" }

// KeyID is the ID of the master key the store seals under.
func (s *Store) KeyID() string { return s.key.ID() }

// PreviousKeyIDs are the IDs of the previous master keys it also opens
// with.
func (s *Store) PreviousKeyIDs() []string { return s.key.PreviousIDs() }

// Get implements secrets.Provider: the newest version, opened under the
// master key. A row sealed under another master key, or altered, is an
// error (secrets.ErrMasterKeyMismatch, secrets.ErrTampered), never a
// value.
func (s *Store) Get(ctx context.Context, name string) (secrets.Secret, error) {
	if err := secrets.CheckName(name); err != nil {
		return secrets.Secret{}, err
	}
	var sealed secrets.Sealed
	var version int
	var created time.Time
	err := s.pool.QueryRow(ctx, `SELECT version, key_id, wrapped_key, ciphertext, created_at FROM gatehouse_secrets
		WHERE name = $1 ORDER BY version DESC LIMIT 1`, name).Scan(&version, &sealed.KeyID, &sealed.WrappedKey, &sealed.Ciphertext, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return secrets.Secret{}, fmt.Errorf("secret %s (sealed in PostgreSQL): %w", name, secrets.ErrNotFound)
	}
	if err != nil {
		return secrets.Secret{}, fmt.Errorf("read sealed secret %s: %w", name, err)
	}
	v, err := s.key.Open(name, version, sealed)
	if err != nil {
		return secrets.Secret{}, err
	}
	return secrets.Secret{Value: v, Version: version, Created: created.UTC(), Where: "sealed in PostgreSQL (master key " + sealed.KeyID + ")"}, nil
}

// Put implements secrets.Writer: version cas+1 is written only when cas
// is the newest version (0: none yet).
func (s *Store) Put(ctx context.Context, name string, value []byte, cas int) (secrets.Secret, error) {
	if err := secrets.CheckName(name); err != nil {
		return secrets.Secret{}, err
	}
	version := cas + 1
	sealed, err := s.key.Seal(name, version, value)
	if err != nil {
		return secrets.Secret{}, err
	}
	var created time.Time
	err = s.pool.QueryRow(ctx, `INSERT INTO gatehouse_secrets (name, version, key_id, wrapped_key, ciphertext)
		SELECT $1, $2, $3, $4, $5
		WHERE (SELECT coalesce(max(version), 0) FROM gatehouse_secrets WHERE name = $1) = $6
		ON CONFLICT DO NOTHING RETURNING created_at`,
		name, version, sealed.KeyID, sealed.WrappedKey, sealed.Ciphertext, cas).Scan(&created)
	if errors.Is(err, pgx.ErrNoRows) {
		return secrets.Secret{}, fmt.Errorf("secret %s at version %d: %w", name, cas, secrets.ErrConflict)
	}
	if err != nil {
		return secrets.Secret{}, fmt.Errorf("write sealed secret %s: %w", name, err)
	}
	return secrets.Secret{Value: value, Version: version, Created: created.UTC(), Where: "sealed in PostgreSQL (master key " + sealed.KeyID + ")"}, nil
}

// CurrentVersion implements secrets.Versioner: the newest version of
// name, 0 when there is none, without opening it.
func (s *Store) CurrentVersion(ctx context.Context, name string) (int, error) {
	if err := secrets.CheckName(name); err != nil {
		return 0, err
	}
	var v int
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM gatehouse_secrets WHERE name = $1`, name).Scan(&v); err != nil {
		return 0, fmt.Errorf("read the version of sealed secret %s: %w", name, err)
	}
	return v, nil
}

// KeyCounts is how many sealed rows (every version of every secret) each
// master key id seals.
func (s *Store) KeyCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT key_id, count(*) FROM gatehouse_secrets GROUP BY key_id`)
	if err != nil {
		return nil, fmt.Errorf("count sealed secrets by master key: %w", err)
	}
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("count sealed secrets by master key: %w", err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count sealed secrets by master key: %w", err)
	}
	return out, nil
}

// CheckKeys fails, naming the key id and what to do, when a sealed row
// (any version) is sealed under a master key that is neither the
// current one nor a previous one: a replica started so could not open
// it, nor re-seal it.
func (s *Store) CheckKeys(ctx context.Context) error {
	counts, err := s.KeyCounts(ctx)
	if err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(counts)) {
		if !s.key.Knows(id) {
			return s.key.UnknownKeyError(fmt.Sprintf("%d sealed secret row(s) in PostgreSQL", counts[id]), id)
		}
	}
	return nil
}

// ResealResult is what Reseal did: the current key id, and how many rows
// it re-sealed from each previous key id (none when every row already
// was under the current key).
type ResealResult struct {
	KeyID    string         `json:"key_id"`
	Resealed int            `json:"resealed"`
	From     map[string]int `json:"from"`
	Total    int            `json:"total"`
}

// Reseal re-seals every row not sealed under the current master key
// (every version of every secret) under it, in one transaction: each is
// opened under the previous key its row names and sealed anew with a
// fresh data key, keeping its name, version and created_at. Either every
// row is re-sealed or none is: a row under a key id none of the keys has,
// or one that fails authentication, aborts it with the reason. Reseal is
// idempotent (a second run re-seals nothing), and safe while other
// replicas serve: they read each row before or after, under a key they
// hold, and its version does not change, so nothing is reloaded. Two
// runs at once serialize on the rows' locks.
func (s *Store) Reseal(ctx context.Context) (ResealResult, error) {
	res := ResealResult{KeyID: s.key.ID(), From: map[string]int{}}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return res, fmt.Errorf("reseal: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	type row struct {
		name    string
		version int
		sealed  secrets.Sealed
	}
	rows, err := tx.Query(ctx, `SELECT name, version, key_id, wrapped_key, ciphertext FROM gatehouse_secrets
		WHERE key_id <> $1 ORDER BY name, version FOR UPDATE`, s.key.ID())
	if err != nil {
		return res, fmt.Errorf("reseal: read sealed rows: %w", err)
	}
	var old []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.name, &r.version, &r.sealed.KeyID, &r.sealed.WrappedKey, &r.sealed.Ciphertext); err != nil {
			rows.Close()
			return res, fmt.Errorf("reseal: read sealed rows: %w", err)
		}
		old = append(old, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("reseal: read sealed rows: %w", err)
	}
	for _, r := range old {
		v, err := s.key.Open(r.name, r.version, r.sealed)
		if err != nil {
			return res, fmt.Errorf("reseal: nothing re-sealed: %w", err)
		}
		n, err := s.key.Seal(r.name, r.version, v)
		clear(v)
		if err != nil {
			return res, fmt.Errorf("reseal: nothing re-sealed: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE gatehouse_secrets SET key_id = $3, wrapped_key = $4, ciphertext = $5
			WHERE name = $1 AND version = $2`, r.name, r.version, n.KeyID, n.WrappedKey, n.Ciphertext); err != nil {
			return res, fmt.Errorf("reseal: write secret %s version %d: %w", r.name, r.version, err)
		}
		res.From[r.sealed.KeyID]++
		res.Resealed++
	}
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM gatehouse_secrets`).Scan(&res.Total); err != nil {
		return res, fmt.Errorf("reseal: count rows: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("reseal: commit: %w", err)
	}
	return res, nil
}
