package redact

import (
	"errors"
	"io"
	"sync"
)

// maxHold bounds the tail a stream keeps. Every matcher decides within
// MaxLookbehind bytes of a candidate, so the tail only grows past it
// through a bug; the stream then flushes rather than grow without bound.
const maxHold = MaxLookbehind

// eagerTail is the longest held-back tail re-examined on every write.
const eagerTail = 8 << 10

// maxKeep is the largest output buffer a stream keeps between calls.
const maxKeep = 512 << 10

// stream is the incremental core shared by Writer and Reader.
type stream struct {
	r    *Redactor
	pend []byte // unconsumed input: a candidate that needs more bytes
	hist []byte // the last histLen bytes of the consumed input, decoded
	mid  bool   // not at the start of a line whose name=value is unchecked
	want int    // rescan only once pend holds this much (0: always)
	out  []byte
	sc   scratch // escaped views
}

// feed consumes p and returns redacted output ready to pass on. The result
// is valid until the next call.
func (s *stream) feed(p []byte, eof bool) []byte {
	if cap(s.out) > maxKeep {
		s.out = nil // do not pin one huge write's buffer in a long-lived stream
	}
	s.out = s.out[:0]
	data := p
	if len(s.pend) > 0 {
		s.pend = append(s.pend, p...)
		data = s.pend
		if !eof && len(data) < s.want {
			return s.out
		}
	}
	if cap(s.sc.d) > maxKeep {
		s.sc = scratch{}
	}
	n, dec, endLine, _ := s.r.scan(&s.out, data, scanState{hist: s.hist, lineStart: !s.mid, eof: eof, sc: &s.sc})
	s.consumed(dec, endLine)
	if n < len(data) && len(data)-n > maxHold {
		// Cannot happen with the built-in matchers; fail safe on memory.
		m, dec, endLine, _ := s.r.scan(&s.out, data[n:], scanState{hist: s.hist, lineStart: !s.mid, eof: true, sc: &s.sc})
		s.consumed(dec, endLine)
		n += m
	}
	rest := data[n:]
	if len(rest) == 0 {
		s.pend = s.pend[:0]
		s.want = 0
		return s.out
	}
	// A short tail is re-examined on every write, so it is released as
	// soon as it is decided. A long one is re-examined once it has doubled,
	// which keeps the work linear in the input whatever the write sizes.
	s.want = len(rest) + 1
	if len(rest) > eagerTail {
		s.want = min(2*len(rest), maxHold)
	}
	if len(s.pend) > 0 {
		s.pend = s.pend[:copy(s.pend, rest)]
	} else {
		s.pend = append(s.pend[:0], rest...)
	}
	return s.out
}

// consumed records input a scan consumed (decoded): its tail as history,
// and whether the next scan starts a line to check.
func (s *stream) consumed(consumed []byte, endLine bool) {
	if len(consumed) == 0 {
		return // the next scan starts where this one did
	}
	s.mid = !endLine
	if len(consumed) >= histLen {
		s.hist = append(s.hist[:0], consumed[len(consumed)-histLen:]...)
		return
	}
	s.hist = append(s.hist, consumed...)
	if len(s.hist) > histLen {
		s.hist = s.hist[:copy(s.hist, s.hist[len(s.hist)-histLen:])]
	}
}

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("redact: write after close")

// Writer redacts everything written to it and writes the result to an
// underlying writer, holding back at most MaxLookbehind bytes of a possible
// secret until it is decided. Close flushes the held-back tail; it does not
// close the underlying writer. A Writer is safe for concurrent use: writes
// are serialised, so whole-line writers such as slog handlers can share it.
type Writer struct {
	mu     sync.Mutex
	s      stream
	w      io.Writer
	err    error
	closed bool
}

// Writer returns a Writer redacting into w.
func (r *Redactor) Writer(w io.Writer) *Writer {
	return &Writer{s: stream{r: r}, w: w}
}

var _ io.WriteCloser = (*Writer)(nil)

// Write redacts p. It reports len(p) unless the underlying writer failed;
// errors from the underlying writer are sticky.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, ErrClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	if out := w.s.feed(p, false); len(out) > 0 {
		if _, err := w.w.Write(out); err != nil {
			w.err = err
			return 0, err
		}
	}
	return len(p), nil
}

// Close decides and writes the held-back tail. Further writes fail with
// ErrClosed; a second Close returns nil.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	if out := w.s.feed(nil, true); len(out) > 0 {
		if _, err := w.w.Write(out); err != nil {
			w.err = err
			return err
		}
	}
	return nil
}

// Reader redacts what it reads from an underlying reader. It is not safe
// for concurrent use.
type Reader struct {
	s    stream
	src  io.Reader
	buf  []byte
	out  []byte // redacted output not yet returned
	err  error  // from src, returned once out is drained
	done bool
}

// Reader returns a Reader redacting src.
func (r *Redactor) Reader(src io.Reader) *Reader {
	return &Reader{s: stream{r: r}, src: src}
}

const readChunk = 32 << 10

// Read reads redacted bytes into p.
func (rd *Reader) Read(p []byte) (int, error) {
	for len(rd.out) == 0 {
		if rd.done {
			return 0, rd.err
		}
		if rd.buf == nil {
			rd.buf = make([]byte, readChunk)
		}
		n, err := rd.src.Read(rd.buf)
		switch {
		case err == nil:
			rd.out = rd.s.feed(rd.buf[:n], false)
		case errors.Is(err, io.EOF):
			rd.out = rd.s.feed(rd.buf[:n], true)
			rd.done, rd.err = true, io.EOF
		default:
			// The source broke: whatever is held back stays unsent, since
			// it may be the first part of a secret.
			rd.out = rd.s.feed(rd.buf[:n], false)
			rd.done, rd.err = true, err
		}
	}
	n := copy(p, rd.out)
	rd.out = rd.out[n:]
	return n, nil
}

// ReadCloser is a Reader that closes its source.
type ReadCloser struct {
	*Reader
	c io.Closer
}

// ReadCloser returns a redacting reader over rc; Close closes rc.
func (r *Redactor) ReadCloser(rc io.ReadCloser) *ReadCloser {
	return &ReadCloser{Reader: r.Reader(rc), c: rc}
}

// Close closes the source.
func (rc *ReadCloser) Close() error { return rc.c.Close() }
