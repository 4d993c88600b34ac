package app

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/compliance"
)

// snapshotSetting is the store setting that records, per UTC day, that
// the day's compliance snapshot was recorded, so that every replica on
// one store together records one a day.
const snapshotSetting = "compliance.snapshot_recorded:"

// Snapshot intervals: the first try a minute after start (the listeners
// serving, so the checks can probe them), then hourly; each try records
// the snapshot of the current UTC day unless a replica did.
const (
	snapshotFirst = time.Minute
	snapshotEvery = time.Hour
)

// Snapshot records the compliance.snapshot event of the current UTC day
// (the app's clock): every control's and check's status, decided from
// live state as a report would over the last day. It does nothing, and
// returns false, when this or another replica on the same store already
// recorded that day's. The snapshot's statuses become the newest status
// summary (GET /v1/evidence/summary) unless a later report's are. The
// schedule inside serve calls it; it is safe for concurrent use.
func (a *App) Snapshot(ctx context.Context) (bool, error) {
	now := a.clock.Now().UTC()
	day := now.Format(time.DateOnly)
	if _, err := a.store.GetSetting(ctx, snapshotSetting+day); err == nil {
		return false, nil
	} else if gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
		return false, fmt.Errorf("read the snapshot marker: %w", err)
	}
	s, err := a.evidenceState(ctx, compliance.Period{From: now.Add(-24 * time.Hour), To: now.Add(time.Second)})
	if err != nil {
		return false, fmt.Errorf("read the state: %w", err)
	}
	first, err := a.store.PutSettingIfAbsent(ctx, snapshotSetting+day, []byte(`"`+day+`"`))
	if err != nil || !first {
		return false, err
	}
	ev := compliance.SnapshotEvent(s, gatehouse.Actor{Kind: "system", ID: a.cfg.Audit.Origin})
	if err := a.audit.Record(ctx, ev); err != nil {
		return false, fmt.Errorf("record the snapshot: %w", err)
	}
	if st, ok := compliance.SnapshotStatus(ev); ok {
		a.noteStatus(ctx, st)
	}
	return true, nil
}

// runSnapshots records the daily compliance snapshot until ctx ends,
// having first read back the newest one for the status summary if the
// store keeps none (loadStatus).
func (a *App) runSnapshots(ctx context.Context) {
	// Before Start returns (one bounded read of the log's tail), so that
	// the first dashboard shows the summary.
	if err := a.loadStatus(ctx); err != nil && ctx.Err() == nil {
		a.log.Warn("read back the newest compliance snapshot", "err", err)
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		t := time.NewTimer(snapshotFirst)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if _, err := a.Snapshot(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("daily compliance snapshot", "err", err)
			}
			t.Reset(snapshotEvery)
		}
	}()
}
