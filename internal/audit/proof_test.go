package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/audit"
)

// fillLog records n bench events into l from 64 writers.
func fillLog(tb testing.TB, l *audit.Log, n int) {
	tb.Helper()
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 64 {
				if err := l.Record(context.Background(), benchEvent(i)); err != nil {
					tb.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if _, err := l.Sync(context.Background()); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkProof measures inclusion proofs of an old and a new entry and a
// consistency proof from an old tree size, over a log of 300,000 entries
// (four sealed segments of 65,536 and the active one), in a running log
// (cached mid hashes) and in a reopened one (the first proof of an old
// entry reads the segment's .mid file).
func BenchmarkProof(b *testing.B) {
	dir := b.TempDir()
	const n = 300_000
	open := func() *audit.Log {
		l, err := audit.Open(context.Background(), audit.Config{Dir: dir, Origin: testOrigin, Durability: audit.DurabilityBatch, CheckpointInterval: -1, PruneInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		return l
	}
	l := open()
	fillLog(b, l, n)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		fn   func(*audit.Log) error
	}{
		{"inclusion/old", func(l *audit.Log) error { _, err := l.Proof(ctx, 1); return err }},
		{"inclusion/new", func(l *audit.Log) error { _, err := l.Proof(ctx, n-1); return err }},
		{"consistency/old", func(l *audit.Log) error { _, _, err := l.ConsistencyProof(ctx, 1000); return err }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if err := c.fn(l); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	if err := l.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.Run("inclusion/old/reopened", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			l := open()
			b.StartTimer()
			if _, err := l.Proof(ctx, 1); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			l.Close(ctx)
			b.StartTimer()
		}
	})
}

// TestProofMidHashesDerived checks that the cached mid hashes of sealed
// segments are derived data: proofs stay valid when the .mid files are
// missing, torn or forged, and Verify passes whatever they hold.
func TestProofMidHashesDerived(t *testing.T) {
	const n = 1000
	cases := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"intact", func(*testing.T, string) {}},
		{"missing", func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}},
		{"torn", func(t *testing.T, p string) {
			if err := os.Truncate(p, 40); err != nil {
				t.Fatal(err)
			}
		}},
		{"forged", func(t *testing.T, p string) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)-1] ^= 1
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			l := MustOpenLog(t, dir, func(c *audit.Config) { c.SegmentEntries = 64 })
			fillLog(t, l, n)
			if err := l.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			mids, _ := filepath.Glob(filepath.Join(dir, "segments", "*.mid"))
			if len(mids) != n/64 {
				t.Fatalf("%d .mid files, want %d (one per sealed segment)", len(mids), n/64)
			}
			for _, p := range mids {
				c.damage(t, p)
			}
			if _, err := audit.Verify(context.Background(), dir, audit.VerifyOptions{}); err != nil {
				t.Fatalf("verify: %v", err)
			}
			l = MustOpenLog(t, dir, nil)
			ctx := context.Background()
			for _, i := range []uint64{0, 1, 63, 64, 500, 959, 960, n - 1} {
				p, err := l.Proof(ctx, i)
				if err != nil {
					t.Fatalf("proof %d: %v", i, err)
				}
				if err := p.Verify(l.VerifierKey()); err != nil {
					t.Fatalf("proof %d does not verify: %v", i, err)
				}
				op, err := audit.InclusionProof(ctx, dir, i)
				if err != nil {
					t.Fatalf("offline proof %d: %v", i, err)
				}
				if fmt.Sprint(op.Hashes) != fmt.Sprint(p.Hashes) {
					t.Fatalf("offline proof %d differs from the log's", i)
				}
			}
		})
	}
}

// TestQueryScanBudget checks that a rarely matching filter costs at most
// audit.ScanBudget entries a request: the page is short (or empty) with
// Next where the scan stopped, and following Next finds every match.
func TestQueryScanBudget(t *testing.T) {
	l := MustOpenLog(t, t.TempDir(), func(c *audit.Config) {
		c.Durability = audit.DurabilityBatch
		c.SegmentEntries = 4096
	})
	ctx := context.Background()
	n := 2*audit.ScanBudget + 500
	rare := map[int]bool{5: true, audit.ScanBudget + 100: true, n - 1: true}
	for i := range n {
		e := benchEvent(i)
		if rare[i] {
			e.Actor.ID = "rare"
		}
		if err := l.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		f      audit.Filter
		limit  int
		wantN  int
		pages  int
		reason string
	}{
		{"rare actor", audit.Filter{Actor: "api_key:rare"}, 100, 3, 3, "one match per budget"},
		{"no match", audit.Filter{Type: "admin.key.create"}, 100, 0, 3, "empty pages with next"},
		{"everything", audit.Filter{}, 1000, n, (n + 999) / 1000, "full pages"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cursor, got, pages := "", 0, 0
			for {
				p, err := l.Query(ctx, c.f, cursor, c.limit)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				got += len(p.Entries)
				if p.Next == "" {
					break
				}
				var from, next uint64
				fmt.Sscan(cursor, &from)
				fmt.Sscan(p.Next, &next)
				if next-from > audit.ScanBudget {
					t.Fatalf("page from %d scanned to %d, more than the budget %d", from, next, audit.ScanBudget)
				}
				if len(p.Entries) < c.limit && next-from != audit.ScanBudget {
					t.Fatalf("short page from %d has next %d, not where the budget ends", from, next)
				}
				cursor = p.Next
			}
			if got != c.wantN || pages != c.pages {
				t.Fatalf("%d entries in %d pages, want %d in %d (%s)", got, pages, c.wantN, c.pages, c.reason)
			}
		})
	}
}

// TestStrayMidsRemoved: Open removes .mid files whose segment is gone (a
// rebuild racing a prune) and torn temporary ones, and keeps the others.
func TestStrayMidsRemoved(t *testing.T) {
	dir := t.TempDir()
	l := MustOpenLog(t, dir, func(c *audit.Config) { c.SegmentEntries = 64 })
	fillLog(t, l, 200)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, "segments")
	stray := []string{filepath.Join(seg, fmt.Sprintf("%020d.mid", 1<<20)), filepath.Join(seg, fmt.Sprintf("%020d.mid.tmp", 64))}
	for _, p := range stray {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	MustOpenLog(t, dir, nil)
	for _, p := range stray {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left in place (%v)", filepath.Base(p), err)
		}
	}
	if kept, _ := filepath.Glob(filepath.Join(seg, "*.mid")); len(kept) != 3 {
		t.Errorf("%d .mid files kept, want 3", len(kept))
	}
}
