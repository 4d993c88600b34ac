package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // the "sqlite" driver, for VACUUM INTO and integrity checks

	"github.com/gatehouse/gatehouse/internal/pgauth"
	"github.com/gatehouse/gatehouse/internal/store/sqlite"
)

// Layout is where one deployment keeps what a backup holds, as its config
// says.
type Layout struct {
	// DataDir holds the SQLite store and the server secrets.
	DataDir string
	// AuditDir is the audit log's directory (audit.dir, default
	// <DataDir>/audit); with the postgres audit backend only its signing
	// key lives there.
	AuditDir string
	// Store is the store driver (sqlite or postgres) and DSN its database.
	Store string
	DSN   string
	// Password, when set, is the store's password as it is now (a
	// secret reference that follows rotations), used in place of the
	// DSN's: pg_dump gets it in PGPASSWORD, never on its command line.
	Password pgauth.Password
	// AuditBackend is file or postgres.
	AuditBackend string
	// Config is the config file serve runs with, as it read it (nil for
	// the built-in defaults: then no config is backed up).
	Config []byte
}

// The files of a data dir a backup reads and a restore writes.
const (
	dbFile          = "gatehouse.db"
	pepperFile      = "server.secret"
	signingKeysFile = "signing-keys.json"
	auditKeyFile    = "log.key"
	auditPubFile    = "log.pub"
	// RestoredConfig is where a restore puts the config file a backup
	// holds, in the data dir, for the operator to compare with theirs.
	RestoredConfig = "restored-config.yaml"
)

// Secret is one server secret a backup carries, by name: server.secret
// (the key-hash pepper), signing-keys.json (the JWT signing keys) or
// audit-log.key (the audit checkpoint key).
type Secret struct {
	Name string
	Data []byte
}

// Secrets gives Create the server secrets a backup carries. FileSecrets
// reads them from the data dir, where serve keeps them today; a secrets
// provider can take its place without changing the backup format.
type Secrets interface {
	Load(ctx context.Context) ([]Secret, error)
}

// FileSecrets reads the server secrets from the files of a Layout.
type FileSecrets Layout

// Load implements Secrets.
func (f FileSecrets) Load(ctx context.Context) ([]Secret, error) {
	var out []Secret
	for name, path := range map[string]string{
		"server.secret":     filepath.Join(f.DataDir, pepperFile),
		"signing-keys.json": filepath.Join(f.DataDir, signingKeysFile),
		"audit-log.key":     filepath.Join(f.AuditDir, auditKeyFile),
	} {
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) && name == "signing-keys.json" {
			continue // made at the first token issue
		}
		if err != nil {
			return nil, fmt.Errorf("read secret %s: %w", name, err)
		}
		out = append(out, Secret{Name: name, Data: b})
	}
	return out, nil
}

// place maps a part to its file in a restored tree whose data dir is data
// and audit dir audit ("" for the postgres dump, which is not a file of
// the tree).
func place(name, data, audit string) string {
	dir, base, _ := strings.Cut(name, "/")
	switch {
	case dir == "store" && base == dbFile:
		return filepath.Join(data, dbFile)
	case dir == "audit":
		return filepath.Join(audit, filepath.FromSlash(base))
	case name == "secrets/audit-log.key":
		return filepath.Join(audit, auditKeyFile)
	case dir == "secrets":
		return filepath.Join(data, base)
	case dir == "config":
		return filepath.Join(data, RestoredConfig)
	}
	return ""
}

// vacuumInto writes a consistent copy of the SQLite database at src to
// dst with VACUUM INTO: one read transaction, so writers go on meanwhile
// (WAL mode), and a compact file with no WAL of its own.
func vacuumInto(ctx context.Context, src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("back up the store: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+src+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("back up the store: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		return fmt.Errorf("back up the store (VACUUM INTO): %w", err)
	}
	return os.Chmod(dst, 0o600)
}

// StoreCheck is what a restore test found in a restored store.
type StoreCheck struct {
	Driver string `json:"driver"`
	// Integrity is PRAGMA integrity_check's answer ("ok"), or, for
	// PostgreSQL, "restored" once pg_restore finished without error.
	Integrity string `json:"integrity"`
	Keys      int    `json:"keys"`
	Clients   int    `json:"clients"`
	Users     int    `json:"users"`
}

// checkSQLite runs PRAGMA integrity_check on a restored database, opens it
// as the store (applying this version's migrations, as serve would) and
// counts what it holds.
func checkSQLite(ctx context.Context, path string) (StoreCheck, error) {
	c := StoreCheck{Driver: "sqlite"}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return c, fmt.Errorf("open restored store: %w", err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return c, fmt.Errorf("restored store: integrity check: %w", err)
	}
	var msgs []string
	for rows.Next() {
		var m string
		if rows.Scan(&m) == nil {
			msgs = append(msgs, m)
		}
	}
	rows.Close()
	c.Integrity = strings.Join(msgs, "; ")
	if c.Integrity != "ok" {
		return c, damaged("the restored store fails PRAGMA integrity_check: " + c.Integrity)
	}
	if err := countRows(ctx, db, &c); err != nil {
		return c, err
	}
	db.Close()
	// Opened as serve opens it: this version's migrations apply.
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		return c, fmt.Errorf("open restored store: %w", err)
	}
	return c, s.Close()
}

// querier is what countRows needs of database/sql or pgx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func countRows(ctx context.Context, q querier, c *StoreCheck) error {
	for table, n := range map[string]*int{"api_keys": &c.Keys, "clients": &c.Clients, "users": &c.Users} {
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(n); err != nil {
			return fmt.Errorf("restored store: count %s: %w", table, err)
		}
	}
	return nil
}

// dsn is the store's DSN with the password in use now: the DSN's own, or
// Password's. It lives only as long as one backup or restore test.
func (l Layout) dsn(ctx context.Context) (string, error) {
	if l.Password == nil {
		return l.DSN, nil
	}
	p, err := l.Password(ctx)
	if err != nil {
		return "", err
	}
	dsn, err := pgauth.WithPassword(l.DSN, p)
	if err != nil {
		return "", fmt.Errorf("store dsn: %w", err)
	}
	return dsn, nil
}
