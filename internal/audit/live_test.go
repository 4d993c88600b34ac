package audit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
	"golang.org/x/mod/sumdb/note"
)

func TestPeriodicCheckpoint(t *testing.T) {
	dir := t.TempDir()
	l := MustOpenLog(t, dir, func(c *audit.Config) { c.CheckpointInterval = 20 * time.Millisecond })
	appendN(t, l, 10, 0)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if cp := l.Checkpoint(); cp != nil {
			c, err := audit.OpenCheckpoint(cp, l.VerifierKey())
			if err != nil {
				t.Fatal(err)
			}
			if c.Size == 10 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no periodic checkpoint of size 10")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// No new checkpoint while the tree does not grow.
	before := l.Checkpoint()
	time.Sleep(100 * time.Millisecond)
	if string(l.Checkpoint()) != string(before) {
		t.Fatal("checkpoint rewritten although the tree did not grow")
	}
}

func TestPeriodicPrune(t *testing.T) {
	dir := t.TempDir()
	clock := gatehouse.NewFakeClock(t0)
	l := MustOpenLog(t, dir, func(c *audit.Config) {
		c.Clock = clock
		c.Retention = time.Hour
		c.PruneInterval = 10 * time.Millisecond
		c.CheckpointInterval = 10 * time.Millisecond
	})
	appendN(t, l, 40, 0)
	clock.Advance(2 * time.Hour)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(segFile(dir, 0)); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("periodic prune did not remove segment 0")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := l.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := audit.Verify(context.Background(), dir, audit.VerifyOptions{})
	if err != nil || res.RetainedFrom != 32 {
		t.Fatalf("verify: %+v, %v", res, err)
	}
}

// TestVerifyLive runs Verify, Query and proofs while 8 writers append.
func TestVerifyLive(t *testing.T) {
	dir := t.TempDir()
	l := MustOpenLog(t, dir, func(c *audit.Config) { c.CheckpointInterval = 5 * time.Millisecond })
	ctx := context.Background()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				if err := l.Record(ctx, testEvent(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); {
		if _, err := audit.Verify(ctx, dir, audit.VerifyOptions{}); err != nil {
			stop.Store(true)
			t.Fatalf("verify of a live log: %v", err)
		}
		if n := l.Size(); n > 0 {
			p, err := l.Proof(ctx, n/2)
			if err != nil {
				t.Fatalf("proof: %v", err)
			}
			if err := p.Verify(l.VerifierKey()); err != nil {
				t.Fatalf("proof verify: %v", err)
			}
		}
		if _, err := l.Query(ctx, audit.Filter{Type: "request"}, "", 50); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
}

func TestVerifyWithGivenKey(t *testing.T) {
	dir := t.TempDir()
	l := MustOpenLog(t, dir, nil)
	appendN(t, l, 30, 10)
	key := l.VerifierKey()
	l.Close(context.Background())
	if _, err := audit.Verify(context.Background(), dir, audit.VerifyOptions{VerifierKey: key}); err != nil {
		t.Fatalf("verify with the right key: %v", err)
	}
	// An attacker who replaced the key in the directory and re-signed is
	// caught by a key kept elsewhere.
	_, other, _ := note.GenerateKey(nil, testOrigin)
	_, err := audit.Verify(context.Background(), dir, audit.VerifyOptions{VerifierKey: other})
	var ve *audit.VerifyError
	if !errors.As(err, &ve) || ve.Checkpoint != 0 {
		t.Fatalf("verify with another key: %v", err)
	}
}

func Example() {
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	l, err := audit.Open(ctx, audit.Config{Dir: dir, Origin: "gatehouse.example/audit"})
	if err != nil {
		panic(err)
	}
	for i := 0; i < 3; i++ {
		l.Record(ctx, gatehouse.Event{Type: "request", Action: "proxy", Outcome: gatehouse.OutcomeSuccess})
	}
	p, _ := l.Proof(ctx, 1)
	fmt.Println("proof ok:", p.Verify(l.VerifierKey()) == nil)
	l.Close(ctx)
	res, err := audit.Verify(ctx, dir, audit.VerifyOptions{})
	fmt.Println(res.Entries, res.TreeSize, err)
	// Output:
	// proof ok: true
	// 3 3 <nil>
}

func TestUseAfterClose(t *testing.T) {
	l := MustOpenLog(t, t.TempDir(), nil)
	appendN(t, l, 3, 0)
	ctx := context.Background()
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := l.Record(ctx, testEvent(1)); gatehouse.ErrorCode(err) != gatehouse.EUNAVAILABLE {
		t.Fatalf("record after close: code %s", gatehouse.ErrorCode(err))
	}
	if _, err := l.Proof(ctx, 99); gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
		t.Fatalf("proof beyond the log: %v", err)
	}
	if _, err := l.Sync(ctx); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("sync after close: %v", err)
	}
	if _, err := l.Prune(ctx); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("prune after close: %v", err)
	}
	if p, err := l.Proof(ctx, 1); err != nil || p.Verify(l.VerifierKey()) != nil {
		t.Fatalf("proof after close: %v", err)
	}
}
