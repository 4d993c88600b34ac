package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/store"
)

const clientColumns = `id, name, secret_hash, scopes, tier, created_at, secret_rotated_at, revoked_at, expires_at, created_by, created_by_root, last_used_at`

// CreateClient inserts c.
func (s *DB) CreateClient(ctx context.Context, c *store.Client) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO clients (`+clientColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		c.ID, c.Name, c.SecretHash, nonNil(c.Scopes), c.Tier, nanos(c.CreatedAt), nanos(c.SecretRotatedAt), nanos(c.RevokedAt),
		nanos(c.ExpiresAt), c.CreatedBy, c.CreatedByRoot, nanos(c.LastUsedAt))
	if err != nil {
		return fmt.Errorf("insert client %s: %w", c.ID, err)
	}
	return nil
}

// GetClient returns the client with the given id, ENOTFOUND if none.
func (s *DB) GetClient(ctx context.Context, id string) (*store.Client, error) {
	c, err := scanClient(s.pool.QueryRow(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.NotFound("client", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get client %s: %w", id, err)
	}
	return c, nil
}

// ListClients returns every client, oldest first (ties by id).
func (s *DB) ListClients(ctx context.Context) ([]*store.Client, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	out, err := collect(rows, scanClient)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return out, nil
}

// ListClientsPage returns one page of clients (see store.Store).
func (s *DB) ListClientsPage(ctx context.Context, q store.ClientQuery) ([]*store.Client, error) {
	where, args := q.Where(store.PostgreSQL)
	return page(ctx, s, "clients", `SELECT `+clientColumns+` FROM clients WHERE `+where+` ORDER BY created_at, id`, args, q.Limit, scanClient)
}

// RevokeClient marks the client revoked at t and returns it; revoking twice
// keeps the first time. A missing client is ENOTFOUND.
func (s *DB) RevokeClient(ctx context.Context, id string, t time.Time) (*store.Client, error) {
	if _, err := s.pool.Exec(ctx, `UPDATE clients SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0`, nanos(t), id); err != nil {
		return nil, fmt.Errorf("revoke client %s: %w", id, err)
	}
	return s.GetClient(ctx, id)
}

// SetClientSecret replaces the secret hash of an active client; a missing
// or revoked client is ENOTFOUND ("active client").
func (s *DB) SetClientSecret(ctx context.Context, id string, hash []byte, t time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE clients SET secret_hash = $1, secret_rotated_at = $2 WHERE id = $3 AND revoked_at = 0`, hash, nanos(t), id)
	if err != nil {
		return fmt.Errorf("rotate client secret %s: %w", id, err)
	}
	if tag.RowsAffected() != 1 {
		return store.NotFound("active client", id)
	}
	return nil
}

func scanClient(row scanner) (*store.Client, error) {
	var (
		c                         store.Client
		created, rotated, revoked int64
		expires, used             int64
	)
	if err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &c.Scopes, &c.Tier, &created, &rotated, &revoked, &expires, &c.CreatedBy, &c.CreatedByRoot, &used); err != nil {
		return nil, err
	}
	c.CreatedAt, c.SecretRotatedAt, c.RevokedAt = fromNanos(created), fromNanos(rotated), fromNanos(revoked)
	c.ExpiresAt, c.LastUsedAt = fromNanos(expires), fromNanos(used)
	return &c, nil
}
