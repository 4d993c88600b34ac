package ui_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// BenchmarkPages renders every page of the console, server-side (the
// admin handler called in-process with a signed-in session), against a
// deployment with 10,000 keys and an audit log of 1,000,000 entries
// (GATEHOUSE_BENCH_AUDIT_ENTRIES sets another size). Each page is a
// sub-benchmark named after its path; the bound is under 50 ms a
// page, which holds only if no page loads a whole list. Run it with
//
//	go test -run '^$' -bench BenchmarkPages -benchtime 20x -timeout 30m ./internal/ui/
func BenchmarkPages(b *testing.B) {
	entries := 1_000_000
	if v := os.Getenv("GATEHOUSE_BENCH_AUDIT_ENTRIES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("GATEHOUSE_BENCH_AUDIT_ENTRIES=%q: want a positive number", v)
		}
		entries = n
	}
	const keys = 10_000
	ctx := context.Background()
	auditDir := b.TempDir()
	built := time.Now()
	fillAudit(b, ctx, auditDir, entries)
	b.Logf("audit log of %d entries built in %v", entries, time.Since(built).Round(time.Millisecond))

	e := uitest.Start(b, "audit:\n  dir: "+auditDir+"\n  origin: gatehouse/bench\n")
	storetest.FillKeys(b, ctx, e.App.Store(), keys)
	e.CreateUser("alice", "admin")
	cookies := signInCookies(b, e, "alice")

	h := e.App.AdminHandler()
	get := func(path string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
	code, dash := get("/ui/")
	if code != http.StatusOK {
		b.Fatalf("dashboard: HTTP %d: %.300s", code, dash)
	}
	paths := navLinks(dash)
	if len(paths) < 5 {
		b.Fatalf("the dashboard's nav links to %d pages: %q", len(paths), paths)
	}
	// Deep pages: an entry's detail with its proof, a later audit page,
	// the key list's next page, a filtered key list.
	_, auditPage := get("/ui/audit")
	if m := regexp.MustCompile(`href="(/ui/audit/[0-9]+)"`).FindStringSubmatch(auditPage); m != nil {
		paths = append(paths, m[1])
	}
	if m := regexp.MustCompile(`href="(/ui/audit\?[^"]*cursor=[^"]*)"`).FindStringSubmatch(auditPage); m != nil {
		paths = append(paths, htmlUnescape(m[1]))
	}
	_, keysPage := get("/ui/keys")
	if m := regexp.MustCompile(`href="(/ui/keys\?[^"]*cursor=[^"]*)"`).FindStringSubmatch(keysPage); m != nil {
		paths = append(paths, htmlUnescape(m[1]))
	} else {
		b.Errorf("the key list of %d keys has no next page", keys)
	}
	paths = append(paths, "/ui/keys?state=revoked&q=bench-9999")

	for _, p := range paths {
		b.Run(p, func(b *testing.B) {
			if code, body := get(p); code != http.StatusOK {
				b.Fatalf("HTTP %d: %.300s", code, body)
			}
			b.ResetTimer()
			for b.Loop() {
				get(p)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/page")
		})
	}

	// First views: each iteration a new session (made in the store, as a
	// sign-in would, outside the timer), so nothing the console keeps
	// per session helps: the dashboard and the evidence page as a person
	// sees them right after signing in.
	st := e.App.Store()
	firstViews := func(when, want string) {
		for _, p := range []string{"/ui/", "/ui/evidence"} {
			b.Run("first view "+when+" "+p, func(b *testing.B) {
				var worst time.Duration
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					id := rand.Text() + rand.Text()
					sum := sha256.Sum256([]byte(id))
					now := e.Clock.Now().UTC()
					if err := st.CreateSession(ctx, &store.Session{IDHash: sum[:], Username: "alice", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
						b.Fatal(err)
					}
					req := httptest.NewRequest(http.MethodGet, p, nil)
					req.AddCookie(&http.Cookie{Name: authn.SessionCookie, Value: id})
					w := httptest.NewRecorder()
					b.StartTimer()
					start := time.Now()
					h.ServeHTTP(w, req)
					worst = max(worst, time.Since(start))
					if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), want) {
						b.Fatalf("HTTP %d, want 200 with %q: %.300s", w.Code, want, w.Body.String())
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/page")
				b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
			})
		}
	}
	firstViews("(no status yet)", "No control status yet")

	// The evidence page showing the session's report (made once with
	// Generate report, which reads the whole log: not a page view), and
	// its signed JSON download.
	_, evPage := get("/ui/evidence")
	m := tokenRE.FindStringSubmatch(evPage)
	if m == nil {
		b.Fatal("no Generate report form on the evidence page")
	}
	req := httptest.NewRequest(http.MethodPost, "/ui/evidence", strings.NewReader(url.Values{"csrf_token": {m[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	w := httptest.NewRecorder()
	made := time.Now()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusSeeOther {
		b.Fatalf("Generate report: HTTP %d: %.300s", w.Code, w.Body.String())
	}
	b.Logf("Generate report (GET /v1/evidence over %d entries) took %v", entries, time.Since(made).Round(time.Millisecond))
	// The dashboard's and the evidence page's first views again, with
	// the report's status summary to show.
	firstViews("(a status summary)", "from report <code>")
	for _, p := range []string{"/ui/evidence", "/ui/evidence?format=json"} {
		b.Run("with the session's report "+p, func(b *testing.B) {
			code, body := get(p)
			if code != http.StatusOK || (p == "/ui/evidence" && !strings.Contains(body, "Report <code>")) {
				b.Fatalf("HTTP %d: %.300s", code, body)
			}
			b.ResetTimer()
			for b.Loop() {
				get(p)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/page")
			b.ReportMetric(float64(len(body))/1024, "KiB")
		})
	}
}

var navRE = regexp.MustCompile(`<li><a href="(/ui/[^"]*)"`)

func navLinks(page string) []string {
	var out []string
	for _, m := range navRE.FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	return out
}

func htmlUnescape(s string) string {
	return regexp.MustCompile(`&amp;`).ReplaceAllString(s, "&")
}

// signInCookies signs name in through the login form and returns the
// session's cookies.
func signInCookies(b *testing.B, e *uitest.Env, name string) []*http.Cookie {
	b.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	res, err := c.Get(e.Admin + "/ui/login")
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := tokenRE.FindStringSubmatch(string(body))
	if m == nil {
		b.Fatal("no csrf_token on the sign-in page")
	}
	res, err = c.PostForm(e.Admin+"/ui/login", url.Values{"username": {name}, "password": {uitest.Password}, "csrf_token": {m[1]}})
	if err != nil {
		b.Fatal(err)
	}
	res.Body.Close()
	if res.Request.URL.Path != "/ui/" {
		b.Fatalf("sign in landed on %s", res.Request.URL)
	}
	u, _ := url.Parse(e.Admin)
	return jar.Cookies(u)
}

// fillAudit writes n entries of proxied requests (one in twenty denied at
// the policy) into a file audit log at dir, the way a busy gateway would.
func fillAudit(b *testing.B, ctx context.Context, dir string, n int) {
	b.Helper()
	l, err := audit.Open(ctx, audit.Config{Dir: dir, Origin: "gatehouse/bench", Durability: audit.DurabilityBatch, NoPreallocate: true})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now().Add(-30 * 24 * time.Hour)
	step := 30 * 24 * time.Hour / time.Duration(n)
	const writers = 16
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				typ, outcome, status := "http.request", gatehouse.OutcomeSuccess, 200
				if i%20 == 7 {
					typ, outcome, status = "authz.decision", gatehouse.OutcomeDenied, 403
				}
				ev := gatehouse.Event{Time: start.Add(time.Duration(i) * step), Type: typ, Action: "proxy", Outcome: outcome,
					Actor:    gatehouse.Actor{Kind: "api_key", ID: "key_bench" + strconv.Itoa(i%10_000)},
					Resource: "route:api",
					Request:  &gatehouse.RequestInfo{Method: "GET", Path: "/api/items/" + strconv.Itoa(i%900), Status: status, SourceIP: "198.51.100.7"}}
				if err := l.Record(ctx, ev); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(ctx); err != nil {
		b.Fatal(err)
	}
}
