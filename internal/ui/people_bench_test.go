package ui_test

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// BenchmarkPeoplePages renders /ui/clients, /ui/users and /ui/tokens
// (whole requests on the admin listener, signed in) with 10,000 service
// clients, 1,000 users and 10,000 tokens in the store, filtered and not;
// the target is under 50 ms a page. Each page is one page of the API's
// list (store.ListClientsPage, ListUsersPage, ListPATsPage: one indexed
// range read), a later page reached by following Next from the first.
//
//	go test -run '^$' -bench BenchmarkPeoplePages -benchtime 20x ./internal/ui/
func BenchmarkPeoplePages(b *testing.B) {
	e := uitest.Start(b, "")
	e.CreateUser("alice", "admin")
	ctx := context.Background()
	st := e.App.Store()
	now := time.Now().UTC()
	for i := range 10_000 {
		c := &store.Client{ID: fmt.Sprintf("c_bench%05d", i), Name: fmt.Sprintf("client %d", i), SecretHash: make([]byte, 32),
			Scopes: []string{"demo:read"}, CreatedAt: now}
		if err := st.CreateClient(ctx, c); err != nil {
			b.Fatal(err)
		}
		p := &store.PAT{ID: fmt.Sprintf("pat_bench%05d", i), Username: "alice", Name: fmt.Sprintf("token %d", i), Hash: []byte(fmt.Sprintf("h%05d", i)),
			Role: "auditor", CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
		if err := st.CreatePAT(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 1_000 {
		u := &store.User{Username: fmt.Sprintf("user%04d", i), Role: "auditor", PasswordHash: "x", PasswordChangedAt: now, CreatedAt: now}
		if err := st.CreateUser(ctx, u); err != nil {
			b.Fatal(err)
		}
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	res, err := client.Get(e.Admin + "/ui/login")
	if err != nil {
		b.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := tokenRE.FindStringSubmatch(string(page))
	if m == nil {
		b.Fatal("no sign-in form")
	}
	res, err = client.PostForm(e.Admin+"/ui/login", url.Values{"username": {"alice"}, "password": {uitest.Password}, "csrf_token": {m[1]}})
	if err != nil || res.Request.URL.Path != "/ui/" {
		b.Fatalf("sign in: %v", err)
	}
	res.Body.Close()
	b.Run("/v1/clients (the API alone, a page of 100)", func(b *testing.B) {
		for b.Loop() {
			var out map[string]any
			e.API("GET", "/v1/clients", nil, &out)
		}
	})
	// A later page is reached as a reader reaches it: following the
	// page's Next link (the API's cursor) from the first.
	nextRE := regexp.MustCompile(`<a href="([^"]+)" rel="next">`)
	for _, pg := range []struct {
		path string
		page int
	}{{"/ui/clients", 1}, {"/ui/clients?q=client+99", 2}, {"/ui/users", 1}, {"/ui/users?role=auditor", 10}, {"/ui/tokens", 1}, {"/ui/tokens?status=active", 100}} {
		p := pg.path
		for range pg.page - 1 {
			res, err := client.Get(e.Admin + p)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			m := nextRE.FindSubmatch(body)
			if m == nil {
				b.Fatalf("GET %s: no next page", p)
			}
			p = html.UnescapeString(string(m[1]))
		}
		b.Run(fmt.Sprintf("%s page %d", pg.path, pg.page), func(b *testing.B) {
			var worst time.Duration
			for b.Loop() {
				start := time.Now()
				res, err := client.Get(e.Admin + p)
				if err != nil || res.StatusCode != 200 {
					b.Fatalf("GET %s: %v %v", p, err, res.Status)
				}
				res.Body.Close()
				worst = max(worst, time.Since(start))
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
		})
	}
}
