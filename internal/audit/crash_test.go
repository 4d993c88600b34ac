package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
)

// crashChildEnv switches the test binary into the crash child: it appends
// from many goroutines and prints each acknowledged event ID on stdout until
// it is killed.
const (
	crashChildEnv      = "GATEHOUSE_AUDIT_CRASH_CHILD"
	crashDurabilityEnv = "GATEHOUSE_AUDIT_CRASH_DURABILITY"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

func crashChild(dir string) {
	ctx := context.Background()
	l, err := audit.Open(ctx, audit.Config{
		Dir:                dir,
		Origin:             testOrigin,
		Durability:         audit.Durability(os.Getenv(crashDurabilityEnv)),
		SegmentEntries:     256,
		CheckpointInterval: 20 * time.Millisecond,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := os.Stdout
	fmt.Fprintln(out, "ready")
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				e, err := l.Append(ctx, testEvent(i))
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(3)
				}
				mu.Lock()
				// One write(2) per acknowledged ID: a line on the pipe
				// means Append returned.
				out.WriteString("ack " + e.Event.ID + "\n")
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// runCrashChild starts a child appending to dir, kills it with SIGKILL after
// it acknowledged at least minAcks events, and returns the acknowledged IDs.
func runCrashChild(t *testing.T, dir string, d audit.Durability, minAcks int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashDurabilityEnv+"="+string(d))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acks []string
	sc := bufio.NewScanner(stdout)
	killed := false
	deadline := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		line := sc.Text()
		if id, ok := strings.CutPrefix(line, "ack "); ok {
			acks = append(acks, id)
		}
		if !killed && len(acks) >= minAcks {
			// SIGKILL mid-load: no deferred code, no Close.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("child exited before acknowledging %d events (got %d)", minAcks, len(acks))
	}
	return acks
}

func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	var acked []string
	preallocated := 0
	// A process crash loses nothing in either mode: batch mode only risks
	// events on a power loss.
	for round, d := range []audit.Durability{audit.DurabilitySync, audit.DurabilityBatch, audit.DurabilitySync, audit.DurabilityBatch} {
		acks := runCrashChild(t, dir, d, 2000+round*1000)
		acked = append(acked, acks...)
		zeros := zeroTail(mustRead(t, newestSegment(t, dir)))
		if zeros > 0 {
			preallocated++
		}
		res, err := audit.Verify(context.Background(), dir, audit.VerifyOptions{})
		if err != nil {
			t.Fatalf("round %d: verify after kill -9 (before reopen): %v", round, err)
		}
		// As if the kill had been a power loss that also lost a sector of
		// the write in flight; the next round's Open recovers from it.
		lost := loseUnackedSector(t, dir, acks)
		t.Logf("round %d (%s): %d acknowledged, log holds %d, torn tail: %q, %d preallocated zero bytes, lost a sector after them: %v", round, d, len(acks), res.TreeSize, res.TornTail, zeros, lost)
	}
	if preallocated == 0 {
		t.Fatal("no crash left preallocated zeros ahead of the writer: the recovery of a preallocated segment went untested")
	}
	// Reopen (recovering a torn tail if there is one) and close cleanly.
	l := MustOpenLog(t, dir, nil)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := audit.Verify(context.Background(), dir, audit.VerifyOptions{})
	if err != nil {
		t.Fatalf("verify after recovery: %v", err)
	}
	var sb strings.Builder
	if _, err := audit.Export(context.Background(), dir, audit.Filter{}, &sb); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(sb.String()), "\n") {
		var e gatehouse.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		have[e.ID] = true
	}
	for _, id := range acked {
		if !have[id] {
			t.Fatalf("acknowledged event %s missing after kill -9 (log holds %d)", id, res.TreeSize)
		}
	}
	t.Logf("all %d acknowledged events present; log holds %d entries", len(acked), res.TreeSize)
}

// newestSegment is the path of the newest segment file in dir.
func newestSegment(t *testing.T, dir string) string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "segments", "*.seg"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no segment in %s: %v", dir, err)
	}
	return slices.Max(paths) // zero-padded names sort by first entry
}

