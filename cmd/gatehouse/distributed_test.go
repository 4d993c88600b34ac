package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
)

// TestRevocationAcrossThreeReplicas runs three `gatehouse serve` processes
// on one PostgreSQL database (sharing the data dir's pepper, token and
// audit signing keys, and one audit log in PostgreSQL): a key revoked through A is refused
// by B and C within 1 s, and the delay is reported.
func TestRevocationAcrossThreeReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	dsn := pgtest.MustCreateDatabase(t)
	data := filepath.Join(t.TempDir(), "data")
	env := []string{"GATEHOUSE_ADMIN_TOKEN=replica-admin-token-0123456789"}
	var servers []*server
	for i := 0; i < 3; i++ {
		cfg := fmt.Sprintf("store: {driver: postgres, dsn: %q}\n", dsn) + demoRoute
		servers = append(servers, startServerWith(t, serverOpts{config: cfg, dataDir: data, env: env}))
	}
	a, b, c := servers[0], servers[1], servers[2]
	out, errOut, code := run(t, a.env(), "keys", "create", "--name", "shared", "--scopes", "demo:read", "--json")
	var k struct{ ID, Key string }
	if code != 0 || json.Unmarshal([]byte(out), &k) != nil {
		t.Fatalf("create key through A: %d %s", code, errOut)
	}
	key := k.Key
	status := func(s *server) int {
		req, _ := http.NewRequest("GET", s.base+"/demo/x", nil)
		req.Header.Set("X-API-Key", key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, s := range servers {
		if code := status(s); code != 200 {
			t.Fatalf("key before revocation on %s: %d", s.base, code)
		}
	}
	if _, errOut, code := run(t, a.env(), "keys", "revoke", k.ID); code != 0 {
		t.Fatalf("revoke through A: %s", errOut)
	}
	revoked := time.Now()
	var wg sync.WaitGroup
	for _, s := range []*server{b, c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(revoked) < time.Second {
				if status(s) == 401 {
					t.Logf("%s refused the key %v after the revocation through A", s.base, time.Since(revoked).Round(100*time.Microsecond))
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
			t.Errorf("%s still accepts the key 1 s after the revocation through A", s.base)
		}()
	}
	wg.Wait()
}
