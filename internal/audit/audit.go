package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"crypto/sha256"

	"github.com/gatehouse/gatehouse"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// Durability says when Record returns relative to the fsync of the event.
type Durability string

// The durability modes.
const (
	// DurabilitySync acknowledges an event only after it is fsynced. It is
	// the default. Concurrent callers share fsyncs (group commit).
	DurabilitySync Durability = "sync"
	// DurabilityBatch acknowledges an event once it is written to the
	// operating system, and fsyncs every BatchSyncInterval. A power loss can
	// lose the last acknowledged events; a process crash cannot.
	DurabilityBatch Durability = "batch"
)

// Errors callers may branch on with errors.Is. The first three are
// *gatehouse.Error values, so gatehouse.ErrorCode maps them to HTTP
// statuses (EUNAVAILABLE, ENOTFOUND, ENOTFOUND) with client-safe messages.
var (
	// ErrClosed is returned by Record, Sync and Prune after Close.
	ErrClosed error = gatehouse.Errorf(gatehouse.EUNAVAILABLE, "audit log closed")
	// ErrPruned is returned for entries removed by retention.
	ErrPruned error = gatehouse.Errorf(gatehouse.ENOTFOUND, "audit entry removed by retention")
	// ErrNotFound is returned for entries beyond the end of the log, or
	// not yet covered by a checkpoint offline.
	ErrNotFound error = gatehouse.Errorf(gatehouse.ENOTFOUND, "audit entry not found")
	// ErrLocked is returned by Open when another process holds the log.
	ErrLocked = errors.New("audit log is in use by another process")
)

// Log keys.
const (
	logKeyDir    = "dir"
	logKeySize   = "size"
	logKeyErr    = "err"
	logKeyOffset = "offset"
	logKeyReason = "reason"
	logKeySeg    = "segment"
	logKeyBytes  = "bytes"
	logKeyCount  = "entries"
	logKeyFrom   = "retained_from"
	logKeyNSegs  = "segments"
)

// Config configures Open. Dir and Origin are required; every other field
// has a usable zero value.
type Config struct {
	// Dir holds the log's files. It is created if missing.
	Dir string
	// Origin is the first line of every checkpoint and the name of the
	// signing key, e.g. "gatehouse.example/audit". It must not contain
	// spaces or '+'.
	Origin string
	// Durability is DurabilitySync (default) or DurabilityBatch.
	Durability Durability
	// CheckpointInterval is how often a checkpoint is signed when the tree
	// grew. Zero means 10s; negative disables periodic checkpoints.
	CheckpointInterval time.Duration
	// BatchSyncInterval is the fsync cadence in batch mode. Zero means 100ms.
	BatchSyncInterval time.Duration
	// Retention is how long events are kept. Zero keeps them forever.
	Retention time.Duration
	// PruneInterval is how often retention runs. Zero means one hour;
	// negative disables periodic pruning (Prune may still be called).
	PruneInterval time.Duration
	// SegmentEntries is the number of entries per segment file, a power of
	// two. Zero means 65536. An existing log keeps the size it was made with.
	SegmentEntries int
	// Clock stamps events and drives retention. Nil means the system clock.
	Clock gatehouse.Clock
	// Logger receives operational messages. Nil discards them.
	Logger *slog.Logger
	// Stream, if set, receives every event as one JSON line after it is
	// committed. Writes happen on a separate goroutine through a bounded
	// buffer; when it is full events are dropped and counted.
	Stream io.Writer
	// StreamBuffer is the stream buffer size in events. Zero means 4096.
	StreamBuffer int
	// NoPreallocate turns off zero-filling the next segment file in the
	// background. Preallocation makes each fdatasync cheaper on ext4 and
	// xfs (no size update); it does not help on copy-on-write filesystems.
	NoPreallocate bool
}

