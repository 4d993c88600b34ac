package service_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/ratelimit/ratelimittest"
	"github.com/gatehouse/gatehouse/internal/ratelimit/service"
)

// recorder is an Auditor that keeps events in memory.
type recorder struct {
	mu     sync.Mutex
	events []gatehouse.Event
}

func (r *recorder) Record(_ context.Context, e gatehouse.Event) error {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	return nil
}

func (r *recorder) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ts []string
	for _, e := range r.events {
		ts = append(ts, e.Type)
	}
	return ts
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

type harness struct {
	svc  *service.Service
	srv  *ratelimittest.RedisServer
	aud  *recorder
	logs *syncBuffer
}

func mustOpen(t *testing.T, mode string, srv *ratelimittest.RedisServer) *harness {
	t.Helper()
	h := &harness{srv: srv, aud: &recorder{}, logs: &syncBuffer{}}
	svc, err := service.New(context.Background(), ratelimit.Config{
		Backend:        ratelimit.BackendRedis,
		RedisURL:       "redis://" + srv.Addr + "/0",
		OnRedisFailure: mode,
	}, service.Options{
		Logger:      slog.New(slog.NewTextHandler(h.logs, nil)),
		Auditor:     h.aud,
		RedisPrefix: ratelimittest.UniqueKey(t, "prefix") + ":",
		ProbeMin:    20 * time.Millisecond,
		ProbeMax:    100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	h.svc = svc
	return h
}

// admit sends n requests for key and returns how many were admitted,
// failing on any error.
func (h *harness) admit(t *testing.T, key string, lim ratelimit.Limit, n int) int {
	t.Helper()
	k := 0
	for range n {
		d, err := h.svc.Allow(context.Background(), key, lim)
		if err != nil {
			t.Fatalf("Allow(%q): %v", key, err)
		}
		if d.Allowed {
			k++
		}
	}
	return k
}

func (h *harness) waitHealthy(t *testing.T, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, detail := h.svc.Healthy()
		if ok == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Healthy() = %v (%s), want %v", ok, detail, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var five = ratelimit.Limit{Requests: 5, Per: time.Minute}

func TestDegradeLocal(t *testing.T) {
	h := mustOpen(t, ratelimit.OnFailureLocal, ratelimittest.StartRedisServer(t))
	if ok, detail := h.svc.Healthy(); !ok {
		t.Fatalf("healthy at start: %s", detail)
	}
	if got := h.admit(t, "a", five, 8); got != 5 {
		t.Fatalf("redis up: admitted %d of 8, want 5", got)
	}

	h.srv.Stop()
	// No errors: the first failure switches to per-instance limits, and
	// those still limit.
	if got := h.admit(t, "b", five, 8); got != 5 {
		t.Fatalf("redis down: admitted %d of 8, want 5 (local limit)", got)
	}
	if got := h.admit(t, "c", ratelimit.Limit{Requests: 1000, Per: time.Minute}, 200); got != 200 {
		t.Fatalf("redis down: admitted %d of 200 under a high limit", got)
	}
	ok, detail := h.svc.Healthy()
	if ok || !strings.Contains(detail, "unreachable") || !strings.Contains(detail, "per-instance") {
		t.Fatalf("Healthy() = %v, %q; want degraded with per-instance limits", ok, detail)
	}
	time.Sleep(150 * time.Millisecond) // let a few probes fail
	if n := h.logs.count("degraded"); n != 1 {
		t.Errorf("logged %d degradation lines for one outage, want 1", n)
	}

	h.srv.Start()
	h.waitHealthy(t, true)
	// Limiting resumes exactly, in Redis (restarted empty).
	if got := h.admit(t, "d", five, 8); got != 5 {
		t.Fatalf("recovered: admitted %d of 8, want 5", got)
	}
	if n := h.logs.count("recovered"); n != 1 {
		t.Errorf("logged %d recovery lines, want 1", n)
	}
	waitEvents(t, h.aud, ratelimit.EventDegraded, ratelimit.EventRecovered)
}

func TestDegradeDeny(t *testing.T) {
	h := mustOpen(t, ratelimit.OnFailureDeny, ratelimittest.StartRedisServer(t))
	if got := h.admit(t, "a", five, 3); got != 3 {
		t.Fatalf("redis up: admitted %d of 3", got)
	}
	h.srv.Stop()
	for i := range 20 {
		d, err := h.svc.Allow(context.Background(), "a", five)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if d.Allowed || d.RetryAfter <= 0 {
			t.Fatalf("request %d under deny: got %+v, want refused with Retry-After", i, d)
		}
	}
	if ok, detail := h.svc.Healthy(); ok || !strings.Contains(detail, "deny") {
		t.Fatalf("Healthy() = %v, %q", ok, detail)
	}
	h.srv.Start()
	h.waitHealthy(t, true)
	if got := h.admit(t, "e", five, 8); got != 5 {
		t.Fatalf("recovered: admitted %d of 8, want 5", got)
	}
	waitEvents(t, h.aud, ratelimit.EventDegraded, ratelimit.EventRecovered)
}

// TestStartWithRedisDown: a gateway starts even when Redis is down, serves
// per-instance limits, and switches to Redis once it answers.
func TestStartWithRedisDown(t *testing.T) {
	srv := ratelimittest.StartRedisServer(t)
	srv.Stop()
	h := mustOpen(t, ratelimit.OnFailureLocal, srv)
	if ok, _ := h.svc.Healthy(); ok {
		t.Fatal("healthy with Redis down")
	}
	if got := h.admit(t, "a", five, 8); got != 5 {
		t.Fatalf("admitted %d of 8 locally, want 5", got)
	}
	srv.Start()
	h.waitHealthy(t, true)
	if got := h.admit(t, "a", five, 8); got != 5 {
		t.Fatalf("admitted %d of 8 in Redis, want 5", got)
	}
	waitEvents(t, h.aud, ratelimit.EventDegraded, ratelimit.EventRecovered)
}

func waitEvents(t *testing.T, r *recorder, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := r.types()
		if strings.Join(got, ",") == strings.Join(want, ",") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit events %v, want %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMemoryBackend(t *testing.T) {
	svc, err := service.New(context.Background(), ratelimit.Config{
		Tiers: map[string]ratelimit.Limit{"free": {Requests: 60, Per: time.Minute}},
	}, service.Options{Clock: gatehouse.NewFakeClock(ratelimittest.Start)})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if ok, detail := svc.Healthy(); !ok || detail != "memory: ok" {
		t.Fatalf("Healthy() = %v, %q", ok, detail)
	}
	if p := svc.Policy("free"); p.Name != "free" || p.Limit.Requests != 60 {
		t.Fatalf("Policy(free) = %+v", p)
	}
	if p := svc.Policy("gold"); p.Name != "default" || p.Limit != ratelimit.DefaultLimit {
		t.Fatalf("Policy(gold) = %+v, want the default", p)
	}
	d, err := svc.Allow(context.Background(), "k", svc.Policy("free").Limit)
	if err != nil || !d.Allowed || d.Remaining != 59 {
		t.Fatalf("Allow = %+v, %v", d, err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := service.New(context.Background(), ratelimit.Config{Backend: "memcached"}, service.Options{})
	if err == nil || !strings.Contains(err.Error(), "ratelimit.backend") {
		t.Fatalf("err = %v, want a ratelimit.backend error", err)
	}
}

// TestDegradeUnderLoad stops and restarts Redis while goroutines hammer
// the limiter: no call fails, and each transition is logged and audited
// exactly once despite the concurrency.
func TestDegradeUnderLoad(t *testing.T) {
	h := mustOpen(t, ratelimit.OnFailureLocal, ratelimittest.StartRedisServer(t))
	lim := ratelimit.Limit{Requests: 1_000_000, Per: time.Minute}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	calls := 0
	for i := range 8 {
		wg.Go(func() {
			key := "load-" + string(rune('a'+i))
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := h.svc.Allow(context.Background(), key, lim)
				mu.Lock()
				calls++
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	h.srv.Stop()
	h.waitHealthy(t, false)
	time.Sleep(200 * time.Millisecond)
	h.srv.Start()
	h.waitHealthy(t, true)
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d calls failed, first: %v", len(errs), calls, errs[0])
	}
	waitEvents(t, h.aud, ratelimit.EventDegraded, ratelimit.EventRecovered)
	if d, r := h.logs.count("degraded"), h.logs.count("recovered"); d != 1 || r != 1 {
		t.Fatalf("logged %d degraded and %d recovered lines, want 1 each", d, r)
	}
	t.Logf("%d calls, none failed", calls)
}
