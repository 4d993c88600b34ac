package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/gatehouse/gatehouse/internal/audit"
)

// ApplicationName is the application_name of the connection that holds
// (or waits for) the leader lock, by which operators find the leader in
// pg_stat_activity.
const ApplicationName = "gatehouse-audit-sequencer"

// sequencer is the leader election and, while leading, the sequencing and
// checkpointing loop of one replica. Its connection and tree state are
// owned by its goroutine; other goroutines reach them through ctl.
type sequencer struct {
	l   *Log
	ctl chan func(ctx context.Context)

	conn    *pgx.Conn // holds the leader lock while leader
	leader  atomic.Bool
	stopped bool // set by closing: never lead again

	rng       *compact.Range // the tree, as of the last committed step
	haveCP    bool
	cpSize    uint64
	cpRoot    []byte
	cpSigned  []byte // the latest checkpoint, as stored
	lastCP    time.Time
	lastPrune time.Time
	lastErr   atomic.Pointer[string]
}

func newSequencer(l *Log) *sequencer {
	return &sequencer{l: l, ctl: make(chan func(context.Context))}
}

func (s *sequencer) isLeader() bool { return s.leader.Load() }

func (s *sequencer) lastError() string {
	if p := s.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

func (s *sequencer) setErr(err error) {
	var msg string
	if err != nil {
		msg = err.Error()
	}
	s.lastErr.Store(&msg)
}

// run elects and, while leading, sequences until ctx ends.
func (s *sequencer) run(ctx context.Context) {
	defer s.resign()
	for {
		wait := s.l.cfg.LeaderPoll
		if !s.stopped && !s.leader.Load() {
			if err := s.campaign(ctx); err != nil && ctx.Err() == nil {
				s.l.logger.Warn("audit sequencer: cannot take part in leader election", logKeyErr, err)
				s.setErr(err)
			}
		}
		if s.leader.Load() {
			_, more, err := s.step(ctx)
			if err != nil && ctx.Err() == nil {
				s.l.logger.Error("audit sequencing failed", logKeyErr, err)
				s.setErr(err)
				s.lose()
			}
			if err == nil {
				s.setErr(nil)
				if cpi := s.l.cfg.CheckpointInterval; cpi > 0 && time.Since(s.lastCP) >= cpi {
					if _, err := s.checkpoint(ctx); err != nil && ctx.Err() == nil {
						s.l.logger.Error("audit checkpoint failed", logKeyErr, err)
						s.setErr(err)
					}
				}
				if s.l.cfg.Retention > 0 && time.Since(s.lastPrune) >= s.l.cfg.PruneInterval {
					if _, err := s.prune(ctx); err != nil && ctx.Err() == nil {
						s.l.logger.Error("audit prune failed", logKeyErr, err)
					}
				}
			}
			if more && err == nil {
				continue
			}
			wait = s.l.cfg.SequenceInterval
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case fn := <-s.ctl:
			t.Stop()
			fn(ctx)
		case <-t.C:
		}
	}
}

// campaign connects if needed and tries to take the leader lock.
func (s *sequencer) campaign(ctx context.Context) error {
	if s.conn == nil || s.conn.IsClosed() {
		cfg, err := pgx.ParseConfig(s.l.cfg.DSN)
		if err != nil {
			return err
		}
		cfg.RuntimeParams["application_name"] = ApplicationName
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgx.ConnectConfig(cctx, cfg)
		cancel()
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		s.conn = conn
	}
	var got bool
	if err := s.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, leaderLockID).Scan(&got); err != nil {
		s.conn.Close(context.Background())
		s.conn = nil
		return fmt.Errorf("try leader lock: %w", err)
	}
	if !got {
		return nil
	}
	if err := s.load(ctx); err != nil {
		s.lose()
		return fmt.Errorf("take over the audit sequencer: %w", err)
	}
	s.leader.Store(true)
	s.lastCP, s.lastPrune = time.Now(), time.Now()
	s.l.logger.Info("audit sequencer: this replica leads", logKeySize, s.rng.End())
	return nil
}

