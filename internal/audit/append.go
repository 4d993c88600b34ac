package audit

// The write path: Record and Append queue events, one writer goroutine
// group-commits them (in sync mode one write with RWF_DSYNC per batch, or a
// write and an fdatasync where a batch needs more than one write).

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse"
)

// maxPending bounds the events queued for the writer; Record waits when it
// is reached.
const maxPending = 1 << 15

// Stats are counters of the write path since Open. They are read with
// atomic loads, each on its own, so a snapshot taken under load may be a
// few events apart between fields.
type Stats struct {
	// Events is the number of events committed (written, and in sync
	// mode fsynced).
	Events uint64 `json:"events"`
	// Bytes is the number of segment bytes written (framed records).
	Bytes uint64 `json:"bytes"`
	// Fsyncs is the number of fdatasyncs of segment data (an RWF_DSYNC write
	// counts as one; not the syncs of the zeros
	// written ahead): one per batch in sync mode, one per
	// BatchSyncInterval in batch mode, and one per checkpoint, sealed
	// segment or 4 MiB written.
	Fsyncs uint64 `json:"fsyncs"`
	// Batches is the number of group commits (usually one write per file
	// each).
	Batches uint64 `json:"batches"`
	// DelayTimeouts is the number of commit delays that ran out before
	// as many callers came as the writer waited for (sync mode): each
	// added the whole CommitDelay to its batch's latency.
	DelayTimeouts uint64 `json:"delay_timeouts"`
}

// stats holds the counters behind Stats.
type stats struct {
	events, bytes, fsyncs, batches, delayTimeouts atomic.Uint64
}

// Stats returns the write path's counters. It is safe to call at any time,
// also after Close.
func (l *Log) Stats() Stats {
	return Stats{
		Events:        l.stats.events.Load(),
		Bytes:         l.stats.bytes.Load(),
		Fsyncs:        l.stats.fsyncs.Load(),
		Batches:       l.stats.batches.Load(),
		DelayTimeouts: l.stats.delayTimeouts.Load(),
	}
}

// Err returns why Record refuses events: the failed write or fsync that
// stops the log until it is reopened, ErrClosed after Close, or nil while
// the log accepts events.
func (l *Log) Err() error {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	switch {
	case l.failed != nil:
		return fmt.Errorf("audit log failed: %w", l.failed)
	case l.closed:
		return ErrClosed
	}
	return nil
}

