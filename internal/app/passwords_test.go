package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/ratelimit/ratelimittest"
	"github.com/gatehouse/gatehouse/internal/secrets"
	"github.com/gatehouse/gatehouse/internal/secrets/vault"
	"github.com/gatehouse/gatehouse/internal/secrets/vaulttest"
	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
)

// writeSecret replaces the file secret name in dir with value, as an
// operator (or a Vault Agent) would: a new file renamed into place.
func writeSecret(t *testing.T, dir, name, value string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// load sends requests with key to path from a few goroutines until stop
// is called, and counts those that did not answer 200.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	first      string // the first failure
	stop       chan struct{}
	once       sync.Once
	done       sync.WaitGroup
}

func startLoad(t *testing.T, url, key string) *load {
	t.Helper()
	l := &load{stop: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second}
	for range 4 {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("X-API-Key", key)
				res, err := client.Do(req)
				if err == nil {
					body, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if res.StatusCode == 200 {
						l.ok.Add(1)
						continue
					}
					err = fmt.Errorf("HTTP %d: %s", res.StatusCode, body)
				}
				l.failed.Add(1)
				l.mu.Lock()
				if l.first == "" {
					l.first = err.Error()
				}
				l.mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() { l.finish() })
	return l
}

// finish stops the load and returns the requests that succeeded and
// failed, with the first failure.
func (l *load) finish() (ok, failed int64, first string) {
	l.once.Do(func() { close(l.stop) })
	l.done.Wait()
	return l.ok.Load(), l.failed.Load(), l.first
}

