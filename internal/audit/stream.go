package audit

import (
	"io"
	"sync/atomic"
)

// Stream copies committed events to an io.Writer as JSON lines on its own
// goroutine. The append path never waits for it: when its buffer is full,
// events are dropped and counted. Every storage of the log uses one.
type Stream struct {
	w       io.Writer
	ch      chan []byte
	done    chan struct{}
	dropped atomic.Uint64
}

// NewStream starts a Stream to w buffering up to size events.
func NewStream(w io.Writer, size int) *Stream {
	s := &Stream{w: w, ch: make(chan []byte, size), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *Stream) run() {
	defer close(s.done)
	for line := range s.ch {
		if _, err := s.w.Write(line); err != nil {
			s.dropped.Add(1)
		}
	}
}

// Send queues one committed event's stored bytes (copied), or drops it
// when the buffer is full. It never blocks.
func (s *Stream) Send(payload []byte) {
	line := make([]byte, len(payload)+1)
	copy(line, payload)
	line[len(payload)] = '\n'
	select {
	case s.ch <- line:
	default:
		s.dropped.Add(1)
	}
}

// sendBatch queues the events of a committed batch.
func (s *Stream) sendBatch(b *batch) {
	off := 0
	for _, n := range b.lens {
		s.Send(b.buf[off+frameHeaderLn : off+n])
		off += n
	}
}

// Dropped returns how many events were dropped or failed to write.
func (s *Stream) Dropped() uint64 { return s.dropped.Load() }

// Close flushes queued lines and stops the goroutine.
func (s *Stream) Close() {
	close(s.ch)
	<-s.done
}
