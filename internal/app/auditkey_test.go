package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/compliance"
)

// TestAuditKeyRotation rotates the audit key of a file-log deployment
// while requests flow: none fails; the hand-over checkpoint is written;
// the log verifies from the original key across it; an evidence report
// and a backup made before the rotation still verify, new ones are signed
// by the new key; no private key reaches an answer or an audit event.
func TestAuditKeyRotation(t *testing.T) {
	h := MustStartWith(t, backupConfig(t, filepath.Join(t.TempDir(), "backups")))
	auth := "Authorization: Bearer " + adminToken
	ctx := context.Background()
	auditDir := filepath.Join(h.dataDir, "audit")
	oldKey, err := audit.ReadVerifierKey(auditDir)
	if err != nil {
		t.Fatal(err)
	}
	key := h.createKey(map[string]any{"name": "load", "scopes": []string{"read:signals"}})
	var b struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(h.expect(201, "POST", h.admin+"/v1/backups", nil, auth), &b); err != nil || b.ID == "" {
		t.Fatalf("backup before: %v", err)
	}
	reportBefore := h.expect(200, "GET", h.admin+"/v1/evidence?period=2025-10-01..2026-01-31", nil, auth)

	var failed, done atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
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
				res := h.do("GET", h.base+"/api/v1/signals/x", nil, "Authorization: Bearer "+key.Key)
				res.Body.Close()
				if res.StatusCode != 200 {
					failed.Add(1)
				}
				done.Add(1)
			}
		}()
	}
	var out struct {
		Before secretStatusOut `json:"before"`
		After  secretStatusOut `json:"after"`
	}
	err = json.Unmarshal(h.expect(200, "POST", h.admin+"/v1/secrets/audit-key/rotate", nil, auth), &out)
	for n := done.Load(); done.Load() < n+50; {
		time.Sleep(time.Millisecond) // requests after the rotation too
	}
	close(stop)
	wg.Wait()
	if err != nil || !out.After.Rotatable {
		t.Fatalf("rotate: %v %+v", err, out)
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during the rotation", failed.Load(), done.Load())
	}
	newKey, _ := audit.ReadVerifierKey(auditDir)
	cp := h.expect(200, "GET", h.admin+"/v1/audit/checkpoint", nil, auth)
	if _, err := audit.OpenCheckpoint(cp, newKey); newKey == oldKey || err != nil {
		t.Fatal("the log is not signed by a new key")
	}
	ring, _ := os.ReadFile(filepath.Join(auditDir, "log.key"))
	if strings.Count(string(ring), "PRIVATE+KEY") != 2 {
		t.Fatal("the audit-key secret does not hold the new key and the one it succeeds")
	}

	ev := h.auditEvents("audit.key.rotate")
	if len(ev) != 1 {
		t.Fatalf("audit.key.rotate events: %v", ev)
	}
	d := ev[0]["details"].(map[string]any)
	if d["handed_over"] != true || d["to_verifier_key"] != newKey || d["from_verifier_key"] != oldKey || d["tree_size"].(float64) == 0 {
		t.Fatalf("audit.key.rotate details: %v", d)
	}
	if n := len(h.auditEvents("admin.secret.rotate")); n != 1 {
		t.Fatalf("%d admin.secret.rotate events", n)
	}
	for _, l := range strings.Split(string(ring), "\n") {
		if l == "" {
			continue
		}
		if s := toJSON(ev) + h.logs.String(); strings.Contains(s, l) || strings.Contains(s, "PRIVATE+KEY") {
			t.Fatal("a private audit key in an event or the log")
		}
	}

	// The log verifies from the original key, across the hand-over.
	h.expect(200, "GET", h.admin+"/v1/audit/checkpoint", nil, auth)
	res, err := audit.Verify(ctx, auditDir, audit.VerifyOptions{VerifierKey: oldKey})
	if err != nil || len(res.Keys) != 2 || res.Keys[1].VerifierKey != newKey || res.Keys[1].Since != uint64(d["tree_size"].(float64)) {
		t.Fatalf("verify: %+v %v", res, err)
	}
	var chain struct {
		Keys []audit.KeyEpoch `json:"keys"`
	}
	if err := json.Unmarshal(h.expect(200, "GET", h.admin+"/v1/audit/keys", nil, auth), &chain); err != nil || len(chain.Keys) != 2 || chain.Keys[0].VerifierKey != oldKey {
		t.Fatalf("GET /v1/audit/keys: %+v %v", chain, err)
	}

	// Made before: still verify. Made after: signed by the new key.
	verifyBackup := func(id string) {
		t.Helper()
		var v struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(h.expect(200, "POST", h.admin+"/v1/backups/"+id+"/verify", nil, auth), &v); err != nil || !v.OK {
			t.Fatalf("backup %s verify: %+v %v", id, v, err)
		}
	}
	verifyBackup(b.ID)
	if r, err := compliance.VerifyKeys(reportBefore, []string{oldKey, newKey}); err != nil || !r.OK() {
		t.Fatalf("report made before, with the key chain: %+v %v", r, err)
	}
	if r, err := compliance.Verify(reportBefore, newKey); err != nil || r.OK() {
		t.Fatalf("report made before, with only the new key: %+v %v", r, err)
	}
	reportAfter := h.expect(200, "GET", h.admin+"/v1/evidence?period=2025-10-01..2026-01-31", nil, auth)
	if r, err := compliance.Verify(reportAfter, newKey); err != nil || !r.OK() {
		t.Fatalf("report made after: %+v %v", r, err)
	}
	if err := json.Unmarshal(h.expect(201, "POST", h.admin+"/v1/backups", nil, auth), &b); err != nil {
		t.Fatal(err)
	}
	verifyBackup(b.ID)

	// A second rotation, then a restart: the log keeps its chain.
	if code := h.adminCall("POST", "/v1/secrets/audit-key/rotate", nil, &out); code != 200 {
		t.Fatalf("second rotation: %d", code)
	}
	h.restart()
	h.expect(200, "GET", h.admin+"/v1/audit/checkpoint", nil, auth)
	res, err = audit.Verify(ctx, auditDir, audit.VerifyOptions{VerifierKey: oldKey})
	if err != nil || len(res.Keys) != 3 {
		t.Fatalf("after a second rotation and a restart: %+v %v", res, err)
	}
	t.Log(res, fmt.Sprintf("; %d requests during the rotation", done.Load()))
}
