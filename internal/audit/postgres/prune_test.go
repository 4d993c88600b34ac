package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/audit/postgres"
	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
)

// TestPruneKeepsVerifyGreen prunes whole chunks of old entries: what
// remains still verifies against every checkpoint (one saved before the
// pruning included), proofs of remaining entries still check, and later
// checkpoints are still consistent with earlier ones.
func TestPruneKeepsVerifyGreen(t *testing.T) {
	dsn := pgtest.MustCreateDatabase(t)
	ctx := context.Background()
	clock := gatehouse.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := MustOpen(t, dsn, t.TempDir(), func(c *postgres.Config) {
		c.Clock, c.Retention, c.PruneChunk, c.PruneInterval = clock, 90*24*time.Hour, 256, time.Hour
	})
	waitLeader(t, l)
	recordN(t, l, 600, "old")
	clock.Advance(100 * 24 * time.Hour)
	recordN(t, l, 100, "new")
	saved, err := l.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Entries 0-599 are old; the chunk [512, 768) holds young ones and stays.
	if res.Entries != 512 || res.RetainedFrom != 512 {
		t.Fatalf("prune: %+v, want 512 entries removed, retained from 512", res)
	}
	if again, err := l.Prune(ctx); err != nil || again.Entries != 0 {
		t.Fatalf("second prune: %+v, %v", again, err)
	}
	recordN(t, l, 50, "later")
	if _, err := l.Sync(ctx); err != nil {
		t.Fatalf("checkpoint after pruning: %v", err)
	}
	vr, err := postgres.Verify(ctx, dsn, audit.VerifyOptions{Checkpoint: saved})
	if err != nil {
		t.Fatal(err)
	}
	if vr.RetainedFrom != 512 || vr.TreeSize != 750 || vr.Entries != 238 || !vr.ExternalChecked || vr.Checkpoints != 2 {
		t.Fatalf("verify after pruning: %s", vr)
	}
	for _, idx := range []uint64{512, 600, 749} {
		p, err := l.Proof(ctx, idx)
		if err != nil {
			t.Fatalf("proof %d: %v", idx, err)
		}
		if err := p.Verify(l.VerifierKey()); err != nil {
			t.Fatalf("proof %d: %v", idx, err)
		}
	}
	if _, err := l.Proof(ctx, 3); err == nil {
		t.Fatal("proof of a pruned entry succeeded")
	}
}
