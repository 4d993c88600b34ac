package main_test

import (
	"context"
	be "encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse/gatehouse/internal/secrets/vaulttest"
	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
)

// load sends requests with an API key to each server's demo route until
// stop is closed, and returns how many were sent and the failures.
func load(t *testing.T, servers []*server, key string, stop chan struct{}) func() (int, []error) {
	var mu sync.Mutex
	var n int
	var errs []error
	var wg sync.WaitGroup
	for _, s := range servers {
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
				req.Header.Set("Authorization", "Bearer "+key)
				res, err := http.DefaultClient.Do(req)
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						err = fmt.Errorf("%s: %d", s.base, res.StatusCode)
					}
				}
				mu.Lock()
				n++
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	return func() (int, []error) {
		wg.Wait()
		return n, errs
	}
}

func mustRun(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, env, args...)
	if code != 0 {
		t.Fatalf("gatehouse %s: exit %d: %s %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func apiKey(t *testing.T, s *server) string {
	t.Helper()
	var k struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, s.env(), "keys", "create", "--name", "load", "--scopes", "demo:read", "--json")), &k); err != nil || k.Key == "" {
		t.Fatalf("create key: %v", err)
	}
	return k.Key
}

type keyEpochOut struct {
	VerifierKey string `json:"verifier_key"`
	KeyID       string `json:"key_id"`
	Since       uint64 `json:"since_tree_size"`
	HandOver    int    `json:"handover_checkpoint"`
}

func auditKeys(t *testing.T, args ...string) []keyEpochOut {
	t.Helper()
	var chain []keyEpochOut
	if err := json.Unmarshal([]byte(mustRun(t, nil, append([]string{"audit", "keys", "--json"}, args...)...)), &chain); err != nil {
		t.Fatal(err)
	}
	return chain
}

// noPrivateKey fails if any of outs holds a private audit key.
func noPrivateKey(t *testing.T, outs ...string) {
	t.Helper()
	for _, o := range outs {
		if strings.Contains(o, "PRIVATE+KEY+") {
			t.Fatal("a private audit key in the output")
		}
	}
}

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

// checkpointNotes splits an audit dir's checkpoints file into its notes.
func checkpointNotes(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for pos := 0; pos+8 <= len(b); {
		n := int(be.BigEndian.Uint32(b[pos:]))
		out = append(out, b[pos+8:pos+8+n])
		pos += 8 + n
	}
	return out
}

func writeCheckpointNotes(t *testing.T, path string, notes [][]byte) {
	t.Helper()
	var b []byte
	for _, n := range notes {
		b = be.BigEndian.AppendUint32(b, uint32(len(n)))
		b = be.BigEndian.AppendUint32(b, crc32.Checksum(n, castagnoliTable))
		b = append(b, n...)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func noteText(t *testing.T, signed []byte) string {
	t.Helper()
	_, err := note.Open(signed, note.VerifierList())
	var unv *note.UnverifiedNoteError
	if !errors.As(err, &unv) {
		t.Fatal(err)
	}
	return unv.Note.Text
}

// TestAuditKeyRotationFile rotates the audit key of a file-log server
// twice while it serves (no request fails), then checks through the
// binary that `audit verify` follows the chain from the original key,
// that `audit keys` lists it, and that tampering with a hand-over is
// refused.
func TestAuditKeyRotationFile(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	s := startServerWith(t, serverOpts{config: "ratelimit: {default: {requests: 1000000, per: 1m}}\n" + demoRoute, dataDir: dataDir})
	orig := strings.TrimSpace(mustRun(t, nil, "audit", "pubkey", "--data-dir", dataDir))
	key := apiKey(t, s)
	stop := make(chan struct{})
	wait := load(t, []*server{s}, key, stop)
	time.Sleep(200 * time.Millisecond)
	var outs []string
	for range 2 {
		outs = append(outs, mustRun(t, s.env(), "secrets", "rotate", "audit-key", "--json"))
		time.Sleep(200 * time.Millisecond)
	}
	close(stop)
	n, errs := wait()
	for _, err := range errs {
		t.Error(err)
	}
	if n < 10 {
		t.Fatalf("only %d requests during the rotations", n)
	}
	chain := auditKeys(t, "--data-dir", dataDir)
	if len(chain) != 3 || chain[0].VerifierKey != orig || chain[1].Since == 0 || chain[2].Since < chain[1].Since {
		t.Fatalf("audit keys: %+v", chain)
	}
	if cur := strings.TrimSpace(mustRun(t, nil, "audit", "pubkey", "--data-dir", dataDir)); cur != chain[2].VerifierKey {
		t.Fatalf("audit pubkey after the rotations: %s", cur)
	}
	s.stop(t)
	out := mustRun(t, nil, "audit", "verify", "--data-dir", dataDir, "--key", orig)
	if !strings.Contains(out, fmt.Sprintf("hand-over at tree size %d", chain[1].Since)) || !strings.Contains(out, chain[2].KeyID) {
		t.Fatalf("audit verify: %s", out)
	}
	t.Logf("%d requests during two rotations, none failed; %s", n, strings.TrimSpace(out))
	events := mustRun(t, nil, "audit", "export", "--data-dir", dataDir, "--type", "audit.key.rotate")
	if strings.Count(events, "\n") != 2 || !strings.Contains(events, `"handed_over":true`) {
		t.Fatalf("audit.key.rotate events: %s", events)
	}
	noPrivateKey(t, append(outs, out, events, s.logs.String(), mustRun(t, nil, "audit", "export", "--data-dir", dataDir))...)

	// Tampering with the hand-overs, on copies of the audit dir.
	ring, _ := os.ReadFile(filepath.Join(dataDir, "audit", "log.key"))
	lines := strings.Fields(string(ring)) // the newest key, then the one it succeeds (key 2)
	key2, err := note.NewSigner(lines[1])
	if err != nil {
		t.Fatal(err)
	}
	attacker, _, _ := note.GenerateKey(nil, key2.Name())
	forger, _ := note.NewSigner(attacker)
	first := chain[1].HandOver
	for _, tc := range []struct {
		name string
		edit func(notes [][]byte) [][]byte
		want string
	}{
		{"hand-over removed", func(notes [][]byte) [][]byte { return append(notes[:first:first], notes[first+1:]...) }, "which no hand-over introduced"},
		{"hand-over signed by only the new key", func(notes [][]byte) [][]byte {
			notes[first], _ = note.Sign(&note.Note{Text: noteText(t, notes[first])}, key2)
			return notes
		}, "a key cannot introduce itself"},
		{"forged successor key", func(notes [][]byte) [][]byte {
			notes[first+1], _ = note.Sign(&note.Note{Text: noteText(t, notes[first+1])}, forger)
			return notes
		}, "which no hand-over introduced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := filepath.Join(t.TempDir(), "data")
			if err := os.CopyFS(filepath.Join(d, "audit"), os.DirFS(filepath.Join(dataDir, "audit"))); err != nil {
				t.Fatal(err)
			}
			cps := filepath.Join(d, "audit", "checkpoints")
			writeCheckpointNotes(t, cps, tc.edit(checkpointNotes(t, cps)))
			out, errOut, code := run(t, nil, "audit", "verify", "--data-dir", d, "--key", orig)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("audit verify: exit %d %s %s, want 1 and %q", code, out, errOut, tc.want)
			}
			noPrivateKey(t, out, errOut)
		})
	}
}

