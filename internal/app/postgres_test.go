package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/store/postgres"
	"github.com/gatehouse/gatehouse/internal/store/postgres/notify"
	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
)

// replicas is two gatehouses on one PostgreSQL database (and one data dir
// for the shared secrets), each with its own fake clock.
type replicas struct {
	a     *harness
	b     *app.App
	bBase string
	clock *gatehouse.FakeClock // b's
	dsn   string
}

// MustStartReplicas starts replica A (a harness) and replica B on one fresh
// PostgreSQL database, and waits until B listens for invalidations.
func MustStartReplicas(t *testing.T) *replicas {
	t.Helper()
	dsn := pgtest.MustCreateDatabase(t)
	// One issuer, so that tokens issued by A are accepted by B.
	a := MustStartWith(t, replicaStore(dsn))
	b, clock := startReplica(t, a, dsn, "")
	r := &replicas{a: a, b: b, bBase: "http://" + b.Addr(), clock: clock, dsn: dsn}
	r.waitListening(t, 5*time.Second)
	return r
}

// replicaStore is the config every replica of one deployment shares: the
// PostgreSQL store and one token issuer, so that tokens issued by one are
// accepted by the others.
func replicaStore(dsn string) string {
	return fmt.Sprintf("store: {driver: postgres, dsn: %q}\nauth: {issuer: \"https://gatehouse.test\"}\n", dsn)
}

// startReplica starts another replica of a's deployment on dsn, with
// extra top-level config (YAML) and a route to a's upstream: it shares a's
// data dir, so its secrets and audit signing key, and writes to the same
// audit log in PostgreSQL. Its clock starts at a's.
func startReplica(t *testing.T, a *harness, dsn, extra string) (*app.App, *gatehouse.FakeClock) {
	t.Helper()
	cfg, err := config.Parse("replica.yaml", []byte(fmt.Sprintf("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\ndata_dir: %s\n%s%sroutes:\n  - {name: r, path: /api/v1/signals/, upstream: %s, scopes: [read:signals]}\n",
		a.dataDir, replicaStore(dsn), extra, a.up.URL)))
	if err != nil {
		t.Fatal(err)
	}
	clock := gatehouse.NewFakeClock(a.clock.Now())
	b, err := app.New(context.Background(), cfg, app.Options{Getenv: func(string) string { return "" }, Logger: slog.New(slog.DiscardHandler), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.Shutdown(ctx)
	})
	return b, clock
}

// waitListening waits until B's invalidation bus listens.
func (r *replicas) waitListening(t *testing.T, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if ok, _ := r.b.InvalidationState(); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica B not listening for invalidations after %v", limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// getB sends GET path to replica B's gateway with one header.
func (r *replicas) getB(t *testing.T, path, header, value string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", r.bBase+path, nil)
	req.Header.Set(header, value)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s on B: %v", path, err)
	}
	res.Body.Close()
	return res.StatusCode
}

