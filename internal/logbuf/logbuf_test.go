package logbuf

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/redact"
)

// syncBuf is a concurrency-safe sink that can be made to stall.
type syncBuf struct {
	mu    sync.Mutex
	b     bytes.Buffer
	gate  chan struct{} // nil: never stalls
	calls int
}

func (s *syncBuf) Write(p []byte) (int, error) {
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return s.b.Write(p)
}

func (s *syncBuf) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestEveryLineOnceInOrder: lines from many goroutines all come out, whole,
// each once, in each writer's order, and Close leaves nothing queued.
func TestEveryLineOnceInOrder(t *testing.T) {
	out := &syncBuf{}
	w := New(out, 0)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				fmt.Fprintf(w, "g%d line %04d\n", g, i)
			}
		}()
	}
	wg.Wait()
	w.Close()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 8000 {
		t.Fatalf("%d lines, want 8000", len(lines))
	}
	next := map[string]int{}
	for _, l := range lines {
		var g string
		var i int
		if _, err := fmt.Sscanf(l, "%s line %d", &g, &i); err != nil {
			t.Fatalf("torn line %q", l)
		}
		if i != next[g] {
			t.Fatalf("%s: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
	if w.Dropped() != 0 {
		t.Errorf("dropped %d", w.Dropped())
	}
	// After Close, writes are synchronous.
	io.WriteString(w, "after close\n")
	if !strings.HasSuffix(out.String(), "after close\n") {
		t.Error("a write after Close was lost")
	}
}

// TestStalledOutputDropsAndReports: when the output stalls, writers are
// never blocked; lines beyond the bound are dropped, counted, and reported
// in the log once it moves again.
func TestStalledOutputDropsAndReports(t *testing.T) {
	out := &syncBuf{gate: make(chan struct{})}
	w := New(out, 1<<10)
	line := strings.Repeat("x", 99) + "\n"
	done := make(chan struct{})
	go func() {
		for i := 0; i < 200; i++ { // 20 KB into a 1 KiB buffer
			io.WriteString(w, line)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writers blocked on a stalled output")
	}
	if w.Dropped() < 150 {
		t.Errorf("dropped %d of 200, want most", w.Dropped())
	}
	close(out.gate)
	w.Close()
	if !strings.Contains(out.String(), `"msg":"log lines dropped`) {
		t.Errorf("no report of the dropped lines in %d bytes", len(out.String()))
	}
}

// The access log before this package: the slog JSON record, through the
// secret redactor, written to a file on the request path. With logbuf
// the request pays for the record alone; redaction and the write happen on
// the Writer's goroutine.
func BenchmarkAccessLine(b *testing.B) {
	for _, async := range []bool{false, true} {
		name := "sync"
		if async {
			name = "async"
		}
		b.Run(name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			var out io.Writer = redact.New().Writer(f)
			if async {
				w := New(out, 0)
				defer w.Close()
				out = w
			}
			log := slog.New(slog.NewJSONHandler(out, nil)).WithGroup("gateway")
			ctx := b.Context()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					log.LogAttrs(ctx, slog.LevelInfo, "request",
						slog.String("request_id", "01M8T7B5CXT7WXNN8SA2CDBWWV"),
						slog.String("method", "GET"),
						slog.String("path", "/api/x"),
						slog.Int("status", 200),
						slog.Int64("bytes", 2),
						slog.Float64("duration_ms", 0.123),
						slog.String("trace_id", "4760983c6dbfdfbf5287b4f079dfa2c6"),
						slog.String("route", "bench"),
						slog.String("principal", "key_5jym7b6q2a2p6yyw"),
					)
				}
			})
		})
	}
}
