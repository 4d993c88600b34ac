package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
)

// TestPostgresStore runs two gatehouses on one PostgreSQL database (and
// one data dir for the shared secrets): a key created through one works
// through the other, and a revocation reaches the other within the cache's
// revalidation bound (30 s).
func TestPostgresStore(t *testing.T) {
	dsn := pgtest.MustCreateDatabase(t)
	extra := fmt.Sprintf("store: {driver: postgres, dsn: %q}\n", dsn)
	a := MustStartWith(t, extra)

	cfg, err := config.Parse("b.yaml", []byte(fmt.Sprintf("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\ndata_dir: %s\naudit: {dir: %s}\n%sroutes:\n  - {name: r, path: /api/v1/signals/, upstream: %s, scopes: [read:signals]}\n",
		a.dataDir, filepath.Join(t.TempDir(), "audit"), extra, a.up.URL)))
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
	t.Cleanup(func() { b.Shutdown(context.Background()) })

	k := a.createKey(map[string]any{"name": "shared", "scopes": []string{"read:signals"}})
	get := func() int {
		return a.do("GET", "http://"+b.Addr()+"/api/v1/signals/x", nil, "X-API-Key: "+k.Key).StatusCode
	}
	if code := get(); code != 200 {
		t.Fatalf("key created on A, used on B: %d", code)
	}
	if code := a.adminCall("POST", "/v1/keys/"+k.ID+"/revoke", nil, nil); code != 200 {
		t.Fatalf("revoke on A: %d", code)
	}
	clock.Advance(31 * time.Second)
	if code := get(); code != 401 {
		t.Fatalf("key revoked on A, used on B after the cache bound: %d", code)
	}
}
