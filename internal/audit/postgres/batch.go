package postgres

import (
	"encoding/binary"
	"time"
)

// batch is a group of events committed with one statement. Its leaf
// hashes and payloads are kept as the statement sends them: each array
// already in PostgreSQL's binary format, built as events arrive, so that
// a commit neither encodes nor copies them element by element and an
// event costs no allocation of its own (the arrays grow by doubling, from
// the size of the batch before).
type batch struct {
	leaves, payloads byteaArray
	bytes            int // of the payloads
	minTime, maxTime time.Time
	err              error
	done             chan struct{}
}

// newBatch returns an empty batch with room for n events of size bytes
// in all (those of the batch before: the next one is usually alike).
func newBatch(n, size int) *batch {
	return &batch{done: make(chan struct{}), leaves: newByteaArray(n * (4 + hashLen)), payloads: newByteaArray(4*n + size)}
}

func (b *batch) len() int { return b.payloads.n }

// full reports whether the batch must be committed before it takes an
// event of size bytes.
func (b *batch) full(size int) bool {
	return b.len() >= maxPending || b.len() > 0 && b.bytes+size > maxBatchBytes
}

// add appends an event, copying leaf and payload.
func (b *batch) add(leaf, payload []byte, t time.Time) {
	if b.len() == 0 || t.Before(b.minTime) {
		b.minTime = t
	}
	if b.len() == 0 || t.After(b.maxTime) {
		b.maxTime = t
	}
	b.leaves.append(leaf)
	b.payloads.append(payload)
	b.bytes += len(payload)
}

// byteaOID is the type OID of bytea, which a binary array names as its
// element type.
const byteaOID = 17

// arrayHeaderLen is the length of the header of a one-dimensional array
// in PostgreSQL's binary format (array_send/array_recv): the number of
// dimensions, a has-nulls flag and the element type OID, then the
// dimension's length and lower bound, each 4 bytes. Each element follows
// as its length (4 bytes) and its bytes.
const arrayHeaderLen = 20

// byteaArray is a one-dimensional bytea[] without NULLs in PostgreSQL's
// binary format, built element by element; the header is written by wire.
type byteaArray struct {
	buf []byte
	n   int
}

func newByteaArray(capacity int) byteaArray {
	return byteaArray{buf: make([]byte, arrayHeaderLen, arrayHeaderLen+capacity)}
}

// append adds a copy of p as the last element.
func (a *byteaArray) append(p []byte) {
	a.buf = binary.BigEndian.AppendUint32(a.buf, uint32(len(p))) // an event is at most audit.MaxEventSize bytes
	a.buf = append(a.buf, p...)
	a.n++
}

// wire returns the array in binary format, as a parameter of type bytea[]
// in binary format is sent. It must not be called on an empty array,
// whose format has no dimension.
func (a *byteaArray) wire() []byte {
	h := a.buf[:arrayHeaderLen]
	binary.BigEndian.PutUint32(h[0:], 1) // dimensions
	binary.BigEndian.PutUint32(h[4:], 0) // no NULLs
	binary.BigEndian.PutUint32(h[8:], byteaOID)
	binary.BigEndian.PutUint32(h[12:], uint32(a.n)) // at most maxPending elements
	binary.BigEndian.PutUint32(h[16:], 1)           // lower bound
	return a.buf
}

// each calls fn with every element, in order; fn must not keep it.
func (a *byteaArray) each(fn func(p []byte)) {
	for off := arrayHeaderLen; off < len(a.buf); {
		n := int(binary.BigEndian.Uint32(a.buf[off:]))
		off += 4
		fn(a.buf[off : off+n])
		off += n
	}
}

// Binary encodings of the statement's other parameters, as PostgreSQL's
// int4recv and timestamptz_recv read them.

func int4Wire(v int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) } // a batch holds at most maxPending events

// pgEpochMicros is the Unix time of 2000-01-01 00:00:00 UTC, PostgreSQL's
// epoch, in microseconds.
const pgEpochMicros = 946684800 * 1000000

// timestamptzWire encodes t as microseconds since PostgreSQL's epoch,
// truncating nanoseconds, as pgx does.
func timestamptzWire(t time.Time) []byte {
	us := t.Unix()*1000000 + int64(t.Nanosecond())/1000 - pgEpochMicros
	return binary.BigEndian.AppendUint64(nil, uint64(us)) // two's complement, as PostgreSQL reads it
}
