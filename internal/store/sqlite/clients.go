package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

const clientColumns = `id, name, secret_hash, scopes, tier, created_at, secret_rotated_at, revoked_at, expires_at, created_by, created_by_root, last_used_at`

// CreateClient inserts c.
func (s *DB) CreateClient(ctx context.Context, c *store.Client) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO clients (`+clientColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, c.SecretHash, strings.Join(c.Scopes, " "), c.Tier, nanos(c.CreatedAt), nanos(c.SecretRotatedAt), nanos(c.RevokedAt),
		nanos(c.ExpiresAt), c.CreatedBy, c.CreatedByRoot, nanos(c.LastUsedAt))
	if err != nil {
		return fmt.Errorf("insert client %s: %w", c.ID, err)
	}
	return nil
}

// GetClient returns the client with the given id.
func (s *DB) GetClient(ctx context.Context, id string) (*store.Client, error) {
	c, err := scanClient(s.db.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("client", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get client %s: %w", id, err)
	}
	return c, nil
}

// ListClients returns every client, oldest first.
func (s *DB) ListClients(ctx context.Context) ([]*store.Client, error) {
	return list(ctx, s.db, "clients", `SELECT `+clientColumns+` FROM clients ORDER BY created_at, id`, nil, scanClient)
}

// ListClientsPage returns one page of clients (see store.Store).
func (s *DB) ListClientsPage(ctx context.Context, q store.ClientQuery) ([]*store.Client, error) {
	where, args := q.Where(store.SQLite)
	return page(ctx, s.db, "clients", `SELECT `+clientColumns+` FROM clients WHERE `+where+` ORDER BY created_at, id`, args, q.Limit, scanClient)
}

// RevokeClient marks the client revoked.
func (s *DB) RevokeClient(ctx context.Context, id string, t time.Time) (*store.Client, error) {
	if _, err := s.db.ExecContext(ctx, `UPDATE clients SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, nanos(t), id); err != nil {
		return nil, fmt.Errorf("revoke client %s: %w", id, err)
	}
	return s.GetClient(ctx, id)
}

// SetClientSecret replaces an active client's secret hash.
func (s *DB) SetClientSecret(ctx context.Context, id string, hash []byte, t time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE clients SET secret_hash = ?, secret_rotated_at = ? WHERE id = ? AND revoked_at = 0`, hash, nanos(t), id)
	if err != nil {
		return fmt.Errorf("rotate client secret %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return store.NotFound("active client", id)
	}
	return nil
}

func scanClient(row scanner) (*store.Client, error) {
	var (
		c                         store.Client
		scopes                    string
		created, rotated, revoked int64
		expires, used             int64
	)
	if err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &scopes, &c.Tier, &created, &rotated, &revoked, &expires, &c.CreatedBy, &c.CreatedByRoot, &used); err != nil {
		return nil, err
	}
	c.Scopes = strings.Fields(scopes)
	c.CreatedAt, c.SecretRotatedAt, c.RevokedAt = fromNanos(created), fromNanos(rotated), fromNanos(revoked)
	c.ExpiresAt, c.LastUsedAt = fromNanos(expires), fromNanos(used)
	return &c, nil
}
