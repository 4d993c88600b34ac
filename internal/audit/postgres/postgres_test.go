package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/audit/postgres"
	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
)

const testOrigin = "gatehouse.test/audit"

// MustOpen opens a log on dsn with the signing key in keyDir, closed when
// tb ends (if the test did not close it).
func MustOpen(tb testing.TB, dsn, keyDir string, tweak ...func(*postgres.Config)) *postgres.Log {
	tb.Helper()
	cfg := postgres.Config{DSN: dsn, Origin: testOrigin, KeyDir: keyDir, LeaderPoll: 50 * time.Millisecond, CheckpointInterval: -1}
	for _, f := range tweak {
		f(&cfg)
	}
	l, err := postgres.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close(context.Background()) })
	return l
}

func event(i int, who string) gatehouse.Event {
	return gatehouse.Event{Type: "http.request", Actor: gatehouse.Actor{Kind: "api_key", ID: who}, Action: "GET",
		Outcome: gatehouse.OutcomeSuccess, Request: &gatehouse.RequestInfo{Path: fmt.Sprintf("/r/%d", i), Status: 200}}
}

func recordN(t *testing.T, l *postgres.Log, n int, who string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Record(context.Background(), event(i, who)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// waitLeader waits until one of logs leads and returns it.
func waitLeader(tb testing.TB, logs ...*postgres.Log) *postgres.Log {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range logs {
			if _, leader, _ := l.Healthy(); leader {
				return l
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatal("no replica became the audit sequencer's leader")
	return nil
}

func TestRecordSequenceVerify(t *testing.T) {
	dsn := pgtest.MustCreateDatabase(t)
	keys := t.TempDir()
	a := MustOpen(t, dsn, keys)
	b := MustOpen(t, dsn, keys)
	ctx := context.Background()
	recordN(t, a, 300, "a")
	recordN(t, b, 300, "b")
	leader := waitLeader(t, a, b)
	signed, err := leader.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := audit.OpenCheckpoint(signed, a.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 600 {
		t.Fatalf("checkpoint size %d, want 600", cp.Size)
	}
	res, err := postgres.Verify(ctx, dsn, audit.VerifyOptions{Checkpoint: signed})
	if err != nil {
		t.Fatal(err)
	}
	if res.TreeSize != 600 || res.Checkpoints != 1 || !res.ExternalChecked || !bytes.Equal(res.RootHash, cp.Root) {
		t.Fatalf("verify: %+v", res)
	}
	t.Log(res)

	for _, idx := range []uint64{0, 1, 255, 256, 599} {
		p, err := b.Proof(ctx, idx)
		if err != nil {
			t.Fatalf("proof %d: %v", idx, err)
		}
		if err := p.Verify(a.VerifierKey()); err != nil {
			t.Fatalf("proof %d does not verify: %v", idx, err)
		}
	}
	page, err := a.Query(ctx, audit.Filter{Actor: "api_key:b"}, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 300 {
		t.Fatalf("query actor b: %d entries, want 300", len(page.Entries))
	}
	page, err = a.Query(ctx, audit.Filter{Type: "http.*"}, "", 250)
	if err != nil || len(page.Entries) != 250 || page.Next != "250" {
		t.Fatalf("query page: %d entries, next %q, %v", len(page.Entries), page.Next, err)
	}
	var buf bytes.Buffer
	n, err := postgres.Export(ctx, dsn, audit.Filter{Actor: "a"}, &buf)
	if err != nil || n != 300 || strings.Count(buf.String(), "\n") != 300 {
		t.Fatalf("export: %d, %v", n, err)
	}
}

// TestLeaderHandOver closes the leader: it sequences what every replica
// queued, signs a checkpoint and releases the lock; the other replica
// takes over and continues the same tree.
func TestLeaderHandOver(t *testing.T) {
	dsn := pgtest.MustCreateDatabase(t)
	keys := t.TempDir()
	a := MustOpen(t, dsn, keys)
	b := MustOpen(t, dsn, keys)
	ctx := context.Background()
	first := waitLeader(t, a, b)
	other := a
	if first == a {
		other = b
	}
	recordN(t, other, 100, "other")
	recordN(t, first, 100, "first")
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cp, err := postgres.LatestCheckpoint(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := audit.OpenCheckpoint(cp, a.VerifierKey())
	if parsed.Size != 200 {
		t.Fatalf("final checkpoint of the leaving leader covers %d, want 200", parsed.Size)
	}
	if waitLeader(t, other) != other {
		t.Fatal("the remaining replica did not take over")
	}
	recordN(t, other, 50, "other")
	if err := other.Close(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := postgres.Verify(ctx, dsn, audit.VerifyOptions{Checkpoint: cp})
	if err != nil {
		t.Fatal(err)
	}
	if res.TreeSize != 250 || res.Checkpoints != 2 || res.Pending != 0 {
		t.Fatalf("verify after hand-over: %v", res)
	}
}

func TestOtherKeyRefused(t *testing.T) {
	dsn := pgtest.MustCreateDatabase(t)
	MustOpen(t, dsn, t.TempDir())
	_, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn, Origin: testOrigin, KeyDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "give every replica the same audit key") {
		t.Fatalf("a replica with another signing key: %v", err)
	}
}

// TestSyncCallerGivingUp calls Sync with contexts that end almost at once
// while events pour in: the leader's drain is not cut short, so it keeps
// the leadership (it would not regain it: LeaderPoll is an hour), and the
// log verifies.
func TestSyncCallerGivingUp(t *testing.T) {
	dsn := pgtest.MustCreateDatabase(t)
	l := MustOpen(t, dsn, t.TempDir(), func(c *postgres.Config) { c.LeaderPoll = time.Hour })
	waitLeader(t, l)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := l.Record(context.Background(), event(i, "w")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
		l.Sync(ctx)
		cancel()
	}
	close(stop)
	wg.Wait()
	if _, leader, detail := l.Healthy(); !leader {
		t.Fatalf("the leader resigned after callers gave up on Sync: %s", detail)
	}
	if _, err := l.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Verify(context.Background(), dsn, audit.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestOutage cuts the database off: Record fails with a clear unavailable
// error (never a silent loss) and the sequencer loses the lock; when the
// database is back, appends and sequencing resume by themselves, and every
// event Record acknowledged, before or after, is in the verified log.
func TestOutage(t *testing.T) {
	dsn := pgtest.MustCreateDatabase(t)
	proxy, proxied := pgtest.MustProxy(t, dsn)
	l := MustOpen(t, proxied, t.TempDir())
	waitLeader(t, l)
	ctx := context.Background()
	recordN(t, l, 100, "before")

	proxy.Cut()
	err := l.Record(ctx, event(0, "during"))
	if gatehouse.ErrorCode(err) != gatehouse.EUNAVAILABLE {
		t.Fatalf("Record while the database is away: %v, want an EUNAVAILABLE error", err)
	}
	if ok, _, detail := l.Healthy(); ok || !strings.Contains(detail, "write") {
		t.Fatalf("Healthy while the database is away: %v %q", ok, detail)
	}

	proxy.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := l.Record(ctx, event(1, "after")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("appends did not resume after the database came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	recordN(t, l, 99, "after")
	waitLeader(t, l)
	if ok, _, detail := l.Healthy(); !ok {
		t.Fatalf("still unhealthy after recovery: %s", detail)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := postgres.Verify(ctx, dsn, audit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var before, after int
	var buf bytes.Buffer
	if _, err := postgres.Export(ctx, dsn, audit.Filter{}, &buf); err != nil {
		t.Fatal(err)
	}
	before, after = strings.Count(buf.String(), `"id":"before"`), strings.Count(buf.String(), `"id":"after"`)
	if before != 100 || after != 100 || res.Pending != 0 {
		t.Fatalf("after the outage the log holds %d events from before and %d from after (want 100 each), %d pending: %s", before, after, res.Pending, res)
	}
}

// TestCloseAfterUnnoticedCut cuts the leader's session while the
// sequencer is idle, so it still holds a dead connection when Close
// drains: Close takes the lock again on a new session and sequences
// everything, instead of failing with the dead session's error.
func TestCloseAfterUnnoticedCut(t *testing.T) {
	dsn := pgtest.MustCreateDatabase(t)
	proxy, proxied := pgtest.MustProxy(t, dsn)
	l := MustOpen(t, proxied, t.TempDir(), func(c *postgres.Config) { c.SequenceInterval = time.Hour })
	waitLeader(t, l)
	ctx := context.Background()
	recordN(t, l, 20, "before")
	proxy.Cut()
	proxy.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for l.Record(ctx, event(0, "after")) != nil {
		if time.Now().After(deadline) {
			t.Fatal("appends did not resume after the connection came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := postgres.Verify(ctx, dsn, audit.VerifyOptions{})
	if err != nil || res.TreeSize != 21 || res.Pending != 0 {
		t.Fatalf("verify after Close: %v, %v; want 21 entries, none pending", res, err)
	}
}

// TestLargeEvents records events of half a megabyte at once: batches stop
// at 4 MiB (one row each), so they split, and every event is in the
// verified log, whole.
func TestLargeEvents(t *testing.T) {
	dsn := pgtest.MustCreateDatabase(t)
	l := MustOpen(t, dsn, t.TempDir())
	ctx := context.Background()
	const n, size = 24, 512 << 10
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := event(i, "big")
			e.Request.Path = "/" + strings.Repeat("x", size)
			if err := l.Record(ctx, e); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, err := waitLeader(t, l).Sync(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := postgres.Verify(ctx, dsn, audit.VerifyOptions{})
	if err != nil || res.TreeSize != n || res.Bytes < n*size {
		t.Fatalf("verify: %v, %v", res, err)
	}
	var batches, biggest int64
	if err := mustConnect(t, dsn).QueryRow(ctx, `SELECT count(*), max(cardinality(leaves)) FROM audit_records`).Scan(&batches, &biggest); err != nil {
		t.Fatal(err)
	}
	if biggest > 8 {
		t.Fatalf("%d batches, one of %d events of %d KiB", batches, biggest, size>>10)
	}
}
