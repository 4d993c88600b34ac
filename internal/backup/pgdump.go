package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// PGTools names the PostgreSQL client programs backups of a PostgreSQL
// store run. Empty fields are looked up on PATH, then in the newest
// /usr/lib/postgresql/*/bin (Debian's layout).
type PGTools struct {
	Dump    string // pg_dump
	Restore string // pg_restore
}

func (t PGTools) path(name, given string) (string, error) {
	if given != "" {
		return given, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(dirs) > 0 {
		slices.Sort(dirs) // good enough for 1-digit majors; newest last
		return dirs[len(dirs)-1], nil
	}
	return "", fmt.Errorf("%s not found: install the PostgreSQL client (apt-get install postgresql-client)", name)
}

// dump writes the database dsn names to out with pg_dump --format=custom:
// one consistent snapshot (a repeatable-read transaction), compressed.
func (t PGTools) dump(ctx context.Context, dsn, out string) error {
	bin, err := t.path("pg_dump", t.Dump)
	if err != nil {
		return err
	}
	return runPG(ctx, bin, dsn, "--format=custom", "--no-owner", "--no-privileges", "--file="+out)
}

// restore loads a pg_dump file into the database dsn names, in one
// transaction; with clean it first drops what the dump holds.
func (t PGTools) restore(ctx context.Context, dsn, in string, clean bool) error {
	bin, err := t.path("pg_restore", t.Restore)
	if err != nil {
		return err
	}
	args := []string{"--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"}
	if clean {
		args = append(args, "--clean", "--if-exists")
	}
	return runPG(ctx, bin, dsn, append(args, in)...)
}

// runPG runs a PostgreSQL client program on the database dsn names. The
// password goes in PGPASSWORD, never on the command line (where any local
// user could read it); errors carry the program's last line.
func runPG(ctx context.Context, bin, dsn string, args ...string) error {
	conninfo, password, err := splitPassword(dsn)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--dbname=" + conninfo}, args...)...) // #nosec G204 -- pg_dump/pg_restore from the operator's config, arguments built here, no shell
	cmd.Env = os.Environ()
	if password != "" {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+password)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		if password != "" {
			msg = strings.ReplaceAll(msg, password, "***")
		}
		return fmt.Errorf("%s: %v: %s", filepath.Base(bin), err, msg)
	}
	return nil
}

var kvPassword = regexp.MustCompile(`(^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S*)`)

// splitPassword returns dsn without its password, and the password.
func splitPassword(dsn string) (string, string, error) {
	pc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "", "", fmt.Errorf("store dsn: %w", err)
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", "", fmt.Errorf("store dsn: %w", err)
		}
		if u.User != nil {
			u.User = url.User(u.User.Username())
		}
		q := u.Query()
		q.Del("password")
		u.RawQuery = q.Encode()
		return u.String(), pc.Password, nil
	}
	return strings.TrimSpace(kvPassword.ReplaceAllString(dsn, "$1")), pc.Password, nil
}

// withDatabase returns dsn naming database db instead.
func withDatabase(dsn, db string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("store dsn: %w", err)
		}
		u.Path = "/" + db
		return u.String(), nil
	}
	re := regexp.MustCompile(`(^|\s)dbname\s*=\s*('(?:[^'\\]|\\.)*'|\S*)`)
	if re.MatchString(dsn) {
		return re.ReplaceAllString(dsn, "${1}dbname="+db), nil
	}
	return dsn + " dbname=" + db, nil
}

// scratchDB creates an empty database beside the one dsn names, for a
// restore test, and returns its DSN and a function that drops it.
func scratchDB(ctx context.Context, dsn string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", nil, fmt.Errorf("connect to the store's server: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var b [6]byte
	rand.Read(b[:])
	name := "gatehouse_verify_" + hex.EncodeToString(b[:])
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+ident); err != nil {
		return "", nil, fmt.Errorf("create a scratch database for the restore test (the store's role needs CREATEDB): %w", err)
	}
	drop := func() {
		ctx := context.WithoutCancel(ctx)
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		c.Exec(ctx, `DROP DATABASE IF EXISTS `+ident+` WITH (FORCE)`)
	}
	sdsn, err := withDatabase(dsn, name)
	if err != nil {
		drop()
		return "", nil, err
	}
	return sdsn, drop, nil
}

// checkPostgres counts what a restored database holds.
func checkPostgres(ctx context.Context, dsn string) (StoreCheck, error) {
	c := StoreCheck{Driver: "postgres", Integrity: "restored"}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return c, fmt.Errorf("open restored store: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for table, n := range map[string]*int{"api_keys": &c.Keys, "clients": &c.Clients, "users": &c.Users} {
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(n); err != nil {
			return c, fmt.Errorf("restored store: count %s: %w", table, err)
		}
	}
	return c, nil
}

// pgHasTables reports whether the database dsn names holds any table of
// its own (a live store, for a restore to refuse without --force).
func pgHasTables(ctx context.Context, dsn string) (bool, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return false, fmt.Errorf("connect to the store: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')`).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("inspect the store: %w", err)
	}
	return n > 0, nil
}

var errNoPG = errors.New("the backup holds a PostgreSQL store: give its database with --store DSN")
