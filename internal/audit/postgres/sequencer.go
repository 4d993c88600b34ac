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
	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/pgauth"
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
	logKey    string         // the log's key (audit_meta) as of the last step
	handOver  audit.HandOver // the last hand-over this replica wrote
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
				err = s.ensureKey(ctx)
				if err != nil && ctx.Err() == nil && err.Error() != s.lastError() {
					// Once per change: it is retried at every step.
					s.l.logger.Error("audit key hand-over failed", logKeyErr, err)
				}
				s.setErr(err)
			}
			if err == nil {
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
		cfg, err := pgauth.ParseConn(ctx, s.l.cfg.DSN, s.l.cfg.Password)
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
	if s.logKey, err = readVerifierKey(ctx, s.conn); err != nil {
		return err
	}
	s.l.logKey.Store(&s.logKey)
	if !s.l.keys.Load().holds(s.logKey) {
		return fmt.Errorf("the log is signed by key %s, neither this replica's audit key nor the one it succeeds: give every replica the same secrets provider (docs/secrets.md)", vkeyID(s.logKey))
	}
	signed, cp, err := latestCheckpoint(ctx, s.conn)
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
	root, err := s.head(ctx)
	if err != nil {
		return nil, err
	}
	key := s.l.keys.Load().active
	if key.VerifierKey != s.logKey {
		return nil, fmt.Errorf("refusing checkpoint: the log is signed by key %s and this replica's is %s, with no hand-over", vkeyID(s.logKey), key)
	}
	signed, err := audit.SignCheckpoint(key.Signer, size, root)
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

// head returns the root of the tree, after checking, with a consistency
// proof built from the stored nodes, that it extends the last
// checkpoint's.
func (s *sequencer) head(ctx context.Context) ([]byte, error) {
	size := s.rng.End()
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
	return root, nil
}

// ensureKey hands the log over to this replica's key when the log is
// still signed by the key it succeeds. A replica whose key is neither
// the log's nor its successor signs nothing.
func (s *sequencer) ensureKey(ctx context.Context) error {
	_, err := s.ensureKeyHandOver(ctx)
	return err
}

func (s *sequencer) ensureKeyHandOver(ctx context.Context) (audit.HandOver, error) {
	keys := s.l.keys.Load()
	switch {
	case keys.active.VerifierKey == s.logKey:
		return audit.HandOver{}, nil
	case keys.previous == nil || keys.previous.VerifierKey != s.logKey:
		return audit.HandOver{}, fmt.Errorf("the log is signed by key %s, neither this replica's audit key %s nor the one it succeeds: not signing", vkeyID(s.logKey), keys.active)
	}
	root, err := s.head(ctx)
	if err != nil {
		return audit.HandOver{}, fmt.Errorf("audit key hand-over: %w", err)
	}
	size := s.rng.End()
	signed, err := audit.SignHandOver(keys.previous, keys.active, size, root)
	if err != nil {
		return audit.HandOver{}, err
	}
	// One transaction, committed synchronously as checkpoints are: the
	// hand-over and the log's new key, only if the key is still the one
	// this replica hands over from.
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return audit.HandOver{}, fmt.Errorf("audit key hand-over: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT set_config('synchronous_commit', CASE current_setting('synchronous_commit')
			WHEN 'off' THEN 'on' ELSE current_setting('synchronous_commit') END, true)`); err != nil {
		return audit.HandOver{}, fmt.Errorf("audit key hand-over: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO audit_checkpoints (size, note) VALUES ($1, $2)`, int64(size), signed); err != nil {
		return audit.HandOver{}, fmt.Errorf("store audit key hand-over: %w", err)
	}
	tag, err := tx.Exec(ctx, `UPDATE audit_meta SET value = $1 WHERE key = 'verifier_key' AND value = $2`, keys.active.VerifierKey, s.logKey)
	if err != nil {
		return audit.HandOver{}, fmt.Errorf("store audit key hand-over: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return audit.HandOver{}, errors.New("store audit key hand-over: the log's key changed meanwhile")
	}
	if err := tx.Commit(ctx); err != nil {
		return audit.HandOver{}, fmt.Errorf("store audit key hand-over: %w", err)
	}
	ho := audit.HandOver{Size: size, From: s.logKey, To: keys.active.VerifierKey, Signed: signed}
	s.logKey, s.handOver = keys.active.VerifierKey, ho
	s.l.logKey.Store(&ho.To)
	s.haveCP, s.cpSize, s.cpRoot, s.cpSigned = true, size, root, signed
	s.lastCP = time.Now()
	s.l.logger.Info("audit key handed over", logKeySize, size, "from", vkeyID(ho.From), "to", keys.active.String())
	return ho, nil
}

// handOverIfLeader sequences what is queued and hands the log over to
// this replica's key when this replica leads; leader is false when it
// does not.
func (s *sequencer) handOverIfLeader(ctx context.Context) (ho audit.HandOver, leader bool, err error) {
	if !s.leader.Load() {
		return ho, false, nil
	}
	type result struct {
		ho     audit.HandOver
		leader bool
		err    error
	}
	ch := make(chan result, 1)
	if err := s.do(ctx, func(c context.Context) {
		if !s.leader.Load() {
			ch <- result{}
			return
		}
		for {
			_, more, err := s.step(c)
			if err != nil {
				s.lose()
				ch <- result{err: err}
				return
			}
			if !more {
				break
			}
		}
		ho, err := s.ensureKeyHandOver(c)
		if err == nil && ho.Signed == nil && s.handOver.To == s.logKey {
			ho = s.handOver // the loop's step was first
		}
		ch <- result{ho, true, err}
	}); err != nil {
		return ho, true, err
	}
	r := <-ch
	return r.ho, r.leader, r.err
}

// vkeyID names a verifier key by name+hash.
func vkeyID(vkey string) string {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return "(unparsable key)"
	}
	return audit.KeyID(v.Name(), v.KeyHash())
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
	if err := s.ensureKey(ctx); err != nil {
		return nil, err
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
// the log's key in audit_meta (which a hand-over changes in the same
// transaction as it stores its checkpoint), or audit.ErrNotFound.
func latestCheckpoint(ctx context.Context, q querier) ([]byte, audit.Checkpoint, error) {
	signed, cp, _, err := latestCheckpointKey(ctx, q)
	return signed, cp, err
}

// latestCheckpointKey is latestCheckpoint that also returns the log's key.
func latestCheckpointKey(ctx context.Context, q querier) ([]byte, audit.Checkpoint, string, error) {
	var signed []byte
	var vkey string
	err := q.QueryRow(ctx, `SELECT c.note, m.value FROM audit_checkpoints c, audit_meta m WHERE m.key = 'verifier_key' ORDER BY c.seq DESC LIMIT 1`).Scan(&signed, &vkey)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, audit.Checkpoint{}, "", fmt.Errorf("no audit checkpoint yet: %w", audit.ErrNotFound)
	}
	if err != nil {
		return nil, audit.Checkpoint{}, "", fmt.Errorf("read latest audit checkpoint: %w", err)
	}
	cp, err := audit.OpenCheckpoint(signed, vkey)
	if err != nil {
		return nil, audit.Checkpoint{}, "", fmt.Errorf("latest audit checkpoint: %w", err)
	}
	return signed, cp, vkey, nil
}
