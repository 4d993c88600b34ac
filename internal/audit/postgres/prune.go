package postgres

import (
	"context"
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
	// Entries are in time order but for clock skew between replicas: the
	// scan from the start reads about as many as may be pruned.
	limit := st.size
	var keep int64
	err = s.conn.QueryRow(ctx, entriesFrom(entryIndex, " AND e.time >= $2")+` LIMIT 1`, int64(st.pruned), cutoff).Scan(&keep)
	switch {
	case err == nil:
		limit = uint64(keep)
	case !errors.Is(err, pgx.ErrNoRows):
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
	// The events of [pruned, begin), then the batches left without any (a
	// batch across begin keeps its later events).
	tag, err := tx.Exec(ctx, `DELETE FROM audit_events WHERE (batch, ord) IN (`+entriesIn("e.batch, e.ord")+`)`,
		int64(st.pruned), int64(begin))
	if err != nil {
		return res, fmt.Errorf("prune audit log: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM audit_batches b WHERE b.first_idx < $1
		AND NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.batch = b.batch)`, int64(begin)); err != nil {
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
	res.Entries, res.RetainedFrom = uint64(tag.RowsAffected()), begin
	s.l.logger.Info("audit log pruned", "entries", res.Entries, "retained_from", begin)
	return res, nil
}
