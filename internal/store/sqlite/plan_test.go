package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlite"
)

// TestListPagesUseIndexes: each list page is a range read of an index in
// the list's order, never a scan sorted afterwards (EXPLAIN QUERY PLAN),
// with and without filters and a cursor.
func TestListPagesUseIndexes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := sqlite.Open(t.Context(), path) // migrated
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Unix(1_800_000_000, 0)
	after := store.PageCursor{CreatedAt: now, ID: "x"}
	type q interface {
		Where(store.Dialect) (string, []any)
	}
	for _, tc := range []struct {
		name, query string
		q           q
		index       string
	}{
		{"keys", "SELECT id FROM api_keys", store.KeyQuery{After: after, Status: store.KeyActive, Name: "a", Now: now}, "api_keys_created"},
		{"clients", "SELECT id FROM clients", store.ClientQuery{}, "clients_created"},
		{"clients, filtered, after", "SELECT id FROM clients", store.ClientQuery{After: after, Status: store.KeyExpired, Name: "a", Now: now}, "clients_created"},
		{"everyone's tokens", "SELECT id FROM pats", store.PATQuery{After: after, Status: store.KeyActive, Name: "a", Now: now}, "pats_created"},
		{"one user's tokens", "SELECT id FROM pats", store.PATQuery{Username: "alice", After: after, Status: store.KeyRevoked}, "pats_username"},
		{"users", "SELECT username FROM users", store.UserQuery{After: "bob", Status: store.UserLocked, Role: "admin", Name: "a", Now: now}, "sqlite_autoindex_users_1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			where, args := tc.q.Where(store.SQLite)
			order := " ORDER BY created_at, id LIMIT 10"
			if strings.Contains(tc.query, "users") {
				order = " ORDER BY username LIMIT 10"
			}
			rows, err := db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+tc.query+" WHERE "+where+order, args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, notused int
				var detail string
				if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			all := strings.Join(plan, "; ")
			t.Logf("%s", all)
			if strings.Contains(all, "TEMP B-TREE") || !strings.Contains(all, "INDEX "+tc.index) {
				t.Errorf("plan %q: want a read of index %s in order, no sort", all, tc.index)
			}
		})
	}
}
