package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// redisServer is a throwaway redis-server on a free port, so a test can
// stop and restart it.
type redisServer struct {
	t    *testing.T
	bin  string
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed; scripts/ensure-redis.sh installs it")
		}
		t.Skip("SKIPPING: redis-server is not installed (run scripts/test.sh)")
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &redisServer{t: t, bin: bin, port: port}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", r.addr()); err == nil {
			c.Close()
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	r.t.Fatal("redis-server did not start")
}

func (r *redisServer) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
	}
}

func (r *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

// hammer sends n requests with key spread over the servers from 8 workers
// each, and counts the answers by status.
func hammer(t *testing.T, servers []*server, key string, n int) map[int]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[int]int{}
	var sent atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	for _, s := range servers {
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for sent.Add(1) <= int64(n) {
					req, _ := http.NewRequest("GET", s.base+"/demo/x", nil)
					req.Header.Set("X-API-Key", key)
					res, err := client.Do(req)
					code := -1
					if err == nil {
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
						code = res.StatusCode
					}
					mu.Lock()
					counts[code]++
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return counts
}

func createKey(t *testing.T, s *server, name string) string {
	t.Helper()
	out, errOut, code := run(t, s.env(), "keys", "create", "--name", name, "--scopes", "demo:read", "--json")
	var k struct{ Key string }
	if code != 0 || json.Unmarshal([]byte(out), &k) != nil {
		t.Fatalf("create key: %d %s", code, errOut)
	}
	return k.Key
}

// TestRateLimitAccurateAcrossReplicas runs three gatehouse processes that
// share one Redis (and one data dir) and hammers one 600/min key through
// all of them at once.
func TestRateLimitAccurateAcrossReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers and Redis")
	}
	redis := startRedis(t)
	data := filepath.Join(t.TempDir(), "data")
	cfg := fmt.Sprintf(`ratelimit:
  backend: redis
  redis_url: redis://%s
  default: {requests: 600, per: 1m}
log: {access: false}
routes:
  - name: demo
    path: /demo/
    upstream: builtin:echo
    scopes: [demo:read]
`, redis.addr())
	env := []string{"GATEHOUSE_ADMIN_TOKEN=replica-admin-token-0123456789"}
	var servers []*server
	for i := 0; i < 3; i++ {
		// One SQLite data dir; each process keeps its own audit log.
		own := fmt.Sprintf("audit: {dir: %s}\n", filepath.Join(t.TempDir(), "audit"))
		servers = append(servers, startServerWith(t, serverOpts{config: own + cfg, dataDir: data, env: env}))
	}

	counts := hammer(t, servers, createKey(t, servers[0], "k1"), 1500)
	t.Logf("one key, three replicas: %v", counts)
	if ok := counts[200]; ok < 594 || ok > 606 {
		t.Errorf("admitted %d in one window, want within [594, 606]", ok)
	}
	if counts[200]+counts[429] != 1500 {
		t.Errorf("other answers than 200 and 429: %v", counts)
	}

	// Redis goes away mid-run: every replica keeps serving on local limits
	// (no 5xx), then limiting resumes exactly once Redis is back.
	k2 := createKey(t, servers[0], "k2")
	done := make(chan map[int]int)
	go func() { done <- hammer(t, servers, k2, 3000) }()
	time.Sleep(100 * time.Millisecond)
	redis.stop()
	time.Sleep(time.Second)
	redis.start()
	during := <-done
	t.Logf("Redis stopped and restarted mid-run: %v", during)
	for code, n := range during {
		if code < 0 || code >= 500 {
			t.Errorf("%d answers with status %d while Redis was down", n, code)
		}
	}
	waitRecovered(t, servers)
	counts = hammer(t, servers, createKey(t, servers[0], "k3"), 1500)
	t.Logf("after recovery: %v", counts)
	if ok := counts[200]; ok < 594 || ok > 606 {
		t.Errorf("after Redis returned: admitted %d, want within [594, 606]", ok)
	}
}

// waitRecovered waits until every replica reports its rate limiter healthy.
func waitRecovered(t *testing.T, servers []*server) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range servers {
		for {
			res, err := http.Get(s.admin + "/health/ready")
			if err == nil {
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if strings.Contains(string(b), `"ratelimit":{"ok":true}`) {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("rate limiter did not recover within 20s of Redis returning")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
