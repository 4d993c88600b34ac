package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/audit/postgres"
	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
)

func mustRing(tb testing.TB) audit.KeyRing {
	tb.Helper()
	skey, err := audit.GenerateSignerKey(testOrigin)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := audit.ParseKeyRing(skey, testOrigin)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func ringKey(r audit.KeyRing) func(*postgres.Config) {
	return func(c *postgres.Config) {
		c.Signer, c.VerifierKey, c.Previous = r.Active.Signer, r.Active.VerifierKey, r.Previous
	}
}

func waitLogKey(tb testing.TB, dsn, want string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		k, err := postgres.VerifierKey(context.Background(), dsn)
		if err == nil && k == want {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the log's key is %s (%v), want %s", k, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRotateKeyReplicas rotates the audit key on a replica that does not
// lead while both serve; the leader hands the log over when it gets the
// new key, and a leader change afterwards signs with the new key.
func TestRotateKeyReplicas(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.MustCreateDatabase(t)
	r0 := mustRing(t)
	a := MustOpen(t, dsn, "", ringKey(r0))
	b := MustOpen(t, dsn, "", ringKey(r0))
	recordN(t, a, 50, "a")
	leader := waitLeader(t, a, b)
	other := a
	if leader == a {
		other = b
	}
	if _, err := leader.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := postgres.LatestCheckpoint(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}

	// Requests keep flowing on both replicas throughout.
	var failed, done atomic.Int64
	stop := map[*postgres.Log]chan struct{}{a: make(chan struct{}), b: make(chan struct{})}
	var wg sync.WaitGroup
	wgs := map[*postgres.Log]*sync.WaitGroup{a: new(sync.WaitGroup), b: new(sync.WaitGroup)}
	for _, l := range []*postgres.Log{a, b} {
		wg.Add(1)
		wgs[l].Add(1)
		go func() {
			defer wg.Done()
			defer wgs[l].Done()
			for i := 0; ; i++ {
				select {
				case <-stop[l]:
					return
				default:
				}
				if err := l.Record(ctx, event(i, "load")); err != nil {
					failed.Add(1)
				}
				done.Add(1)
			}
		}()
	}

	r1, err := r0.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	ho, isLeader, err := other.RotateKey(ctx, r1.Active)
	if err != nil || isLeader || ho.Signed != nil {
		t.Fatalf("rotate on the replica that does not lead: %+v %v %v", ho, isLeader, err)
	}
	// Until the hand-over, what it signs after a Sync names the key of
	// the checkpoint it carries: the old one.
	if _, err := other.Sync(ctx); err != nil || other.VerifierKey() != r0.Active.VerifierKey {
		t.Fatalf("before the hand-over the replica signs with %s (%v), want the old key", other.SigningKey(), err)
	}
	// The leader reads the new ring (as the app's poller does).
	if err := leader.SetKeys(r1.Active, r1.Previous); err != nil {
		t.Fatal(err)
	}
	waitLogKey(t, dsn, r1.Active.VerifierKey)
	if _, err := leader.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Sync(ctx); err != nil || other.VerifierKey() != r1.Active.VerifierKey {
		t.Fatalf("after the hand-over the replica signs with %s (%v), want the new key", other.SigningKey(), err)
	}
	// A leader change after the rotation signs with the new key.
	close(stop[leader])
	wgs[leader].Wait()
	if err := leader.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, other)
	time.Sleep(50 * time.Millisecond)
	close(stop[other])
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d appends failed during the rotation", failed.Load(), done.Load())
	}
	signed, err := other.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.OpenCheckpoint(signed, r1.Active.VerifierKey); err != nil {
		t.Fatalf("checkpoint after the leader change: %v", err)
	}
	for name, opts := range map[string]audit.VerifyOptions{
		"original key":      {VerifierKey: r0.Active.VerifierKey},
		"stored key":        {},
		"checkpoint before": {VerifierKey: r0.Active.VerifierKey, Checkpoint: before},
	} {
		res, err := postgres.Verify(ctx, dsn, opts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(res.Keys) != 2 || res.Keys[0].VerifierKey != r0.Active.VerifierKey || res.Keys[1].VerifierKey != r1.Active.VerifierKey || res.Keys[1].Since == 0 {
			t.Fatalf("%s: keys %+v", name, res.Keys)
		}
		if !strings.Contains(res.String(), "hand-over at tree size") {
			t.Fatalf("%s: %s", name, res)
		}
	}
	chain, err := postgres.KeyChain(ctx, dsn)
	if err != nil || len(chain) != 2 {
		t.Fatalf("key chain %+v %v", chain, err)
	}
	t.Logf("%d appends during the rotation, none failed; %s", done.Load(), audit.FormatKeyChain(chain))

	// Who may start now: the new ring, not the old key alone nor another
	// successor of the old key.
	if err := other.Close(ctx); err != nil {
		t.Fatal(err)
	}
	c := MustOpen(t, dsn, "", ringKey(r1))
	recordN(t, c, 5, "c")
	if _, err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	forged, _ := r0.Rotate()
	for name, r := range map[string]audit.KeyRing{"old key": r0, "another successor": forged} {
		cfg := postgres.Config{DSN: dsn, Origin: testOrigin, CheckpointInterval: -1}
		ringKey(r)(&cfg)
		if l, err := postgres.Open(ctx, cfg); err == nil || !strings.Contains(err.Error(), "not this log's") {
			if l != nil {
				l.Close(ctx)
			}
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// TestRotateKeyLeader rotates on the leader: the hand-over is written at
// once and RotateKey reports it.
func TestRotateKeyLeader(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.MustCreateDatabase(t)
	r0 := mustRing(t)
	a := MustOpen(t, dsn, "", ringKey(r0))
	recordN(t, a, 20, "a")
	waitLeader(t, a)
	// Sequenced before the rotation: the sequencer's own loop may see the
	// new key first and hand over at the size it has reached, which is
	// right, but then not 20.
	if _, err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r1, _ := r0.Rotate()
	ho, isLeader, err := a.RotateKey(ctx, r1.Active)
	if err != nil || !isLeader || ho.Size != 20 || ho.To != r1.Active.VerifierKey {
		t.Fatalf("%+v %v %v", ho, isLeader, err)
	}
	if _, _, err := a.RotateKey(ctx, r1.Active); !errors.Is(err, audit.ErrSameKey) {
		t.Fatalf("same key: %v", err)
	}
	recordN(t, a, 20, "a")
	if _, err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	sig, err := a.SignReport([32]byte{7})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.OpenReportSignature(sig, r1.Active.VerifierKey); err != nil {
		t.Fatal(err)
	}
	p, err := a.Proof(ctx, 3)
	if err != nil || p.Verify(r1.Active.VerifierKey) != nil {
		t.Fatalf("proof after rotation: %v", err)
	}
	a.Close(ctx)
	res, err := postgres.Verify(ctx, dsn, audit.VerifyOptions{VerifierKey: r0.Active.VerifierKey})
	if err != nil || len(res.Keys) != 2 || res.Keys[1].Since != 20 {
		t.Fatalf("%+v %v", res, err)
	}
}

// TestRotateKeyAtStart: a replica given the new ring while the log is
// still on the old key hands it over when it leads.
func TestRotateKeyAtStart(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.MustCreateDatabase(t)
	r0 := mustRing(t)
	a := MustOpen(t, dsn, "", ringKey(r0))
	recordN(t, a, 10, "a")
	a.Close(ctx)
	r1, _ := r0.Rotate()
	b := MustOpen(t, dsn, "", ringKey(r1))
	waitLogKey(t, dsn, r1.Active.VerifierKey)
	b.Close(ctx)
	if res, err := postgres.Verify(ctx, dsn, audit.VerifyOptions{VerifierKey: r0.Active.VerifierKey}); err != nil || len(res.Keys) != 2 {
		t.Fatalf("%+v %v", res, err)
	}
}

func resignNote(t *testing.T, signed []byte, signers ...note.Signer) []byte {
	t.Helper()
	_, err := note.Open(signed, note.VerifierList())
	var unv *note.UnverifiedNoteError
	if !errors.As(err, &unv) {
		t.Fatal(err)
	}
	out, err := note.Sign(&note.Note{Text: unv.Note.Text}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRotateKeyTamper edits the hand-over in the database; verify refuses.
func TestRotateKeyTamper(t *testing.T) {
	ctx := context.Background()
	r0 := mustRing(t)
	r1, _ := r0.Rotate()
	attacker := mustRing(t)
	build := func(t *testing.T) (string, int64) {
		dsn := pgtest.MustCreateDatabase(t)
		a := MustOpen(t, dsn, "", ringKey(r0))
		recordN(t, a, 10, "a")
		waitLeader(t, a)
		if _, err := a.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, err := a.RotateKey(ctx, r1.Active); err != nil {
			t.Fatal(err)
		}
		recordN(t, a, 10, "a")
		a.Close(ctx)
		db := mustConnect(t, dsn)
		defer db.Close(ctx)
		var seq int64
		if err := db.QueryRow(ctx, `SELECT seq FROM audit_checkpoints WHERE position('gatehouse-key-handover' in convert_from(note, 'UTF8')) > 0`).Scan(&seq); err != nil {
			t.Fatal(err)
		}
		return dsn, seq
	}
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, dsn string, seq int64)
		want string
	}{
		{"hand-over signed by only the new key", func(t *testing.T, dsn string, seq int64) {
			editNote(t, dsn, seq, func(b []byte) []byte { return resignNote(t, b, r1.Active.Signer) })
		}, "a key cannot introduce itself"},
		{"forged successor key", func(t *testing.T, dsn string, seq int64) {
			editNote(t, dsn, seq+1, func(b []byte) []byte { return resignNote(t, b, attacker.Active.Signer) })
		}, "which no hand-over introduced"},
		{"hand-over removed", func(t *testing.T, dsn string, seq int64) {
			db := mustConnect(t, dsn)
			defer db.Close(ctx)
			if _, err := db.Exec(ctx, `DELETE FROM audit_checkpoints WHERE seq = $1`, seq); err != nil {
				t.Fatal(err)
			}
		}, "a hand-over removed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn, seq := build(t)
			tc.edit(t, dsn, seq)
			_, err := postgres.Verify(ctx, dsn, audit.VerifyOptions{VerifierKey: r0.Active.VerifierKey})
			var ve *audit.VerifyError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func editNote(t *testing.T, dsn string, seq int64, fn func([]byte) []byte) {
	t.Helper()
	ctx := context.Background()
	db := mustConnect(t, dsn)
	defer db.Close(ctx)
	var b []byte
	if err := db.QueryRow(ctx, `SELECT note FROM audit_checkpoints WHERE seq = $1`, seq).Scan(&b); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `UPDATE audit_checkpoints SET note = $2 WHERE seq = $1`, seq, fn(b)); err != nil {
		t.Fatal(err)
	}
}
