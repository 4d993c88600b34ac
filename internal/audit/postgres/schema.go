package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Advisory lock keys. Both are scoped to the database, so deployments that
// share a cluster but not a database never wait for one another.
const (
	// schemaLockID is held (per transaction) while the schema is created.
	schemaLockID int64 = 0x6761_7564_6974_5f73 // "gaudit_s"
	// leaderLockID is held (per session) by the replica that sequences the
	// log and signs its checkpoints.
	leaderLockID int64 = 0x6761_7564_6974_5f6c // "gaudit_l"
)

// schema is the log's tables. audit_pending is the queue every replica
// appends to; the leader moves its rows into audit_entries, giving each
// its index in the Merkle tree, and records the tree's compact range in
// audit_state in the same transaction.
const schema = `
CREATE TABLE IF NOT EXISTS audit_pending (
	seq        BIGSERIAL PRIMARY KEY,
	payload    BYTEA NOT NULL,
	time       TIMESTAMPTZ NOT NULL,
	type       TEXT NOT NULL,
	actor_kind TEXT NOT NULL,
	actor_id   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_entries (
	idx        BIGINT PRIMARY KEY,
	leaf       BYTEA NOT NULL,
	payload    BYTEA NOT NULL,
	time       TIMESTAMPTZ NOT NULL,
	type       TEXT NOT NULL,
	actor_kind TEXT NOT NULL,
	actor_id   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_entries_time ON audit_entries (time);
CREATE INDEX IF NOT EXISTS audit_entries_type ON audit_entries (type, idx);
CREATE TABLE IF NOT EXISTS audit_nodes (
	level SMALLINT NOT NULL,
	idx   BIGINT NOT NULL,
	hash  BYTEA NOT NULL,
	PRIMARY KEY (level, idx)
);
CREATE TABLE IF NOT EXISTS audit_state (
	id         SMALLINT PRIMARY KEY CHECK (id = 1),
	size       BIGINT NOT NULL,
	range      BYTEA NOT NULL,
	pruned     BIGINT NOT NULL DEFAULT 0,
	prefix     BYTEA NOT NULL DEFAULT ''::bytea,
	updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO audit_state (id, size, range) VALUES (1, 0, ''::bytea) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS audit_checkpoints (
	seq        BIGSERIAL PRIMARY KEY,
	size       BIGINT NOT NULL,
	note       BYTEA NOT NULL,
	created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS audit_meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
`

// migrate creates the tables if needed, one replica at a time.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("create audit tables: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, schemaLockID); err != nil {
		return fmt.Errorf("create audit tables: %w", err)
	}
	if _, err := tx.Exec(ctx, schema); err != nil {
		return fmt.Errorf("create audit tables: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("create audit tables: %w", err)
	}
	return nil
}
