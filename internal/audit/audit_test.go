package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "gatehouse.test/audit"

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// MustOpenLog opens a log in dir with small segments and no background
// checkpoints, and closes it at the end of the test.
func MustOpenLog(tb testing.TB, dir string, mod func(*audit.Config)) *audit.Log {
	tb.Helper()
	cfg := audit.Config{
		Dir:                dir,
		Origin:             testOrigin,
		CheckpointInterval: -1,
		PruneInterval:      -1,
		SegmentEntries:     16,
		Clock:              gatehouse.NewFakeClock(t0),
	}
	if mod != nil {
		mod(&cfg)
	}
	l, err := audit.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { l.Close(context.Background()) })
	return l
}

func testEvent(i int) gatehouse.Event {
	return gatehouse.Event{
		Type:    []string{"request", "auth.failure", "admin.key.create"}[i%3],
		Actor:   gatehouse.Actor{Kind: "api_key", ID: fmt.Sprintf("key-%d", i%5)},
		Action:  "GET",
		Outcome: gatehouse.OutcomeSuccess,
		Request: &gatehouse.RequestInfo{Method: "GET", Path: fmt.Sprintf("/v1/things/%d", i), Status: 200, RequestID: fmt.Sprintf("req-%d", i)},
	}
}

// mustClosedLog makes a log of n events (a checkpoint every cpEvery events,
// 0: none) in a new directory, closes it and returns the directory.
func mustClosedLog(t *testing.T, n, cpEvery int) string {
	t.Helper()
	dir := t.TempDir()
	l := MustOpenLog(t, dir, nil)
	appendN(t, l, n, cpEvery)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dir
}

// appendN appends n events, one checkpoint every cpEvery events (0: none).
func appendN(tb testing.TB, l *audit.Log, n, cpEvery int) {
	tb.Helper()
	ctx := context.Background()
	base := int(l.Size())
	for i := base; i < base+n; i++ {
		if err := l.Record(ctx, testEvent(i)); err != nil {
			tb.Fatalf("record %d: %v", i, err)
		}
		if cpEvery > 0 && (i+1-base)%cpEvery == 0 {
			if _, err := l.Sync(ctx); err != nil {
				tb.Fatalf("sync: %v", err)
			}
		}
	}
}