// waitReloaded waits until the secrets status shows secret name read
// again after since.
func waitReloaded(t *testing.T, h *harness, name string, since time.Time) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := h.app.SecretsStatus(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			if s.Name == name && s.LoadedAt != nil && s.LoadedAt.After(since) {
				if s.ReloadError != "" {
					t.Fatalf("%s reloaded with an error: %s", name, s.ReloadError)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not reloaded 10 s after its rotation", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// statusOf is the status entry of secret name.
func statusOf(t *testing.T, h *harness, name string) secrets.Status {
	t.Helper()
	list, err := h.app.SecretsStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("secrets status lists no %s: %+v", name, list)
	return secrets.Status{}
}

// TestStorePasswordRotation rotates the PostgreSQL password of a serving
// gateway whose store, audit log and invalidation bus all log in as one
// role of a private cluster (scram-sha-256): ALTER ROLE, the new password
// written to the file secret, every session of the role terminated; the
// requests sent all along succeed on new connections, made with the new
// password. With only the old password a start fails, naming the secret
// and not the password.
func TestStorePasswordRotation(t *testing.T) {
	c := pgtest.StartCluster(t)
	const role, p1, p2 = "gh", "first-password-0x1", "second-password-0x2"
	dsn := c.CreateRole(t, role, p1)
	dir := t.TempDir()
	writeSecret(t, dir, "db-password", p1)
	h := MustStartWith(t, fmt.Sprintf("store: {driver: postgres, dsn: %q, password_secret: db-password}\nsecrets: {provider: file, dir: %s, poll: 100ms}\nratelimit: {default: {requests: 1000000, per: 1m}}\n", dsn, dir)+backupConfig(t, filepath.Join(t.TempDir(), "backups")))
	st := statusOf(t, h, "db-password")
	if st.Provider != "file" || st.Class != secrets.ClassStorePassword || !strings.Contains(st.Where, "store.password_secret") {
		t.Fatalf("status of db-password: %+v", st)
	}
	k := h.createKey(map[string]any{"name": "k", "scopes": []string{"read:signals"}})
	url := h.base + "/api/v1/signals/x"
	l := startLoad(t, url, k.Key)
	time.Sleep(300 * time.Millisecond)

	// Rotate: the database first, then the secret.
	before := time.Now()
	c.SetPassword(t, role, p2)
	writeSecret(t, dir, "db-password", p2)
	waitReloaded(t, h, "db-password", before)
	if n := c.Terminate(t, role); n < 3 {
		t.Fatalf("terminated %d sessions of %s; want the store's, the audit log's and the listener's", n, role)
	}
	time.Sleep(1500 * time.Millisecond)
	ok, failed, first := l.finish()
	if failed != 0 || ok < 20 {
		t.Fatalf("%d requests failed and %d succeeded across the rotation; first failure: %s", failed, ok, first)
	}
	if n := c.Sessions(t, role); n == 0 {
		t.Fatal("no session of the role after the rotation: the gateway did not reconnect")
	}
	// A request after the rotation, and the readiness that names the
	// reference without its value.
	if res := h.do("GET", url, nil, "X-API-Key: "+k.Key); res.StatusCode != 200 {
		t.Fatalf("after the rotation: HTTP %d", res.StatusCode)
	}
	res := h.do("GET", h.admin+"/health/ready", nil, "Authorization: Bearer "+adminToken)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.Contains(string(body), "db-password") || strings.Contains(string(body), p2) || strings.Contains(string(body), p1) {
		t.Fatalf("/health/ready: HTTP %d %s", res.StatusCode, body)
	}
	t.Logf("%d requests across the rotation, none failed", ok)
	// The admin API lists the reference (checked against the OpenAPI
	// document), never its value.
	var list struct {
		Secrets []secrets.Status `json:"secrets"`
	}
	if code := h.adminCall("GET", "/v1/secrets", nil, &list); code != 200 {
		t.Fatalf("GET /v1/secrets: %d", code)
	}
	found := false
	for _, s := range list.Secrets {
		if s.Name == "db-password" {
			found = s.LoadedAt != nil && s.Class == secrets.ClassStorePassword && s.ReloadError == ""
		}
	}
	if !found {
		t.Fatalf("GET /v1/secrets: no healthy db-password entry in %+v", list.Secrets)
	}
	// A backup after the rotation: pg_dump (PGPASSWORD) and the restore
	// test's scratch database log in with the new password; the one read
	// at start is refused by now.
	auth := "Authorization: Bearer " + adminToken
	var b struct{ ID string }
	if err := json.Unmarshal(h.expect(201, "POST", h.admin+"/v1/backups", nil, auth), &b); err != nil || b.ID == "" {
		t.Fatalf("backup after the rotation: %v", err)
	}
	h.expect(200, "POST", h.admin+"/v1/backups/"+b.ID+"/verify", nil, auth)
	if code := h.adminCall("POST", "/v1/secrets/db-password/rotate", nil, nil); code != http.StatusConflict {
		t.Fatalf("POST /v1/secrets/db-password/rotate: %d, want 409 saying how it rotates", code)
	}

	// Only the old password: a replica given it cannot start, and says
	// which secret to look at.
	old := t.TempDir()
	writeSecret(t, old, "db-password", p1)
	cfg, err := config.Parse("old.yaml", []byte(fmt.Sprintf("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\ndata_dir: %s\nstore: {driver: postgres, dsn: %q, password_secret: db-password}\nsecrets: {provider: file, dir: %s}\n", h.dataDir, dsn, old)))
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), cfg, app.Options{Getenv: func(string) string { return "" }, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		a.Shutdown(context.Background())
		t.Fatal("a replica with the old password started")
	}
	msg := err.Error()
	if !strings.Contains(msg, "password authentication failed") || !strings.Contains(msg, "db-password") || strings.Contains(msg, p1) || strings.Contains(msg, p2) {
		t.Fatalf("start with the old password: %v", err)
	}

	// A secret that is not there: the error names it.
	_, err = app.New(context.Background(), mustParse(t, fmt.Sprintf("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\ndata_dir: %s\nstore: {driver: postgres, dsn: %q, password_secret: no-such-password}\nsecrets: {provider: file, dir: %s}\n", t.TempDir(), dsn, old)),
		app.Options{Getenv: func(string) string { return "" }, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "no-such-password") || !strings.Contains(err.Error(), "store.password_secret") {
		t.Fatalf("start with a missing secret: %v", err)
	}
}

func mustParse(t *testing.T, yml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestRedisPasswordRotation rotates the password of the Redis ACL user
// the rate limiter logs in as (on_redis_failure: deny, so that any
// failure to reach Redis fails a request), with the secret in a file and
// in Vault KV v2 (the in-process server, through the official client): a
// second password added, the secret rewritten, the old password removed
// and every connection of the user killed; requests keep succeeding on new
// connections. With only the old password, connecting fails with
// WRONGPASS.
func TestRedisPasswordRotation(t *testing.T) {
	cases := []struct {
		name string
		// setup stores the first password and returns the secrets
		// section and how to write a new value.
		setup func(t *testing.T, first string) (yml string, write func(string))
	}{
		{"file", func(t *testing.T, first string) (string, func(string)) {
			dir := t.TempDir()
			writeSecret(t, dir, "redis-password", first)
			return fmt.Sprintf("secrets: {provider: file, dir: %s, poll: 100ms}\n", dir),
				func(v string) { writeSecret(t, dir, "redis-password", v) }
		}},
		{"vault", func(t *testing.T, first string) (string, func(string)) {
			v := vaulttest.New(vaulttest.Config{})
			t.Cleanup(v.Close)
			tokenFile := filepath.Join(t.TempDir(), "token")
			token := v.RootToken("")
			if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
				t.Fatal(err)
			}
			p, err := vault.Open(t.Context(), vault.Config{Address: v.URL, Auth: "token", Token: token})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Close)
			if _, err := p.Put(t.Context(), "redis-password", []byte(first), 0); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("secrets: {provider: vault, poll: 100ms, vault: {address: %q, auth: token, token_file: %q, poll: 1s}}\n", v.URL, tokenFile),
				func(value string) {
					cur, err := p.CurrentVersion(context.Background(), "redis-password")
					if err == nil {
						_, err = p.Put(context.Background(), "redis-password", []byte(value), cur)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := ratelimittest.StartRedisServer(t)
			const user, p1, p2 = "gh", "redis-first-0x1", "redis-second-0x2"
			ctx := context.Background()
			admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr, MaxRetries: -1})
			defer admin.Close()
			if err := admin.Do(ctx, "ACL", "SETUSER", user, "on", ">"+p1, "~*", "&*", "+@all").Err(); err != nil {
				t.Fatal(err)
			}
			yml, write := tc.setup(t, p1)
			h := MustStartWith(t, fmt.Sprintf("ratelimit: {backend: redis, redis_url: \"redis://%s@%s/0\", redis_password_secret: redis-password, on_redis_failure: deny, default: {requests: 1000000, per: 1m}}\n", user, srv.Addr)+yml)
			if st := statusOf(t, h, "redis-password"); st.Provider != tc.name || st.Class != secrets.ClassRedisPassword {
				t.Fatalf("status of redis-password: %+v", st)
			}
			k := h.createKey(map[string]any{"name": "k", "scopes": []string{"read:signals"}})
			url := h.base + "/api/v1/signals/x"
			l := startLoad(t, url, k.Key)
			time.Sleep(300 * time.Millisecond)

			before := time.Now()
			if err := admin.Do(ctx, "ACL", "SETUSER", user, ">"+p2).Err(); err != nil {
				t.Fatal(err)
			}
			write(p2)
			waitReloaded(t, h, "redis-password", before)
			if err := admin.Do(ctx, "ACL", "SETUSER", user, "<"+p1).Err(); err != nil {
				t.Fatal(err)
			}
			killed, err := admin.Do(ctx, "CLIENT", "KILL", "USER", user).Int()
			if err != nil {
				t.Fatalf("CLIENT KILL USER %s: %v", user, err)
			}
			// Usually the limiter's pooled connections; none when the
			// pool had just let them go.
			t.Logf("killed %d connections of %s", killed, user)
			time.Sleep(1500 * time.Millisecond)
			ok, failed, first := l.finish()
			if failed != 0 || ok < 20 {
				t.Fatalf("%d requests failed and %d succeeded across the rotation; first failure: %s", failed, ok, first)
			}
			list, err := admin.ClientList(ctx).Result()
			if err != nil || !strings.Contains(list, "user="+user) {
				t.Fatalf("no connection of %s after the rotation (%v):\n%s", user, err, list)
			}
			if st := statusOf(t, h, "redis-password"); tc.name == "vault" && st.Version != 2 {
				t.Fatalf("status after the rotation: version %d, want 2", st.Version)
			}
			t.Logf("%d requests across the rotation, none failed", ok)

			old := goredis.NewClient(&goredis.Options{Addr: srv.Addr, Username: user, Password: p1, MaxRetries: -1})
			defer old.Close()
			if err := old.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
				t.Fatalf("the old password after the rotation: %v", err)
			}
		})
	}
}

// TestInlinePasswordWarns: a password written in store.dsn or
// ratelimit.redis_url works, but is warned of at its field, without
// quoting it; a reference is not.
func TestInlinePasswordWarns(t *testing.T) {
	cases := []struct {
		name, yml string
		want      []string
	}{
		{"store inline", "store: {driver: postgres, dsn: \"postgres://gh:hunter2@db/gh\"}\n", []string{"store.dsn"}},
		{"store key=value inline", "store: {driver: postgres, dsn: \"host=db user=gh password=hunter2\"}\n", []string{"store.dsn"}},
		{"store reference", "store: {driver: postgres, dsn: \"postgres://gh@db/gh\", password_secret: db-password}\n", nil},
		{"redis inline", "ratelimit: {backend: redis, redis_url: \"redis://gh:hunter2@redis:6379/0\"}\n", []string{"ratelimit.redis_url"}},
		{"redis reference", "ratelimit: {backend: redis, redis_url: \"redis://gh@redis:6379/0\", redis_password_secret: redis-password}\n", nil},
		{"none", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ws := app.Warnings(mustParse(t, c.yml))
			var got []string
			for _, w := range ws {
				got = append(got, w.Path)
				if strings.Contains(w.String(), "hunter2") {
					t.Fatalf("warning quotes the password: %s", w)
				}
				if !strings.Contains(w.Message, "_secret") {
					t.Fatalf("warning does not say what to use instead: %s", w)
				}
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Fatalf("warnings at %v, want %v", got, c.want)
			}
		})
	}
}
