package backup

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// progressEvery is how often a long operation reports how far it is.
const progressEvery = 5 * time.Second

// progress counts the bytes of a long operation (written to it, as to an
// io.Writer) and reports them every interval, through out, as one line:
//
//	backup 20260102T150405.000Z-a1b2c3: 120.0 MiB of 480.0 MiB (25%), 60.0 MiB/s
type progress struct {
	what  string
	total int64 // 0: unknown
	done  atomic.Int64
	start time.Time
	out   func(line string)
	quit  chan struct{}
	wg    sync.WaitGroup
}

// startProgress starts reporting; stop ends it. A nil out reports nothing.
func startProgress(what string, total int64, every time.Duration, out func(string)) *progress {
	p := &progress{what: what, total: total, start: time.Now(), out: out, quit: make(chan struct{})}
	if out == nil {
		return p
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-t.C:
				p.out(p.line())
			}
		}
	}()
	return p
}

// Write counts len(b) bytes done.
func (p *progress) Write(b []byte) (int, error) {
	p.done.Add(int64(len(b)))
	return len(b), nil
}

// stop ends the reports and returns the bytes counted and the elapsed time.
func (p *progress) stop() (int64, time.Duration) {
	close(p.quit)
	p.wg.Wait()
	return p.done.Load(), time.Since(p.start)
}

func (p *progress) line() string {
	done := p.done.Load()
	s := fmt.Sprintf("%s: %s", p.what, mib(done))
	if p.total > 0 {
		s += fmt.Sprintf(" of %s (%d%%)", mib(p.total), done*100/p.total)
	}
	if secs := time.Since(p.start).Seconds(); secs > 0 {
		s += fmt.Sprintf(", %.1f MiB/s", float64(done)/(1<<20)/secs)
	}
	return s
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// LineWriter reports progress to w as lines (a terminal or a log).
func LineWriter(w io.Writer) func(string) {
	if w == nil {
		return nil
	}
	return func(s string) { fmt.Fprintln(w, s) }
}
