package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/transparency-dev/merkle/compact"

	"github.com/gatehouse/gatehouse/internal/audit"
)

// Prune removes entries older than Config.Retention, in whole chunks of
// Config.PruneChunk entries from the start of the log, and never an entry
// no checkpoint covers yet. The compact range of the removed prefix is
// stored with the tree state in the same transaction, so Verify still
// recomputes every remaining checkpoint's root; node hashes a proof of a
// remaining entry may need are kept. Only the leader prunes; elsewhere, or
// with zero retention, Prune does nothing. The leader also prunes every
// PruneInterval.
func (l *Log) Prune(ctx context.Context) (audit.PruneResult, error) {
	var res audit.PruneResult
	var perr error
	if err := l.seq.do(ctx, func(c context.Context) {
		if s := l.seq; s.leader.Load() {
			res, perr = s.prune(ctx)
		}
	}); err != nil {
		return res, err
	}
	return res, perr
}

// prune runs on the sequencer's goroutine while it leads.
func (s *sequencer) prune(ctx context.Context) (audit.PruneResult, error) {
	s.lastPrune = time.Now()
	ret := s.l.cfg.Retention
	var res audit.PruneResult
	if ret <= 0 {
		return res, nil
	}
	st, err := readState(ctx, s.conn)
	if err != nil {
		return res, err
	}
	res.RetainedFrom = st.pruned
	// The first entry young enough to keep bounds what may go; the chunk
	// holding it stays whole.
	cutoff := s.l.cfg.Clock.Now().Add(-ret)
	// Batches are in time order but for clock skew between replicas: the
	// scan skips those all older than the cutoff and reads about one.
	limit := st.size
	err = scan(ctx, s.conn, st.pruned, true, window{from: cutoff}, func(i uint64, _, payload []byte) (bool, error) {
		var e struct {
			Time time.Time `json:"time"`
		}
		if err := json.Unmarshal(payload, &e); err != nil {
			return false, fmt.Errorf("decode audit entry %d: %w", i, err)
		}
		if !e.Time.Before(cutoff) {
			limit = i
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return res, fmt.Errorf("prune audit log: %w", err)
	}
	if !s.haveCP || s.cpSize < limit {
		if _, err := s.checkpoint(ctx); err != nil {
			return res, fmt.Errorf("prune audit log: checkpoint first: %w", err)
		}
	}
	if s.cpSize == 0 {
		return res, nil
	}
	// The chunk holding the last checkpointed entry stays, so consistency
	// proofs from that checkpoint to later ones can still be built.
	limit = min(limit, s.cpSize-1)
	chunk := uint64(s.l.cfg.PruneChunk)
	begin := limit / chunk * chunk
	if begin <= st.pruned {
		return res, nil
	}
	ids := compact.RangeNodes(0, begin, nil)
	prefix := make([][]byte, len(ids))
	for i, id := range ids {
		if prefix[i], err = nodeHash(ctx, s.conn, id); err != nil {
			return res, fmt.Errorf("prune audit log: compact range of [0, %d): %w", begin, err)
		}
	}
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("prune audit log: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// The batch holding entry begin loses its earlier events and starts
	// at begin; the batches before it go.
	var straddler, cut int64
	err = tx.QueryRow(ctx, `SELECT b.batch, $1 - b.first_idx FROM audit_batches b JOIN audit_records r ON r.batch = b.batch
		WHERE b.first_idx = (SELECT max(first_idx) FROM audit_batches WHERE first_idx < $1) AND b.first_idx + cardinality(r.leaves) > $1`,
		int64(begin)).Scan(&straddler, &cut)
	switch {
	case err == nil:
		if _, err := tx.Exec(ctx, `UPDATE audit_records SET leaves = leaves[$2 + 1:], payloads = payloads[$2 + 1:] WHERE batch = $1`,
			straddler, cut); err != nil {
			return res, fmt.Errorf("prune audit log: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE audit_batches SET first_idx = $2 WHERE batch = $1`, straddler, int64(begin)); err != nil {
			return res, fmt.Errorf("prune audit log: %w", err)
		}
	case errors.Is(err, pgx.ErrNoRows):
		cut = 0
	default:
		return res, fmt.Errorf("prune audit log: %w", err)
	}
	var removed int64
	if err := tx.QueryRow(ctx, `WITH d AS (DELETE FROM audit_records r USING audit_batches b WHERE r.batch = b.batch AND b.first_idx < $1
		RETURNING cardinality(r.leaves) AS n) SELECT coalesce(sum(n), 0) FROM d`, int64(begin)).Scan(&removed); err != nil {
		return res, fmt.Errorf("prune audit log: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM audit_batches WHERE first_idx < $1`, int64(begin)); err != nil {
		return res, fmt.Errorf("prune audit log: %w", err)
	}
	// Nodes below the chunk level inside the pruned prefix serve no proof
	// of a remaining entry; higher ones may.
	chunkBits := 0
	for 1<<chunkBits < chunk {
		chunkBits++
	}
	if _, err := tx.Exec(ctx, `DELETE FROM audit_nodes WHERE level < $1 AND (idx + 1) * (1::bigint << level) <= $2`, chunkBits, int64(begin)); err != nil {
		return res, fmt.Errorf("prune audit log: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE audit_state SET pruned = $1, prefix = $2, updated_at = now() WHERE id = 1 AND pruned = $3`,
		int64(begin), joinHashes(prefix), int64(st.pruned)); err != nil {
		return res, fmt.Errorf("prune audit log: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("prune audit log: %w", err)
	}
	res.Entries, res.RetainedFrom = uint64(removed+cut), begin
	s.l.logger.Info("audit log pruned", "entries", res.Entries, "retained_from", begin)
	return res, nil
}
