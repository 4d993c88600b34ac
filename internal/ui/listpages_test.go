package ui_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

var (
	nextLinkRE  = regexp.MustCompile(`<a href="([^"]+)" rel="next">Next page</a>`)
	firstLinkRE = regexp.MustCompile(`<a href="([^"]+)">First page</a>`)
)

// TestPeopleListPagesJSOff: /ui/clients, /ui/tokens and /ui/users show
// the API's pages of 50 with First and Next links that keep the filters;
// following Next shows every entry once; a forged cursor is the API's 400
// on the page.
func TestPeopleListPagesJSOff(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	ctx := context.Background()
	st := e.App.Store()
	now := time.Now().UTC()
	for i := range 120 {
		c := &store.Client{ID: fmt.Sprintf("cl_page%03d", i), Name: fmt.Sprintf("svc-%03d", i), SecretHash: make([]byte, 32), Scopes: []string{"demo:read"}, CreatedAt: now}
		if err := st.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		p := &store.PAT{ID: fmt.Sprintf("pat_page%03d", i), Username: "alice", Name: fmt.Sprintf("tok-%03d", i), Hash: []byte(fmt.Sprintf("h%03d", i)),
			Role: "auditor", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := st.CreatePAT(ctx, p); err != nil {
			t.Fatal(err)
		}
		u := &store.User{Username: fmt.Sprintf("user%03d", i), Role: "auditor", PasswordHash: "x", PasswordChangedAt: now, CreatedAt: now}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	f := newForm(t, e)
	f.signIn("alice", uitest.Password)
	for _, tc := range []struct {
		start string
		entry *regexp.Regexp // one entry's mark on the page
		pages []int          // entries on each page
		keep  string         // a filter every link keeps
	}{
		{"/ui/clients", regexp.MustCompile(`cl_page\d{3}`), []int{50, 50, 20}, ""},
		{"/ui/clients?q=svc-1&status=active", regexp.MustCompile(`cl_page\d{3}`), []int{20}, "status=active"},
		{"/ui/clients?q=svc-0", regexp.MustCompile(`cl_page\d{3}`), []int{50, 50, 0}, "q=svc-0"}, // exactly 100: a full page may be followed by an empty one
		{"/ui/tokens?status=active", regexp.MustCompile(`pat_page\d{3}`), []int{50, 50, 20}, "status=active"},
		{"/ui/users?role=auditor", regexp.MustCompile(`user\d{3}`), []int{50, 50, 20}, "role=auditor"},
	} {
		t.Run(tc.start, func(t *testing.T) {
			seen := map[string]bool{}
			path := tc.start
			for i, want := range tc.pages {
				res, body := f.get(path)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: HTTP %d", path, res.StatusCode)
				}
				got := map[string]bool{}
				for _, m := range tc.entry.FindAllString(body, -1) {
					got[m] = true
				}
				if len(got) != want {
					t.Errorf("page %d (%s): %d entries, want %d", i+1, path, len(got), want)
				}
				for m := range got {
					if seen[m] {
						t.Errorf("page %d: %s shown again", i+1, m)
					}
					seen[m] = true
				}
				if first := firstLinkRE.FindStringSubmatch(body); (first != nil) != (i > 0) || (first != nil && !strings.Contains(html.UnescapeString(first[1]), tc.keep)) {
					t.Errorf("page %d: First link %q", i+1, first)
				}
				next := nextLinkRE.FindStringSubmatch(body)
				if i == len(tc.pages)-1 {
					if next != nil {
						t.Errorf("last page has a Next link %q", next[1])
					}
					break
				}
				if next == nil {
					t.Fatalf("page %d (%s): no Next link", i+1, path)
				}
				path = html.UnescapeString(next[1])
				if !strings.Contains(path, tc.keep) {
					t.Errorf("Next link %q drops %s", path, tc.keep)
				}
			}
		})
	}
	for _, p := range []string{"/ui/clients", "/ui/tokens", "/ui/users"} {
		if res, body := f.get(p + "?cursor=forged!"); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "cursor:") {
			t.Errorf("GET %s?cursor=forged!: HTTP %d, want 400 naming the cursor", p, res.StatusCode)
		}
	}
}
