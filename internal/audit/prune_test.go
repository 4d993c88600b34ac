package audit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

func TestPruneKeepsVerifyGreen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := gatehouse.NewFakeClock(t0)
	cfg := func(c *audit.Config) {
		c.Clock = clock
		c.Retention = 5 * 24 * time.Hour
	}
	l := MustOpenLog(t, dir, cfg)
	// 100 events, ten a day for ten days; checkpoints every 20.
	var cp20 []byte
	for i := 0; i < 100; i++ {
		appendN(t, l, 1, 0)
		if (i+1)%20 == 0 {
			signed, err := l.Sync(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if i+1 == 20 {
				cp20 = signed
			}
		}
		if (i+1)%10 == 0 {
			clock.Advance(24 * time.Hour)
		}
	}
	early, _ := audit.InclusionProof(ctx, dir, 5)
	oldCP, err := audit.LatestCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	before := l.Checkpoint()
	clock.Advance(24 * time.Hour) // now: t0+11d; cutoff: t0+6d (entries < 60)
	res, err := l.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Segments of 16: [0,16) … [48,64) end at entry 63 (day 6), so only
	// [0,48) is older than the cutoff.
	if res.Segments != 3 || res.Entries != 48 || res.RetainedFrom != 48 {
		t.Fatalf("prune result %+v", res)
	}
	if _, err := os.Stat(segFile(dir, 0)); !os.IsNotExist(err) {
		t.Fatalf("segment 0 still present: %v", err)
	}
	vr, err := audit.Verify(ctx, dir, audit.VerifyOptions{Checkpoint: before})
	if err != nil {
		t.Fatalf("verify after prune: %v", err)
	}
	if vr.RetainedFrom != 48 || vr.Entries != 52 || vr.TreeSize != 100 || !vr.ExternalChecked || !vr.RetainedSince.Equal(t0.Add(4*24*time.Hour)) {
		t.Fatalf("verify result %+v", vr)
	}
	t.Log(vr)
	// A checkpoint older than the retained log can no longer be checked,
	// and verify says so.
	_, err = audit.Verify(ctx, dir, audit.VerifyOptions{Checkpoint: cp20})
	var ve *audit.VerifyError
	if !errors.As(err, &ve) || ve.Checkpoint != -2 {
		t.Fatalf("verify with a checkpoint of size 20 after pruning 48: %v", err)
	}
	if _, err := audit.Verify(ctx, dir, audit.VerifyOptions{Checkpoint: oldCP}); err != nil {
		t.Fatalf("verify with the size-100 checkpoint: %v", err)
	}
	// Proofs for retained entries still verify against the same roots.
	cp, err := audit.OpenCheckpoint(l.Checkpoint(), l.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []uint64{48, 63, 64, 99} {
		p, err := l.Proof(ctx, i)
		if err != nil {
			t.Fatalf("proof %d: %v", i, err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, cp.Size, rfc6962.DefaultHasher.HashLeaf(p.Entry), p.Hashes, cp.Root); err != nil {
			t.Fatalf("inclusion %d after prune: %v", i, err)
		}
	}
	if _, err := l.Proof(ctx, 5); !errors.Is(err, audit.ErrPruned) {
		t.Fatalf("proof of pruned entry: %v", err)
	}
	if err := early.Verify(l.VerifierKey()); err != nil {
		t.Fatalf("a proof saved before pruning stops verifying: %v", err)
	}
	page, err := l.Query(ctx, audit.Filter{}, "", 1)
	if err != nil || page.Entries[0].Index != 48 {
		t.Fatalf("query after prune: %+v, %v", page, err)
	}
	// Appending, reopening and pruning again keep it green.
	appendN(t, l, 30, 0)
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(ctx, dir, audit.VerifyOptions{}); err != nil {
		t.Fatalf("verify before reopen: %v", err)
	}

	l = MustOpenLog(t, dir, cfg)
	appendN(t, l, 10, 0)
	clock.Advance(3 * 24 * time.Hour)
	if res, err = l.Prune(ctx); err != nil || res.RetainedFrom != 80 {
		t.Fatalf("second prune: %+v, %v", res, err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	vr, err = audit.Verify(ctx, dir, audit.VerifyOptions{})
	if err != nil || vr.RetainedFrom != 80 || vr.TreeSize != 140 {
		t.Fatalf("verify after second prune: %+v, %v", vr, err)
	}
	// A checkpoint from before the retained log cannot be checked.
	if _, err := audit.Verify(ctx, dir, audit.VerifyOptions{Checkpoint: before}); err != nil {
		t.Fatalf("external checkpoint of size 100 ≥ 80: %v", err)
	}
	// Tampering with the pruned prefix is caught.
	p := filepath.Join(dir, "pruned")
	b := mustRead(t, p)
	b[30] ^= 1
	mustWrite(t, p, b)
	if _, err := audit.Verify(ctx, dir, audit.VerifyOptions{}); err == nil {
		t.Fatal("verify passed with a modified prune state")
	}
}

func TestPruneNothingToDo(t *testing.T) {
	l := MustOpenLog(t, t.TempDir(), func(c *audit.Config) { c.Retention = time.Hour })
	appendN(t, l, 40, 0)
	res, err := l.Prune(context.Background())
	if err != nil || res.Segments != 0 || res.RetainedFrom != 0 {
		t.Fatalf("prune: %+v, %v", res, err)
	}
}
