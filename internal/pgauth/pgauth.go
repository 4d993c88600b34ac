// Package pgauth configures PostgreSQL connections whose password is read
// as each connection is made — from a secret reference that follows
// rotations — so that new connections use a rotated password while the
// open ones live on. It also has pools hand out no connection the server
// has already closed (pg_terminate_backend, a restart).
package pgauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Password returns the password for a connection about to be made. A nil
// Password leaves the DSN's own. Errors name the secret, never a value.
type Password func(ctx context.Context) (string, error)

// ParsePool parses dsn (a postgres:// URL or key=value string) into a pool
// config that asks pw for the password of every new connection
// (pgxpool.Config.BeforeConnect) and, before handing out an idle
// connection, checks that the server has not closed it. Errors never
// quote the DSN.
func ParsePool(dsn string, pw Password) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("the DSN does not parse")
	}
	if pw != nil {
		cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
			p, err := pw(ctx)
			if err != nil {
				return err
			}
			cc.Password = p
			return nil
		}
	}
	cfg.ShouldPing = func(_ context.Context, p pgxpool.ShouldPingParams) bool {
		// pgxpool's own rule (idle over a second), and any connection
		// with something waiting on its socket: on an idle connection
		// that is the server's goodbye (FATAL 57P01 from
		// pg_terminate_backend, or EOF). The ping then fails and the
		// pool makes a new connection instead of failing the query.
		return p.IdleDuration > time.Second || pending(p.Conn.PgConn().Conn())
	}
	return cfg, nil
}

// ParseConn parses dsn into a connection config with the password pw
// gives now (the DSN's own when pw is nil).
func ParseConn(ctx context.Context, dsn string, pw Password) (*pgx.ConnConfig, error) {
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("the DSN does not parse")
	}
	if pw != nil {
		if cc.Password, err = pw(ctx); err != nil {
			return nil, err
		}
	}
	return cc, nil
}

// Connect opens one connection to dsn with the password pw gives now.
func Connect(ctx context.Context, dsn string, pw Password) (*pgx.Conn, error) {
	cc, err := ParseConn(ctx, dsn, pw)
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cc)
}

// WithPassword returns dsn with password set in it, a URL or key=value
// string. Errors never quote the DSN.
func WithPassword(dsn, password string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", errors.New("not a URL")
		}
		user := ""
		if u.User != nil {
			user = u.User.Username()
		}
		u.User = url.UserPassword(user, password)
		if q := u.Query(); q.Has("password") {
			q.Del("password")
			u.RawQuery = q.Encode()
		}
		return u.String(), nil
	}
	if _, err := pgx.ParseConfig(dsn); err != nil {
		return "", errors.New("does not parse")
	}
	q := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password)
	return dsn + " password='" + q + "'", nil
}

// HasPassword reports whether dsn carries a password of its own (inline,
// which `gatehouse check` warns of: a secret reference can rotate, a
// password in the config cannot without a restart).
func HasPassword(dsn string) bool {
	cc, err := pgx.ParseConfig(dsn)
	return err == nil && cc.Password != ""
}

// Describe says which server, database and user dsn names, never its
// password, for errors: "host=db port=5432 user=gatehouse database=gatehouse".
func Describe(dsn string) string {
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "(a DSN that does not parse)"
	}
	return fmt.Sprintf("host=%s port=%d user=%s database=%s", cc.Host, cc.Port, cc.User, cc.Database)
}

// Terminated reports whether err says that the server ended the session
// before the statement committed, so that running it again on another
// connection cannot apply it twice: nothing was sent
// (pgconn.SafeToRetry), or the server answered FATAL admin_shutdown,
// crash_shutdown or cannot_connect_now (pg_terminate_backend, a
// restart) in place of the statement's completion. An implicit
// transaction commits only as the server handles Sync, and it answers
// ReadyForQuery before it reads anything else, so a FATAL that arrives
// before ReadyForQuery means the transaction was rolled back.
func Terminated(err error) bool {
	if pgconn.SafeToRetry(err) {
		return true
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Severity != "FATAL" {
		return false
	}
	switch pe.Code {
	case "57P01", "57P02", "57P03":
		return true
	}
	return false
}

// pending reports whether c's socket has something to read, or is
// closed, without reading: on an idle connection, a sign that the server
// has said goodbye. Connections it cannot look into report false.
func pending(c net.Conn) bool {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn()
	}
	return peek(c)
}
