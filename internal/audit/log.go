package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/transparency-dev/merkle/compact"
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
	// Signer, if set, is the checkpoint signing key (named Origin) and
	// VerifierKey its verifier key, given by the secrets provider; the
	// log then keeps only the verifier key in Dir (log.pub). Nil: the
	// key is log.key in Dir, created on first use.
	Signer      note.Signer
	VerifierKey string
	// Previous, with Signer set, is the key Signer succeeds (the
	// audit-key secret after a rotation, KeyRing.Previous). When the log
	// is still signed by it, Open writes the hand-over checkpoint to
	// Signer; see RotateKey.
	Previous *Key
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
	// CommitDelay bounds how long, in sync mode, the writer waits for more
	// events before it commits a batch when other callers are about to
	// append (see drain). Zero means 1ms; negative commits at once.
	CommitDelay time.Duration
	// NoPreallocate turns off zero-filling the active segment ahead of the
	// writer. Preallocation makes each fdatasync cheaper on ext4 and xfs
	// (no size update); it does not help on copy-on-write filesystems.
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
	if c.CommitDelay == 0 {
		c.CommitDelay = time.Millisecond
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
	// key is the checkpoint key in use; RotateKey swaps it.
	key atomic.Pointer[Key]
	// pendingKey is set by load when the log is still signed by
	// Config.Previous: Open hands it over to Config.Signer.
	pendingKey *Key
	logger     *slog.Logger
	clock      gatehouse.Clock
	lock       *os.File

	ids  *IDSource
	bufs sync.Pool // *[]byte encode buffers

	qmu     sync.Mutex
	qcond   *sync.Cond
	pending *batch
	closed  bool
	failed  error
	kick    chan struct{} // wakes the writer: the pending batch is ready
	// committing is set while the writer commits a batch; target is the
	// number of concurrent callers during the last commit, the batch size
	// that wakes the writer; delay bounds its wait for a smaller batch.
	committing bool
	target     int
	delay      *time.Timer

	ctl        chan func()
	quit       chan struct{}
	sealing    sync.WaitGroup // background syncs of sealed indexes
	stopPrep   atomic.Bool    // tells a running zero-fill to give up
	bgSync     chan *os.File  // batch mode: segments to fsync off the append path
	syncerDone chan struct{}
	writerDone chan struct{}
	stream     *Stream
	stats      stats

	// Owned by the writer goroutine (and by Open before it starts).
	w writerState

	// mids caches sealed segments' mid hashes for readers.
	mids *midCache

	// mu guards the snapshot that readers use.
	mu       sync.RWMutex
	prefix   prefixState
	segs     []segInfo
	latest   []byte
	latestCP Checkpoint
	// checkpointAt is when the latest checkpoint was written, unix nanos
	// (0: none yet).
	checkpointAt atomic.Int64
}

type writerState struct {
	seg, idx      *os.File
	cp            *os.File
	segStart      uint64
	segCount      uint64
	segOff        int64
	size          uint64
	rng           *compact.Range
	segRoot       []byte // set by the range visitor when a segment fills
	mids          []byte // the active segment's mid hashes, set by the visitor
	visit         compact.VisitFn
	idxBuf        []byte
	unsyncedBytes int64 // written to the segment since its last fdatasync
	noDSync       bool  // pwritev2 refused RWF_DSYNC: write, then fdatasync
	lastSync      time.Time
	lastPrune     time.Time
	lastCPSize    uint64
	haveCP        bool
	lastCPRoot    []byte
	recoveredMsg  string
	allocEnd      int64      // the segment holds zeros from segOff to here
	ext           *extension // zero-fill running ahead of allocEnd, or nil
	extStep       int64      // size of the next zero-fill
	spare         *batch     // committed batch whose buffers are free
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
		ctl:        make(chan func()),
		quit:       make(chan struct{}),
		writerDone: make(chan struct{}),
		bgSync:     make(chan *os.File, 1),
		syncerDone: make(chan struct{}),
		pending:    newBatch(),
		mids:       newMidCache(),
	}
	l.qcond = sync.NewCond(&l.qmu)
	l.delay = time.NewTimer(time.Hour)
	l.delay.Stop()
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
	go l.writer() // #nosec G118 -- the log's writer lives as long as the log, not a request
	if next := l.pendingKey; next != nil {
		// A rotation whose hand-over was not written (the process
		// stopped between storing the new key and signing it).
		if _, err := l.RotateKey(ctx, next); err != nil {
			l.Close(ctx)
			return nil, fmt.Errorf("audit key hand-over at start: %w", err)
		}
	}
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

// view returns a snapshot for reading node hashes and entries.
func (l *Log) view() *treeView {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return &treeView{dir: l.dir, segBits: l.segBits, prefix: l.prefix, segs: append([]segInfo(nil), l.segs...), mids: l.mids, persistMids: true}
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
		l.collectExtension(true)
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
	if w.ext != nil {
		<-w.ext.done
		w.ext = nil
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
func (l *Log) VerifierKey() string { return l.key.Load().VerifierKey }

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

// Queued returns how many events wait to be committed.
func (l *Log) Queued() int {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	if l.pending == nil {
		return 0
	}
	return l.pending.n
}

// CheckpointTime returns when the latest checkpoint was written (the zero
// time if the log has none).
func (l *Log) CheckpointTime() time.Time {
	if ns := l.checkpointAt.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// StreamDropped returns how many events the stream dropped because its
// buffer was full.
func (l *Log) StreamDropped() uint64 {
	if l.stream == nil {
		return 0
	}
	return l.stream.Dropped()
}
