package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/store"
)

// useTables maps a credential kind to its table.
var useTables = map[store.CredentialKind]string{
	store.CredentialKey:    "api_keys",
	store.CredentialClient: "clients",
	store.CredentialPAT:    "pats",
}

// RecordUses moves each credential's last_used_at forward, in one batch
// (one round trip).
func (s *DB) RecordUses(ctx context.Context, uses []store.Use) error {
	if len(uses) == 0 {
		return nil
	}
	var b pgx.Batch
	for _, u := range uses {
		table, ok := useTables[u.Kind]
		if !ok {
			return fmt.Errorf("record uses: unknown credential kind %q", u.Kind)
		}
		b.Queue(`UPDATE `+table+` SET last_used_at = $1 WHERE id = $2 AND last_used_at < $1`, nanos(u.At), u.ID)
	}
	if err := s.pool.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("record uses: %w", err)
	}
	return nil
}