func (c *Config) setDefaults() error {
	if c.Dir == "" {
		return errors.New("audit: Dir is required")
	}
	if c.Origin == "" || strings.ContainsAny(c.Origin, " \t\n+") {
		return fmt.Errorf("audit: origin %q must be non-empty without spaces or '+'", c.Origin)
	}
	switch c.Durability {
	case "":
		c.Durability = DurabilitySync
	case DurabilitySync, DurabilityBatch:
	default:
		return fmt.Errorf("audit: durability %q must be %q or %q", c.Durability, DurabilitySync, DurabilityBatch)
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = 10 * time.Second
	}
	if c.BatchSyncInterval <= 0 {
		c.BatchSyncInterval = 100 * time.Millisecond
	}
	if c.PruneInterval == 0 {
		c.PruneInterval = time.Hour
	}
	if c.SegmentEntries == 0 {
		c.SegmentEntries = 1 << 16
	}
	if c.SegmentEntries < 2 || c.SegmentEntries&(c.SegmentEntries-1) != 0 || c.SegmentEntries > 1<<30 {
		return fmt.Errorf("audit: segment entries %d must be a power of two", c.SegmentEntries)
	}
	if c.Clock == nil {
		c.Clock = gatehouse.SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.StreamBuffer <= 0 {
		c.StreamBuffer = 4096
	}
	return nil
}

// maxGather bounds how long the writer waits for a batch to fill up.
const maxGather = 150 * time.Microsecond

// maxPending bounds the events queued for the writer; Record waits when it
// is reached.
const maxPending = 1 << 15

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

// newBatchLike returns an empty batch with room for as much as prev held, so
// a steady load does not regrow the buffers batch after batch.
func newBatchLike(prev *batch) *batch {
	return &batch{
		done:   make(chan struct{}),
		buf:    make([]byte, 0, len(prev.buf)),
		lens:   make([]int, 0, len(prev.lens)),
		leaves: make([]byte, 0, len(prev.leaves)),
	}
}

// Entry is one stored event and its position in the log.
type Entry struct {
	Index uint64          `json:"index"`
	Event gatehouse.Event `json:"event"`
}

// Log is an open tamper-evident audit log. It is safe for concurrent use.
type Log struct {
	cfg     Config
	dir     string
	segBits uint
	signer  note.Signer
	vkey    string
	logger  *slog.Logger
	clock   gatehouse.Clock
	lock    *os.File

	ids  *IDSource
	bufs sync.Pool // *[]byte encode buffers

	qmu     sync.Mutex
	qcond   *sync.Cond
	pending *batch
	closed  bool
	failed  error
	kick    chan struct{}
	want    int           // batch size the writer is waiting for, or 0
	grown   chan struct{} // signalled when the pending batch reaches want

	ctl        chan func()
	quit       chan struct{}
	sealing    sync.WaitGroup // background syncs of sealed indexes
	stopPrep   atomic.Bool    // tells segment preallocation to give up
	bgSync     chan *os.File  // batch mode: segments to fsync off the append path
	syncerDone chan struct{}
	writerDone chan struct{}
	stream     *Stream

	// Owned by the writer goroutine (and by Open before it starts).
	w writerState

	// mu guards the snapshot that readers use.
	mu       sync.RWMutex
	prefix   prefixState
	segs     []segInfo
	latest   []byte
	latestCP Checkpoint
}

type writerState struct {
	seg, idx     *os.File
	cp           *os.File
	segStart     uint64
	segCount     uint64
	segOff       int64
	size         uint64
	rng          *compact.Range
	segRoot      []byte // set by the range visitor when a segment fills
	visit        compact.VisitFn
	idxBuf       []byte
	unsynced     bool
	lastSync     time.Time
	lastPrune    time.Time
	lastCPSize   uint64
	haveCP       bool
	lastCPRoot   []byte
	recoveredMsg string
	prepared     chan string // path of a zero-filled next segment, or ""
	preallocSize int64
	lastN        int         // events in the last committed batch
	gather       *time.Timer // bounds the wait for a batch to fill
}

var _ gatehouse.Auditor = (*Log)(nil)

// Open opens or creates the audit log in cfg.Dir, recovering from a crash if
// needed: a torn record at the tail of the newest segment is cut, logged,
// and recorded as an "audit.recovered" event. Damage anywhere else makes
// Open fail; run Verify to locate it.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	l := &Log{
		cfg:        cfg,
		dir:        cfg.Dir,
		segBits:    uint(bits.TrailingZeros(uint(cfg.SegmentEntries))),
		logger:     cfg.Logger.WithGroup("audit"),
		clock:      cfg.Clock,
		ids:        NewIDSource(),
		kick:       make(chan struct{}, 1),
		grown:      make(chan struct{}, 1),
		ctl:        make(chan func()),
		quit:       make(chan struct{}),
		writerDone: make(chan struct{}),
		bgSync:     make(chan *os.File, 1),
		syncerDone: make(chan struct{}),
		pending:    newBatch(),
	}
	l.qcond = sync.NewCond(&l.qmu)
	l.w.gather = time.NewTimer(time.Hour)
	l.w.gather.Stop()
	l.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	if err := os.MkdirAll(filepath.Join(l.dir, segDirName), 0o700); err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(l.dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open audit log %s: %w", l.dir, ErrLocked)
	}
	l.lock = lock
	if err := l.load(ctx); err != nil {
		l.closeFiles()
		return nil, err
	}
	if cfg.Stream != nil {
		l.stream = NewStream(cfg.Stream, cfg.StreamBuffer)
	}
	if cfg.Durability == DurabilityBatch {
		go l.syncer()
	} else {
		close(l.syncerDone)
	}
	go l.writer()
	if msg := l.w.recoveredMsg; msg != "" {
		_, err := l.Append(ctx, gatehouse.Event{
			Type:    "audit.recovered",
			Actor:   gatehouse.Actor{Kind: "system", ID: "gatehouse"},
			Action:  "recover",
			Outcome: gatehouse.OutcomeSuccess,
			Reason:  msg,
		})
		if err != nil {
			l.Close(ctx)
			return nil, fmt.Errorf("record audit recovery: %w", err)
		}
	}
	return l, nil
}

