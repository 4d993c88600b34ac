package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Slow clients. Headers that never finish are cut off by the server's
// ReadHeaderTimeout; a body is read under a deadline of its own, set on
// the connection through http.ResponseController: the whole body must
// arrive within a total time, and at no less than a minimum rate after a
// first second of grace. The deadline is lifted once the body has been
// read, so a slow upstream (or a long response) is not cut short.

// minRateGrace is how long a body may take before MinRate applies.
const minRateGrace = time.Second

// errBodyTooSlow is what a body read returns once its deadline passed.
var errBodyTooSlow = errors.New("request body too slow")

// bodyTooSlow is the client's answer: 408.
func bodyTooSlow() error {
	return gatehouse.Errorf(gatehouse.EREQUESTTIMEOUT, "request body not received in time (too slow); the connection is closed")
}

// deadlineBody reads a request body under a total deadline and a minimum
// rate. It is not safe for concurrent use (nor is any request body).
type deadlineBody struct {
	rc      io.ReadCloser
	rctl    *http.ResponseController
	start   time.Time // wall clock: deadlines are the connection's
	timeout time.Duration
	rate    int64 // bytes per second; 0: none
	n       int64
	set     time.Time // the deadline now on the connection
	done    bool
	slow    func() // called once the deadline cut the body off
}

// newDeadlineBody wraps r's body; it sets the first deadline at once, so
// a client that never sends a byte is cut off too.
func newDeadlineBody(w http.ResponseWriter, r *http.Request, timeout time.Duration, rate int64, slow func()) *deadlineBody {
	b := &deadlineBody{rc: r.Body, rctl: http.NewResponseController(w), start: time.Now(), timeout: timeout, rate: rate, slow: slow}
	b.arm()
	return b
}

// limit changes the bounds (a route's own, once it is known).
func (b *deadlineBody) limit(timeout time.Duration, rate int64) {
	b.timeout, b.rate = timeout, rate
	b.arm()
}

// deadline is when the body read so far must be complete by.
func (b *deadlineBody) deadline() time.Time {
	var d time.Time
	if b.timeout > 0 {
		d = b.start.Add(b.timeout)
	}
	if b.rate > 0 {
		m := b.start.Add(minRateGrace + time.Duration(float64(b.n+1)/float64(b.rate)*float64(time.Second)))
		if d.IsZero() || m.Before(d) {
			d = m
		}
	}
	return d
}

func (b *deadlineBody) arm() {
	if b.done {
		return
	}
	if d := b.deadline(); !d.Equal(b.set) {
		// ErrNotSupported (a test's recorder) leaves the body unbounded.
		_ = b.rctl.SetReadDeadline(d)
		b.set = d
	}
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.done {
		return b.rc.Read(p)
	}
	b.arm()
	n, err := b.rc.Read(p)
	b.n += int64(n)
	switch {
	case err == io.EOF:
		b.done = true
		_ = b.rctl.SetReadDeadline(time.Time{})
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		b.slow()
		return n, errBodyTooSlow
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.rc.Close() }

// readLimits puts the request body under the route's read deadline and,
// for routes with BufferRequest, reads all of it before going on, so the
// upstream connection is not taken until the body is complete.
func (g *Gateway) readLimits(next Handler) Handler {
	return HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ex := exchangeFrom(r.Context())
		rt := ex.route
		if r.Body == nil || r.Body == http.NoBody {
			return next.ServeHTTP(w, r)
		}
		if ex.body != nil {
			ex.body.limit(rt.ReadTimeout, rt.MinRate)
		}
		if !rt.BufferRequest {
			return next.ServeHTTP(w, r)
		}
		var buf bytes.Buffer
		if r.ContentLength > 0 {
			buf.Grow(int(min(r.ContentLength, rt.MaxBody)))
		}
		if _, err := buf.ReadFrom(r.Body); err != nil {
			switch {
			case ex.tooLarge.Load():
				return tooLarge(rt.MaxBody)
			case ex.slowBody.Load():
				return bodyTooSlow()
			}
			return gatehouse.Errorf(gatehouse.EINVALID, "request body could not be read")
		}
		r.Body.Close()
		r.Body = io.NopCloser(&buf)
		r.ContentLength = int64(buf.Len())
		r.TransferEncoding = nil
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil }
		return next.ServeHTTP(w, r)
	})
}

// ReadLimits bounds how long a client may take to send each request body
// to h: timeout in all and rate bytes per second after the first second
// (0: no bound). The admin listener uses it; the gateway applies each
// route's own. An over-slow body fails its read, and the handler answers
// as it does any body error.
func ReadLimits(h http.Handler, timeout time.Duration, rate int64) http.Handler {
	if timeout <= 0 && rate <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = newDeadlineBody(w, r, timeout, rate, func() {})
		}
		h.ServeHTTP(w, r)
	})
}
