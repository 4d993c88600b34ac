package logbuf

import (
	"bytes"
	"context"
	"encoding/json"
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
	// Every drop is reported: the counts add up to Dropped, and the last
	// report's total is Dropped.
	var sum, total uint64
	for l := range strings.SplitSeq(out.String(), "\n") {
		if !strings.Contains(l, `"msg":"log lines dropped`) {
			continue
		}
		var rep struct {
			Level        string
			Count, Total uint64
		}
		if err := json.Unmarshal([]byte(l), &rep); err != nil || rep.Level != "WARN" {
			t.Fatalf("report %q: %v", l, err)
		}
		sum, total = sum+rep.Count, rep.Total
	}
	if sum != w.Dropped() || total != w.Dropped() {
		t.Errorf("reported %d dropped (total %d), Dropped %d", sum, total, w.Dropped())
	}
}

// accessLine logs a line like the gateway's access line: nine attributes
// on the gateway's group (gateway's TestAccessLogAllocs holds the real
// call to its allocation budget).
func accessLine(ctx context.Context, log *slog.Logger, i int) {
	attrs := make([]slog.Attr, 0, 9)
	attrs = append(attrs,
		slog.String("request_id", "01M8T7B5CXT7WXNN8SA2CDBWWV"),
		slog.String("method", "GET"),
		slog.String("path", "/api/x"),
		slog.Int("status", 200+i%300),
		slog.Int64("bytes", int64(i)),
		slog.Float64("duration_ms", float64(i)/1000),
		slog.String("trace_id", "4760983c6dbfdfbf5287b4f079dfa2c6"),
	)
	attrs = append(attrs, slog.String("route", "bench"))
	attrs = append(attrs, slog.String("principal", "key_5jym7b6q2a2p6yyw"))
	log.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
}

// TestSameJSONAsSynchronous: the Writer changes when bytes are written,
// never which: a run of records (secrets among them, for the redactor
// behind it) comes out byte for byte as the slog JSON handler writes it
// synchronously through the redactor, as before this package.
func TestSameJSONAsSynchronous(t *testing.T) {
	at := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC)
	records := func(h slog.Handler) {
		log := slog.New(h).WithGroup("gateway")
		for i := range 2000 {
			r := slog.NewRecord(at.Add(time.Duration(i)*time.Millisecond), slog.LevelInfo, "request", 0)
			r.AddAttrs(slog.String("path", fmt.Sprintf("/api/%d?x=\"y\"\n", i)), slog.Int("status", 200),
				slog.Float64("duration_ms", float64(i)/7), slog.String("authorization", "Bearer gk_live_0123456789abcdef"),
				slog.Any("err", fmt.Errorf("upstream %d: <tag> & \u2028", i)))
			if i%3 == 0 {
				r.Level = slog.LevelWarn
			}
			log.Handler().Handle(context.Background(), r)
		}
	}
	var want, got syncBuf
	direct := redact.New().Writer(&want)
	records(slog.NewJSONHandler(direct, nil))
	direct.Close()

	red := redact.New().Writer(&got)
	w := New(red, 0)
	records(slog.NewJSONHandler(w, nil))
	w.Close()
	red.Close()
	if w.Dropped() != 0 {
		t.Fatalf("dropped %d", w.Dropped())
	}
	if got.String() != want.String() {
		t.Fatalf("async output differs from sync: %d bytes vs %d", len(got.String()), len(want.String()))
	}
	if !strings.Contains(want.String(), `"gateway":{"path":"/api/1999`) || strings.Contains(want.String(), "0123456789abcdef") {
		t.Fatalf("unexpected reference output: %.300s", want.String())
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
				for i := 0; pb.Next(); i++ {
					accessLine(ctx, log, i)
				}
			})
		})
	}
}

// TestDeferredLines: lines written through Deferred come out whole, in
// order with the others, many to a write; Close and a line written
// through Write do not leave them waiting.
func TestDeferredLines(t *testing.T) {
	t.Run("batched", func(t *testing.T) {
		out := &syncBuf{}
		w := New(out, 0)
		defer w.Close()
		d := w.Deferred()
		for i := 0; i < 1000; i++ {
			fmt.Fprintf(d, "line %04d\n", i)
		}
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(out.String(), "\n") < 1000 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if n := strings.Count(out.String(), "\n"); n != 1000 {
			t.Fatalf("%d of 1000 deferred lines written after 10s", n)
		}
		out.mu.Lock()
		calls := out.calls
		out.mu.Unlock()
		if calls > 50 {
			t.Errorf("1000 deferred lines took %d writes; they should wait for each other", calls)
		}
	})
	t.Run("in order with Write", func(t *testing.T) {
		out := &syncBuf{}
		w := New(out, 0)
		io.WriteString(w.Deferred(), "access 1\n")
		io.WriteString(w, "warn\n")
		io.WriteString(w.Deferred(), "access 2\n")
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), "warn") && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		w.Close()
		if got := out.String(); got != "access 1\nwarn\naccess 2\n" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("close writes them", func(t *testing.T) {
		out := &syncBuf{}
		w := New(out, 0)
		io.WriteString(w.Deferred(), "last\n")
		w.Close()
		if got := out.String(); got != "last\n" {
			t.Fatalf("got %q", got)
		}
	})
}
