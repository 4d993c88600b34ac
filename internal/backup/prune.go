package backup

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Prune deletes the stored backups older than the retention, never the
// newest one, and records each deletion as an audit event (C1.2, CC6.5).
// It returns what it deleted, and stops at the first deletion that fails.
func (s *Service) Prune(ctx context.Context, by By) ([]Info, error) {
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	defer s.release()
	return s.prune(ctx, by)
}

func (s *Service) prune(ctx context.Context, by By) ([]Info, error) {
	list, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	cutoff := s.cfg.Clock.Now().Add(-s.cfg.Retention)
	var deleted []Info
	for i, b := range list {
		if i == 0 || !b.CreatedAt.Before(cutoff) {
			continue // the newest is kept whatever its age
		}
		details := map[string]any{"location": b.Location, "created_at": b.CreatedAt, "size": b.Size,
			"retention": days(s.cfg.Retention), "reason": fmt.Sprintf("older than the %s retention", days(s.cfg.Retention))}
		if err := s.cfg.Destination.Delete(ctx, FileName(b.ID)); err != nil {
			details["error"] = err.Error()
			s.record(ctx, by, "backup.delete", "backup:"+b.ID, gatehouse.OutcomeFailure, details)
			return deleted, fmt.Errorf("delete backup %s: %w", b.ID, err)
		}
		s.record(ctx, by, "backup.delete", "backup:"+b.ID, gatehouse.OutcomeSuccess, details)
		s.log.Info("backup deleted", "id", b.ID, "reason", details["reason"])
		deleted = append(deleted, b)
	}
	return deleted, nil
}

// days writes whole days as "30d", anything else as Go does.
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