// load reads the directory state and prepares the writer state.
func (l *Log) load(ctx context.Context) error {
	signer, vkey, err := loadOrCreateKey(l.dir, l.cfg.Origin)
	if err != nil {
		return err
	}
	l.signer, l.vkey = signer, vkey
	prefix, err := readPrune(l.dir)
	if err != nil {
		return err
	}
	l.prefix = prefix
	os.Remove(filepath.Join(l.dir, segDirName, preparedName))
	os.Remove(filepath.Join(l.dir, segDirName, "new.seg.tmp"))
	starts, err := listSegments(l.dir)
	if err != nil {
		return err
	}
	// Segments wholly below the pruned prefix are left over from an
	// interrupted prune.
	for len(starts) > 0 && starts[0] < prefix.begin {
		l.logger.Info("removing pruned segment left by an interrupted prune", logKeySeg, starts[0])
		os.Remove(segPath(l.dir, starts[0]))
		os.Remove(idxPath(l.dir, starts[0]))
		starts = starts[1:]
	}
	if len(starts) > 0 {
		b := make([]byte, fileHeaderLen)
		f, err := os.Open(segPath(l.dir, starts[0]))
		if err != nil {
			return fmt.Errorf("open audit segment %d: %w", starts[0], err)
		}
		_, err = io.ReadFull(f, b)
		f.Close()
		if err != nil {
			return fmt.Errorf("read audit segment %d: %w", starts[0], err)
		}
		segBits, err := parseHeader(b, segMagic, starts[0])
		if err != nil {
			return fmt.Errorf("read audit segment %d: %w", starts[0], err)
		}
		l.segBits = segBits
	}
	if prefix.begin%(1<<l.segBits) != 0 {
		return fmt.Errorf("audit prune state begins at %d, not a segment boundary", prefix.begin)
	}
	w := &l.w
	w.visit = func(id compact.NodeID, h []byte) {
		if id.Level == l.segBits {
			w.segRoot = h
		}
	}
	factory := newRangeFactory()
	rng, err := factory.NewRange(0, prefix.begin, slices.Clone(prefix.hashes)) // the range mutates its slice
	if err != nil {
		return fmt.Errorf("audit prune state: %w", err)
	}
	w.rng = rng
	next := prefix.begin
	full := uint64(1) << l.segBits
	for i, start := range starts {
		if start != next {
			return fmt.Errorf("audit segment %d: expected a segment starting at entry %d", start, next)
		}
		if i == len(starts)-1 {
			break
		}
		root, err := readSegmentRoot(l.dir, start, l.segBits)
		if err != nil {
			return err
		}
		if root == nil {
			// A crash lost the index of a full segment before it was
			// synced.
			if root, err = l.reseal(start); err != nil {
				return err
			}
		}
		seg, err := factory.NewRange(start, start+full, [][]byte{root})
		if err != nil {
			return err
		}
		if err := w.rng.AppendRange(seg, nil); err != nil {
			return fmt.Errorf("audit segment %d: %w", start, err)
		}
		l.segs = append(l.segs, segInfo{start: start, count: full, root: root})
		next = start + full
	}
	if len(starts) == 0 {
		if err := l.createSegment(next); err != nil {
			return err
		}
	} else if err := l.recoverActive(starts[len(starts)-1]); err != nil {
		return err
	}
	return l.loadCheckpoints(ctx)
}

