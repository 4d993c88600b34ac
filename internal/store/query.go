package store

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Dialect is the SQL of one store's driver, where SQLite and PostgreSQL
// differ: placeholders ("?" or "$n") and a list of values bound as one
// argument.
type Dialect int

// The dialects of the stores.
const (
	SQLite Dialect = iota
	PostgreSQL
)

// Arg is the n-th placeholder (1-based).
func (d Dialect) Arg(n int) string {
	if d == PostgreSQL {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// lower is the SQL of column in lower case as strings.ToLower has it:
// SQLite's own lower() folds ASCII only, so the SQLite store registers
// gatehouse_lower; PostgreSQL's lower() follows the database's locale.
func (d Dialect) lower(column string) string {
	if d == PostgreSQL {
		return "lower(" + column + ")"
	}
	return "gatehouse_lower(" + column + ")"
}

// where builds the condition of a list query: fixed SQL fragments joined
// by AND, every value a placeholder. Times are unix nanoseconds, 0 for
// unset, as both stores keep them.
type where struct {
	d     Dialect
	conds []string
	args  []any
}

// arg binds v and returns its placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return w.d.Arg(len(w.args))
}

func (w *where) add(cond string) { w.conds = append(w.conds, cond) }

// after keeps the rows after c in (created_at, id) order: a row
// comparison both stores answer from their (created_at, id) index (or
// one led by an equality, such as (username, created_at, id)).
func (w *where) after(c PageCursor) {
	if !c.IsZero() {
		w.add("(created_at, id) > (" + w.arg(unixNanos(c.CreatedAt)) + ", " + w.arg(c.ID) + ")")
	}
}

// lifecycle keeps the rows in state st at now, judged on revoked_at and
// expires_at. zeroNever says whether an expires_at of 0 means "never
// expires" (keys, clients) or is a time like any other (tokens, which
// always have one).
func (w *where) lifecycle(st KeyStatus, now time.Time, zeroNever bool) {
	n := unixNanos(now)
	switch st {
	case KeyActive:
		if zeroNever {
			w.add("revoked_at = 0 AND (expires_at = 0 OR expires_at > " + w.arg(n) + ")")
		} else {
			w.add("revoked_at = 0 AND expires_at > " + w.arg(n))
		}
	case KeyExpired:
		if zeroNever {
			w.add("revoked_at = 0 AND expires_at <> 0 AND expires_at <= " + w.arg(n))
		} else {
			w.add("revoked_at = 0 AND expires_at <= " + w.arg(n))
		}
	case KeyRevoked:
		w.add("revoked_at <> 0")
	}
}

// contains is the condition "column holds s, ignoring case" as
// strings.ToLower folds it (s matched literally, LIKE's metacharacters
// included).
func (w *where) contains(column, s string) string {
	return w.d.lower(column) + " LIKE " + w.arg("%"+escapeLike(strings.ToLower(s))+"%") + ` ESCAPE '\'`
}

// in keeps the rows whose column is one of vs, bound as one argument
// whatever their number; none keeps no row.
func (w *where) in(column string, vs []string) {
	switch {
	case len(vs) == 0:
		w.add("1 = 0")
	case w.d == PostgreSQL:
		w.add(column + " = ANY(" + w.arg(vs) + ")")
	default:
		b, _ := json.Marshal(vs) // a []string always marshals
		w.add(column + " IN (SELECT value FROM json_each(" + w.arg(string(b)) + "))")
	}
}

func (w *where) done() (string, []any) {
	if len(w.conds) == 0 {
		return "1 = 1", nil
	}
	return strings.Join(w.conds, " AND "), w.args
}

// Where is q as the condition of a SELECT on the api_keys table, with its
// arguments in order.
func (q KeyQuery) Where(d Dialect) (string, []any) {
	w := &where{d: d}
	w.after(q.After)
	w.lifecycle(q.Status, q.Now, true)
	if q.Name != "" {
		w.add(w.contains("name", q.Name))
	}
	return w.done()
}

// Where is q as the condition of a SELECT on the clients table, with its
// arguments in order.
func (q ClientQuery) Where(d Dialect) (string, []any) {
	w := &where{d: d}
	w.after(q.After)
	w.lifecycle(q.Status, q.Now, true)
	if q.IDs != nil {
		w.in("id", q.IDs)
	}
	if q.Name != "" {
		w.add("(" + w.contains("name", q.Name) + " OR id = " + w.arg(q.Name) + ")")
	}
	return w.done()
}

// Where is q as the condition of a SELECT on the pats table, with its
// arguments in order.
func (q PATQuery) Where(d Dialect) (string, []any) {
	w := &where{d: d}
	if q.Username != "" {
		w.add("username = " + w.arg(q.Username))
	}
	w.after(q.After)
	w.lifecycle(q.Status, q.Now, false)
	if q.Name != "" {
		w.add("(" + w.contains("name", q.Name) + " OR id = " + w.arg(q.Name) + ")")
	}
	return w.done()
}

// Where is q as the condition of a SELECT on the users table, with its
// arguments in order. Users are ordered by username, the primary key.
func (q UserQuery) Where(d Dialect) (string, []any) {
	w := &where{d: d}
	if q.After != "" {
		w.add("username > " + w.arg(q.After))
	}
	switch q.Status {
	case UserActive:
		w.add("disabled_at = 0")
	case UserDisabled:
		w.add("disabled_at <> 0")
	case UserLocked:
		w.add("EXISTS (SELECT 1 FROM login_failures f WHERE f.username = users.username AND f.locked_until > " + w.arg(unixNanos(q.Now)) + ")")
	}
	if q.Role != "" {
		w.add("role = " + w.arg(q.Role))
	}
	if q.Name != "" {
		w.add(w.contains("username", q.Name))
	}
	return w.done()
}

// escapeLike makes s match itself literally in a LIKE pattern with
// ESCAPE '\'.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
