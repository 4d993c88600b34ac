package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a private PostgreSQL cluster one test started: initdb into
// a temporary directory, pg_ctl start on a free loopback port, password
// authentication (scram-sha-256) on TCP. It is stopped and removed when
// the test ends.
type Cluster struct {
	Host string
	Port int
	// AdminPassword is the password of the superuser postgres.
	AdminPassword string

	dir   string
	bin   string
	runas []string
}

// StartCluster starts a private cluster for tb. Without the PostgreSQL
// server binaries (initdb, pg_ctl under /usr/lib/postgresql/*/bin or on
// PATH) it skips tb saying why, or fails it when CI=true.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	bin, err := serverBin()
	if err != nil {
		msg := "!!! " + err.Error() + "\n!!! SKIPPING: this test starts a private PostgreSQL cluster. Install the postgresql package (scripts/ensure-postgres.sh)."
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg + "\n!!! CI=true: a missing PostgreSQL is a failure.")
		}
		tb.Skip(msg)
	}
	c := &Cluster{Host: "127.0.0.1", bin: bin, AdminPassword: randomHex(16)}
	base := tb.TempDir()
	c.dir = filepath.Join(base, "pgdata")
	// initdb and postgres refuse to run as root: run them as the
	// postgres OS user, which must reach the directory.
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			tb.Fatalf("running as root, and no OS user postgres to run the cluster as: %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		for d := base; d != "/" && strings.HasPrefix(d, os.TempDir()) && d != filepath.Clean(os.TempDir()); d = filepath.Dir(d) {
			if err := os.Chown(d, uid, gid); err != nil {
				tb.Fatal(err)
			}
		}
		c.runas = []string{"runuser", "-u", "postgres", "--"}
	}
	pwfile := filepath.Join(base, "pwfile")
	if err := os.WriteFile(pwfile, []byte(c.AdminPassword+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Lchown(pwfile, uid, gid); err != nil { // -1: unchanged
		tb.Fatal(err)
	}
	c.run(tb, filepath.Join(bin, "initdb"), "-D", c.dir, "-U", "postgres", "--pwfile", pwfile,
		"--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	os.Remove(pwfile)
	c.Port = freePort(tb)
	c.run(tb, filepath.Join(bin, "pg_ctl"), "-D", c.dir, "-l", filepath.Join(c.dir, "server.log"), "-w", "-t", "30",
		"-o", fmt.Sprintf("-c listen_addresses=%s -p %d -k %s -c password_encryption=scram-sha-256 -c fsync=off", c.Host, c.Port, c.dir), "start")
	tb.Cleanup(func() {
		cmd := exec.Command(c.runas0(filepath.Join(bin, "pg_ctl")), c.runargs(filepath.Join(bin, "pg_ctl"), "-D", c.dir, "-m", "immediate", "-w", "stop")...) // #nosec G204 -- the test's own cluster
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Logf("stop the test cluster: %v: %s", err, out)
		}
	})
	return c
}

// DSN is a URL for user (with password, if not empty) on database db.
func (c *Cluster) DSN(user, password, db string) string {
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), Path: "/" + db, RawQuery: "sslmode=disable"}
	if password != "" {
		u.User = url.UserPassword(user, password)
	} else {
		u.User = url.User(user)
	}
	return u.String()
}

// Admin connects as the superuser, closed when tb ends.
func (c *Cluster) Admin(tb testing.TB) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN("postgres", c.AdminPassword, "postgres"))
	if err != nil {
		tb.Fatalf("connect to the test cluster as postgres: %v", err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// CreateRole creates a login role with password and a database of the
// same name it owns, and returns the role's DSN without the password.
func (c *Cluster) CreateRole(tb testing.TB, role, password string) string {
	tb.Helper()
	conn := c.Admin(tb)
	ctx := context.Background()
	id := pgx.Identifier{role}.Sanitize()
	if _, err := conn.Exec(ctx, `CREATE ROLE `+id+` LOGIN CREATEDB PASSWORD `+quote(password)); err != nil {
		tb.Fatalf("create role: %v", err)
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+id+` OWNER `+id); err != nil {
		tb.Fatalf("create database: %v", err)
	}
	return c.DSN(role, "", role)
}

// SetPassword sets role's password (ALTER ROLE … PASSWORD); open
// sessions are not affected.
func (c *Cluster) SetPassword(tb testing.TB, role, password string) {
	tb.Helper()
	if _, err := c.Admin(tb).Exec(context.Background(), `ALTER ROLE `+pgx.Identifier{role}.Sanitize()+` PASSWORD `+quote(password)); err != nil {
		tb.Fatalf("alter role password: %v", err)
	}
}

// Terminate ends every session of role (pg_terminate_backend) and
// returns how many there were.
func (c *Cluster) Terminate(tb testing.TB, role string) int {
	tb.Helper()
	var n int
	err := c.Admin(tb).QueryRow(context.Background(),
		`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1`, role).Scan(&n)
	if err != nil {
		tb.Fatalf("terminate the sessions of %s: %v", role, err)
	}
	return n
}

// Sessions counts the sessions of role.
func (c *Cluster) Sessions(tb testing.TB, role string) int {
	tb.Helper()
	var n int
	if err := c.Admin(tb).QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE usename = $1`, role).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func (c *Cluster) run(tb testing.TB, prog string, args ...string) {
	tb.Helper()
	cmd := exec.Command(c.runas0(prog), c.runargs(prog, args...)...) // #nosec G204 -- the test's own cluster
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		tb.Fatalf("%s: %v\n%s\n%s", filepath.Base(prog), err, out, log)
	}
}

func (c *Cluster) runas0(prog string) string {
	if len(c.runas) > 0 {
		return c.runas[0]
	}
	return prog
}

func (c *Cluster) runargs(prog string, args ...string) []string {
	if len(c.runas) > 0 {
		return append(append(slices.Clone(c.runas[1:]), prog), args...)
	}
	return args
}

// serverBin finds the directory of initdb and pg_ctl: the newest
// /usr/lib/postgresql/*/bin (Debian's layout), else PATH.
func serverBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return va - vb
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin or on PATH")
}

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// quote is a SQL string literal (ALTER ROLE takes no parameters).
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
