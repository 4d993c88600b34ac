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
