// Package pgtest gives tests a fresh PostgreSQL database of their own on
// the server named by GATEHOUSE_TEST_POSTGRES: skipped loudly when none is
// reachable, failed when CI=true.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// defaultDSN is where tests look for PostgreSQL unless
// GATEHOUSE_TEST_POSTGRES says otherwise; scripts/ensure-postgres.sh makes
// it answer.
const defaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// MustCreateDatabase creates an empty database gh_test_<random> on the
// server named by GATEHOUSE_TEST_POSTGRES (default defaultDSN), drops it
// when tb ends, and returns a DSN for it. When the server cannot be
// reached it skips tb, or fails it when CI=true.
func MustCreateDatabase(tb testing.TB) string {
	tb.Helper()
	admin := adminDSN()
	conn := MustConnectAdmin(tb)
	defer conn.Close(context.Background())
	ctx, cancel := context.WithTimeout(tb.Context(), 30*time.Second)
	defer cancel()

	var b [8]byte
	rand.Read(b[:])
	name := "gh_test_" + hex.EncodeToString(b[:])
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+ident); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+ident+` WITH (FORCE)`); err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
	})
	return withDatabase(admin, name)
}

// MustConnectAdmin connects to the server named by GATEHOUSE_TEST_POSTGRES
// (default defaultDSN). When it cannot, it skips tb loudly, or fails it
// when CI=true.
func MustConnectAdmin(tb testing.TB) *pgx.Conn {
	tb.Helper()
	admin := adminDSN()
	ctx, cancel := context.WithTimeout(tb.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		msg := "!!! PostgreSQL is not reachable at " + redact(admin) + ": " + err.Error() +
			"\n!!! SKIPPING the PostgreSQL store tests. Run scripts/ensure-postgres.sh or set GATEHOUSE_TEST_POSTGRES."
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg + "\n!!! CI=true: a missing PostgreSQL is a failure.")
		}
		tb.Skip(msg)
	}
	return conn
}

func adminDSN() string {
	if dsn := os.Getenv("GATEHOUSE_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return defaultDSN
}

// withDatabase returns dsn with its database replaced by name. It accepts
// both URL and key=value DSNs (in the latter a later keyword wins).
func withDatabase(dsn, name string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		return u.String()
	}
	return dsn + " dbname=" + name
}

// redact hides the password of a URL DSN, and a key=value DSN entirely.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	return "(GATEHOUSE_TEST_POSTGRES)"
}
