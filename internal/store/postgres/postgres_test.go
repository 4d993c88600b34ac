package postgres_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/postgres"
	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestConformance runs the store conformance suite, each case on a fresh
// database of its own. The cases run in parallel, since creating and
// dropping a database takes a good part of a second.
func TestConformance(t *testing.T) {
	pgtest.MustConnectAdmin(t).Close(context.Background()) // skip once, not once per case
	storetest.Run(t, func(t *testing.T) store.Store {
		t.Parallel()
		return MustOpenDB(t)
	})
}

// TestOpenConcurrent starts several "replicas" on one fresh database at
// once: all must succeed, and every migration must be applied exactly once.
func TestOpenConcurrent(t *testing.T) {
	dsn := pgtest.MustCreateDatabase(t)
	const replicas = 4
	dbs := make([]*postgres.DB, replicas)
	errs := make([]error, replicas)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() {
			<-start
			dbs[i], errs[i] = postgres.Open(t.Context(), dsn)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: Open: %v", i, err)
		}
		t.Cleanup(func() { dbs[i].Close() })
	}

	// The migrations create tables without IF NOT EXISTS, so a second
	// application would have failed an Open above; schema_migrations must
	// also record each embedded file once.
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	var want []string
	for _, f := range files {
		want = append(want, strings.TrimSuffix(filepath.Base(f), ".sql"))
	}
	slices.Sort(want)
	wantVersions(t, dsn, want)

	// Opening an up-to-date database applies nothing.
	db, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	db.Close()
	wantVersions(t, dsn, want)
}

// TestOpenWaitsForMigrationLock holds the migration advisory lock (key
// "gatehous", see README.md) from another session: Open must wait for it,
// give up when its context ends, and succeed once the lock is released.
func TestOpenWaitsForMigrationLock(t *testing.T) {
	const lockID int64 = 0x6761746568_6f7573
	dsn := pgtest.MustCreateDatabase(t)
	holder, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	if _, err := holder.Exec(t.Context(), `SELECT pg_advisory_lock($1)`, lockID); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if db, err := postgres.Open(ctx, dsn); err == nil {
		db.Close()
		t.Fatal("Open succeeded while another session held the migration lock")
	}

	type result struct {
		db  *postgres.DB
		err error
	}
	done := make(chan result, 1)
	go func() {
		db, err := postgres.Open(t.Context(), dsn)
		done <- result{db, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("Open returned (%v) while the migration lock was held", r.err)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := holder.Exec(t.Context(), `SELECT pg_advisory_unlock($1)`, lockID); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Open after the lock was released: %v", r.err)
		}
		r.db.Close()
	case <-time.After(20 * time.Second):
		t.Fatal("Open did not return after the migration lock was released")
	}
}

func wantVersions(t *testing.T, dsn string, want []string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("schema_migrations = %q, want %q", got, want)
	}
}

// TestOpenUnreachable checks that Open fails on a server that is not there,
// without putting the password in the error.
func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	db, err := postgres.Open(ctx, "postgres://gh:s3cr3t-pw@127.0.0.1:1/gh?sslmode=disable&connect_timeout=5")
	if err == nil {
		db.Close()
		t.Fatal("Open of an unreachable server succeeded")
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Fatalf("error shows the password: %v", err)
	}
}

// MustOpenDB opens a store on a fresh database of its own, dropped when tb
// ends.
func MustOpenDB(tb testing.TB) *postgres.DB {
	tb.Helper()
	dsn := pgtest.MustCreateDatabase(tb)
	db, err := postgres.Open(tb.Context(), dsn)
	if err != nil {
		tb.Fatalf("open postgres: %v", err)
	}
	tb.Cleanup(func() { db.Close() }) // runs before the drop; the suite may have closed it already
	return db
}
