// Package postgres stores Gatehouse's tamper-evident audit log in
// PostgreSQL, so that every replica of a deployment writes to one log.
//
// Each replica writes its events with group commit: concurrent Record
// calls share one statement, which stores their events once, in one row
// (audit_records), and queues the batch (audit_queue); Record returns once
// it is committed, so an acknowledged event survives the replica's death. One
// replica at a time, the leader, holds a session advisory lock; it
// sequences queued batches from their leaf hashes, giving each the tree
// index of its first event (audit_batches), stores the tree's compact
// range and every node hash at a level divisible by 8 (for proofs) in the
// same transaction, and signs checkpoints (C2SP signed notes, the same as
// the file log's) into audit_checkpoints. When the leader dies PostgreSQL
// ends its session and releases the lock; another replica takes over
// within Config.LeaderPoll and continues from the stored compact range.
//
// Every replica must hold the same checkpoint signing key (Config.Signer,
// from the secrets provider, or log.key in Config.KeyDir): the first to
// start stores the verifier key in
// audit_meta, and a replica with another key refuses to start.
//
// Verify checks the stored log offline exactly as audit.Verify checks the
// files, with the same audit.Checker.
package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/pgauth"
)

// Log keys.
const (
	logKeyErr  = "err"
	logKeySize = "size"
)

// Defaults of Config.
const (
	DefaultWriters            = 2
	DefaultLeaderPoll         = 500 * time.Millisecond
	DefaultSequenceInterval   = 100 * time.Millisecond
	DefaultCheckpointInterval = 10 * time.Second
	// maxSequence is the most events one sequencing transaction moves,
	// unless a single batch is larger; maxSequenceBatches the most
	// batches.
	maxSequence        = 20000
	maxSequenceBatches = 4096
	// maxPending and maxBatchBytes bound the events queued in a replica,
	// in number and in bytes (but for one event), which is a batch; Record
	// waits when it is reached.
	maxPending    = 1 << 15
	maxBatchBytes = 4 << 20
	// lingerMin and maxLinger bound a writer's lingering (see writer).
	lingerMin = 8
	maxLinger = 2 * time.Millisecond
)

// Config configures Open. DSN, Origin and KeyDir are required.
type Config struct {
	// DSN names the database (a postgres:// URL or key=value string).
	DSN string
	// Password, when set, gives every new connection (the pool's and the
	// sequencer's) its password in place of the DSN's: a secret
	// reference, so that a rotated password reaches new connections.
	Password pgauth.Password
	// Origin is the checkpoint origin and signing key name.
	Origin string
	// KeyDir holds the checkpoint signing key (log.key, log.pub), created
	// there on first use. Every replica needs the same one.
	KeyDir string
	// Signer and VerifierKey, if set, are the checkpoint signing key
	// from the secrets provider, used instead of KeyDir's.
	Signer      note.Signer
	VerifierKey string
	// Previous, with Signer set, is the key Signer succeeds (the
	// audit-key secret after a rotation). While the log is still signed
	// by it, this replica may start, and as leader it writes the
	// hand-over checkpoint to Signer; see RotateKey.
	Previous *audit.Key
	// Writers is how many batches a replica commits at once. Zero means
	// DefaultWriters.
	Writers int
	// LeaderPoll is how often a replica that is not the leader tries to
	// become it. Zero means DefaultLeaderPoll.
	LeaderPoll time.Duration
	// SequenceInterval is how long the leader waits after a step that
	// left nothing queued: how long an event may wait to be sequenced,
	// and what amortizes a step's cost over the events it moves. Zero
	// means DefaultSequenceInterval.
	SequenceInterval time.Duration
	// CheckpointInterval is how often the leader signs a checkpoint when
	// the tree grew. Zero means DefaultCheckpointInterval; negative turns
	// periodic checkpoints off (Close and Sync still sign).
	CheckpointInterval time.Duration
	// Retention is how long entries are kept. Zero keeps them forever.
	Retention time.Duration
	// PruneInterval is how often the leader prunes. Zero means one hour.
	PruneInterval time.Duration
	// PruneChunk is the granularity of pruning in entries: 2^8, 2^16,
	// 2^24… (a stored node level). Zero means 65536.
	PruneChunk int
	// Clock stamps events and drives retention. Nil means the system clock.
	Clock gatehouse.Clock
	// Logger receives operational messages. Nil discards them.
	Logger *slog.Logger
	// Stream, if set, receives this replica's events as JSON lines once
	// committed (see audit.Stream).
	Stream io.Writer
	// StreamBuffer is the stream buffer size in events. Zero means 4096.
	StreamBuffer int
}

