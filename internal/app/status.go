package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/compliance"
)

// statusSetting is the store setting that keeps the newest control status
// summary (compliance.StatusSummary as JSON) of GET /v1/evidence/summary:
// written by every replica on one store when it records the daily
// snapshot or builds a report, read with one store read, so that a
// dashboard never builds a report (which reads the period's whole audit
// log) nor scans the log to show where the controls stand.
const statusSetting = "compliance.status_latest"

// errNoStatus answers GET /v1/evidence/summary before any report or
// snapshot.
var errNoStatus = gatehouse.Errorf(gatehouse.ENOTFOUND, "no control status yet: no evidence report was generated and no daily snapshot recorded (GET /v1/evidence generates a report)")

// latestStatus is the newest status summary kept, errNoStatus if none.
func (a *App) latestStatus(ctx context.Context) (compliance.StatusSummary, error) {
	var s compliance.StatusSummary
	raw, err := a.store.GetSetting(ctx, statusSetting)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return s, errNoStatus
	}
	if err != nil {
		return s, fmt.Errorf("read the control status summary: %w", err)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("decode the control status summary: %w", err)
	}
	return s, nil
}

// noteStatus keeps s as the newest status summary unless the one kept was
// decided later (another replica's, or a report made while this one was
// evaluated). Two replicas writing at once may leave either's: both are
// current. A failure is logged: the report or snapshot stands without it.
func (a *App) noteStatus(ctx context.Context, s compliance.StatusSummary) {
	if old, err := a.latestStatus(ctx); err == nil && old.AsOf.After(s.AsOf) {
		return
	}
	raw, err := json.Marshal(s)
	if err == nil {
		err = a.store.PutSetting(ctx, statusSetting, raw)
	}
	if err != nil {
		a.log.WarnContext(ctx, "control status summary not kept", "source", s.Source, "err", err)
	}
}

// loadStatus fills the status summary of a store that has none yet (a
// server from before it was kept) from the newest compliance.snapshot
// among the newest audit.ScanBudget entries: one bounded read of the
// log's tail, never a scan of the whole log. Nothing found leaves it
// empty until the next snapshot or report.
func (a *App) loadStatus(ctx context.Context) error {
	if _, err := a.latestStatus(ctx); err != errNoStatus {
		return err
	}
	signed, err := a.audit.Sync(ctx)
	if err != nil {
		return fmt.Errorf("read the audit log's size: %w", err)
	}
	cp, err := audit.ParseCheckpoint(string(signed))
	if err != nil {
		return fmt.Errorf("read the audit log's size: %w", err)
	}
	from := uint64(0)
	if cp.Size > audit.ScanBudget {
		from = cp.Size - audit.ScanBudget
	}
	var newest *gatehouse.Event
	cursor := strconv.FormatUint(from, 10)
	for range 2 { // a page stops at ScanBudget entries read: at most one more
		page, err := a.audit.Query(ctx, audit.Filter{Type: compliance.EventSnapshot}, cursor, audit.ScanBudget)
		if err != nil {
			return fmt.Errorf("read the newest snapshot: %w", err)
		}
		for i := range page.Entries {
			newest = &page.Entries[i].Event
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if newest == nil {
		return nil
	}
	if s, ok := compliance.SnapshotStatus(*newest); ok {
		a.noteStatus(ctx, s)
	}
	return nil
}