// reseal rebuilds the index of a full, older segment from its records.
func (l *Log) reseal(start uint64) ([]byte, error) {
	data, err := os.ReadFile(segPath(l.dir, start))
	if err != nil {
		return nil, fmt.Errorf("read audit segment %d: %w", start, err)
	}
	if _, err := parseHeader(data, segMagic, start); err != nil {
		return nil, fmt.Errorf("read audit segment %d: %w", start, err)
	}
	idx := fileHeader(idxMagic, start, l.segBits)
	rng := newRangeFactory().NewEmptyRange(start)
	stop, err := scanFrames(data, func(off int64, payload []byte) error {
		leaf := rfc6962.DefaultHasher.HashLeaf(payload)
		idx = appendIdxEntry(idx, uint64(off), leaf)
		return rng.Append(leaf, nil)
	})
	if err != nil {
		return nil, err
	}
	n := rng.End() - start
	if stop != nil {
		return nil, fmt.Errorf("audit segment %d: entry %d: %s (run verify)", start, rng.End(), stop.Reason)
	}
	if n != 1<<l.segBits || len(rng.Hashes()) != 1 {
		return nil, fmt.Errorf("audit segment %d holds %d entries, want %d (run verify)", start, n, 1<<l.segBits)
	}
	root := rng.Hashes()[0]
	if err := writeFileSync(idxPath(l.dir, start), append(idx, root...), 0o600); err != nil {
		return nil, fmt.Errorf("rebuild audit index %d: %w", start, err)
	}
	l.logger.Warn("audit log: rebuilt the index of a sealed segment", logKeySeg, start)
	return root, nil
}

