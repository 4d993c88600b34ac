package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/gatehouse/gatehouse/internal/audit"
)

// verifyPage is how many entries Verify reads per query.
const verifyPage = 10000

func entryErr(i uint64, format string, args ...any) error {
	return &audit.VerifyError{Entry: int64(i), Checkpoint: -1, Reason: fmt.Sprintf(format, args...)}
}

// Verify checks the audit log in the database named by dsn without a
// running server, as audit.Verify checks a directory: every stored
// checkpoint's signature and order; each entry's leaf hash recomputed from
// its stored bytes against the stored one; the stored node hashes; the
// recomputed root at every checkpoint's size; that no checkpoint covers
// more entries than are stored; that the sequencer's recorded tree equals
// the recomputed one; and, given opts.Checkpoint, that the log extends it.
// It reads one consistent snapshot, so it may run while replicas write.
// On failure the error is an *audit.VerifyError naming the first bad entry
// or checkpoint.
func Verify(ctx context.Context, dsn string, opts audit.VerifyOptions) (audit.VerifyResult, error) {
	var res audit.VerifyResult
	conn, err := connect(ctx, dsn)
	if err != nil {
		return res, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return res, fmt.Errorf("audit verify: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	vkey := opts.VerifierKey
	if vkey == "" {
		if vkey, err = readVerifierKey(ctx, tx); err != nil {
			return res, err
		}
	}
	st, err := readState(ctx, tx)
	if err != nil {
		return res, err
	}
	rows, err := tx.Query(ctx, `SELECT note FROM audit_checkpoints ORDER BY seq`)
	if err != nil {
		return res, fmt.Errorf("audit verify: read checkpoints: %w", err)
	}
	cps, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return res, fmt.Errorf("audit verify: read checkpoints: %w", err)
	}
	chk, err := audit.NewChecker(vkey, cps, opts.Checkpoint, st.pruned, st.prefix)
	if err != nil {
		return res, err
	}
	r := &chk.Result

	next := st.pruned
	var nodeErr error
	var stored map[compact.NodeID][]byte
	visit := func(id compact.NodeID, h []byte) {
		if nodeErr != nil || id.Level == 0 || id.Level%tileBits != 0 {
			return
		}
		begin, end := id.Coverage()
		want, ok := stored[id]
		switch {
		case !ok:
			nodeErr = entryErr(begin, "the stored node hash of entries [%d, %d) is missing", begin, end)
		case !bytes.Equal(want, h):
			nodeErr = entryErr(begin, "the stored node hash of entries [%d, %d) differs from the recomputed one (an entry in that range was altered)", begin, end)
		}
	}
	var storedTo uint64 // stored holds the node hashes completed by entries [.., storedTo)
	err = scan(ctx, tx, next, true, window{}, func(i uint64, storedLeaf, payload []byte) (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if i < next {
			return false, entryErr(i, "stored twice (entries inserted)")
		}
		if i != next {
			return false, entryErr(next, "missing: the next stored entry is %d (entries removed)", i)
		}
		if i >= storedTo {
			var err error
			if stored, err = storedNodes(ctx, tx, i, i+verifyPage-1); err != nil {
				return false, err
			}
			storedTo = i + verifyPage
		}
		leaf := rfc6962.DefaultHasher.HashLeaf(payload)
		if !bytes.Equal(leaf, storedLeaf) {
			return false, entryErr(i, "leaf hash differs from the stored one (entry modified)")
		}
		if i == st.pruned {
			var ev struct {
				Time time.Time `json:"time"`
			}
			if json.Unmarshal(payload, &ev) == nil {
				r.RetainedSince = ev.Time
			}
		}
		r.Bytes += int64(len(payload))
		if err := chk.Append(leaf, visit); err != nil {
			return false, err
		}
		if nodeErr != nil {
			return false, nodeErr
		}
		next++
		return true, nil
	})
	if err != nil {
		return *r, err
	}
	res, err = chk.Finish()
	if err != nil {
		return res, err
	}
	// The sequencer records the tree it built in the same transaction as
	// the entries: a difference means rows were removed or added behind it.
	if st.size > res.TreeSize {
		return res, entryErr(res.TreeSize, "missing: the sequencer recorded %d entries but the log holds %d (log truncated)", st.size, res.TreeSize)
	}
	if st.size < res.TreeSize {
		return res, entryErr(st.size, "not sequenced: the log holds %d entries but the sequencer recorded %d (entries inserted)", res.TreeSize, st.size)
	}
	if st.size > 0 {
		rng, err := audit.NewRange(st.size, st.rng)
		if err != nil {
			return res, entryErr(st.size-1, "the sequencer's recorded tree is malformed: %v", err)
		}
		root, err := rng.GetRootHash(nil)
		if err != nil || !bytes.Equal(root, res.RootHash) {
			return res, entryErr(st.size-1, "the sequencer's recorded tree differs from the stored entries (entries or tree state altered)")
		}
	}
	if err := tx.QueryRow(ctx, `SELECT coalesce(sum(n), 0) FROM audit_queue`).Scan(&res.Pending); err != nil {
		return res, fmt.Errorf("audit verify: count queued events: %w", err)
	}
	return res, nil
}

// storedNodes reads the stored node hashes that are completed by entries
// [lo, hi].
func storedNodes(ctx context.Context, q querier, lo, hi uint64) (map[compact.NodeID][]byte, error) {
	var levels []int16
	var from, to []int64
	for level := uint(tileBits); level < 64; level += tileBits {
		// Node k of level is completed by entry (k+1)<<level - 1.
		kmin := (lo+1+(1<<level)-1)>>level - 1
		if (hi+1)>>level == 0 {
			break
		}
		kmax := (hi+1)>>level - 1
		if kmax < kmin {
			continue
		}
		levels, from, to = append(levels, int16(level)), append(from, int64(kmin)), append(to, int64(kmax))
	}
	out := map[compact.NodeID][]byte{}
	if len(levels) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT n.level, n.idx, n.hash FROM audit_nodes n
		JOIN unnest($1::smallint[], $2::bigint[], $3::bigint[]) AS r(level, lo, hi) ON n.level = r.level AND n.idx BETWEEN r.lo AND r.hi`,
		levels, from, to)
	if err != nil {
		return nil, fmt.Errorf("audit verify: read node hashes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var level int16
		var idx int64
		var h []byte
		if err := rows.Scan(&level, &idx, &h); err != nil {
			return nil, fmt.Errorf("audit verify: read node hashes: %w", err)
		}
		out[compact.NewNodeID(uint(level), uint64(idx))] = h
	}
	return out, rows.Err()
}
