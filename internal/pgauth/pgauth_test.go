package pgauth_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse/internal/pgauth"
	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
)

func TestWithPassword(t *testing.T) {
	cases := []struct {
		name, dsn, password, want string
	}{
		{"url", "postgres://gh@db:5432/gh?sslmode=disable", "p@ss/word", "postgres://gh:p%40ss%2Fword@db:5432/gh?sslmode=disable"},
		{"url replacing", "postgres://gh:old@db/gh", "new", "postgres://gh:new@db/gh"},
		{"url query password dropped", "postgres://gh@db/gh?password=old", "new", "postgres://gh:new@db/gh"},
		{"key=value", "host=db user=gh dbname=gh", `it's\`, `host=db user=gh dbname=gh password='it\'s\\'`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := pgauth.WithPassword(c.dsn, c.password)
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
			if !pgauth.HasPassword(got) {
				t.Fatalf("HasPassword(%q) false", got)
			}
		})
	}
	if pgauth.HasPassword("postgres://gh@db/gh") {
		t.Fatal("a DSN without a password has one")
	}
	if _, err := pgauth.WithPassword("host='unterminated", "x"); err == nil || strings.Contains(err.Error(), "unterminated") {
		t.Fatalf("bad DSN: %v", err)
	}
}

// TestPoolRotation: a pool whose password source changes uses the new
// password for new connections while the open ones live on, and a pool
// whose sessions were all terminated serves its next queries on new
// connections without an error.
func TestPoolRotation(t *testing.T) {
	ctx := context.Background()
	c := pgtest.StartCluster(t)
	dsn := c.CreateRole(t, "gh", "one")
	var pw atomic.Pointer[string]
	one, two := "one", "two"
	pw.Store(&one)
	var asked atomic.Int64
	cfg, err := pgauth.ParsePool(dsn, func(context.Context) (string, error) {
		asked.Add(1)
		return *pw.Load(), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	query := func() error {
		var n int
		return pool.QueryRow(ctx, `SELECT 1`).Scan(&n)
	}
	if err := query(); err != nil {
		t.Fatal(err)
	}
	c.SetPassword(t, "gh", "two")
	// The open connection lives on under the old password.
	if err := query(); err != nil {
		t.Fatalf("open connection after ALTER ROLE: %v", err)
	}
	pw.Store(&two)
	before := asked.Load()
	if n := c.Terminate(t, "gh"); n == 0 {
		t.Fatal("no session to terminate")
	}
	waitGone(t, c, "gh")
	for i := range 20 {
		if err := query(); err != nil {
			t.Fatalf("query %d after the sessions were terminated: %v", i, err)
		}
	}
	if asked.Load() == before {
		t.Fatal("no new connection asked for the password")
	}

	// Only the old password: a new connection is refused.
	pw.Store(&one)
	c.Terminate(t, "gh")
	waitGone(t, c, "gh")
	var n int
	err = pool.QueryRow(ctx, `SELECT 1`).Scan(&n)
	if err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Fatalf("old password: %v", err)
	}
}

// waitGone waits until role has no session left: pg_terminate_backend
// only signals, and the backend says goodbye as it exits.
func waitGone(t *testing.T, c *pgtest.Cluster, role string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Sessions(t, role) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("sessions of %s still there 10 s after pg_terminate_backend", role)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