// zeroTail is the number of zero bytes after the last record of segment b.
func zeroTail(b []byte) int {
	end := hdrLen
	if fs := frames(b, hdrLen); len(fs) > 0 {
		end = fs[len(fs)-1].off + fs[len(fs)-1].n
	}
	return len(b) - end
}

// loseUnackedSector makes the 512 to 1024 bytes from the first record after
// the last acknowledged one, in the newest segment, read as zeros: a sector
// of the unacknowledged write in flight lost by a power cut (the records
// after it may have been written). It reports whether there was such a
// record.
func loseUnackedSector(t *testing.T, dir string, acks []string) bool {
	t.Helper()
	acked := map[string]bool{}
	for _, id := range acks {
		acked[id] = true
	}
	path := newestSegment(t, dir)
	b := mustRead(t, path)
	fs := frames(b, hdrLen)
	first := 0
	for i, f := range fs {
		var e struct{ ID string }
		if err := json.Unmarshal(b[f.off+8:f.off+f.n], &e); err != nil {
			t.Fatal(err)
		}
		if acked[e.ID] {
			first = i + 1
		}
	}
	if first == len(fs) {
		return false
	}
	x := fs[first].off
	clear(b[x:min(len(b), (x/512+2)*512)])
	mustWrite(t, path, b)
	return true
}

func TestRecoverTornTail(t *testing.T) {
	tests := []struct {
		name string
		tail func(payload []byte) []byte // bytes appended to the newest segment
	}{
		{"partial header", func([]byte) []byte { return []byte{0, 0} }},
		{"partial payload", func(p []byte) []byte {
			b := binary.BigEndian.AppendUint32(nil, uint32(len(p)))
			b = binary.BigEndian.AppendUint32(b, 12345)
			return append(b, p[:len(p)/2]...)
		}},
		{"bad checksum", func(p []byte) []byte {
			b := binary.BigEndian.AppendUint32(nil, uint32(len(p)))
			b = binary.BigEndian.AppendUint32(b, 12345)
			return append(b, p...)
		}},
		{"zeros", func([]byte) []byte { return make([]byte, 4096) }},
		// In preallocated space the sectors a power loss kept from the
		// last write read as zeros, and the ones after them may have
		// been written.
		{"lost sector in preallocated space", func(p []byte) []byte {
			torn := rawFrame(p)
			clear(torn[12:])
			b := append(torn, rawFrame(p)...)
			return append(append(b, rawFrame(p)...), make([]byte, 8192)...)
		}},
		{"lost header in preallocated space", func(p []byte) []byte {
			torn := rawFrame(p)
			clear(torn[:8])
			b := append(torn, rawFrame(p)...)
			return append(b, make([]byte, 8192)...)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := mustClosedLog(t, 20, 0)
			f, err := os.OpenFile(segFile(dir, 16), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(tt.tail([]byte(`{"id":"torn","type":"request"}`)))
			f.Close()
			if _, err := audit.Verify(context.Background(), dir, audit.VerifyOptions{}); err != nil {
				t.Fatalf("verify with torn tail: %v", err)
			}
			l := MustOpenLog(t, dir, nil)
			p, err := l.Query(context.Background(), audit.Filter{Type: "audit.recovered"}, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			wantRecovered := tt.name != "zeros"
			if got := len(p.Entries) == 1; got != wantRecovered {
				t.Fatalf("audit.recovered events: %+v", p.Entries)
			}
			if wantRecovered && (p.Entries[0].Index != 20 || !strings.Contains(p.Entries[0].Event.Reason, "entry 20")) {
				t.Fatalf("recovered event: %+v", p.Entries[0])
			}
			appendN(t, l, 5, 0)
			if err := l.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			res, err := audit.Verify(context.Background(), dir, audit.VerifyOptions{})
			if err != nil || res.TornTail != "" {
				t.Fatalf("verify after recovery: %+v, %v", res, err)
			}
		})
	}
}

// TestOpenRefusesMidLogDamage checks that Open refuses, and leaves the
// files alone, when a bad record cannot be a torn write: valid records
// follow it, or a checkpoint covers it.
func TestOpenRefusesMidLogDamage(t *testing.T) {
	big := []byte(`{"id":"pad","type":"request","reason":"` + strings.Repeat("x", 900<<10) + `"}`)
	tests := []struct {
		name      string
		damage    func(t *testing.T, dir string)
		wantEntry int64
		wantErr   string
	}{
		{"modified byte", func(t *testing.T, dir string) {
			editSegment(t, dir, 16, flipPayload(1, false))
		}, 17, "not at the tail"},
		// A crash leaves at most 4 MiB unsynced, so zeros followed by
		// more records than that are damage, not a lost write.
		{"zeros followed by more than a crash leaves unsynced", func(t *testing.T, dir string) {
			editSegment(t, dir, 16, func(b []byte, fs []frame) []byte {
				torn := rawFrame(big)
				clear(torn[100:600])
				b = append(b, torn...)
				for range 6 {
					b = append(b, rawFrame(big)...)
				}
				return append(b, make([]byte, 4096)...)
			})
		}, 20, "not at the tail"},
		{"zeros in a checkpointed entry", func(t *testing.T, dir string) {
			editSegment(t, dir, 16, zeroPayload(2))
		}, 18, "covered by the checkpoint of size 20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := mustClosedLog(t, 20, 0)
			tt.damage(t, dir)
			before := mustRead(t, segFile(dir, 16))
			_, err := audit.Open(context.Background(), audit.Config{Dir: dir, Origin: testOrigin, SegmentEntries: 16})
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("entry %d ", tt.wantEntry)) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("open: %v, want entry %d: %s", err, tt.wantEntry, tt.wantErr)
			}
			if after := mustRead(t, segFile(dir, 16)); !bytes.Equal(after, before) {
				t.Fatalf("refused open changed the segment: %d bytes, were %d", len(after), len(before))
			}
			_, err = audit.Verify(context.Background(), dir, audit.VerifyOptions{})
			var ve *audit.VerifyError
			if !errors.As(err, &ve) || ve.Entry != tt.wantEntry {
				t.Fatalf("verify: %v, want an error naming entry %d", err, tt.wantEntry)
			}
		})
	}
}

