package ui_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/ui"
)

// benchLog is an audit log of n entries (GATEHOUSE_BENCH_AUDIT_ENTRIES,
// default 1,000,000), every 1000th an admin.key.create, the others
// admin.read, written by 64 writers so that commits are grouped.
func benchLog(b *testing.B) *audit.Log {
	b.Helper()
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("GATEHOUSE_BENCH_AUDIT_ENTRIES")); err == nil && v > 0 {
		n = v
	}
	return benchLogN(b, n)
}

// benchLogN is benchLog of n entries.
func benchLogN(b testing.TB, n int) *audit.Log {
	b.Helper()
	l, err := audit.Open(context.Background(), audit.Config{Dir: b.TempDir(), Origin: "bench", Durability: audit.DurabilityBatch})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close(context.Background()) })
	start := time.Now()
	var wg sync.WaitGroup
	const writers = 64
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += writers {
				e := gatehouse.Event{Type: "admin.read", Actor: gatehouse.Actor{Kind: "user", ID: "alice"}, Action: "read", Resource: "/v1/keys", Outcome: "success"}
				if i%1000 == 0 {
					e.Type, e.Action, e.Resource = "admin.key.create", "key.create", "key:k"+strconv.Itoa(i)
				}
				if err := l.Record(context.Background(), e); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if _, err := l.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d entries written in %v", l.Size(), time.Since(start).Round(time.Millisecond))
	return l
}

// benchAPI serves what the audit pages call, from l, as the admin API
// does (its handlers, minus authentication and the admin.read events).
type benchAPI struct{ l *audit.Log }

func (a benchAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var out any
	switch r.URL.Path {
	case "/v1/me":
		out = map[string]any{"username": "bench", "role": "auditor"}
	case "/v1/audit":
		f := audit.Filter{Type: q.Get("type"), Actor: q.Get("actor")}
		limit, _ := strconv.Atoi(q.Get("limit"))
		p, err := a.l.Query(r.Context(), f, q.Get("cursor"), limit)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		out = p
	case "/v1/audit/checkpoint":
		cp, err := a.l.Sync(r.Context())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(cp)
		return
	case "/v1/audit/keys":
		chain, err := a.l.KeyChain(r.Context())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		out = admin.AuditKeys{Keys: chain}
	case "/v1/audit/proof":
		n, _ := strconv.ParseUint(q.Get("index"), 10, 64)
		p, err := a.l.Proof(r.Context(), n)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		out = p
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// BenchmarkAuditPages renders the audit viewer's pages over a log of a
// million entries (issue 18: under 50 ms each, server-side):
//
//	go test ./internal/ui -run '^$' -bench BenchmarkAuditPages -benchtime 20x
//
// Each page is one API page of entries; a filter that matches rarely
// costs what the log's Query scans to fill the page (filtered/rare).
func BenchmarkAuditPages(b *testing.B) {
	l := benchLog(b)
	console, err := ui.New(ui.Config{API: benchAPI{l}})
	if err != nil {
		b.Fatal(err)
	}
	size := l.Size()
	pages := []struct{ name, path string }{
		{"list/first", "/ui/audit"},
		{"list/middle", "/ui/audit?cursor=" + strconv.FormatUint(size/2, 10)},
		{"list/newest", "/ui/audit?at=newest"},
		{"list/filtered/common", "/ui/audit?type=admin.read&actor=user:alice"},
		{"list/filtered/rare", "/ui/audit?type=admin.key.create&cursor=" + strconv.FormatUint(size-50_000, 10)},
		{"entry/old", "/ui/audit/1"},
		{"entry/newest", "/ui/audit/" + strconv.FormatUint(size-1, 10)},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest("GET", p.path, nil)
				req.AddCookie(&http.Cookie{Name: authn.SessionCookie, Value: "bench"})
				w := httptest.NewRecorder()
				console.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("%s: HTTP %d: %s", p.path, w.Code, w.Body)
				}
			}
		})
	}
}

// TestAuditViewerShortPageJSOff: a filter that matches rarely gets the
// matches among the entries one API request reads (audit.ScanBudget), and
// the page says which entries were searched, with a link to search on.
func TestAuditViewerShortPageJSOff(t *testing.T) {
	n := audit.ScanBudget + 2000
	l := benchLogN(t, n)
	console, err := ui.New(ui.Config{API: benchAPI{l}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) string {
		t.Helper()
		req := httptest.NewRequest("GET", path, nil)
		req.AddCookie(&http.Cookie{Name: authn.SessionCookie, Value: "bench"})
		w := httptest.NewRecorder()
		console.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("%s: HTTP %d", path, w.Code)
		}
		return w.Body.String()
	}
	last := strconv.Itoa(audit.ScanBudget - 1)
	cases := []struct {
		name, path, want string
	}{
		{"some matches", "/ui/audit?type=admin.key.create", " matches in entries 0–" + last + "; <a href=\"/ui/audit?cursor=" + strconv.Itoa(audit.ScanBudget) + "&amp;type=admin.key.create\">continue searching</a>."},
		{"none", "/ui/audit?actor=user:nobody", "No matches in entries 0–" + last + "; <a href="},
		{"from a cursor", "/ui/audit?actor=user:nobody&cursor=5", "No matches in entries 5–" + strconv.Itoa(audit.ScanBudget+4) + "; <a href="},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := get(c.path)
			if !strings.Contains(body, c.want) {
				t.Fatalf("page does not say %q:\n%s", c.want, body)
			}
			m := nextRE.FindStringSubmatch(body)
			if m == nil {
				t.Fatal("no next page link")
			}
			body = get(strings.ReplaceAll(m[1], "&amp;", "&"))
			if strings.Contains(body, "continue searching") || !strings.Contains(body, "End of the log.") {
				t.Fatal("the last page asks to search on, or has no end marker")
			}
		})
	}
	// An unfiltered page is full: nothing to say.
	if body := get("/ui/audit"); strings.Contains(body, "continue searching") {
		t.Fatal("a full page asks to continue searching")
	}
}