// recoverActive scans the newest segment, cuts a torn tail, rebuilds its
// index and opens both files for appending.
func (l *Log) recoverActive(start uint64) error {
	w := &l.w
	path := segPath(l.dir, start)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read audit segment %d: %w", start, err)
	}
	if _, err := parseHeader(data, segMagic, start); err != nil {
		return fmt.Errorf("read audit segment %d: %w", start, err)
	}
	idx := fileHeader(idxMagic, start, l.segBits)
	var count uint64
	validEnd := int64(fileHeaderLen)
	w.segRoot = nil
	stop, err := scanFrames(data, func(off int64, payload []byte) error {
		leaf := rfc6962.DefaultHasher.HashLeaf(payload)
		idx = appendIdxEntry(idx, uint64(off), leaf)
		count++
		validEnd = off + frameHeaderLn + int64(len(payload))
		return w.rng.Append(leaf, w.visit)
	})
	if err != nil {
		return err
	}
	// Without a torn tail, any zeros after the last record are preallocated
	// space and stay; appends overwrite them.
	end := validEnd
	truncate := false
	if stop != nil {
		if !stop.Tail {
			return fmt.Errorf("audit segment %d: entry %d at offset %d: %s (not at the tail; run verify)", start, start+count, stop.Offset, stop.Reason)
		}
		end, truncate = stop.Offset, true
		l.w.recoveredMsg = fmt.Sprintf("cut torn tail of segment %d at entry %d (offset %d, %d bytes): %s", start, start+count, end, int64(len(data))-end, stop.Reason)
		l.logger.Warn("audit log: cut torn tail", logKeySeg, start, logKeyOffset, end, logKeyBytes, int64(len(data))-end, logKeyReason, stop.Reason)
	}
	if count > 1<<l.segBits {
		return fmt.Errorf("audit segment %d holds %d entries, more than %d", start, count, 1<<l.segBits)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("open audit segment %d: %w", start, err)
	}
	if truncate {
		if err := f.Truncate(end); err != nil {
			f.Close()
			return fmt.Errorf("truncate audit segment %d: %w", start, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("sync audit segment %d: %w", start, err)
		}
	}
	if _, err := f.Seek(end, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	if err := writeFileSync(idxPath(l.dir, start), idx, 0o600); err != nil {
		f.Close()
		return fmt.Errorf("rebuild audit index %d: %w", start, err)
	}
	xf, err := os.OpenFile(idxPath(l.dir, start), os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		f.Close()
		return fmt.Errorf("open audit index %d: %w", start, err)
	}
	w.seg, w.idx = f, xf
	w.segStart, w.segCount, w.segOff = start, count, end
	w.size = start + count
	l.segs = append(l.segs, segInfo{start: start, count: count})
	if count == 1<<l.segBits {
		return l.seal()
	}
	l.prepareNext()
	return nil
}

// createSegment creates and opens an empty segment starting at start. If a
// zero-filled file was prepared in the background it is used, so that
// appends overwrite allocated blocks and fdatasync need not update the
// file's size (about half the cost of an fsync that grows the file).
func (l *Log) createSegment(start uint64) error {
	w := &l.w
	path := segPath(l.dir, start)
	// The segment gets its header under a temporary name and appears
	// under its real name only once the header is durable, so a crash
	// never leaves a headerless newest segment.
	tmp := filepath.Join(l.dir, segDirName, "new.seg.tmp")
	flags := os.O_RDWR | os.O_CREATE | os.O_TRUNC
	select {
	case p := <-w.prepared:
		w.prepared = nil
		if p != "" {
			tmp, flags = p, os.O_RDWR
		}
	default:
	}
	f, err := os.OpenFile(tmp, flags, 0o600)
	if err != nil {
		return fmt.Errorf("create audit segment %d: %w", start, err)
	}
	if _, err := f.WriteAt(fileHeader(segMagic, start, l.segBits), 0); err != nil {
		f.Close()
		return fmt.Errorf("create audit segment %d: %w", start, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync audit segment %d: %w", start, err)
	}
	if _, err := f.Seek(fileHeaderLen, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("create audit segment %d: %w", start, err)
	}
	xf, err := os.OpenFile(idxPath(l.dir, start), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		f.Close()
		return fmt.Errorf("create audit index %d: %w", start, err)
	}
	if _, err := xf.Write(fileHeader(idxMagic, start, l.segBits)); err != nil {
		f.Close()
		xf.Close()
		return fmt.Errorf("create audit index %d: %w", start, err)
	}
	// The index exists (with its header) before the segment appears, so a
	// concurrent offline reader never finds a segment without one.
	if err := os.Rename(tmp, path); err != nil {
		f.Close()
		xf.Close()
		return fmt.Errorf("create audit segment %d: %w", start, err)
	}
	if err := syncDir(filepath.Join(l.dir, segDirName)); err != nil {
		return fmt.Errorf("sync audit segment dir: %w", err)
	}
	w.seg, w.idx = f, xf
	w.segStart, w.segCount, w.segOff = start, 0, fileHeaderLen
	w.size = start
	w.segRoot = nil
	l.mu.Lock()
	l.segs = append(l.segs, segInfo{start: start})
	l.mu.Unlock()
	l.prepareNext()
	return nil
}

// preparedName is the zero-filled file made ready for the next segment.
const preparedName = "next.seg.tmp"

// prepareNext zero-fills and syncs a file for the next segment on a
// background goroutine, sized from the last sealed segment.
func (l *Log) prepareNext() {
	w := &l.w
	if w.prepared != nil || l.cfg.NoPreallocate {
		return // one preparation at a time; it will serve the next segment
	}
	size := w.preallocSize
	if size == 0 {
		size = min(max(int64(l.cfg.SegmentEntries)*512, 64<<10), 64<<20)
	}
	w.prepared = make(chan string, 1)
	ch := w.prepared
	path := filepath.Join(l.dir, segDirName, preparedName)
	go func() {
		err := zeroFile(path, size, &l.stopPrep)
		if err != nil {
			os.Remove(path)
			if !l.stopPrep.Load() {
				l.logger.Warn("audit: preallocating next segment failed", logKeyErr, err)
			}
			ch <- ""
			return
		}
		ch <- path
	}()
}

func zeroFile(path string, size int64, stop *atomic.Bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	// Write and sync in 1 MiB steps, so that no journal commit forced by
	// an append's fdatasync has to wait for many megabytes of zeros.
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(zeros)) {
		if stop.Load() {
			return errors.New("log closing")
		}
		n := min(int64(len(zeros)), size-off)
		if _, err := f.Write(zeros[:n]); err != nil {
			return err
		}
		if err := fdatasync(f); err != nil {
			return err
		}
	}
	return f.Sync()
}

// seal finishes a full segment: its root goes into the index trailer, both
// files are synced and closed, and the next segment is created.
func (l *Log) seal() error {
	w := &l.w
	if w.segRoot == nil {
		return fmt.Errorf("seal audit segment %d: no segment root", w.segStart)
	}
	root := bytes.Clone(w.segRoot)
	// Cut the unused preallocated tail and size the next preallocation
	// from this segment.
	if err := w.seg.Truncate(w.segOff); err != nil {
		return fmt.Errorf("seal audit segment %d: %w", w.segStart, err)
	}
	w.preallocSize = min(w.segOff+w.segOff/4, 256<<20)
	if err := fdatasync(w.seg); err != nil {
		return fmt.Errorf("sync audit segment %d: %w", w.segStart, err)
	}
	if _, err := w.idx.Write(root); err != nil {
		return fmt.Errorf("seal audit index %d: %w", w.segStart, err)
	}
	// The index (a few MB never synced so far) is synced off the append
	// path; if that is lost in a crash, Open rebuilds it from the segment.
	l.sealing.Add(1)
	go func(seg, idx *os.File, start uint64) {
		defer l.sealing.Done()
		err := idx.Sync()
		idx.Close()
		seg.Close()
		if err != nil {
			l.fail(fmt.Errorf("sync audit index %d: %w", start, err))
		}
	}(w.seg, w.idx, w.segStart)
	l.mu.Lock()
	l.segs[len(l.segs)-1].root = root
	l.segs[len(l.segs)-1].count = w.segCount
	l.mu.Unlock()
	return l.createSegment(w.segStart + w.segCount)
}

// loadCheckpoints reads the latest checkpoint, cuts a torn one and checks the
// latest against the stored tree.
func (l *Log) loadCheckpoints(ctx context.Context) error {
	w := &l.w
	cps, torn, err := readCheckpoints(l.dir, true)
	if err != nil {
		return err
	}
	path := filepath.Join(l.dir, checkpointsFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open audit checkpoints: %w", err)
	}
	w.cp = f
	if torn >= 0 {
		l.logger.Warn("audit log: cut torn checkpoint", logKeyOffset, torn)
		if err := f.Truncate(torn); err != nil {
			return fmt.Errorf("truncate audit checkpoints: %w", err)
		}
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	if len(cps) == 0 {
		return nil
	}
	last := cps[len(cps)-1]
	cp, err := OpenCheckpoint(last.Signed, l.vkey)
	if err != nil {
		return fmt.Errorf("latest audit checkpoint: %w", err)
	}
	if cp.Size > w.size {
		return fmt.Errorf("latest audit checkpoint covers %d entries but the log holds %d: log truncated (run verify)", cp.Size, w.size)
	}
	root, err := l.view().rootAt(cp.Size)
	if err != nil {
		return fmt.Errorf("latest audit checkpoint: %w", err)
	}
	if !bytes.Equal(root, cp.Root) {
		return fmt.Errorf("latest audit checkpoint (size %d) does not match the stored log (run verify)", cp.Size)
	}
	w.haveCP, w.lastCPSize, w.lastCPRoot = true, cp.Size, cp.Root
	l.latest, l.latestCP = last.Signed, cp
	return nil
}

// view returns a snapshot for reading node hashes and entries.
func (l *Log) view() *treeView {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return &treeView{dir: l.dir, segBits: l.segBits, prefix: l.prefix, segs: append([]segInfo(nil), l.segs...)}
}

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
	if l.want > 0 && b.n >= l.want {
		l.want = 0
		select {
		case l.grown <- struct{}{}:
		default:
		}
	}
	l.qmu.Unlock()
	if pos == 0 {
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
		case <-ticker.C:
			l.drain()
			if l.w.unsynced && time.Since(l.w.lastSync) >= l.cfg.BatchSyncInterval {
				// Batch mode: fsync on the syncer goroutine so appends go
				// on meanwhile. unsynced stays set: a checkpoint still
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

// drain commits pending batches until the queue is empty.
func (l *Log) drain() {
	waited := false
	for {
		l.qmu.Lock()
		b := l.pending
		if b.n == 0 {
			l.qmu.Unlock()
			return
		}
		// Group commit gathering: callers acknowledged by the previous
		// fsync are usually about to append again. If fewer events are
		// queued than the last batch held, wait briefly (at most
		// maxGather) for the batch to fill, rather than spend an fsync
		// on a handful of events and make the rest wait for the next.
		if l.cfg.Durability == DurabilitySync && !waited && b.n < l.w.lastN {
			select {
			case <-l.grown:
			default:
			}
			l.want = l.w.lastN
			l.qmu.Unlock()
			l.w.gather.Reset(maxGather)
			select {
			case <-l.grown:
			case <-l.w.gather.C:
			}
			l.w.gather.Stop()
			waited = true
			continue
		}
		waited = false
		l.want = 0
		l.w.lastN = b.n
		l.pending = newBatchLike(b)
		failed := l.failed
		l.qcond.Broadcast()
		l.qmu.Unlock()
		if failed != nil {
			b.err = fmt.Errorf("audit log failed: %w", failed)
		} else if err := l.commit(b); err != nil {
			l.fail(err)
			b.err = err
		}
		// In batch mode commit did not fsync, so this acknowledges
		// before the data is durable, as DurabilityBatch promises.
		close(b.done)
		if b.err == nil && l.stream != nil {
			l.stream.sendBatch(b)
		}
	}
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

// commit writes one batch, crossing segment boundaries as needed, and
// fsyncs it in sync mode.
func (l *Log) commit(b *batch) error {
	w := &l.w
	b.start = w.size
	full := uint64(1) << l.segBits
	off, i := 0, 0
	for i < b.n {
		k := b.n - i
		if room := int(full - w.segCount); k > room {
			k = room
		}
		w.idxBuf = w.idxBuf[:0]
		pos := w.segOff
		chunk := 0
		for j := i; j < i+k; j++ {
			leaf := b.leaves[j*hashLen : (j+1)*hashLen]
			w.idxBuf = appendIdxEntry(w.idxBuf, uint64(pos), leaf)
			pos += int64(b.lens[j])
			chunk += b.lens[j]
			if err := w.rng.Append(leaf, w.visit); err != nil {
				return fmt.Errorf("append audit leaf: %w", err)
			}
		}
		if _, err := w.seg.Write(b.buf[off : off+chunk]); err != nil {
			return fmt.Errorf("write audit segment %d: %w", w.segStart, err)
		}
		if _, err := w.idx.Write(w.idxBuf); err != nil {
			return fmt.Errorf("write audit index %d: %w", w.segStart, err)
		}
		w.segOff = pos
		w.segCount += uint64(k)
		w.size += uint64(k)
		off += chunk
		i += k
		if w.segCount == full {
			if err := l.seal(); err != nil {
				return err
			}
		}
	}
	w.unsynced = true
	if l.cfg.Durability == DurabilitySync {
		if err := l.syncData(); err != nil {
			return err
		}
	}
	// Readers see the batch only once it is acknowledged.
	l.mu.Lock()
	l.segs[len(l.segs)-1].count = w.segCount
	l.mu.Unlock()
	return nil
}

func (l *Log) syncData() error {
	w := &l.w
	if !w.unsynced {
		return nil
	}
	if err := fdatasync(w.seg); err != nil {
		return fmt.Errorf("sync audit segment %d: %w", w.segStart, err)
	}
	w.unsynced = false
	w.lastSync = time.Now()
	return nil
}

// fdatasync flushes f's data. It holds a reference to the descriptor, so
// it is safe against a concurrent Close (it then fails with os.ErrClosed).
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}

// syncer fsyncs segments handed over by the writer in batch mode.
func (l *Log) syncer() {
	defer close(l.syncerDone)
	for f := range l.bgSync {
		if err := fdatasync(f); err != nil && !errors.Is(err, os.ErrClosed) {
			l.fail(fmt.Errorf("sync audit segment: %w", err))
		}
	}
}

// checkpoint signs and stores a checkpoint of the current tree if it grew
// (or if force is set and none exists yet). It refuses to write one that is
// not consistent with the previous checkpoint.
func (l *Log) checkpoint(force bool) ([]byte, error) {
	w := &l.w
	if w.haveCP && w.lastCPSize == w.size {
		return l.Checkpoint(), nil
	}
	if !w.haveCP && w.size == 0 && !force {
		return nil, nil
	}
	if err := l.syncData(); err != nil {
		return nil, err
	}
	if err := w.idx.Sync(); err != nil {
		return nil, fmt.Errorf("sync audit index %d: %w", w.segStart, err)
	}
	root := rfc6962.DefaultHasher.EmptyRoot()
	if w.size > 0 {
		r, err := w.rng.GetRootHash(nil)
		if err != nil {
			return nil, fmt.Errorf("audit root: %w", err)
		}
		root = r
	}
	if w.haveCP {
		if w.size < w.lastCPSize {
			return nil, fmt.Errorf("audit tree shrank from %d to %d", w.lastCPSize, w.size)
		}
		p, err := l.view().consistency(w.lastCPSize, w.size)
		if err != nil {
			return nil, fmt.Errorf("audit consistency proof %d→%d: %w", w.lastCPSize, w.size, err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, w.lastCPSize, w.size, p, w.lastCPRoot, root); err != nil {
			return nil, fmt.Errorf("refusing checkpoint: tree of size %d is not consistent with checkpoint of size %d: %w", w.size, w.lastCPSize, err)
		}
	}
	cp := Checkpoint{Origin: l.cfg.Origin, Size: w.size, Root: root}
	signed, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, l.signer)
	if err != nil {
		return nil, fmt.Errorf("sign audit checkpoint: %w", err)
	}
	frame := appendFrame(nil, signed)
	if _, err := w.cp.Write(frame); err != nil {
		return nil, fmt.Errorf("write audit checkpoint: %w", err)
	}
	if err := w.cp.Sync(); err != nil {
		return nil, fmt.Errorf("sync audit checkpoint: %w", err)
	}
	w.haveCP, w.lastCPSize, w.lastCPRoot = true, cp.Size, cp.Root
	l.mu.Lock()
	l.latest, l.latestCP = signed, cp
	l.mu.Unlock()
	l.logger.Debug("audit checkpoint", logKeySize, cp.Size)
	return signed, nil
}

// do runs fn on the writer goroutine after committing queued events.
func (l *Log) do(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case l.ctl <- func() { fn(); close(done) }:
	case <-l.writerDone:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Sync commits queued events, fsyncs them and signs a checkpoint of the
// current tree (if it grew). It returns the latest signed checkpoint.
func (l *Log) Sync(ctx context.Context) ([]byte, error) {
	var signed []byte
	var cerr error
	if err := l.do(ctx, func() { signed, cerr = l.checkpoint(true) }); err != nil {
		return nil, err
	}
	return signed, cerr
}

// Close commits queued events, writes a final checkpoint and closes the
// files. Record fails with ErrClosed afterwards. Close is safe to call more
// than once.
func (l *Log) Close(ctx context.Context) error {
	l.qmu.Lock()
	if l.closed {
		l.qmu.Unlock()
		<-l.writerDone
		return nil
	}
	l.closed = true
	l.qcond.Broadcast()
	l.qmu.Unlock()
	var cerr error
	err := l.do(ctx, func() {
		if _, err := l.checkpoint(false); err != nil {
			cerr = err
		}
		// Leave no preallocated zeros behind a clean shutdown.
		if err := l.w.seg.Truncate(l.w.segOff); err != nil && cerr == nil {
			cerr = fmt.Errorf("truncate audit segment %d: %w", l.w.segStart, err)
		}
	})
	close(l.quit)
	<-l.writerDone
	close(l.bgSync)
	<-l.syncerDone
	if l.stream != nil {
		l.stream.Close()
	}
	l.closeFiles()
	if err != nil {
		return fmt.Errorf("close audit log: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("close audit log: %w", cerr)
	}
	return nil
}

func (l *Log) closeFiles() {
	l.sealing.Wait()
	w := &l.w
	l.stopPrep.Store(true)
	if w.prepared != nil {
		if p := <-w.prepared; p != "" {
			os.Remove(p)
		}
		w.prepared = nil
	}
	for _, f := range []*os.File{w.seg, w.idx, w.cp} {
		if f != nil {
			f.Close()
		}
	}
	if l.lock != nil {
		l.lock.Close()
	}
}

// VerifierKey returns the note verifier key of the log's signing key, the
// text `gatehouse audit pubkey` prints.
func (l *Log) VerifierKey() string { return l.vkey }

// Checkpoint returns the latest signed checkpoint note, or nil if none has
// been written yet.
func (l *Log) Checkpoint() []byte {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.latest
}

// Size returns the number of entries committed so far (including pruned).
func (l *Log) Size() uint64 {
	return l.view().size()
}

// StreamDropped returns how many events the stream dropped because its
// buffer was full.
func (l *Log) StreamDropped() uint64 {
	if l.stream == nil {
		return 0
	}
	return l.stream.Dropped()
}