// untilRefused polls B every 5 ms until it answers 401 to the credential
// and returns how long after since that took; it fails after a second.
func (r *replicas) untilRefused(t *testing.T, since time.Time, header, value string) time.Duration {
	t.Helper()
	for {
		code := r.getB(t, "/api/v1/signals/x", header, value)
		d := time.Since(since)
		if code == http.StatusUnauthorized {
			return d
		}
		if code != http.StatusOK {
			t.Fatalf("B answered %d while waiting for 401", code)
		}
		if d > time.Second {
			t.Fatalf("B still accepts the credential %v after the change on A", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPostgresStore runs two gatehouses on one PostgreSQL database: a key
// created through one works through the other; a revocation reaches the
// other through the invalidation bus and, without it, within the cache's
// revalidation bound (30 s).
func TestPostgresStore(t *testing.T) {
	r := MustStartReplicas(t)
	k := r.a.createKey(map[string]any{"name": "shared", "scopes": []string{"read:signals"}})
	if code := r.getB(t, "/api/v1/signals/x", "X-API-Key", k.Key); code != 200 {
		t.Fatalf("key created on A, used on B: %d", code)
	}
	if code := r.a.adminCall("POST", "/v1/keys/"+k.ID+"/revoke", nil, nil); code != 200 {
		t.Fatalf("revoke on A: %d", code)
	}
	r.clock.Advance(31 * time.Second)
	if code := r.getB(t, "/api/v1/signals/x", "X-API-Key", k.Key); code != 401 {
		t.Fatalf("key revoked on A, used on B after the cache bound: %d", code)
	}
}

// TestCrossReplicaInvalidation checks that changes made through replica A
// reach replica B's caches within a second, with no clock advanced, and
// logs the measured delays.
func TestCrossReplicaInvalidation(t *testing.T) {
	r := MustStartReplicas(t)
	if got := r.readiness(t); got != "ok" {
		t.Fatalf("B's invalidation readiness: %s", got)
	}

	t.Run("key revoked", func(t *testing.T) {
		k := r.a.createKey(map[string]any{"name": "k", "scopes": []string{"read:signals"}})
		if code := r.getB(t, "/api/v1/signals/x", "X-API-Key", k.Key); code != 200 {
			t.Fatalf("key on B before revoking: %d", code) // now cached on B
		}
		before := r.scrapeB(t)
		if code := r.a.adminCall("POST", "/v1/keys/"+k.ID+"/revoke", nil, nil); code != 200 {
			t.Fatalf("revoke on A: %d", code)
		}
		d := r.untilRefused(t, time.Now(), "X-API-Key", k.Key)
		t.Logf("propagation delay, key revoked on A until B refuses it: %v", d)
		// B measured the delay of the revocation it applied.
		after := r.scrapeB(t)
		const count, sum = "gatehouse_revocation_propagation_seconds_count", "gatehouse_revocation_propagation_seconds_sum"
		if n := after[count] - before[count]; n < 1 {
			t.Errorf("B's %s moved by %v, want at least 1", count, n)
		} else {
			t.Logf("B's gatehouse_revocation_propagation_seconds: %d observations, mean %.2f ms", int(n), 1000*(after[sum]-before[sum])/n)
		}
	})

	t.Run("key rotated with no grace", func(t *testing.T) {
		k := r.a.createKey(map[string]any{"name": "k", "scopes": []string{"read:signals"}})
		if code := r.getB(t, "/api/v1/signals/x", "X-API-Key", k.Key); code != 200 {
			t.Fatalf("key on B before rotating: %d", code)
		}
		if code := r.a.adminCall("POST", "/v1/keys/"+k.ID+"/rotate", map[string]any{"grace": "0s"}, nil); code != 200 && code != 201 {
			t.Fatalf("rotate on A: %d", code)
		}
		d := r.untilRefused(t, time.Now(), "X-API-Key", k.Key)
		t.Logf("propagation delay, key rotated on A until B refuses the old key: %v", d)
	})

	t.Run("user disabled", func(t *testing.T) {
		r.a.createUser("alice", "security", "read:signals")
		p := r.a.newPerson()
		if code, e := p.login("alice", alicePW, nil); code != 200 {
			t.Fatalf("login: %d %s", code, e.Error.Message)
		}
		var tok struct{ ID, Token string }
		if code := p.call("POST", "/v1/tokens", map[string]any{"name": "x", "scopes": []string{"read:signals"}}, true, &tok); code != 201 {
			t.Fatalf("create PAT: %d", code)
		}
		if code := r.getB(t, "/api/v1/signals/x", "Authorization", "Bearer "+tok.Token); code != 200 {
			t.Fatalf("PAT on B before disabling: %d", code)
		}
		if code := r.a.adminCall("POST", "/v1/users/alice/disable", nil, nil); code != 200 {
			t.Fatalf("disable on A: %d", code)
		}
		d := r.untilRefused(t, time.Now(), "Authorization", "Bearer "+tok.Token)
		t.Logf("propagation delay, user disabled on A until B refuses their PAT: %v", d)
	})

	t.Run("client revoked", func(t *testing.T) {
		c := r.a.createClient("read:signals")
		tok := r.a.token(url.Values{"grant_type": {"client_credentials"}}, c.ClientID, c.ClientSecret)
		if tok.status != 200 {
			t.Fatalf("token from A: %+v", tok)
		}
		if code := r.getB(t, "/api/v1/signals/x", "Authorization", "Bearer "+tok.Access); code != 200 {
			t.Fatalf("client's JWT on B before revoking: %d", code)
		}
		if code := r.a.adminCall("POST", "/v1/clients/"+c.ClientID+"/revoke", nil, nil); code != 200 {
			t.Fatalf("revoke client on A: %d", code)
		}
		d := r.untilRefused(t, time.Now(), "Authorization", "Bearer "+tok.Access)
		t.Logf("propagation delay, client revoked on A until B refuses its JWT: %v", d)
	})
}

// readiness returns B's "invalidation" readiness check: "ok" or its error.
func (r *replicas) readiness(t *testing.T) string {
	t.Helper()
	res, err := http.Get("http://" + r.b.AdminAddr() + "/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Status string `json:"status"`
		Checks map[string]struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		} `json:"checks"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	c, ok := out.Checks["invalidation"]
	switch {
	case !ok:
		return "missing"
	case c.OK:
		return "ok"
	}
	return c.Error
}

// TestInvalidationListenerReconnects kills the listening connections on the
// database while new connections to it are refused: B reports the bus down
// (not critical), and its caches re-validate within 5 s. Once connections
// are allowed again B reconnects, and a later revocation through A again
// reaches B at once.
func TestInvalidationListenerReconnects(t *testing.T) {
	r := MustStartReplicas(t)
	if _, bound := r.b.InvalidationState(); bound != authn.RevalidateConnected {
		t.Fatalf("revalidation bound while listening: %v", bound)
	}
	ctx := context.Background()
	admin := pgtest.MustConnectAdmin(t)
	defer admin.Close(ctx)
	db := pgx.Identifier{dbName(t, r.dsn)}.Sanitize()
	allow := func(ok bool) {
		t.Helper()
		if _, err := admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS %v`, db, ok)); err != nil {
			t.Fatal(err)
		}
	}

	// A key cached on B before the channel breaks.
	k := r.a.createKey(map[string]any{"name": "k", "scopes": []string{"read:signals"}})
	if code := r.getB(t, "/api/v1/signals/x", "X-API-Key", k.Key); code != 200 {
		t.Fatalf("key on B: %d", code)
	}

	// Open pooled connections keep serving; the listeners cannot come back.
	allow(false)
	t.Cleanup(func() { admin.Exec(context.Background(), `ALTER DATABASE `+db+` ALLOW_CONNECTIONS true`) })
	old := r.b.InvalidationListenerPID()
	var killed int
	err := admin.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = $2) t`, notify.ApplicationName, dbName(t, r.dsn)).Scan(&killed)
	if err != nil || killed != 2 {
		t.Fatalf("terminate the listeners of A and B: %d killed, %v", killed, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ok, _ := r.b.InvalidationState(); ok; ok, _ = r.b.InvalidationState() {
		if time.Now().After(deadline) {
			t.Fatal("B still reports listening 5 s after its listener was terminated")
		}
		time.Sleep(time.Millisecond)
	}
	if _, bound := r.b.InvalidationState(); bound != 5*time.Second {
		t.Fatalf("revalidation bound while disconnected: %v, want 5s", bound)
	}
	if got := r.readiness(t); got == "ok" || got == "missing" {
		t.Fatalf("B's invalidation readiness while disconnected: %s", got)
	}
	res, err := http.Get(r.bBase + "/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("B's readiness while the bus is down (not critical): %d, want 200", res.StatusCode)
	}

	// A revocation B does not hear of: refused once the 5 s bound passes.
	if code := r.a.adminCall("POST", "/v1/keys/"+k.ID+"/revoke", nil, nil); code != 200 {
		t.Fatalf("revoke on A: %d", code)
	}
	r.clock.Advance(4 * time.Second)
	if code := r.getB(t, "/api/v1/signals/x", "X-API-Key", k.Key); code != 200 {
		t.Fatalf("B within the 5 s bound (cached): %d", code)
	}
	r.clock.Advance(time.Second)
	if code := r.getB(t, "/api/v1/signals/x", "X-API-Key", k.Key); code != 401 {
		t.Fatalf("B at the 5 s bound: %d, want 401", code)
	}

	// Connections allowed again: B reconnects and restores the 30 s bound.
	allow(true)
	start := time.Now()
	deadline = start.Add(15 * time.Second)
	for ok, _ := r.b.InvalidationState(); !ok || r.b.InvalidationListenerPID() == old; ok, _ = r.b.InvalidationState() {
		if time.Now().After(deadline) {
			t.Fatal("B did not reconnect within 15 s")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("B reconnected %v after connections were allowed again", time.Since(start))
	if _, bound := r.b.InvalidationState(); bound != authn.RevalidateConnected {
		t.Fatalf("revalidation bound after reconnecting: %v", bound)
	}
	if got := r.readiness(t); got != "ok" {
		t.Fatalf("B's invalidation readiness after reconnecting: %s", got)
	}
	// A publishes on its own pool, so only B's listener matters here.
	k2 := r.a.createKey(map[string]any{"name": "k2", "scopes": []string{"read:signals"}})
	if code := r.getB(t, "/api/v1/signals/x", "X-API-Key", k2.Key); code != 200 {
		t.Fatalf("second key on B: %d", code)
	}
	if code := r.a.adminCall("POST", "/v1/keys/"+k2.ID+"/revoke", nil, nil); code != 200 {
		t.Fatalf("revoke on A: %d", code)
	}
	d := r.untilRefused(t, time.Now(), "X-API-Key", k2.Key)
	t.Logf("propagation delay after reconnecting, key revoked on A until B refuses it: %v", d)
}

func dbName(t *testing.T, dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path[1:]
}

// TestHotPathNoStoreRoundTrip checks that, with the PostgreSQL store, a
// steady stream of requests reads nothing from the store once the keys'
// principals are cached: the only database work per request is the audit
// append (on the audit log's own pool).
func TestHotPathNoStoreRoundTrip(t *testing.T) {
	dsn := pgtest.MustCreateDatabase(t)
	h := MustStartWith(t, fmt.Sprintf("store: {driver: postgres, dsn: %q}\n", dsn))
	keys := []string{
		h.createKey(map[string]any{"name": "a", "scopes": []string{"read:signals"}}).Key,
		h.createKey(map[string]any{"name": "b", "scopes": []string{"read:signals"}}).Key,
	}
	get := func(key string) {
		res := h.do("GET", h.base+"/api/v1/signals/x", nil, "X-API-Key: "+key)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("request: %d", res.StatusCode)
		}
	}
	// Caches are flushed when the invalidation listener connects: warm
	// them after that.
	for deadline := time.Now().Add(10 * time.Second); ; {
		res := h.do("GET", h.admin+"/health/ready", nil)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(body), `"invalidation":{"ok":true`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("invalidation listener not connected: %s", body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	db := h.app.Store().(*postgres.DB)
	start := db.Acquires()
	for _, k := range keys {
		get(k) // the first use of each key reads it from the store
	}
	before := db.Acquires()
	if before == start {
		t.Fatal("the first use of a key made no store round trip: the counter sees nothing")
	}
	for i := range 300 {
		get(keys[i%len(keys)])
	}
	if n := db.Acquires() - before; n != 0 {
		t.Errorf("300 requests with cached keys made %d store round trips, want 0", n)
	}
}

// TestLastAdminAcrossReplicas: alice and bob are the only admins, and two
// requests, one through each replica, remove one each at the same moment.
// The check is the store's, not a replica's: exactly one succeeds, the
// other is refused with 409 and a JSON error naming the problem (or, if
// its caller had just lost the role, 401), and one enabled admin remains.
func TestLastAdminAcrossReplicas(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		path   string // %s: the user removed
		body   any
		person bool // needs a person's sign-in: alice removes bob, bob alice
		ok     int
	}{
		{"disable", "POST", "/v1/users/%s/disable", nil, false, 200},
		{"demote", "PUT", "/v1/users/%s/role", map[string]any{"role": "auditor"}, true, 200},
		{"delete", "DELETE", "/v1/users/%s", nil, true, 204},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := MustStartReplicas(t)
			r.a.createUser("alice", "admin")
			r.a.createUser("bob", "admin")
			hb := *r.a
			hb.admin = "http://" + r.b.AdminAddr()
			viaA, viaB := r.a.newPerson(), hb.newPerson()
			if tc.person {
				if code, e := viaA.login("alice", alicePW, nil); code != 200 {
					t.Fatalf("alice signs in on A: %d %s", code, e.Error.Message)
				}
				if code, e := viaB.login("bob", alicePW, nil); code != 200 {
					t.Fatalf("bob signs in on B: %d %s", code, e.Error.Message)
				}
			}
			send := func(p *person, target string) (int, errorOut) {
				var e errorOut
				if tc.person {
					return p.call(tc.method, fmt.Sprintf(tc.path, target), tc.body, true, &e), e
				}
				req, _ := http.NewRequest(tc.method, p.h.admin+fmt.Sprintf(tc.path, target), nil)
				req.Header.Set("Authorization", "Bearer "+adminToken)
				res, err := p.client.Do(req)
				if err != nil {
					t.Error(err)
					return 0, e
				}
				defer res.Body.Close()
				json.NewDecoder(res.Body).Decode(&e)
				return res.StatusCode, e
			}
			var codes [2]int
			var errs [2]errorOut
			start := make(chan struct{})
			done := make(chan struct{}, 2)
			go func() { <-start; codes[0], errs[0] = send(viaA, "bob"); done <- struct{}{} }()
			go func() { <-start; codes[1], errs[1] = send(viaB, "alice"); done <- struct{}{} }()
			close(start)
			<-done
			<-done
			won := 0
			for i, code := range codes {
				switch {
				case code == tc.ok:
					won++
				case code == 409:
					if errs[i].Error.Code != "conflict" || !strings.Contains(errs[i].Error.Message, "last enabled admin") {
						t.Errorf("409 body: %+v, want code conflict naming the last enabled admin", errs[i].Error)
					}
				case code == 401 && tc.person: // its caller's session ended first
				default:
					t.Errorf("request %d: %d %+v", i, code, errs[i].Error)
				}
			}
			if won != 1 {
				t.Errorf("%d of 2 concurrent removals succeeded (%v), want exactly 1", won, codes)
			}
			t.Logf("answers: %v", codes)
			var list struct {
				Users []struct{ Username, Role, Status string }
			}
			if code := r.a.adminCall("GET", "/v1/users", nil, &list); code != 200 {
				t.Fatalf("list users: %d", code)
			}
			admins := 0
			for _, u := range list.Users {
				if u.Role == "admin" && u.Status == "active" {
					admins++
				}
			}
			if admins != 1 {
				t.Errorf("%d enabled admins left, want 1: %+v", admins, list.Users)
			}
		})
	}
}

// scrapeB reads B's /metrics with the bootstrap admin token (A's: they
// share the store).
func (r *replicas) scrapeB(t *testing.T) metrics.Samples {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+r.b.AdminAddr()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("B's /metrics: %d", res.StatusCode)
	}
	s, err := metrics.ParseText(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
