package main_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const demoRoute = "routes:\n  - name: demo\n    path: /demo/\n    upstream: builtin:echo\n    scopes: [demo:read]\n"

// exportEvents runs `gatehouse audit export` on a data dir.
func exportEvents(t *testing.T, dataDir string, args ...string) []map[string]any {
	t.Helper()
	out, errOut, code := run(t, nil, append([]string{"audit", "export", "--data-dir", dataDir}, args...)...)
	if code != 0 {
		t.Fatalf("audit export: %d %s", code, errOut)
	}
	var events []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		events = append(events, e)
	}
	return events
}

func TestAuditTrailEndToEnd(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	s := startServerWith(t, serverOpts{config: demoRoute, dataDir: data})
	out, _, _ := run(t, s.env(), "keys", "create", "--name", "k", "--scopes", "demo:read", "--json")
	var k struct{ ID, Key string }
	json.Unmarshal([]byte(out), &k)
	for _, auth := range []string{"Bearer " + k.Key, "Bearer gk_aaaaaaaaaaaaaaaa_bad", ""} {
		req, _ := http.NewRequest("GET", s.base+"/demo/x", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	// The admin API serves the trail while the server runs.
	req, _ := http.NewRequest("GET", s.admin+"/v1/audit?type=authn.failure", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Entries []struct {
			Event map[string]any `json:"event"`
		} `json:"entries"`
	}
	json.NewDecoder(res.Body).Decode(&page)
	res.Body.Close()
	if len(page.Entries) != 2 {
		t.Fatalf("GET /v1/audit?type=authn.failure: %d entries, want 2", len(page.Entries))
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.exited

	events := exportEvents(t, data)
	types := map[string]int{}
	for _, e := range events {
		types[e["type"].(string)]++
		raw, _ := json.Marshal(e)
		if strings.Contains(string(raw), k.Key) || strings.Contains(string(raw), s.token) {
			t.Errorf("a credential is in the audit log: %s", raw)
		}
	}
	for _, want := range []string{"config.loaded", "system.startup", "admin.key.create", "http.request", "authn.failure", "system.shutdown"} {
		if types[want] == 0 {
			t.Errorf("no %s event; have %v", want, types)
		}
	}
	out, errOut, code := run(t, nil, "audit", "verify", "--data-dir", data)
	if code != 0 || !strings.HasPrefix(out, "audit log OK: ") {
		t.Fatalf("verify: %d %q %q", code, out, errOut)
	}
	pub, _, _ := run(t, nil, "audit", "pubkey", "--data-dir", data)
	cp, _, _ := run(t, nil, "audit", "checkpoint", "--data-dir", data)
	if !strings.HasPrefix(cp, "gatehouse/") || !strings.Contains(cp, "\n\n— ") || strings.TrimSpace(pub) == "" {
		t.Fatalf("checkpoint %q, pubkey %q", cp, pub)
	}
	proof, _, code := run(t, nil, "audit", "proof", "--data-dir", data, "--index", "1")
	if code != 0 || !strings.Contains(proof, `"hashes"`) {
		t.Fatalf("proof: %d %s", code, proof)
	}
	// One flipped byte in the stored events fails verification.
	segs, _ := filepath.Glob(filepath.Join(data, "audit", "segments", "*.seg"))
	sort.Strings(segs)
	b, _ := os.ReadFile(segs[0])
	i := strings.Index(string(b), "http.request")
	b[i] ^= 0x20
	os.WriteFile(segs[0], b, 0o600)
	_, errOut, code = run(t, nil, "audit", "verify", "--data-dir", data)
	if code != 1 || !strings.Contains(errOut, "entry ") {
		t.Fatalf("verify after tampering: %d %q", code, errOut)
	}
}

// TestKill9UnderLoad kills a serving gatehouse with SIGKILL while clients
// hammer it, and checks that every request that got a response has its
// event in the log, and that the log verifies.
func TestKill9UnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a server under load")
	}
	data := filepath.Join(t.TempDir(), "data")
	s := startServerWith(t, serverOpts{config: "log: {access: false}\nratelimit: {default: {requests: 1000000, per: 1m}}\n" + demoRoute, dataDir: data})
	out, _, _ := run(t, s.env(), "keys", "create", "--name", "k", "--scopes", "demo:read", "--json")
	var k struct{ Key string }
	json.Unmarshal([]byte(out), &k)

	var mu sync.Mutex
	acked := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}, Timeout: 5 * time.Second}
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", s.base+"/demo/x", nil)
				req.Header.Set("Authorization", "Bearer "+k.Key)
				res, err := client.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				mu.Lock()
				acked[res.Header.Get("X-Request-Id")] = true
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	close(stop)
	wg.Wait()
	if len(acked) < 100 {
		t.Fatalf("only %d requests were answered before the kill", len(acked))
	}
	if out, errOut, code := run(t, nil, "audit", "verify", "--data-dir", data); code != 0 {
		t.Fatalf("verify after kill -9: %d %q %q", code, out, errOut)
	}
	logged := map[string]bool{}
	for _, e := range exportEvents(t, data) {
		if r, ok := e["request"].(map[string]any); ok && r["request_id"] != nil {
			logged[r["request_id"].(string)] = true
		}
	}
	missing := 0
	for id := range acked {
		if !logged[id] {
			missing++
		}
	}
	t.Logf("%d acknowledged requests, %d events, %d missing", len(acked), len(logged), missing)
	if missing > 0 {
		t.Fatalf("%d acknowledged requests have no audit event", missing)
	}
	// The next start recovers the log (cutting any torn tail) and serves.
	s2 := startServerWith(t, serverOpts{config: demoRoute, dataDir: data, env: []string{"GATEHOUSE_ADMIN_TOKEN=not-printed-on-restart-0123"}})
	s2.cmd.Process.Signal(syscall.SIGTERM)
	<-s2.exited
	if out, errOut, code := run(t, nil, "audit", "verify", "--data-dir", data); code != 0 {
		t.Fatalf("verify after restart: %d %q %q", code, out, errOut)
	}
}
