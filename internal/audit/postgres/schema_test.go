package postgres_test

import (
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/audit/postgres"
	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
)

// testdata/v1 is a log written by the schema version 1 code (pg_dump
// --inserts of its database, with its signing key): 330 entries, a
// checkpoint of 330, the first 256 pruned, 20 more entries, a checkpoint
// of 350 (saved in checkpoint), then 5 events queued in audit_pending and
// never sequenced.
const (
	v1Size, v1Pruned, v1Queued = 350, 256, 5
)

// mustRestoreV1 loads testdata/v1 into a fresh database and returns it
// and a directory holding the log's signing key.
func mustRestoreV1(t *testing.T) (dsn, keys string, saved []byte) {
	t.Helper()
	f, err := os.Open("testdata/v1/dump.sql.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	dump, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	dsn = pgtest.MustCreateDatabase(t)
	if _, err := mustConnect(t, dsn).Exec(context.Background(), string(dump)); err != nil {
		t.Fatalf("restore testdata/v1: %v", err)
	}
	keys = t.TempDir()
	for _, name := range []string{"log.key", "log.pub"} {
		b, err := os.ReadFile(filepath.Join("testdata/v1", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(keys, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if saved, err = os.ReadFile("testdata/v1/checkpoint"); err != nil {
		t.Fatal(err)
	}
	return dsn, keys, saved
}

// TestUpgradeFromV1 opens a log written by schema version 1: the first
// replica converts the tables, the log still verifies against the
// checkpoint saved before, the events version 1 queued are sequenced
// after its entries, and the tree grows on from there.
func TestUpgradeFromV1(t *testing.T) {
	ctx := context.Background()
	dsn, keys, saved := mustRestoreV1(t)
	a := MustOpen(t, dsn, keys)
	res, err := postgres.Verify(ctx, dsn, audit.VerifyOptions{Checkpoint: saved})
	if err != nil {
		t.Fatalf("verify right after the upgrade: %v", err)
	}
	// The leader may have sequenced the queued events already.
	if res.TreeSize+uint64(res.Pending) != v1Size+v1Queued || res.TreeSize < v1Size || res.RetainedFrom != v1Pruned ||
		res.Entries != res.TreeSize-v1Pruned || !res.ExternalChecked || res.Checkpoints != 2 {
		t.Fatalf("verify right after the upgrade: %s", res)
	}
	b := MustOpen(t, dsn, keys) // the tables are converted once
	recordN(t, b, 10, "after")
	leader := waitLeader(t, a, b)
	if _, err := leader.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	page, err := a.Query(ctx, audit.Filter{Actor: "queued"}, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != v1Queued || page.Entries[0].Index != v1Size {
		t.Fatalf("the events version 1 queued: %+v, want %d entries from %d", page.Entries, v1Queued, v1Size)
	}
	for _, idx := range []uint64{v1Pruned, v1Size - 1, v1Size, v1Size + v1Queued + 9} {
		p, err := a.Proof(ctx, idx)
		if err != nil {
			t.Fatalf("proof %d: %v", idx, err)
		}
		if err := p.Verify(a.VerifierKey()); err != nil {
			t.Fatalf("proof %d: %v", idx, err)
		}
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	res, err = postgres.Verify(ctx, dsn, audit.VerifyOptions{Checkpoint: saved})
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(v1Size + v1Queued + 10); res.TreeSize != want || res.Pending != 0 {
		t.Fatalf("verify after recording on the upgraded log: %s, want %d entries", res, want)
	}
}

// TestUpgradeRefusedWhileV1Sequences: while a replica of version 1 holds
// the leader lock, a new replica refuses to convert the tables (the old
// one would go on writing to them) and says what to do; nothing changes.
func TestUpgradeRefusedWhileV1Sequences(t *testing.T) {
	ctx := context.Background()
	dsn, keys, _ := mustRestoreV1(t)
	old := mustConnect(t, dsn)
	if _, err := old.Exec(ctx, `SELECT pg_advisory_lock($1)`, leaderLockID); err != nil {
		t.Fatal(err)
	}
	_, err := postgres.Open(ctx, postgres.Config{DSN: dsn, Origin: testOrigin, KeyDir: keys})
	if err == nil || !strings.Contains(err.Error(), "stop every replica") {
		t.Fatalf("open while a version 1 replica sequences: %v, want a refusal naming what to do", err)
	}
	var stillV1 bool
	if err := old.QueryRow(ctx, `SELECT to_regclass('audit_entries') IS NOT NULL AND to_regclass('audit_records') IS NULL`).Scan(&stillV1); err != nil {
		t.Fatal(err)
	}
	if !stillV1 {
		t.Fatal("the refused upgrade changed the tables")
	}
}