func (c *Config) setDefaults() error {
	if c.DSN == "" || (c.KeyDir == "" && c.Signer == nil) {
		return errors.New("audit postgres: DSN and KeyDir (or Signer) are required")
	}
	if c.Signer != nil && c.Signer.Name() != c.Origin {
		return fmt.Errorf("audit origin %q differs from signing key name %q", c.Origin, c.Signer.Name())
	}
	if c.Writers <= 0 {
		c.Writers = DefaultWriters
	}
	if c.LeaderPoll <= 0 {
		c.LeaderPoll = DefaultLeaderPoll
	}
	if c.SequenceInterval <= 0 {
		c.SequenceInterval = DefaultSequenceInterval
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.PruneInterval <= 0 {
		c.PruneInterval = time.Hour
	}
	if c.PruneChunk == 0 {
		c.PruneChunk = 1 << 16
	}
	if bits.OnesCount(uint(c.PruneChunk)) != 1 || bits.TrailingZeros(uint(c.PruneChunk))%tileBits != 0 {
		return fmt.Errorf("audit postgres: prune chunk %d must be 2^8, 2^16 or 2^24…", c.PruneChunk)
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

// Log is an audit log in PostgreSQL. It is safe for concurrent use.
type Log struct {
	cfg  Config
	pool *pgxpool.Pool
	// keys is this replica's checkpoint key and the one it succeeds;
	// SetKeys swaps them, the sequencer hands the log over.
	keys atomic.Pointer[keyPair]
	// logKey is the log's key (audit_meta) as this replica last saw it:
	// set by the sequencer, and by Sync on a replica that does not lead.
	logKey atomic.Pointer[string]
	ids    *audit.IDSource
	logger *slog.Logger
	stream *audit.Stream
	// scratch holds *[]byte buffers in which Record encodes an event
	// before copying it into the batch.
	scratch sync.Pool

	qmu     sync.Mutex
	qcond   *sync.Cond
	pending *batch
	closed  bool
	// expect is how many events the next batch should gather before it
	// is committed, or zero; a writer lingers up to linger for them.
	expect  int
	linger  time.Duration
	writers sync.WaitGroup

	seq       *sequencer
	seqCancel context.CancelFunc
	seqDone   chan struct{}

	failing atomic.Bool            // the last commit failed
	lastErr atomic.Pointer[string] // what it failed with
}

var _ gatehouse.Auditor = (*Log)(nil)

// Open connects to the database, creates the tables if needed, checks that
// this replica's signing key is the log's, and starts the writers and the
// sequencer (which becomes leader when it can).
func Open(ctx context.Context, cfg Config) (*Log, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	signer, vkey, err := cfg.Signer, cfg.VerifierKey, error(nil)
	if signer == nil {
		signer, vkey, err = audit.LoadOrCreateSigner(cfg.KeyDir, cfg.Origin)
	}
	if err != nil {
		return nil, err
	}
	pcfg, err := pgauth.ParsePool(cfg.DSN, cfg.Password)
	if err != nil {
		return nil, fmt.Errorf("open audit log in postgres: %w", err)
	}
	pcfg.MaxConns = int32(cfg.Writers + 4)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("open audit log in postgres: %w", err)
	}
	l := &Log{
		cfg: cfg, pool: pool,
		ids:     audit.NewIDSource(),
		logger:  cfg.Logger.WithGroup("audit"),
		pending: newBatch(0, 0),
		seqDone: make(chan struct{}),
	}
	l.qcond = sync.NewCond(&l.qmu)
	l.keys.Store(&keyPair{active: &audit.Key{Signer: signer, VerifierKey: vkey}, previous: cfg.Previous})
	if err := l.init(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if cfg.Stream != nil {
		l.stream = audit.NewStream(cfg.Stream, cfg.StreamBuffer)
	}
	for range cfg.Writers {
		l.writers.Add(1)
		go l.writer()
	}
	l.seq = newSequencer(l)
	var sctx context.Context
	sctx, l.seqCancel = context.WithCancel(context.Background())
	go func() {
		defer close(l.seqDone)
		l.seq.run(sctx)
	}()
	return l, nil
}

// init creates the tables and binds the log to this replica's key.
func (l *Log) init(ctx context.Context) error {
	if err := migrate(ctx, l.pool); err != nil {
		return err
	}
	keys := l.keys.Load()
	if _, err := l.pool.Exec(ctx, `INSERT INTO audit_meta (key, value) VALUES ('verifier_key', $1), ('origin', $2) ON CONFLICT (key) DO NOTHING`,
		keys.active.VerifierKey, l.cfg.Origin); err != nil {
		return fmt.Errorf("record audit verifier key: %w", err)
	}
	stored, err := readVerifierKey(ctx, l.pool)
	if err != nil {
		return err
	}
	if !keys.holds(stored) {
		return fmt.Errorf("the audit signing key of this replica is not this log's: PostgreSQL holds verifier key %q and this replica has %q; "+
			"give every replica the same audit key: one secrets provider (Vault, or the master key) for all (docs/secrets.md)", stored, keys.active.VerifierKey)
	}
	return nil
}

// keyPair is a replica's checkpoint key and the one it succeeds (nil
// before a rotation).
type keyPair struct{ active, previous *audit.Key }

// holds reports whether logKey, the log's key in audit_meta, is the
// active key or the one it succeeds.
func (k *keyPair) holds(logKey string) bool {
	return logKey == k.active.VerifierKey || k.previous != nil && logKey == k.previous.VerifierKey
}

// SetKeys makes active this replica's checkpoint key, succeeding
// previous (nil: none), as a rotation made elsewhere stored them (the
// audit-key secret). The leader hands the log over to active at its next
// step when the log is still signed by previous. Report signatures use
// active from now on. It is safe for concurrent use.
func (l *Log) SetKeys(active, previous *audit.Key) error {
	if active == nil || active.Signer == nil || active.Signer.Name() != l.cfg.Origin {
		return fmt.Errorf("audit key: want a key named %q", l.cfg.Origin)
	}
	l.keys.Store(&keyPair{active: active, previous: previous})
	return nil
}

// RotateKey makes next this replica's checkpoint key, succeeding the
// current one, and, when this replica leads, hands the log over to it at
// once: the hand-over checkpoint of the tree, signed by both keys, and
// audit_meta's verifier key next's, in one transaction. leader is false
// when another replica leads: it hands over when it reads the new key
// from the shared secrets (SetKeys). It is safe for concurrent use.
func (l *Log) RotateKey(ctx context.Context, next *audit.Key) (ho audit.HandOver, leader bool, err error) {
	cur := l.keys.Load().active
	if next == nil || next.VerifierKey == cur.VerifierKey {
		return ho, false, audit.ErrSameKey
	}
	if err := l.SetKeys(next, cur); err != nil {
		return ho, false, err
	}
	return l.seq.handOverIfLeader(ctx)
}

// KeyChain returns the log's chain of checkpoint keys, oldest first,
// after checking the hand-over checkpoints' signatures (audit.KeyChain).
func (l *Log) KeyChain(ctx context.Context) ([]audit.KeyEpoch, error) { return keyChain(ctx, l.pool) }

// KeyChain returns the chain of checkpoint keys of the log in the
// database named by dsn, without a running server.
func KeyChain(ctx context.Context, dsn string) ([]audit.KeyEpoch, error) {
	conn, err := connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return keyChain(ctx, conn)
}

func keyChain(ctx context.Context, q querier) ([]audit.KeyEpoch, error) {
	vkey, err := readVerifierKey(ctx, q)
	if err != nil {
		return nil, err
	}
	// The hand-overs only, each with its position among the checkpoints.
	rows, err := q.Query(ctx, `SELECT c.note, (SELECT count(*) FROM audit_checkpoints p WHERE p.seq < c.seq) FROM audit_checkpoints c
		WHERE position(convert_to('gatehouse-key-handover ', 'UTF8') IN c.note) > 0 ORDER BY c.seq`)
	if err != nil {
		return nil, fmt.Errorf("read audit checkpoints: %w", err)
	}
	var hos [][]byte
	var at []int
	var n []byte
	var pos int64
	if _, err := pgx.ForEachRow(rows, []any{&n, &pos}, func() error {
		hos, at = append(hos, bytes.Clone(n)), append(at, int(pos))
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read audit checkpoints: %w", err)
	}
	return audit.HandOverChain(vkey, hos, at)
}

func readVerifierKey(ctx context.Context, q querier) (string, error) {
	var vkey string
	err := q.QueryRow(ctx, `SELECT value FROM audit_meta WHERE key = 'verifier_key'`).Scan(&vkey)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", errors.New("no audit log in this database (no verifier key in audit_meta)")
	}
	if err != nil {
		return "", fmt.Errorf("read audit verifier key: %w", err)
	}
	return vkey, nil
}

// querier is what reads need of a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Record appends e to this replica's queue. It sets e.ID and e.Time when
// they are empty and returns once the event is committed in PostgreSQL
// (sequenced into the tree shortly after, by the leader). If ctx ends
// first it returns ctx's error and the event may still be recorded. It
// implements gatehouse.Auditor.
func (l *Log) Record(ctx context.Context, e gatehouse.Event) error {
	l.ids.Fill(&e, l.cfg.Clock)
	sp, _ := l.scratch.Get().(*[]byte)
	if sp == nil {
		sp = new([]byte)
	}
	defer l.putScratch(sp)
	// The buffer holds 0x00 || event: its SHA-256 is the event's RFC 6962
	// leaf hash, computed without another copy or hasher.
	buf, err := audit.EncodeEvent(append((*sp)[:0], rfc6962.RFC6962LeafHashPrefix), &e)
	if err != nil {
		return fmt.Errorf("encode audit event: %w", err)
	}
	*sp = buf
	payload := buf[1:]
	if len(payload) > audit.MaxEventSize {
		return gatehouse.Errorf(gatehouse.ETOOLARGE, "audit event is %d bytes, limit %d", len(payload), audit.MaxEventSize)
	}
	leaf := sha256.Sum256(buf)
	l.qmu.Lock()
	for l.pending.full(len(payload)) && !l.closed {
		l.qcond.Wait()
	}
	if l.closed {
		l.qmu.Unlock()
		return audit.ErrClosed
	}
	b := l.pending
	b.add(leaf[:], payload, e.Time)
	if b.len() == 1 || b.len() == l.expect {
		l.qcond.Broadcast()
	}
	l.qmu.Unlock()
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxScratch is the largest encoding buffer kept for reuse: one that
// grew for a rare huge event is left to the garbage collector.
const maxScratch = 64 << 10

func (l *Log) putScratch(sp *[]byte) {
	if cap(*sp) <= maxScratch {
		l.scratch.Put(sp)
	}
}

// Queued returns how many events this replica holds, not yet committed.
func (l *Log) Queued() int {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	if l.pending == nil {
		return 0
	}
	return l.pending.len()
}

// writer commits queued batches until the log is closed and its queue
// empty. Several writers run at once, so one batch commits while the next
// fills.
//
// Under load a writer lingers before it commits (as PostgreSQL's
// commit_delay): when the last batch held at least lingerMin events, the
// next one is expected to gather as many again plus those queued while
// it committed (the requests that waited for it come back), and the
// writer waits for them up to the last commit's duration, at most
// maxLinger. Fewer, larger batches cost PostgreSQL less per event, and
// under light load (small batches) nothing waits.
func (l *Log) writer() {
	defer l.writers.Done()
	for {
		l.qmu.Lock()
		for l.pending.len() == 0 && !l.closed {
			l.qcond.Wait()
		}
		if n := l.expect; l.pending.len() < n && !l.closed {
			expired := false
			t := time.AfterFunc(l.linger, func() {
				l.qmu.Lock()
				expired = true
				l.qcond.Broadcast()
				l.qmu.Unlock()
			})
			for l.pending.len() < n && !l.closed && !expired {
				l.qcond.Wait()
			}
			t.Stop()
		}
		b := l.pending
		if b.len() == 0 {
			l.qmu.Unlock()
			return
		}
		l.pending = newBatch(b.len(), b.bytes)
		l.qcond.Broadcast()
		l.qmu.Unlock()
		start := time.Now()
		b.err = l.commit(b)
		took := time.Since(start)
		close(b.done)
		l.qmu.Lock()
		l.expect = 0
		if b.len() >= lingerMin && b.err == nil {
			l.expect, l.linger = min(b.len()+l.pending.len(), maxPending), min(took, maxLinger)
		}
		l.qmu.Unlock()
		if b.err == nil && l.stream != nil {
			b.payloads.each(l.stream.Send)
		}
	}
}

// insertBatch is how a replica writes a batch: one statement, so one
// round trip and one transaction, which PostgreSQL commits (and flushes
// to its WAL) before it answers. It queues the batch and stores its
// events, once, in one row.
const insertBatch = `WITH q AS (INSERT INTO audit_queue (n) VALUES ($1) RETURNING batch)
INSERT INTO audit_records (batch, leaves, payloads, min_time, max_time) SELECT batch, $2, $3, $4, $5 FROM q`

// insertBatchName names insertBatch, prepared once on each connection.
const insertBatchName = "gatehouse_audit_insert_batch"

// insertBatchParams returns the parameter types of insertBatch, all sent
// in binary format as batch and its arrays encode them.
func insertBatchParams() []uint32 {
	return []uint32{pgtype.Int4OID, pgtype.ByteaArrayOID, pgtype.ByteaArrayOID, pgtype.TimestamptzOID, pgtype.TimestamptzOID}
}

// commit writes one batch.
func (l *Log) commit(b *batch) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := l.insert(ctx, b)
	if err != nil {
		err = fmt.Errorf("write %d audit events to postgres: %w", b.len(), err)
		msg := err.Error()
		l.lastErr.Store(&msg)
		if !l.failing.Swap(true) {
			l.logger.Error("audit append failed; requests are refused until it succeeds again", logKeyErr, err)
		}
		return gatehouse.Errorf(gatehouse.EUNAVAILABLE, "audit log unavailable")
	}
	if l.failing.Swap(false) {
		l.logger.Info("audit appends succeed again")
	}
	return nil
}

// insertAttempts bounds how many connections insert tries a batch on.
// The server usually ends every session of the role at once (a password
// rotation, a restart), and the pool may hand out another idle one whose
// goodbye has not arrived yet.
const insertAttempts = 5

// insert runs insertBatch on a connection of the pool; when the server
// ended that connection under it (pg_terminate_backend after a password
// rotation, a restart) without committing, it runs it again on another,
// so that sessions killed between two batches fail no request.
func (l *Log) insert(ctx context.Context, b *batch) error {
	err := l.insertOnce(ctx, b)
	for i := 1; i < insertAttempts && err != nil && pgauth.Terminated(err) && ctx.Err() == nil; i++ {
		l.logger.Info("audit append: the server ended the connection before committing; retrying on another", logKeyErr, err, "attempt", i+1)
		err = l.insertOnce(ctx, b)
	}
	return err
}

// insertOnce runs insertBatch, prepared on the connection, with the
// batch's arrays sent as they are (see batch).
func (l *Log) insertOnce(ctx context.Context, b *batch) error {
	c, err := l.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	sd, err := c.Conn().Prepare(ctx, insertBatchName, insertBatch)
	if err != nil {
		return err
	}
	if want := insertBatchParams(); !slices.Equal(sd.ParamOIDs, want) {
		return fmt.Errorf("statement parameters are of types %v, not %v", sd.ParamOIDs, want)
	}
	params := [][]byte{int4Wire(b.len()), b.leaves.wire(), b.payloads.wire(), timestamptzWire(b.minTime), timestamptzWire(b.maxTime)}
	formats := []int16{pgtype.BinaryFormatCode} // one format for all parameters
	_, err = c.Conn().PgConn().ExecPrepared(ctx, insertBatchName, params, formats, nil).Close()
	return err
}

// Healthy reports whether the last commit succeeded, whether this replica
// leads the sequencer, and the sequencer's last error.
func (l *Log) Healthy() (ok bool, leader bool, detail string) {
	if l.failing.Load() {
		return false, l.seq.isLeader(), *l.lastErr.Load()
	}
	return true, l.seq.isLeader(), l.seq.lastError()
}

// VerifierKey returns the note verifier key of the log's signing key.
// It is the key of SigningKey.
func (l *Log) VerifierKey() string { return l.SigningKey().VerifierKey }

// SigningKey is the key this replica signs reports (and the app's
// backups) with: its active key, except while the log, as last seen by
// the sequencer or by Sync, is still signed by the key it succeeds (a
// rotation the leader has not handed over yet), so that what is signed
// right after a Sync names the key of the checkpoint it carries.
func (l *Log) SigningKey() *audit.Key {
	keys := l.keys.Load()
	if lk := l.logKey.Load(); lk != nil && keys.previous != nil && *lk == keys.previous.VerifierKey {
		return keys.previous
	}
	return keys.active
}

// Sync returns the latest signed checkpoint. On the leader it first
// sequences everything queued and signs a checkpoint of the result;
// elsewhere it returns the newest one the leader stored.
func (l *Log) Sync(ctx context.Context) ([]byte, error) {
	if signed, ok, err := l.seq.syncIfLeader(ctx); ok {
		return signed, err
	}
	signed, _, vkey, err := latestCheckpointKey(ctx, l.pool)
	if err == nil {
		l.logKey.Store(&vkey)
	}
	return signed, err
}

// Close commits queued events, and, on the leader, sequences every queued
// event (of every replica), signs a final checkpoint and releases the
// leadership. Record fails with audit.ErrClosed afterwards.
func (l *Log) Close(ctx context.Context) error {
	l.qmu.Lock()
	if l.closed {
		l.qmu.Unlock()
		return nil
	}
	l.closed = true
	l.qcond.Broadcast()
	l.qmu.Unlock()
	l.writers.Wait()
	err := l.seq.closing(ctx)
	l.seqCancel()
	<-l.seqDone
	if l.stream != nil {
		l.stream.Close()
	}
	l.pool.Close()
	return err
}

// StreamDropped returns how many events the stream dropped.
func (l *Log) StreamDropped() uint64 {
	if l.stream == nil {
		return 0
	}
	return l.stream.Dropped()
}
