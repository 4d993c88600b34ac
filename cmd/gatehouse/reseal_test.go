package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/secrets"
)

type masterKeyStatus struct {
	Name                string   `json:"name"`
	KeyID               string   `json:"key_id"`
	PreviousKeyIDs      []string `json:"previous_key_ids"`
	SealedUnderPrevious *int     `json:"sealed_under_previous"`
	Rotatable           bool     `json:"rotatable"`
}

func masterKeyEntry(t *testing.T, s *server) masterKeyStatus {
	t.Helper()
	out, errOut, code := run(t, s.env(), "secrets", "status", "--json")
	var list []masterKeyStatus
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("secrets status --json: %d %s %s", code, out, errOut)
	}
	for _, st := range list {
		if st.Name == "master-key" {
			return st
		}
	}
	t.Fatalf("no master-key in the status: %s", out)
	return masterKeyStatus{}
}

func stopServer(t *testing.T, s *server) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop", s.base)
	}
}

// TestMasterKeyRotation through the binary: secrets sealed under K1 (two
// replicas made them); a replica given only K2 refuses to start naming
// K1's id and what to do; replicas with K2 and K1 as previous serve
// A's keys and JWTs; `gatehouse secrets reseal` re-seals every row under
// K2 while both serve (no failed request, a signing-key rotation on the
// other replica meanwhile), a second run re-seals nothing; then a
// replica with K2 alone starts and serves the same keys. Audited as
// admin.secret.rotate with key ids, never a key.
func TestMasterKeyRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers on PostgreSQL")
	}
	k1, k2 := newMasterKey(), newMasterKey()
	id := func(text string) string {
		k, err := secrets.ParseMasterKey(text)
		if err != nil {
			t.Fatal(err)
		}
		return k.ID()
	}
	id1, id2 := id(k1), id(k2)
	dsn, cfg := sharedReplicas(t, "", "", []string{"GATEHOUSE_SECRET_MASTER_KEY=" + k1})

	out := serveFails(t, cfg, []string{"GATEHOUSE_SECRET_MASTER_KEY=" + k2})
	for _, want := range []string{"key id " + id1, "GATEHOUSE_SECRET_MASTER_KEY holds key id " + id2, "GATEHOUSE_SECRET_MASTER_KEY_PREVIOUS", "gatehouse secrets reseal"} {
		if !strings.Contains(out, want) {
			t.Errorf("K2 alone before the reseal: want %q in\n%s", want, out)
		}
	}
	if out := serveFails(t, cfg, []string{"GATEHOUSE_SECRET_MASTER_KEY=" + k2, "GATEHOUSE_SECRET_MASTER_KEY_PREVIOUS=" + k1[:20]}); !strings.Contains(out, "GATEHOUSE_SECRET_MASTER_KEY_PREVIOUS (key 1 of 1) must be 32 random bytes") || strings.Contains(out, k1[:20]) {
		t.Errorf("malformed previous key: %s", out)
	}
	if out := serveFails(t, cfg, []string{"GATEHOUSE_SECRET_MASTER_KEY_PREVIOUS=" + k1}); !strings.Contains(out, "GATEHOUSE_SECRET_MASTER_KEY_PREVIOUS is set without GATEHOUSE_SECRET_MASTER_KEY") {
		t.Errorf("previous key alone: %s", out)
	}

	env := []string{"GATEHOUSE_SECRET_MASTER_KEY=" + k2, "GATEHOUSE_SECRET_MASTER_KEY_PREVIOUS=" + k1, "GATEHOUSE_ADMIN_TOKEN=replica-admin-token-0123456789"}
	a := startServerWith(t, serverOpts{config: cfg, dataDir: filepath.Join(t.TempDir(), "a"), env: env})
	b := startServerWith(t, serverOpts{config: cfg, dataDir: filepath.Join(t.TempDir(), "b"), env: env})
	st := masterKeyEntry(t, a)
	if st.KeyID != id2 || len(st.PreviousKeyIDs) != 1 || st.PreviousKeyIDs[0] != id1 || st.SealedUnderPrevious == nil || *st.SealedUnderPrevious == 0 || !st.Rotatable {
		t.Fatalf("status before the reseal: %+v", st)
	}
	before := *st.SealedUnderPrevious
	key := createKey(t, a, "during-rotation")

	// Both replicas serve while A re-seals and B rotates its signing keys.
	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for _, s := range []*server{a, b} {
		for range 4 {
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
					req.Header.Set("X-API-Key", key)
					res, err := client.Do(req)
					sent.Add(1)
					if err != nil {
						failed.Add(1)
						continue
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						failed.Add(1)
					}
				}
			}()
		}
	}
	var rotateErr string
	var rw sync.WaitGroup
	rw.Add(1)
	go func() {
		defer rw.Done()
		if _, errOut, code := run(t, b.env(), "secrets", "rotate", "signing-keys"); code != 0 {
			rotateErr = errOut
		}
	}()
	out, errOut, code := run(t, a.env(), "secrets", "reseal", "--json")
	rw.Wait()
	for sent.Load() < 200 {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests while re-sealing, %d failed", sent.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during the reseal", failed.Load(), sent.Load())
	}
	if rotateErr != "" {
		t.Errorf("signing-key rotation on B during the reseal: %s", rotateErr)
	}
	var after masterKeyStatus
	if code != 0 || json.Unmarshal([]byte(out), &after) != nil || after.KeyID != id2 || after.SealedUnderPrevious == nil || *after.SealedUnderPrevious != 0 {
		t.Fatalf("secrets reseal --json: %d %s %s", code, out, errOut)
	}
	if text, errOut, code := run(t, a.env(), "secrets", "reseal"); code != 0 || !strings.Contains(text, "rows under a previous key before") || !strings.Contains(text, id2) {
		t.Errorf("second reseal: %d %s %s", code, text, errOut)
	}
	if st := masterKeyEntry(t, b); *st.SealedUnderPrevious != 0 {
		t.Errorf("B's status after the reseal: %+v", st)
	}
	stopServer(t, a)
	stopServer(t, b)

	// K2 alone now: starts, serves the key made before, K1 alone refuses.
	c := startServerWith(t, serverOpts{config: cfg, dataDir: filepath.Join(t.TempDir(), "c"),
		env: []string{"GATEHOUSE_SECRET_MASTER_KEY=" + k2, "GATEHOUSE_ADMIN_TOKEN=replica-admin-token-0123456789"}})
	req, _ := http.NewRequest("GET", c.base+"/demo/x", nil)
	req.Header.Set("X-API-Key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("a key made before the reseal on a K2-only replica: %d", res.StatusCode)
	}
	stopServer(t, c)
	if out := serveFails(t, cfg, []string{"GATEHOUSE_SECRET_MASTER_KEY=" + k1}); !strings.Contains(out, "key id "+id2) {
		t.Errorf("K1 alone after the reseal: %s", out)
	}

	// The audit event names key ids and counts, never a key.
	events, errOut, code := run(t, nil, "audit", "export", "--store", dsn)
	if code != 0 {
		t.Fatalf("audit export --store: %d %s", code, errOut)
	}
	var rotations []string
	for _, line := range strings.Split(events, "\n") {
		if strings.Contains(line, "secret:master-key") {
			rotations = append(rotations, line)
		}
	}
	if len(rotations) != 2 {
		t.Errorf("want two admin.secret.rotate of the master key, got:\n%s", strings.Join(rotations, "\n"))
	}
	events = strings.Join(rotations, "\n")
	t.Logf("%s", events)
	if !strings.Contains(events, "secret:master-key") || !strings.Contains(events, id2) || !strings.Contains(events, id1) {
		t.Errorf("no admin.secret.rotate of the master key with its key ids:\n%s", events)
	}
	for _, k := range []string{k1, k2} {
		if strings.Contains(events, k) || strings.Contains(a.logs.String()+b.logs.String()+c.logs.String(), k) {
			t.Error("a master key in the audit log or a server log")
		}
	}
	if !strings.Contains(events, `"sealed_under_previous_before":`+strconv.Itoa(before)) {
		t.Errorf("the first rotation's count before: want %d in\n%s", before, events)
	}
}
