package audit_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"

	"github.com/gatehouse/gatehouse/internal/audit"
	"golang.org/x/mod/sumdb/note"
)

// MustKeyRing returns a new key ring of one key named testOrigin.
func MustKeyRing(tb testing.TB) audit.KeyRing {
	tb.Helper()
	skey, err := audit.GenerateSignerKey(testOrigin)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := audit.ParseKeyRing(skey, testOrigin)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func mustRotate(tb testing.TB, r audit.KeyRing) audit.KeyRing {
	tb.Helper()
	n, err := r.Rotate()
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func withKey(r audit.KeyRing) func(*audit.Config) {
	return func(c *audit.Config) {
		c.Signer, c.VerifierKey, c.Previous = r.Active.Signer, r.Active.VerifierKey, r.Previous
	}
}

// rotatedLog makes a closed log of 50 entries: checkpoints at 10, 20 and
// 30 (0–2) under r0's key, the hand-over to r1's at 30 (3), then
// checkpoints at 40 and 50 (4, 5) under r1's.
func rotatedLog(t *testing.T) (dir string, r0, r1 audit.KeyRing, before []byte) {
	t.Helper()
	ctx := context.Background()
	dir = t.TempDir()
	r0 = MustKeyRing(t)
	r1 = mustRotate(t, r0)
	l := MustOpenLog(t, dir, withKey(r0))
	appendN(t, l, 30, 10)
	before = l.Checkpoint()
	ho, err := l.RotateKey(ctx, r1.Active)
	if err != nil {
		t.Fatal(err)
	}
	if ho.Size != 30 || ho.From != r0.Active.VerifierKey || ho.To != r1.Active.VerifierKey {
		t.Fatalf("hand-over = %+v", ho)
	}
	if l.VerifierKey() != r1.Active.VerifierKey {
		t.Fatal("the log does not report the new key")
	}
	appendN(t, l, 20, 10)
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return dir, r0, r1, before
}

func TestKeyRing(t *testing.T) {
	r0 := MustKeyRing(t)
	r1 := mustRotate(t, r0)
	if r1.Previous == nil || r1.Previous.VerifierKey != r0.Active.VerifierKey || r1.Active.VerifierKey == r0.Active.VerifierKey {
		t.Fatalf("rotated ring %v", r1)
	}
	back, err := audit.ParseKeyRing(string(r1.Marshal()), testOrigin)
	if err != nil || back.Active.VerifierKey != r1.Active.VerifierKey || back.Previous.VerifierKey != r0.Active.VerifierKey {
		t.Fatalf("round trip: %v %v", back, err)
	}
	r2 := mustRotate(t, r1)
	if r2.Previous.VerifierKey != r1.Active.VerifierKey || strings.Count(string(r2.Marshal()), "PRIVATE+KEY") != 2 {
		t.Fatal("a second rotation keeps only the key it succeeds")
	}
	for _, s := range []string{fmt.Sprint(r1), fmt.Sprintf("%+v", r1), fmt.Sprintf("%v", *r1.Active)} {
		if strings.Contains(s, "PRIVATE") {
			t.Fatalf("a ring prints its private key: %s", s)
		}
	}
	for name, text := range map[string]string{
		"three keys": string(r1.Marshal()) + string(r0.Marshal()),
		"same twice": string(r0.Marshal()) + string(r0.Marshal()),
		"empty":      "\n",
		"garbage":    "PRIVATE+KEY+hunter2\n",
	} {
		if _, err := audit.ParseKeyRing(text, testOrigin); err == nil || strings.Contains(err.Error(), "PRIVATE+KEY+gatehouse") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := audit.ParseKeyRing(string(r1.Marshal()), "other/origin"); err == nil {
		t.Error("a ring of another origin parses")
	}
}

func TestRotateKeyVerify(t *testing.T) {
	ctx := context.Background()
	dir, r0, r1, before := rotatedLog(t)
	for name, opts := range map[string]audit.VerifyOptions{
		"log.pub (the new key)":   {},
		"the original key":        {VerifierKey: r0.Active.VerifierKey},
		"the new key":             {VerifierKey: r1.Active.VerifierKey},
		"checkpoint before":       {VerifierKey: r0.Active.VerifierKey, Checkpoint: before},
		"checkpoint before (new)": {Checkpoint: before},
	} {
		t.Run(name, func(t *testing.T) {
			res, err := audit.Verify(ctx, dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.Checkpoints != 6 || len(res.Keys) != 2 || res.Keys[1].Since != 30 || res.Keys[1].HandOver != 3 || res.Keys[0].HandOver != -1 {
				t.Fatalf("result %+v", res)
			}
			if res.Keys[0].VerifierKey != r0.Active.VerifierKey || res.Keys[1].VerifierKey != r1.Active.VerifierKey {
				t.Fatalf("chain %+v", res.Keys)
			}
			if s := res.String(); !strings.Contains(s, "hand-over at tree size 30") || !strings.Contains(s, r1.Active.String()) {
				t.Fatalf("summary %q", s)
			}
			if opts.Checkpoint != nil && !res.ExternalChecked {
				t.Fatal("external checkpoint not checked")
			}
		})
	}
	// Reopening with the new ring writes no further hand-over; the
	// checkpoint and proofs offline use the new key.
	l := MustOpenLog(t, dir, withKey(r1))
	appendN(t, l, 5, 5)
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := audit.Verify(ctx, dir, audit.VerifyOptions{VerifierKey: r0.Active.VerifierKey}); err != nil || len(res.Keys) != 2 || res.Checkpoints != 7 {
		t.Fatalf("after reopen: %+v %v", res, err)
	}
	signed, err := audit.LatestCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.OpenCheckpoint(signed, r1.Active.VerifierKey); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.InclusionProof(ctx, dir, 3); err != nil {
		t.Fatal(err)
	}
	if pub, _ := audit.ReadVerifierKey(dir); pub != r1.Active.VerifierKey {
		t.Fatal("log.pub does not hold the new key")
	}
	// A second rotation: three keys.
	r2 := mustRotate(t, r1)
	l = MustOpenLog(t, dir, withKey(r1))
	if _, err := l.RotateKey(ctx, r1.Active); !errors.Is(err, audit.ErrSameKey) {
		t.Fatalf("rotate to the same key: %v", err)
	}
	if _, err := l.RotateKey(ctx, r2.Active); err != nil {
		t.Fatal(err)
	}
	sum := [32]byte{1}
	sig, err := l.SignReport(sum)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.OpenReportSignature(sig, r2.Active.VerifierKey); err != nil {
		t.Fatalf("report after rotation not signed by the new key: %v", err)
	}
	appendN(t, l, 3, 3)
	l.Close(ctx)
	res, err := audit.Verify(ctx, dir, audit.VerifyOptions{VerifierKey: r0.Active.VerifierKey})
	if err != nil || len(res.Keys) != 3 || res.Keys[2].Since != 55 {
		t.Fatalf("two rotations: %+v %v", res, err)
	}
	chain, err := audit.KeyChain(r2.Active.VerifierKey, checkpointFrames(t, dir))
	if err != nil || len(chain) != 3 || chain[0].VerifierKey != r0.Active.VerifierKey || chain[2].Since != 55 {
		t.Fatalf("key chain from the newest key: %+v %v", chain, err)
	}
}

// TestRotateKeyAtOpen: the new ring was stored but the process stopped
// before the hand-over; the next Open writes it.
func TestRotateKeyAtOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r0 := MustKeyRing(t)
	l := MustOpenLog(t, dir, withKey(r0))
	appendN(t, l, 12, 6)
	l.Close(ctx)
	r1 := mustRotate(t, r0)
	l = MustOpenLog(t, dir, withKey(r1))
	if l.VerifierKey() != r1.Active.VerifierKey {
		t.Fatal("open did not hand over")
	}
	appendN(t, l, 4, 4)
	l.Close(ctx)
	res, err := audit.Verify(ctx, dir, audit.VerifyOptions{VerifierKey: r0.Active.VerifierKey})
	if err != nil || len(res.Keys) != 2 || res.Keys[1].Since != 12 {
		t.Fatalf("%+v %v", res, err)
	}
	// A crash after the hand-over but before log.pub: Open follows the
	// hand-over instead of writing a second one.
	mustWrite(t, filepath.Join(dir, "log.pub"), []byte(r0.Active.VerifierKey+"\n"))
	n := len(checkpointFrames(t, dir))
	l = MustOpenLog(t, dir, withKey(r1))
	l.Close(ctx)
	if got := len(checkpointFrames(t, dir)); got != n {
		t.Fatalf("%d checkpoints after reopen, want %d", got, n)
	}
	if pub, _ := audit.ReadVerifierKey(dir); pub != r1.Active.VerifierKey {
		t.Fatal("log.pub not repaired")
	}
	// A ring that does not continue the log's key is refused.
	other := mustRotate(t, MustKeyRing(t))
	_, err = audit.Open(ctx, audit.Config{Dir: dir, Origin: testOrigin, Signer: other.Active.Signer, VerifierKey: other.Active.VerifierKey, Previous: other.Previous})
	if err == nil || !strings.Contains(err.Error(), "not the one of the log") {
		t.Fatalf("foreign ring: %v", err)
	}
}

// resign signs the text of a checkpoint again with signers.
func resign(t *testing.T, signed []byte, signers ...note.Signer) []byte {
	t.Helper()
	_, err := note.Open(signed, note.VerifierList())
	var unv *note.UnverifiedNoteError
	if !errors.As(err, &unv) {
		t.Fatal(err)
	}
	out, err := note.Sign(&note.Note{Text: unv.Note.Text}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRotateKeyTamper edits a rotated log's checkpoints the way an
// attacker would; each edit is refused with a reason naming it.
func TestRotateKeyTamper(t *testing.T) {
	ctx := context.Background()
	attacker := MustKeyRing(t)
	cases := []struct {
		name  string
		key   func(r0, r1 audit.KeyRing) string // the trusted key; nil: r0's
		edit  func(t *testing.T, cps [][]byte, r0, r1 audit.KeyRing) [][]byte
		cp    int
		wants []string
	}{
		{"hand-over signed by only the new key", nil, func(t *testing.T, cps [][]byte, r0, r1 audit.KeyRing) [][]byte {
			cps[3] = resign(t, cps[3], r1.Active.Signer)
			return cps
		}, 3, []string{"hand-over to key", "a key cannot introduce itself"}},
		{"hand-over signed by only the old key", nil, func(t *testing.T, cps [][]byte, r0, r1 audit.KeyRing) [][]byte {
			cps[3] = resign(t, cps[3], r0.Active.Signer)
			return cps
		}, 3, []string{"is not signed by that key"}},
		{"forged successor key", nil, func(t *testing.T, cps [][]byte, r0, r1 audit.KeyRing) [][]byte {
			// The attacker's own hand-over from the log's key to theirs,
			// and the checkpoints after it re-signed by their key.
			text := strings.SplitAfterN(string(cps[3]), "\n", 4)
			body := text[0] + text[1] + text[2] + "gatehouse-key-handover " + r0.Active.VerifierKey + " " + attacker.Active.VerifierKey + "\n"
			ho, err := note.Sign(&note.Note{Text: body}, attacker.Active.Signer)
			if err != nil {
				t.Fatal(err)
			}
			cps[3] = ho
			cps[4] = resign(t, cps[4], attacker.Active.Signer)
			cps[5] = resign(t, cps[5], attacker.Active.Signer)
			return cps
		}, 3, []string{"a key cannot introduce itself"}},
		{"forged successor, trusting the new key", func(r0, r1 audit.KeyRing) string { return r1.Active.VerifierKey }, func(t *testing.T, cps [][]byte, r0, r1 audit.KeyRing) [][]byte {
			cps[4] = resign(t, cps[4], attacker.Active.Signer)
			return cps
		}, 4, []string{"not signed by the log's key", "which no hand-over introduced"}},
		{"hand-over removed", nil, func(t *testing.T, cps [][]byte, r0, r1 audit.KeyRing) [][]byte {
			return append(cps[:3:3], cps[4:]...)
		}, 3, []string{"not signed by the log's key", "which no hand-over introduced", "a hand-over removed"}},
		{"hand-over removed, default key", func(audit.KeyRing, audit.KeyRing) string { return "" }, func(t *testing.T, cps [][]byte, r0, r1 audit.KeyRing) [][]byte {
			return append(cps[:3:3], cps[4:]...)
		}, 0, []string{"not signed by the log's key"}},
		{"old key signs after the hand-over", nil, func(t *testing.T, cps [][]byte, r0, r1 audit.KeyRing) [][]byte {
			cps[5] = resign(t, cps[5], r0.Active.Signer)
			return cps
		}, 5, []string{"retired at the hand-over at tree size 30"}},
		{"new key signs before the hand-over", nil, func(t *testing.T, cps [][]byte, r0, r1 audit.KeyRing) [][]byte {
			cps[1] = resign(t, cps[1], r1.Active.Signer)
			return cps
		}, 1, []string{"before the hand-over that introduces it"}},
		{"unrelated trusted key", func(audit.KeyRing, audit.KeyRing) string { return attacker.Active.VerifierKey }, func(t *testing.T, cps [][]byte, r0, r1 audit.KeyRing) [][]byte {
			return cps
		}, 0, []string{"not signed by the log's key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, r0, r1, _ := rotatedLog(t)
			writeCheckpointFrames(t, dir, tc.edit(t, checkpointFrames(t, dir), r0, r1))
			key := r0.Active.VerifierKey
			if tc.key != nil {
				key = tc.key(r0, r1)
			}
			_, err := audit.Verify(ctx, dir, audit.VerifyOptions{VerifierKey: key})
			var ve *audit.VerifyError
			if !errors.As(err, &ve) || ve.Checkpoint != tc.cp {
				t.Fatalf("err = %v, want checkpoint %d", err, tc.cp)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "PRIVATE") {
				t.Fatal("a private key in an error")
			}
		})
	}
}

// TestRotateKeyPrune: retention keeps the hand-over checkpoint, so the
// chain still verifies once the entries before it are gone.
func TestRotateKeyPrune(t *testing.T) {
	ctx := context.Background()
	dir, r0, r1, _ := rotatedLog(t)
	clock := gatehouse.NewFakeClock(t0.Add(30 * 24 * time.Hour))
	l := MustOpenLog(t, dir, func(c *audit.Config) {
		withKey(r1)(c)
		c.Clock, c.Retention = clock, 24*time.Hour
	})
	appendN(t, l, 30, 10)
	res, err := l.Prune(ctx)
	if err != nil || res.RetainedFrom < 32 {
		t.Fatalf("prune %+v %v", res, err)
	}
	l.Close(ctx)
	v, err := audit.Verify(ctx, dir, audit.VerifyOptions{VerifierKey: r0.Active.VerifierKey})
	if err != nil || len(v.Keys) != 2 || v.Keys[1].Since != 30 {
		t.Fatalf("%+v %v", v, err)
	}
}
