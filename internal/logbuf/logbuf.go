// Package logbuf takes log output off the request path: a Writer copies
// each line into a bounded buffer and returns at once, and one goroutine
// writes the buffer out in batches (many lines to one write under load).
// When the buffer is full a line is dropped and counted rather than making
// a request wait; the count is reported in the log itself, in a WARN line
// after the next batch written (count: since the last report, total: since
// start), and Dropped gives the total (the app shows it in the admin
// /health/ready details, check "log"). The access log and every other
// process log line go through one Writer; the access log's through
// Deferred, whose lines wait up to DeferDelay for company instead of
// waking the goroutine one by one.
package logbuf

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMax is the most bytes a Writer holds before it drops lines.
const DefaultMax = 4 << 20

// DeferDelay is the longest a line written through Deferred waits before
// it is written out (unless Close, a line written through Write, or a
// quarter-full buffer has it written sooner). Under load that is one
// write, and one wake-up of the writing goroutine, for the access lines
// of DeferDelay's requests instead of one for every few lines.
const DeferDelay = 10 * time.Millisecond

// Writer is an asynchronous, bounded io.Writer for whole log lines. It is
// safe for concurrent use. After Close, writes go straight to the
// underlying writer.
type Writer struct {
	out  io.Writer
	max  int
	wake chan struct{}
	arm  chan struct{} // a deferred line is waiting: start the timer
	done chan struct{}

	mu      sync.Mutex
	buf     []byte // lines waiting to be written
	spare   []byte // the other buffer, empty, reused
	closed  bool
	armed   bool          // a deferred line waits for the timer (since the last flush)
	dropped atomic.Uint64 // since the last report
	total   atomic.Uint64
	// outMu orders the background writes and the synchronous ones after
	// Close.
	outMu sync.Mutex
}

// New returns a Writer that writes to out, holding at most max bytes
// (0: DefaultMax), and starts its goroutine; Close stops it.
func New(out io.Writer, max int) *Writer {
	if max <= 0 {
		max = DefaultMax
	}
	w := &Writer{out: out, max: max, wake: make(chan struct{}, 1), arm: make(chan struct{}, 1), done: make(chan struct{})}
	go w.run()
	return w
}

// Write queues p, which should be whole lines (slog handlers write one
// record per call), to be written out at once. It never blocks on the
// underlying writer and never fails: a line that does not fit is dropped
// and counted.
func (w *Writer) Write(p []byte) (int, error) { return w.write(p, false) }

// Deferred returns an io.Writer that queues lines as Write does, but lets
// them wait up to DeferDelay to be written out with others: for lines
// many requests write (the access log), not for those someone may be
// waiting to read (a warning, an error).
func (w *Writer) Deferred() io.Writer { return deferred{w} }

type deferred struct{ w *Writer }

func (d deferred) Write(p []byte) (int, error) { return d.w.write(p, true) }

func (w *Writer) write(p []byte, lazy bool) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.outMu.Lock()
		defer w.outMu.Unlock()
		return w.out.Write(p)
	}
	if len(w.buf)+len(p) > w.max {
		w.mu.Unlock()
		w.dropped.Add(1)
		w.total.Add(1)
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	wake, arm := !lazy || len(w.buf) >= w.max/4, false
	if lazy && !w.armed {
		w.armed, arm = true, true
	}
	w.mu.Unlock()
	switch {
	case wake:
		select {
		case w.wake <- struct{}{}:
		default: // a wake-up is already pending
		}
	case arm:
		select {
		case w.arm <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// Dropped returns how many lines were dropped since New.
func (w *Writer) Dropped() uint64 { return w.total.Load() }

func (w *Writer) run() {
	defer close(w.done)
	timer := time.NewTimer(DeferDelay)
	timer.Stop()
	for {
		select {
		case <-w.wake:
		case <-w.arm:
			timer.Reset(DeferDelay)
			continue
		case <-timer.C:
		}
		if !w.flush() {
			timer.Stop()
			return
		}
	}
}

// flush writes what is queued; it reports false once the Writer is closed
// and drained.
func (w *Writer) flush() bool {
	w.mu.Lock()
	b := w.buf
	w.buf, w.spare = w.spare[:0], nil
	w.armed = false // a deferred line written from now on starts the timer again
	closed := w.closed
	w.mu.Unlock()
	w.outMu.Lock()
	if len(b) > 0 {
		w.out.Write(b) // nowhere to report a failed log write
	}
	if n := w.dropped.Swap(0); n > 0 {
		fmt.Fprintf(w.out, `{"time":%q,"level":"WARN","msg":"log lines dropped: the log writer could not keep up","count":%d,"total":%d}`+"\n",
			time.Now().UTC().Format(time.RFC3339Nano), n, w.total.Load())
	}
	w.outMu.Unlock()
	w.mu.Lock()
	if w.spare == nil && cap(b) <= 2*w.max {
		w.spare = b[:0]
	}
	w.mu.Unlock()
	return !closed
}

// Close writes out what is queued and stops the goroutine. Later writes
// are synchronous. It is safe to call more than once.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	// The channel is never closed (a Write that saw the Writer open may
	// still signal); a pending wake-up, or this one, makes run flush once
	// more, see closed, and stop.
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
	return nil
}