// batch is a group of events committed with one write and one fsync.
type batch struct {
	buf    []byte // framed records
	lens   []int  // frame lengths
	leaves []byte // leaf hashes, hashLen each
	n      int
	start  uint64 // index of the first event, set by the writer
	err    error
	done   chan struct{}
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// Record appends e to the log. It sets e.ID (a ULID) and e.Time when they
// are empty. With sync durability it returns once the event is fsynced; with
// batch durability once it is written. If ctx ends first Record returns the
// context's error, and the event may still be recorded. It implements
// gatehouse.Auditor.
func (l *Log) Record(ctx context.Context, e gatehouse.Event) error {
	_, err := l.Append(ctx, e)
	return err
}

// Append is Record returning the stored entry: its index and the event with
// ID and Time filled in.
func (l *Log) Append(ctx context.Context, e gatehouse.Event) (Entry, error) {
	l.ids.Fill(&e, l.clock)
	// buf holds 0x00 (the RFC 6962 leaf prefix) followed by the payload,
	// so the leaf hash is one sha256.Sum256 without copying.
	bp := l.bufs.Get().(*[]byte)
	buf, err := appendEvent(append((*bp)[:0], 0), &e)
	if cap(buf) <= 64<<10 { // keep rare huge buffers out of the pool
		*bp = buf
		defer l.bufs.Put(bp)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("encode audit event: %w", err)
	}
	payload := buf[1:]
	if len(payload) > MaxEventSize {
		return Entry{}, gatehouse.Errorf(gatehouse.ETOOLARGE, "audit event is %d bytes, limit %d", len(payload), MaxEventSize)
	}
	leaf := sha256.Sum256(buf)
	var hdr [frameHeaderLn]byte
	binary.BigEndian.PutUint32(hdr[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(hdr[4:8], checksum(payload))

	l.qmu.Lock()
	for l.pending.n >= maxPending && !l.closed && l.failed == nil {
		l.qcond.Wait()
	}
	if l.closed {
		l.qmu.Unlock()
		return Entry{}, ErrClosed
	}
	if l.failed != nil {
		err := l.failed
		l.qmu.Unlock()
		return Entry{}, fmt.Errorf("audit log failed: %w", err)
	}
	b := l.pending
	pos := b.n
	b.buf = append(b.buf, hdr[:]...)
	b.buf = append(b.buf, payload...)
	b.lens = append(b.lens, frameHeaderLn+len(payload))
	b.leaves = append(b.leaves, leaf[:]...)
	b.n++
	// A committing writer looks at the queue when it is done. An idle one
	// is woken when the batch has as many events as there were callers
	// during the last commit; the first event of a smaller batch starts
	// the commit delay instead (see drain).
	kick := false
	if !l.committing {
		if b.n == max(l.target, 1) {
			kick = true
		} else if pos == 0 {
			l.delay.Reset(l.cfg.CommitDelay)
		}
	}
	l.qmu.Unlock()
	if kick {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	select {
	case <-b.done:
	case <-ctx.Done():
		return Entry{}, ctx.Err()
	}
	if b.err != nil {
		return Entry{}, b.err
	}
	return Entry{Index: b.start + uint64(pos), Event: e}, nil
}

// writer is the single goroutine that owns the files.
func (l *Log) writer() {
	defer close(l.writerDone)
	tick := time.Second
	if l.cfg.Durability == DurabilityBatch {
		tick = l.cfg.BatchSyncInterval
	}
	if l.cfg.CheckpointInterval > 0 && l.cfg.CheckpointInterval < tick {
		tick = l.cfg.CheckpointInterval
	}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	lastCP := time.Now()
	for {
		select {
		case <-l.kick:
			l.drain()
		case <-l.delay.C:
			l.stats.delayTimeouts.Add(1)
			l.drain()
		case <-ticker.C:
			l.drain()
			if l.w.unsyncedBytes > 0 && time.Since(l.w.lastSync) >= l.cfg.BatchSyncInterval {
				// Batch mode: fsync on the syncer goroutine so appends go
				// on meanwhile. unsyncedBytes stays set: a checkpoint still
				// syncs in the foreground before it covers the data.
				select {
				case l.bgSync <- l.w.seg:
					l.w.lastSync = time.Now()
				default:
				}
			}
			if l.cfg.CheckpointInterval > 0 && time.Since(lastCP) >= l.cfg.CheckpointInterval {
				lastCP = time.Now()
				if _, err := l.checkpoint(false); err != nil {
					l.logger.Error("audit checkpoint failed", logKeyErr, err)
				}
			}
			if l.cfg.Retention > 0 && l.cfg.PruneInterval > 0 && time.Since(l.w.lastPrune) >= l.cfg.PruneInterval {
				l.w.lastPrune = time.Now()
				if _, err := l.prune(context.Background()); err != nil {
					l.logger.Error("audit prune failed", logKeyErr, err)
				}
			}
		case fn := <-l.ctl:
			l.drain()
			fn()
		case <-l.quit:
			l.drain() // commit what was queued before Close
			return
		}
	}
}

// drain commits the queued events.
//
// In sync mode the writer applies a commit delay, like PostgreSQL's
// commit_delay and commit_siblings: the callers acknowledged by the last
// fsync are usually about to append again, so while fewer events are
// queued than there were concurrent callers during the last commit (the
// events of that batch plus those queued while it was written and
// synced), it waits, at most CommitDelay from the end of that commit or
// from the first event of the batch, for them rather than spend an fsync
// on a handful of events and make the others wait for the next. The
// caller that completes the batch wakes it (Append), so the writer wakes
// once per batch. A lone caller never waits: there are no others to wait
// for.
//
// The wait pays off when the callers are the same ones coming back (a
// closed loop: each caller appends again once its last event is durable).
// When requests arrive independently of the commits (an open loop), the
// batch and the events queued meanwhile overstate who is coming, so most
// waits run out and a batch pays up to the whole delay (Stats'
// DelayTimeouts, BenchmarkAppendSyncOpenLoop). Committing without waiting
// after a wait ran out halves that latency but, in a saturated closed
// loop whose callers return later than the delay, halves the events per
// fsync too: tried and left out. drain returns when the queue is empty
// or waiting.
func (l *Log) drain() {
	gather := l.cfg.Durability == DurabilitySync && l.cfg.CommitDelay > 0
	for {
		l.qmu.Lock()
		b := l.pending
		if b.n == 0 {
			l.qmu.Unlock()
			return
		}
		l.delay.Stop()
		l.committing = true
		l.pending = l.w.nextBatch(b)
		failed := l.failed
		l.qcond.Broadcast()
		l.qmu.Unlock()
		if failed != nil {
			b.err = fmt.Errorf("audit log failed: %w", failed)
		} else if err := l.commit(b); err != nil {
			l.fail(err)
			b.err = err
		}
		l.qmu.Lock()
		l.committing = false
		queued := l.pending.n
		// Those queued meanwhile are others than this batch's callers,
		// which are still waiting.
		l.target = 1
		if gather {
			l.target = min(b.n+queued, maxPending)
		}
		wait := queued > 0 && queued < l.target
		if wait {
			l.delay.Reset(l.cfg.CommitDelay)
		}
		l.qmu.Unlock()
		// In batch mode commit did not fsync, so this acknowledges
		// before the data is durable, as DurabilityBatch promises.
		close(b.done)
		if b.err == nil && l.stream != nil {
			l.stream.sendBatch(b)
		}
		l.w.spare = b
		if wait {
			return
		}
	}
}

// nextBatch returns an empty batch to queue events in while prev is
// committed. It reuses the record buffers of the batch committed before
// prev, which the writer is done with (its callers read only start and
// err), so a steady load does not allocate them batch after batch. Leaf
// hashes get a new buffer: the compact range keeps the slices it is given.
func (w *writerState) nextBatch(prev *batch) *batch {
	nb := &batch{done: make(chan struct{}), leaves: make([]byte, 0, len(prev.leaves))}
	if s := w.spare; s != nil && cap(s.buf) <= 1<<20 {
		nb.buf, nb.lens = s.buf[:0], s.lens[:0]
	} else {
		nb.buf = make([]byte, 0, len(prev.buf))
		nb.lens = make([]int, 0, len(prev.lens))
	}
	w.spare = nil
	return nb
}

// fail makes every later Record fail with err: after a failed write or
// fsync the state of the files is unknown until the next Open.
func (l *Log) fail(err error) {
	l.logger.Error("audit append failed; refusing further events", logKeyErr, err)
	l.qmu.Lock()
	if l.failed == nil {
		l.failed = err
	}
	l.qcond.Broadcast()
	l.qmu.Unlock()
}

// maxUnsynced bounds the segment bytes written since the last fdatasync:
// commit syncs before it would exceed it, whatever the durability mode. So
// after a power loss only the last maxUnsynced bytes of a segment can hold
// a torn write, which is how recovery tells one from damage (scanFrames).
// It is larger than the largest frame, so every write makes progress.
const maxUnsynced = 4 << 20

// commit writes one batch, crossing segment boundaries as needed, and
// fsyncs it in sync mode.
func (l *Log) commit(b *batch) error {
	w := &l.w
	b.start = w.size
	full := uint64(1) << l.segBits
	off, i := 0, 0
	for i < b.n {
		if w.unsyncedBytes > 0 && w.unsyncedBytes+int64(b.lens[i]) > maxUnsynced {
			if err := l.syncData(); err != nil {
				return err
			}
		}
		// Events i..j-1 go into one write: they fit in the segment and
		// keep the unsynced bytes within maxUnsynced.
		w.idxBuf = w.idxBuf[:0]
		pos := w.segOff
		j := i
		for j < b.n && w.segCount+uint64(j-i) < full && (j == i || w.unsyncedBytes+(pos-w.segOff)+int64(b.lens[j]) <= maxUnsynced) {
			leaf := b.leaves[j*hashLen : (j+1)*hashLen]
			w.idxBuf = appendIdxEntry(w.idxBuf, uint64(pos), leaf)
			pos += int64(b.lens[j])
			if err := w.rng.Append(leaf, w.visit); err != nil {
				return fmt.Errorf("append audit leaf: %w", err)
			}
			j++
		}
		chunk := int(pos - w.segOff)
		if pos > w.allocEnd {
			// The zeros ahead ran out: wait for the zero-fill that may be
			// writing where this write goes.
			l.collectExtension(true)
		}
		// In sync mode the last write of a commit that has nothing else
		// unsynced carries the fdatasync itself (RWF_DSYNC): one system
		// call, and one wait in it, instead of a write and an fdatasync.
		// A kernel or file system without RWF_DSYNC refuses it before
		// writing anything: the log then writes and fdatasyncs as before.
		dsync := l.cfg.Durability == DurabilitySync && !w.noDSync && j == b.n && w.unsyncedBytes == 0 && w.segCount+uint64(j-i) < full
		if dsync {
			n, err := writeDSync(w.seg, b.buf[off:off+chunk])
			switch {
			case err == nil:
				l.stats.fsyncs.Add(1)
				w.lastSync = time.Now()
			case n == 0 && dsyncUnsupported(err):
				l.logger.Info("audit log: this file system does not take RWF_DSYNC writes; writing and syncing in two calls", logKeyErr, err)
				w.noDSync, dsync = true, false
			default:
				return fmt.Errorf("write and sync audit segment %d: %w", w.segStart, err)
			}
		}
		if !dsync {
			if _, err := w.seg.Write(b.buf[off : off+chunk]); err != nil {
				return fmt.Errorf("write audit segment %d: %w", w.segStart, err)
			}
		}
		if _, err := w.idx.Write(w.idxBuf); err != nil {
			return fmt.Errorf("write audit index %d: %w", w.segStart, err)
		}
		w.segOff = pos
		w.allocEnd = max(w.allocEnd, pos)
		if !dsync {
			w.unsyncedBytes += int64(chunk)
		}
		w.segCount += uint64(j - i)
		w.size += uint64(j - i)
		off += chunk
		i = j
		if w.segCount == full {
			if err := l.seal(); err != nil {
				return err
			}
		}
	}
	if l.cfg.Durability == DurabilitySync {
		if err := l.syncData(); err != nil {
			return err
		}
	}
	l.stats.batches.Add(1)
	l.stats.events.Add(uint64(b.n))
	l.stats.bytes.Add(uint64(len(b.buf)))
	// Readers see the batch only once it is acknowledged.
	l.mu.Lock()
	l.segs[len(l.segs)-1].count = w.segCount
	l.segs[len(l.segs)-1].mids = w.mids
	l.mu.Unlock()
	l.collectExtension(false)
	l.extend()
	return nil
}

func (l *Log) syncData() error {
	w := &l.w
	if w.unsyncedBytes == 0 {
		return nil
	}
	if err := l.fdatasync(w.seg); err != nil {
		return fmt.Errorf("sync audit segment %d: %w", w.segStart, err)
	}
	w.unsyncedBytes = 0
	w.lastSync = time.Now()
	return nil
}

// dsyncUnsupported reports whether pwritev2 refused RWF_DSYNC itself: a
// kernel older than 4.7 (ENOSYS, EINVAL for the flag) or a file system
// that does not take it (EOPNOTSUPP).
func dsyncUnsupported(err error) bool {
	return errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.EINVAL)
}

// fdatasync flushes the data of segment f and counts it in Stats.
func (l *Log) fdatasync(f *os.File) error {
	l.stats.fsyncs.Add(1)
	return fdatasync(f)
}

// syncer fsyncs segments handed over by the writer in batch mode.
func (l *Log) syncer() {
	defer close(l.syncerDone)
	for f := range l.bgSync {
		if err := l.fdatasync(f); err != nil && !errors.Is(err, os.ErrClosed) {
			l.fail(fmt.Errorf("sync audit segment: %w", err))
		}
	}
}
