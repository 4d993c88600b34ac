package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// BenchmarkOpsPages renders the reviews, incidents and backups pages with
// content: a review of 10,000 keys (its list and a page of its items), an
// open incident with a note (its timeline reads the audit window of
// 1,000,000 entries, GATEHOUSE_BENCH_AUDIT_ENTRIES to change), and the
// backups page with a backup and its restore test.
func BenchmarkOpsPages(b *testing.B) {
	entries := 1_000_000
	if v := os.Getenv("GATEHOUSE_BENCH_AUDIT_ENTRIES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("GATEHOUSE_BENCH_AUDIT_ENTRIES=%q: want a positive number", v)
		}
		entries = n
	}
	ctx := context.Background()
	auditDir := b.TempDir()
	fillAudit(b, ctx, auditDir, entries)
	e := uitest.Start(b, "audit:\n  dir: "+auditDir+"\n  origin: gatehouse/bench\n"+uitest.BackupConfig(b))
	storetest.FillKeys(b, ctx, e.App.Store(), 10_000)
	e.CreateUser("alice", "admin")
	cookies := signInCookies(b, e, "alice")

	var rv, in, bk struct{ ID string }
	if code := e.API("POST", "/v1/reviews", nil, &rv); code != 201 {
		b.Fatalf("start review: %d", code)
	}
	if code := e.API("POST", "/v1/incidents", map[string]string{"title": "bench", "severity": "low", "impact": "none"}, &in); code != 201 {
		b.Fatalf("open incident: %d", code)
	}
	e.API("POST", "/v1/incidents/"+in.ID+"/notes", map[string]string{"text": "a note"}, nil)
	built := time.Now()
	if code := e.API("POST", "/v1/backups", nil, &bk); code != 201 {
		b.Fatalf("backup: %d", code)
	}
	if code := e.API("POST", "/v1/backups/"+bk.ID+"/verify", nil, nil); code != 200 {
		b.Fatalf("restore test: %d", code)
	}
	b.Logf("backup and restore test of %d audit entries: %v", entries, time.Since(built).Round(time.Millisecond))

	h := e.App.AdminHandler()
	get := func(path string) int {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	for _, p := range []string{"/ui/reviews", "/ui/reviews?id=" + rv.ID, "/ui/reviews?id=" + rv.ID + "&show=undecided", "/ui/incidents", "/ui/incidents?id=" + in.ID, "/ui/backups",
		// The API calls under them, for what the console adds.
		"/v1/reviews", "/v1/reviews/" + rv.ID, "/v1/reviews/" + rv.ID + "?limit=50"} {
		b.Run(p, func(b *testing.B) {
			if code := get(p); code != http.StatusOK {
				b.Fatalf("HTTP %d", code)
			}
			b.ResetTimer()
			for b.Loop() {
				get(p)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/page")
		})
	}
}
