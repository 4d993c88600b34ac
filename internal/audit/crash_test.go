package audit_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	// A process crash loses nothing in either mode: batch mode only risks
	// events on a power loss.
	for round, d := range []audit.Durability{audit.DurabilitySync, audit.DurabilityBatch, audit.DurabilitySync, audit.DurabilityBatch} {
		acks := runCrashChild(t, dir, d, 2000+round*1000)
		acked = append(acked, acks...)
		res, err := audit.Verify(context.Background(), dir, audit.VerifyOptions{})
		if err != nil {
			t.Fatalf("round %d: verify after kill -9 (before reopen): %v", round, err)
		}
		t.Logf("round %d (%s): %d acknowledged, log holds %d, torn tail: %q", round, d, len(acks), res.TreeSize, res.TornTail)
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := MustOpenLog(t, dir, nil)
			appendN(t, l, 20, 0)
			if err := l.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(segFile(dir, 16), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(tt.tail([]byte(`{"id":"torn","type":"request"}`)))
			f.Close()
			if _, err := audit.Verify(context.Background(), dir, audit.VerifyOptions{}); err != nil {
				t.Fatalf("verify with torn tail: %v", err)
			}
			l = MustOpenLog(t, dir, nil)
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

func TestOpenRefusesMidLogDamage(t *testing.T) {
	dir := t.TempDir()
	l := MustOpenLog(t, dir, nil)
	appendN(t, l, 20, 0)
	l.Close(context.Background())
	editSegment(t, dir, 16, flipPayload(1, false))
	if _, err := audit.Open(context.Background(), audit.Config{Dir: dir, Origin: testOrigin}); err == nil || !strings.Contains(err.Error(), "entry 17") {
		t.Fatalf("open with damaged entry 17: %v", err)
	}
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
