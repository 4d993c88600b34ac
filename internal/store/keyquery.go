package store

import (
	"strings"
	"time"
)

// Where is q as the condition of a SELECT on the api_keys table, with its
// arguments in order; arg(n) writes the n-th placeholder (1-based) in the
// driver's style ("?" or "$n"). The cursor is a row comparison on
// (created_at, id), which SQLite and PostgreSQL both answer from their
// (created_at, id) index. Times are unix nanoseconds, 0 for unset, as both
// stores keep them.
func (q KeyQuery) Where(arg func(n int) string) (string, []any) {
	var conds []string
	var args []any
	next := func(v any) string {
		args = append(args, v)
		return arg(len(args))
	}
	if !q.After.IsZero() {
		conds = append(conds, "(created_at, id) > ("+next(unixNanos(q.After.CreatedAt))+", "+next(q.After.ID)+")")
	}
	switch q.Status {
	case KeyActive:
		conds = append(conds, "revoked_at = 0 AND (expires_at = 0 OR expires_at > "+next(unixNanos(q.Now))+")")
	case KeyExpired:
		conds = append(conds, "revoked_at = 0 AND expires_at <> 0 AND expires_at <= "+next(unixNanos(q.Now)))
	case KeyRevoked:
		conds = append(conds, "revoked_at <> 0")
	}
	if q.Name != "" {
		conds = append(conds, `lower(name) LIKE `+next("%"+escapeLike(strings.ToLower(q.Name))+"%")+` ESCAPE '\'`)
	}
	if len(conds) == 0 {
		return "1 = 1", nil
	}
	return strings.Join(conds, " AND "), args
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
