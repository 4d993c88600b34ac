package sqlite

import (
	"context"
	"fmt"

	"github.com/gatehouse/gatehouse/internal/store"
)

// useTables maps a credential kind to its table.
var useTables = map[store.CredentialKind]string{
	store.CredentialKey:    "api_keys",
	store.CredentialClient: "clients",
	store.CredentialPAT:    "pats",
}

// RecordUses moves each credential's last_used_at forward, in one
// transaction.
func (s *DB) RecordUses(ctx context.Context, uses []store.Use) error {
	if len(uses) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record uses: %w", err)
	}
	defer tx.Rollback()
	for _, u := range uses {
		table, ok := useTables[u.Kind]
		if !ok {
			return fmt.Errorf("record uses: unknown credential kind %q", u.Kind)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET last_used_at = ? WHERE id = ? AND last_used_at < ?`, nanos(u.At), u.ID, nanos(u.At)); err != nil {
			return fmt.Errorf("record use of %s %s: %w", u.Kind, u.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record uses: commit: %w", err)
	}
	return nil
}