func TestRecordAndVerify(t *testing.T) {
	for _, durability := range []audit.Durability{audit.DurabilitySync, audit.DurabilityBatch} {
		t.Run(string(durability), func(t *testing.T) {
			dir := t.TempDir()
			l := MustOpenLog(t, dir, func(c *audit.Config) { c.Durability = durability })
			var wg sync.WaitGroup
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 50; i++ {
						if err := l.Record(context.Background(), testEvent(i)); err != nil {
							t.Errorf("record: %v", err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if got := l.Size(); got != 400 {
				t.Fatalf("size = %d, want 400", got)
			}
			if err := l.Close(context.Background()); err != nil {
				t.Fatalf("close: %v", err)
			}
			if err := l.Record(context.Background(), testEvent(0)); !errors.Is(err, audit.ErrClosed) {
				t.Fatalf("record after close: %v, want ErrClosed", err)
			}
			res, err := audit.Verify(context.Background(), dir, audit.VerifyOptions{})
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if res.Entries != 400 || res.TreeSize != 400 || res.Checkpoints != 1 || res.LatestCheckpoint != 400 {
				t.Fatalf("verify result = %+v", res)
			}
			if !strings.Contains(res.String(), "400 entries") {
				t.Fatalf("summary %q", res.String())
			}
			// Stats count what reached the segments; in sync mode every
			// batch was fsynced before it was acknowledged.
			st := l.Stats()
			if st.Events != 400 || st.Bytes != uint64(res.Bytes) || st.Batches == 0 || st.Batches > 400 {
				t.Fatalf("stats = %+v, want 400 events and %d bytes", st, res.Bytes)
			}
			if durability == audit.DurabilitySync && st.Fsyncs < st.Batches {
				t.Fatalf("sync mode: %d fsyncs for %d batches", st.Fsyncs, st.Batches)
			}
			// Reopen continues the same tree.
			l2 := MustOpenLog(t, dir, nil)
			appendN(t, l2, 10, 0)
			if err := l2.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			res, err = audit.Verify(context.Background(), dir, audit.VerifyOptions{})
			if err != nil || res.TreeSize != 410 || res.Checkpoints != 2 {
				t.Fatalf("verify after reopen: %+v, %v", res, err)
			}
		})
	}
}

func TestAppendAssignsIDAndTime(t *testing.T) {
	l := MustOpenLog(t, t.TempDir(), nil)
	ctx := context.Background()
	e1, err := l.Append(ctx, testEvent(1))
	if err != nil {
		t.Fatal(err)
	}
	e2, err := l.Append(ctx, gatehouse.Event{ID: "given", Time: t0.Add(time.Hour), Type: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if e1.Index != 0 || e2.Index != 1 {
		t.Fatalf("indexes %d %d", e1.Index, e2.Index)
	}
	if len(e1.Event.ID) != 26 || !e1.Event.Time.Equal(t0) {
		t.Fatalf("id/time not assigned: %+v", e1.Event)
	}
	if e2.Event.ID != "given" || !e2.Event.Time.Equal(t0.Add(time.Hour)) {
		t.Fatalf("id/time overwritten: %+v", e2.Event)
	}
}

func TestCheckpointSignature(t *testing.T) {
	dir := t.TempDir()
	l := MustOpenLog(t, dir, nil)
	appendN(t, l, 37, 0)
	signed, err := l.Sync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Only the public verifier key is used.
	v, err := note.NewVerifier(l.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		t.Fatalf("note.Open: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) != 4 || lines[0] != testOrigin || lines[1] != "37" || lines[3] != "" {
		t.Fatalf("checkpoint body %q", n.Text)
	}
	stored, err := audit.LatestCheckpoint(dir)
	if err != nil || !bytes.Equal(stored, signed) {
		t.Fatalf("LatestCheckpoint = %q, %v", stored, err)
	}
	// A different key does not verify it.
	_, otherV, _ := note.GenerateKey(nil, testOrigin)
	ov, _ := note.NewVerifier(otherV)
	if _, err := note.Open(signed, note.VerifierList(ov)); err == nil {
		t.Fatal("checkpoint verified with a foreign key")
	}
	if k, err := audit.ReadVerifierKey(dir); err != nil || k != l.VerifierKey() {
		t.Fatalf("ReadVerifierKey = %q, %v", k, err)
	}
}

func TestInclusionAndConsistencyProofs(t *testing.T) {
	dir := t.TempDir()
	l := MustOpenLog(t, dir, nil)
	ctx := context.Background()
	hasher := rfc6962.DefaultHasher
	var prev audit.Checkpoint
	var prevSigned []byte
	for _, size := range []int{1, 2, 3, 7, 16, 17, 31, 32, 33, 64, 100} {
		appendN(t, l, size-int(l.Size()), 0)
		signed, err := l.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := audit.OpenCheckpoint(signed, l.VerifierKey())
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size != uint64(size) {
			t.Fatalf("checkpoint size %d, want %d", cp.Size, size)
		}
		for i := 0; i < size; i++ {
			p, err := l.Proof(ctx, uint64(i))
			if err != nil {
				t.Fatalf("proof %d/%d: %v", i, size, err)
			}
			leaf := hasher.HashLeaf(p.Entry)
			if err := proof.VerifyInclusion(hasher, uint64(i), cp.Size, leaf, p.Hashes, cp.Root); err != nil {
				t.Fatalf("inclusion %d/%d: %v", i, size, err)
			}
			if err := p.Verify(l.VerifierKey()); err != nil {
				t.Fatalf("proof.Verify %d/%d: %v", i, size, err)
			}
		}
		if prevSigned != nil {
			hashes, signed2, err := l.ConsistencyProof(ctx, prev.Size)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(signed2, signed) {
				t.Fatal("consistency proof against an unexpected checkpoint")
			}
			if err := proof.VerifyConsistency(hasher, prev.Size, cp.Size, hashes, prev.Root, cp.Root); err != nil {
				t.Fatalf("consistency %d→%d: %v", prev.Size, cp.Size, err)
			}
		}
		prev, prevSigned = cp, signed
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Offline proofs match.
	for _, i := range []uint64{0, 15, 16, 50, 99} {
		p, err := audit.InclusionProof(ctx, dir, i)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(hasher, i, p.TreeSize, hasher.HashLeaf(p.Entry), p.Hashes, prev.Root); err != nil {
			t.Fatalf("offline inclusion %d: %v", i, err)
		}
		var e gatehouse.Event
		if err := json.Unmarshal(p.Entry, &e); err != nil || e.Request.Path != fmt.Sprintf("/v1/things/%d", i) {
			t.Fatalf("proof entry %d: %s", i, p.Entry)
		}
	}
	if _, err := audit.InclusionProof(ctx, dir, 100); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("proof beyond checkpoint: %v", err)
	}
}

func TestQueryAndExport(t *testing.T) {
	dir := t.TempDir()
	clock := gatehouse.NewFakeClock(t0)
	l := MustOpenLog(t, dir, func(c *audit.Config) { c.Clock = clock })
	ctx := context.Background()
	for i := 0; i < 60; i++ {
		if err := l.Record(ctx, testEvent(i)); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
	}
	tests := []struct {
		name   string
		filter audit.Filter
		want   int
	}{
		{"all", audit.Filter{}, 60},
		{"type", audit.Filter{Type: "request"}, 20},
		{"type prefix", audit.Filter{Type: "a*"}, 40},
		{"actor id", audit.Filter{Actor: "key-1"}, 12},
		{"actor kind:id", audit.Filter{Actor: "api_key:key-1"}, 12},
		{"since", audit.Filter{Since: t0.Add(50 * time.Minute)}, 10},
		{"since and type", audit.Filter{Since: t0.Add(30 * time.Minute), Type: "request"}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []audit.Entry
			cursor := ""
			pages := 0
			for {
				p, err := l.Query(ctx, tt.filter, cursor, 7)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, p.Entries...)
				pages++
				if p.Next == "" {
					break
				}
				cursor = p.Next
			}
			if len(got) != tt.want {
				t.Fatalf("query got %d entries, want %d", len(got), tt.want)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Index <= got[i-1].Index {
					t.Fatal("entries out of order")
				}
			}
			var buf bytes.Buffer
			n, err := audit.Export(ctx, dir, tt.filter, &buf)
			if err != nil || n != tt.want || strings.Count(buf.String(), "\n") != tt.want {
				t.Fatalf("export wrote %d (%v)", n, err)
			}
		})
	}
	if _, err := l.Query(ctx, audit.Filter{}, "bogus", 10); gatehouse.ErrorCode(err) != gatehouse.EINVALID {
		t.Fatalf("bad cursor: %v", err)
	}
}

func TestStream(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	})
	l := MustOpenLog(t, t.TempDir(), func(c *audit.Config) { c.Stream = w })
	appendN(t, l, 25, 0)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 25 {
		t.Fatalf("stream got %d lines", len(lines))
	}
	var e gatehouse.Event
	if err := json.Unmarshal([]byte(lines[3]), &e); err != nil || e.Request.Path != "/v1/things/3" {
		t.Fatalf("line 3: %s (%v)", lines[3], err)
	}
}

func TestStreamNeverBlocks(t *testing.T) {
	block := make(chan struct{})
	w := writerFunc(func(p []byte) (int, error) { <-block; return len(p), nil })
	l := MustOpenLog(t, t.TempDir(), func(c *audit.Config) { c.Stream = w; c.StreamBuffer = 4 })
	done := make(chan struct{})
	go func() { appendN(t, l, 50, 0); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("append blocked on a stuck stream")
	}
	if d := l.StreamDropped(); d < 40 {
		t.Fatalf("dropped %d, want ≥ 40", d)
	}
	close(block)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestValidateRetention(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		d       time.Duration
		dev     bool
		wantErr bool
	}{
		{0, false, false},
		{180 * day, false, false},
		{90 * day, false, false},
		{89 * day, false, true},
		{30 * day, true, false},
		{29 * day, true, true},
		{45 * day, false, true},
		{-day, true, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/dev=%v", tt.d, tt.dev), func(t *testing.T) {
			err := audit.ValidateRetention(tt.d, tt.dev)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ValidateRetention(%v, %v) = %v", tt.d, tt.dev, err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	l := MustOpenLog(t, dir, nil)
	_, err := audit.Open(context.Background(), audit.Config{Dir: dir, Origin: testOrigin})
	if !errors.Is(err, audit.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	l.Close(context.Background())
	if _, err := audit.Open(context.Background(), audit.Config{Dir: dir, Origin: "other.example/audit"}); err == nil {
		t.Fatal("open with a different origin succeeded")
	}
	for _, cfg := range []audit.Config{
		{Origin: testOrigin},
		{Dir: filepath.Join(dir, "x"), Origin: "has space"},
		{Dir: filepath.Join(dir, "x"), Origin: testOrigin, Durability: "maybe"},
		{Dir: filepath.Join(dir, "x"), Origin: testOrigin, SegmentEntries: 1000},
	} {
		if _, err := audit.Open(context.Background(), cfg); err == nil {
			t.Fatalf("open %+v succeeded", cfg)
		}
	}
}

func TestRecordRejects(t *testing.T) {
	l := MustOpenLog(t, t.TempDir(), nil)
	ctx := context.Background()
	tests := []struct {
		name string
		e    gatehouse.Event
		code string
	}{
		{"too large", gatehouse.Event{Type: "x", Reason: strings.Repeat("a", audit.MaxEventSize)}, gatehouse.ETOOLARGE},
		{"year out of range", gatehouse.Event{Type: "x", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, gatehouse.EINTERNAL},
		{"unencodable detail", gatehouse.Event{Type: "x", Details: map[string]any{"f": func() {}}}, gatehouse.EINTERNAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := l.Record(ctx, tt.e)
			if err == nil || gatehouse.ErrorCode(err) != tt.code {
				t.Fatalf("Record = %v (code %s), want code %s", err, gatehouse.ErrorCode(err), tt.code)
			}
		})
	}
	if l.Size() != 0 {
		t.Fatalf("rejected events were stored: size %d", l.Size())
	}
	appendN(t, l, 3, 0) // the log still works
}

// TestLoneCallerNeverWaits: the commit delay waits only for other callers,
// so one caller appending in turn is never held by it, however long it is.
func TestLoneCallerNeverWaits(t *testing.T) {
	l := MustOpenLog(t, t.TempDir(), func(c *audit.Config) { c.CommitDelay = time.Hour })
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			if err := l.Record(context.Background(), testEvent(i)); err != nil {
				t.Errorf("record %d: %v", i, err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("a lone caller waited for the commit delay")
	}
	if st := l.Stats(); st.Events != 20 || st.Batches != 20 || st.Fsyncs < 20 || st.DelayTimeouts != 0 {
		t.Fatalf("stats %+v, want 20 events in 20 fsynced batches and no commit delay run out", st)
	}
}