// TestAuditKeyRotationPostgres rotates the audit key on one of two
// replicas of a PostgreSQL log while both serve, with the secrets sealed
// in PostgreSQL and in Vault (the in-process KV v2 server): the leader
// hands over (at once, or when it polls the secret), a leader change
// afterwards signs with the new key, and `audit verify --store` follows
// the chain; a removed hand-over is refused.
func TestAuditKeyRotationPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers on PostgreSQL")
	}
	base := "ratelimit: {default: {requests: 1000000, per: 1m}}\n" + demoRoute
	t.Run("sealed", func(t *testing.T) {
		dsn := pgtest.MustCreateDatabase(t)
		rotateAuditKeyOnReplicas(t, dsn, fmt.Sprintf("store: {driver: postgres, dsn: %q}\n", dsn)+base, []string{"GATEHOUSE_SECRET_MASTER_KEY=" + newMasterKey()})
	})
	t.Run("vault", func(t *testing.T) {
		v := vaulttest.New(vaulttest.Config{})
		defer v.Close()
		dsn := pgtest.MustCreateDatabase(t)
		cfg := fmt.Sprintf("store: {driver: postgres, dsn: %q}\nsecrets:\n  provider: vault\n  vault: {address: %q, auth: token, poll: 1s}\n", dsn, v.URL) + base
		rotateAuditKeyOnReplicas(t, dsn, cfg, []string{"VAULT_TOKEN=" + v.RootToken("")})
	})
}

func rotateAuditKeyOnReplicas(t *testing.T, dsn, cfg string, env []string) {
	env = append(env, "GATEHOUSE_ADMIN_TOKEN=rotation-admin-token-0123456789")
	a := startServerWith(t, serverOpts{config: cfg, env: env})
	b := startServerWith(t, serverOpts{config: cfg, env: env})
	orig := strings.TrimSpace(mustRun(t, nil, "audit", "pubkey", "--store", dsn))
	key := apiKey(t, a)
	stop := make(chan struct{})
	wait := load(t, []*server{a, b}, key, stop)
	time.Sleep(200 * time.Millisecond)
	out := mustRun(t, b.env(), "secrets", "rotate", "audit-key")
	deadline := time.Now().Add(20 * time.Second) // the sealed store is polled every 10 s
	for strings.TrimSpace(mustRun(t, nil, "audit", "pubkey", "--store", dsn)) == orig {
		if time.Now().After(deadline) {
			t.Fatal("the log was not handed over to the new key within 20 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	n, errs := wait()
	for _, err := range errs {
		t.Error(err)
	}
	// A leader change after the rotation: stop both in turn, requests
	// to the one left, then verify.
	a.stop(t)
	stop2 := make(chan struct{})
	wait2 := load(t, []*server{b}, key, stop2)
	time.Sleep(time.Second)
	close(stop2)
	if _, errs := wait2(); len(errs) > 0 {
		t.Fatal(errs)
	}
	b.stop(t)
	chain := auditKeys(t, "--store", dsn)
	if len(chain) != 2 || chain[0].VerifierKey != orig {
		t.Fatalf("audit keys: %+v", chain)
	}
	v := mustRun(t, nil, "audit", "verify", "--store", dsn, "--key", orig)
	if !strings.Contains(v, fmt.Sprintf("hand-over at tree size %d", chain[1].Since)) {
		t.Fatalf("audit verify --store: %s", v)
	}
	t.Logf("%d requests on two replicas during the rotation, none failed; %s", n, strings.TrimSpace(v))
	noPrivateKey(t, out, v, a.logs.String(), b.logs.String())

	db, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	if _, err := db.Exec(context.Background(), `DELETE FROM audit_checkpoints WHERE position(convert_to('gatehouse-key-handover ', 'UTF8') IN note) > 0`); err != nil {
		t.Fatal(err)
	}
	o, errOut, code := run(t, nil, "audit", "verify", "--store", dsn, "--key", orig)
	if code != 1 || !strings.Contains(errOut, "which no hand-over introduced") {
		t.Fatalf("verify without the hand-over: exit %d %s %s", code, o, errOut)
	}
}