// load reads the tree state and the latest checkpoint, checking that the
// checkpoint verifies with this replica's key.
func (s *sequencer) load(ctx context.Context) error {
	st, err := readState(ctx, s.conn)
	if err != nil {
		return err
	}
	if s.rng, err = audit.NewRange(st.size, st.rng); err != nil {
		return err
	}
	signed, cp, err := latestCheckpoint(ctx, s.conn, s.l.vkey)
	switch {
	case errors.Is(err, audit.ErrNotFound):
		s.haveCP, s.cpSigned = false, nil
	case err != nil:
		return err
	default:
		if cp.Size > st.size {
			return fmt.Errorf("latest checkpoint covers %d entries but the log holds %d (run gatehouse audit verify)", cp.Size, st.size)
		}
		s.haveCP, s.cpSize, s.cpRoot, s.cpSigned = true, cp.Size, cp.Root, signed
	}
	return nil
}

// lose gives up leadership: closing the session releases the lock.
func (s *sequencer) lose() {
	if s.leader.Swap(false) {
		s.l.logger.Warn("audit sequencer: this replica no longer leads")
	}
	if s.conn != nil {
		s.conn.Close(context.Background())
		s.conn = nil
	}
	s.rng = nil
}

// resign releases the lock explicitly, then closes the connection.
func (s *sequencer) resign() {
	if s.conn == nil {
		return
	}
	if s.leader.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, leaderLockID)
		cancel()
		s.l.logger.Info("audit sequencer: leadership released")
	}
	s.leader.Store(false)
	s.conn.Close(context.Background())
	s.conn = nil
}

