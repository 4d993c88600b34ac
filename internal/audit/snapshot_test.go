package audit_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
)

// A snapshot taken while events keep arriving is a log directory of its
// own: it verifies at exactly the checkpoint it names (sealed segments,
// the cut active one, a pruned prefix), and, given the signing key, opens
// and continues.
func TestSnapshotWhileAppending(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events int
		prune  bool
	}{
		{"empty", 0, false},
		{"within the first segment", 5, false},
		{"on a segment boundary", 32, false},
		{"sealed and active", 53, false},
		{"after pruning", 70, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			clock := gatehouse.NewFakeClock(t0)
			l := MustOpenLog(t, dir, func(c *audit.Config) { c.Retention, c.Clock = time.Hour, clock })
			appendN(t, l, tc.events, 7)
			if tc.prune {
				clock.Advance(2 * time.Hour)
				appendN(t, l, 1, 0)
				if res, err := l.Prune(ctx); err != nil || res.Segments == 0 {
					t.Fatalf("prune: %+v, %v", res, err)
				}
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // appends continue during the snapshot
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if err := l.Record(ctx, testEvent(i)); err != nil {
						t.Errorf("record: %v", err)
						return
					}
				}
			}()
			dst := filepath.Join(t.TempDir(), "snap")
			snap, err := l.Snapshot(ctx, dst)
			close(stop)
			wg.Wait()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range snap.Files {
				if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
					t.Errorf("listed file: %v", err)
				}
			}
			res, err := audit.Verify(ctx, dst, audit.VerifyOptions{VerifierKey: l.VerifierKey(), Checkpoint: snap.Checkpoint})
			if err != nil {
				t.Fatalf("verify snapshot: %v", err)
			}
			if res.TreeSize != snap.Size || res.TornTail != "" || res.LatestCheckpoint != snap.Size {
				t.Errorf("verify: %+v; want tree and latest checkpoint %d, no torn tail", res, snap.Size)
			}
			// The live log still verifies and extends the snapshot.
			if _, err := l.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := audit.Verify(ctx, dir, audit.VerifyOptions{Checkpoint: snap.Checkpoint}); err != nil {
				t.Errorf("live log after snapshot: %v", err)
			}
			// With the signing key, the copy is a log that continues.
			key, err := os.ReadFile(filepath.Join(dir, "log.key"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, "log.key"), key, 0o600); err != nil {
				t.Fatal(err)
			}
			c := MustOpenLog(t, dst, nil)
			if c.Size() != snap.Size {
				t.Errorf("reopened size %d, want %d", c.Size(), snap.Size)
			}
			appendN(t, c, 20, 0)
			if _, err := c.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := audit.Verify(ctx, dst, audit.VerifyOptions{Checkpoint: snap.Checkpoint}); err != nil {
				t.Errorf("continued copy: %v", err)
			}
		})
	}
}
