package audit

import (
	"io"
	"sync/atomic"
)

// streamer copies committed events to an io.Writer as JSON lines on its own
// goroutine. The append path never waits for it: when its buffer is full,
// events are dropped and counted.
type streamer struct {
	w       io.Writer
	ch      chan []byte
	done    chan struct{}
	dropped atomic.Uint64
}

func newStreamer(w io.Writer, size int) *streamer {
	s := &streamer{w: w, ch: make(chan []byte, size), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *streamer) run() {
	defer close(s.done)
	for line := range s.ch {
		if _, err := s.w.Write(line); err != nil {
			s.dropped.Add(1)
		}
	}
}

// sendBatch queues the events of a committed batch.
func (s *streamer) sendBatch(b *batch) {
	off := 0
	for _, n := range b.lens {
		payload := b.buf[off+frameHeaderLn : off+n]
		off += n
		line := make([]byte, len(payload)+1)
		copy(line, payload)
		line[len(payload)] = '\n'
		select {
		case s.ch <- line:
		default:
			s.dropped.Add(1)
		}
	}
}

// close flushes queued lines and stops the goroutine.
func (s *streamer) close() {
	close(s.ch)
	<-s.done
}