// rawFrame frames payload as a segment record.
func rawFrame(payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(payload, castagnoli))
	return append(b, payload...)
}

func TestRecoverTornCheckpoint(t *testing.T) {
	dir := t.TempDir()
	l := MustOpenLog(t, dir, nil)
	appendN(t, l, 20, 0)
	l.Close(context.Background())
	f, _ := os.OpenFile(filepath.Join(dir, "checkpoints"), os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{0, 0, 1, 0, 1, 2, 3, 4, 'x'})
	f.Close()
	if res, err := audit.Verify(context.Background(), dir, audit.VerifyOptions{}); err != nil || !strings.Contains(res.TornTail, "checkpoint 1") {
		t.Fatalf("verify with a torn checkpoint: %+v, %v", res, err)
	}
	l = MustOpenLog(t, dir, nil)
	appendN(t, l, 3, 0)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res, err := audit.Verify(context.Background(), dir, audit.VerifyOptions{}); err != nil || res.Checkpoints != 2 {
		t.Fatalf("verify: %+v, %v", res, err)
	}
}

// TestResealLostIndex simulates a power loss that lost the index of a full
// segment (its sync runs off the append path): Open rebuilds it.
func TestResealLostIndex(t *testing.T) {
	dir := t.TempDir()
	l := MustOpenLog(t, dir, nil)
	appendN(t, l, 40, 20)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	truncateFile(t, idxFile(dir, 16), hdrLen+5*idxEntryLen)
	l = MustOpenLog(t, dir, nil)
	appendN(t, l, 5, 0)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res, err := audit.Verify(context.Background(), dir, audit.VerifyOptions{}); err != nil || res.TreeSize != 45 {
		t.Fatalf("verify: %+v, %v", res, err)
	}
}