// step sequences queued batches, oldest first, in two statements: at
// least one batch and no more than make maxSequence events, unless one
// batch alone is larger. It returns how many events it sequenced and
// whether more are queued.
func (s *sequencer) step(ctx context.Context) (n int, more bool, err error) {
	// A lateral join, fenced by OFFSET 0, so that each record is found by
	// its key rather than by scanning the table.
	rows, err := s.conn.Query(ctx, `SELECT q.batch, q.n, r.leaves FROM (SELECT batch, n FROM audit_queue ORDER BY batch LIMIT $1) q
		LEFT JOIN LATERAL (SELECT leaves FROM audit_records r WHERE r.batch = q.batch OFFSET 0) r ON true ORDER BY q.batch`, maxSequenceBatches)
	if err != nil {
		return 0, false, fmt.Errorf("read queued batches: %w", err)
	}
	var batches []int64
	var leaves [][][]byte
	var b int64
	var size int32
	var ls [][]byte
	_, err = pgx.ForEachRow(rows, []any{&b, &size, &ls}, func() error {
		switch {
		case more:
		case n > 0 && n+int(size) > maxSequence:
			more = true
		case ls == nil:
			return fmt.Errorf("queued batch %d has no record", b)
		case len(ls) != int(size):
			return fmt.Errorf("queued batch %d holds %d leaf hashes, not %d", b, len(ls), size)
		default:
			batches, leaves, n = append(batches, b), append(leaves, ls), n+len(ls)
		}
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("read queued batches: %w", err)
	}
	more = more || len(batches) == maxSequenceBatches
	if len(batches) == 0 {
		return 0, false, nil
	}
	old := s.rng.End()
	next, err := audit.NewRange(old, s.rng.Hashes())
	if err != nil {
		return 0, false, err
	}
	var nLevels []int16
	var nIdx []int64
	var nHash [][]byte
	visit := func(id compact.NodeID, h []byte) {
		if id.Level > 0 && id.Level%tileBits == 0 {
			nLevels = append(nLevels, int16(id.Level))
			nIdx = append(nIdx, int64(id.Index))
			nHash = append(nHash, h)
		}
	}
	firsts := make([]int64, len(batches))
	for i, ls := range leaves {
		firsts[i] = int64(next.End())
		for _, leaf := range ls {
			if len(leaf) != hashLen {
				return 0, false, fmt.Errorf("queued batch %d holds a leaf hash of %d bytes", batches[i], len(leaf))
			}
			if err := next.Append(leaf, visit); err != nil {
				return 0, false, err
			}
		}
	}
	// One statement, so one atomic transaction, in which nothing is
	// written unless the tree state is still the one this step extends.
	// It need not wait for its WAL flush: if PostgreSQL crashes before it,
	// the step is lost as a whole and its batches are still queued, to be
	// sequenced again. A checkpoint is inserted with a synchronous commit,
	// which flushes the WAL of every step before it, so no tree state that
	// could be lost is ever signed.
	var done int
	err = s.conn.QueryRow(ctx, `WITH st AS (
			UPDATE audit_state SET size = $1, range = $2, updated_at = now()
			FROM (SELECT set_config('synchronous_commit', 'off', true)) async WHERE id = 1 AND size = $3 RETURNING 1),
		b AS (INSERT INTO audit_batches (first_idx, batch) SELECT u.* FROM st, unnest($4::bigint[], $5::bigint[]) u),
		n AS (INSERT INTO audit_nodes (level, idx, hash) SELECT u.* FROM st, unnest($6::smallint[], $7::bigint[], $8::bytea[]) u),
		q AS (DELETE FROM audit_queue WHERE batch = ANY($5) AND EXISTS (SELECT FROM st))
		SELECT count(*) FROM st`,
		int64(next.End()), joinHashes(next.Hashes()), int64(old), firsts, batches, nLevels, nIdx, nHash).Scan(&done)
	if err != nil {
		return 0, false, fmt.Errorf("sequence %d queued batches: %w", len(batches), err)
	}
	if done != 1 {
		return 0, false, fmt.Errorf("tree state is no longer at size %d: another sequencer wrote it", old)
	}
	s.rng = next
	return n, more, nil
}

// checkpoint signs and stores a checkpoint of the tree if it grew since the
// last one, after checking, with a consistency proof built from the stored
// nodes, that the new tree extends the last checkpoint's.
func (s *sequencer) checkpoint(ctx context.Context) ([]byte, error) {
	s.lastCP = time.Now()
	size := s.rng.End()
	if s.haveCP && s.cpSize == size {
		return nil, nil
	}
	root := rfc6962.DefaultHasher.EmptyRoot()
	if size > 0 {
		r, err := s.rng.GetRootHash(nil)
		if err != nil {
			return nil, err
		}
		root = r
	}
	if s.haveCP && s.cpSize > 0 {
		p, err := consistencyProof(ctx, s.conn, s.cpSize, size)
		if err != nil {
			return nil, fmt.Errorf("audit consistency proof %d→%d: %w", s.cpSize, size, err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, s.cpSize, size, p, s.cpRoot, root); err != nil {
			return nil, fmt.Errorf("refusing checkpoint: tree of size %d is not consistent with checkpoint of size %d: %w", size, s.cpSize, err)
		}
	}
	signed, err := audit.SignCheckpoint(s.l.signer, size, root)
	if err != nil {
		return nil, err
	}
	// Committed synchronously even where the server's default is off: its
	// WAL flush makes the steps it signs durable (see step).
	if _, err := s.conn.Exec(ctx, `INSERT INTO audit_checkpoints (size, note)
		SELECT $1, $2 FROM (SELECT set_config('synchronous_commit', CASE current_setting('synchronous_commit')
			WHEN 'off' THEN 'on' ELSE current_setting('synchronous_commit') END, true)) c`, int64(size), signed); err != nil {
		return nil, fmt.Errorf("store audit checkpoint: %w", err)
	}
	s.haveCP, s.cpSize, s.cpRoot, s.cpSigned = true, size, root, signed
	s.l.logger.Debug("audit checkpoint", logKeySize, size)
	return signed, nil
}

// drain sequences until the queue is empty, then signs a checkpoint.
func (s *sequencer) drain(ctx context.Context) ([]byte, error) {
	for {
		_, more, err := s.step(ctx)
		if err != nil {
			s.lose()
			return nil, err
		}
		if !more {
			break
		}
	}
	if _, err := s.checkpoint(ctx); err != nil {
		return nil, err
	}
	return s.cpSigned, nil
}

// do runs fn on the sequencer's goroutine.
func (s *sequencer) do(ctx context.Context, fn func(ctx context.Context)) error {
	done := make(chan struct{})
	select {
	case s.ctl <- func(c context.Context) { fn(c); close(done) }:
	case <-s.l.seqDone:
		return audit.ErrClosed
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

// syncIfLeader drains and checkpoints when this replica leads; ok is false
// when it does not. The drain runs on the sequencer's own context: a
// caller that gives up does not cut it short (which would cost the
// leadership), it only stops waiting for it.
func (s *sequencer) syncIfLeader(ctx context.Context) (signed []byte, ok bool, err error) {
	if !s.leader.Load() {
		return nil, false, nil
	}
	type result struct {
		signed []byte
		ok     bool
		err    error
	}
	ch := make(chan result, 1) // the sequencer never waits for a caller that left
	if err := s.do(ctx, func(c context.Context) {
		if !s.leader.Load() {
			ch <- result{}
			return
		}
		signed, err := s.drain(c)
		ch <- result{signed, true, err}
	}); err != nil {
		return nil, true, err
	}
	r := <-ch
	return r.signed, r.ok, r.err
}

// closing stops campaigning and, on the leader, sequences what every
// replica queued, signs a final checkpoint and resigns. A replica that is
// not the leader takes the lock if it is free (the leader has already
// stopped) and does the same, so the last replica to stop leaves nothing
// unsequenced.
func (s *sequencer) closing(ctx context.Context) error {
	var derr error
	err := s.do(ctx, func(c context.Context) {
		if !s.leader.Load() {
			if err := s.campaign(c); err != nil {
				s.l.logger.Warn("audit sequencer: cannot take the lock to drain at shutdown", logKeyErr, err)
			}
		}
		s.stopped = true
		if s.leader.Load() {
			_, derr = s.drain(c)
			if derr != nil && c.Err() == nil {
				// The lock's session may have died unnoticed (a database
				// restart or a cut connection since the last step): drain
				// loses it; take it again on a new session and retry once.
				s.l.logger.Warn("audit sequencer: drain at shutdown failed, retrying on a new connection", logKeyErr, derr)
				if err := s.campaign(c); err != nil {
					derr = fmt.Errorf("%w; then reconnecting: %w", derr, err)
				} else if s.leader.Load() {
					_, derr = s.drain(c)
				} else {
					derr = nil // another replica leads now and sequences the queue
				}
			}
			s.resign()
		}
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return fmt.Errorf("close audit log: %w", err)
	}
	return nil
}

// state is the row of audit_state.
type state struct {
	size   uint64
	rng    [][]byte
	pruned uint64
	prefix [][]byte
}

func readState(ctx context.Context, q querier) (state, error) {
	var st state
	var size, pruned int64
	var rng, prefix []byte
	err := q.QueryRow(ctx, `SELECT size, range, pruned, prefix FROM audit_state WHERE id = 1`).Scan(&size, &rng, &pruned, &prefix)
	if err != nil {
		return st, fmt.Errorf("read audit tree state: %w", err)
	}
	st.size, st.pruned = uint64(size), uint64(pruned)
	if st.rng, err = splitHashes(rng); err != nil {
		return st, fmt.Errorf("read audit tree state: %w", err)
	}
	if st.prefix, err = splitHashes(prefix); err != nil {
		return st, fmt.Errorf("read audit prune state: %w", err)
	}
	return st, nil
}

func joinHashes(hs [][]byte) []byte {
	out := make([]byte, 0, len(hs)*hashLen)
	for _, h := range hs {
		out = append(out, h...)
	}
	return out
}

func splitHashes(b []byte) ([][]byte, error) {
	if len(b)%hashLen != 0 {
		return nil, fmt.Errorf("hash list of %d bytes is not a multiple of %d", len(b), hashLen)
	}
	out := make([][]byte, 0, len(b)/hashLen)
	for i := 0; i < len(b); i += hashLen {
		out = append(out, b[i:i+hashLen])
	}
	return out, nil
}

// latestCheckpoint returns the newest stored checkpoint, verified with
// vkey, or audit.ErrNotFound.
func latestCheckpoint(ctx context.Context, q querier, vkey string) ([]byte, audit.Checkpoint, error) {
	var signed []byte
	err := q.QueryRow(ctx, `SELECT note FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`).Scan(&signed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, audit.Checkpoint{}, fmt.Errorf("no audit checkpoint yet: %w", audit.ErrNotFound)
	}
	if err != nil {
		return nil, audit.Checkpoint{}, fmt.Errorf("read latest audit checkpoint: %w", err)
	}
	cp, err := audit.OpenCheckpoint(signed, vkey)
	if err != nil {
		return nil, audit.Checkpoint{}, fmt.Errorf("latest audit checkpoint: %w", err)
	}
	return signed, cp, nil
}
