package postgres

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
)

const (
	hashLen = 32
	// tileBits: node hashes at every level divisible by it are stored, so
	// any node is at most 2^(tileBits-1) stored hashes away.
	tileBits = 8
)

// entryIndex is the index of the entry in entriesFrom and entriesIn.
const entryIndex = "b.first_idx + e.ord"

// entriesFrom selects cols (of audit_events e and audit_batches b) of the
// sequenced entries from index $1 on, in index order, adding the
// conditions in where (" AND …"). Entries are stored by batch: entry i is
// event i - b.first_idx of the batch b with the greatest first_idx <= i.
func entriesFrom(cols, where string) string { return entries(cols, "", "", where) }

// entriesIn selects cols of the sequenced entries with index in [$1, $2),
// in index order.
func entriesIn(cols string) string {
	return entries(cols, " AND first_idx < $2", " AND e.ord < $2 - b.first_idx", "")
}

// entries walks the batches from the one holding entry $1 in index order
// and each batch's events in ord order: a nested loop on the two primary
// keys (the OFFSET 0 keeps the planner from turning it into a join of the
// whole tables), so a page costs what it returns.
func entries(cols, batchCond, eventCond, where string) string {
	return `SELECT ` + cols + ` FROM (SELECT first_idx, batch FROM audit_batches
		WHERE first_idx >= coalesce((SELECT max(first_idx) FROM audit_batches WHERE first_idx <= $1), 0)` + batchCond + `) b
	CROSS JOIN LATERAL (SELECT * FROM audit_events e WHERE e.batch = b.batch AND e.ord >= $1 - b.first_idx` + eventCond + ` OFFSET 0) e
	WHERE true` + where + ` ORDER BY b.first_idx, e.ord`
}

// entryAt selects cols of entry $1.
func entryAt(cols string) string {
	return `SELECT ` + cols + ` FROM audit_batches b JOIN audit_events e ON e.batch = b.batch AND e.ord = $1 - b.first_idx
		WHERE b.first_idx = (SELECT max(first_idx) FROM audit_batches WHERE first_idx <= $1)`
}

// nodeHash returns the hash of a complete tree node from the stored leaf
// and node hashes: one query.
func nodeHash(ctx context.Context, q querier, id compact.NodeID) ([]byte, error) {
	begin, end := id.Coverage()
	base := id.Level - id.Level%tileBits
	if id.Level > 0 && id.Level == base {
		var h []byte
		err := q.QueryRow(ctx, `SELECT hash FROM audit_nodes WHERE level = $1 AND idx = $2`, int16(id.Level), int64(id.Index)).Scan(&h)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("node hash of entries [%d, %d) is not stored", begin, end)
		}
		return h, err
	}
	var rows pgx.Rows
	var err error
	first := id.Index << (id.Level - base)
	n := uint64(1) << (id.Level - base)
	if base == 0 {
		rows, err = q.Query(ctx, entriesIn("e.leaf"), int64(begin), int64(end))
	} else {
		rows, err = q.Query(ctx, `SELECT hash FROM audit_nodes WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx`,
			int16(base), int64(first), int64(first+n))
	}
	if err != nil {
		return nil, fmt.Errorf("read hashes of entries [%d, %d): %w", begin, end, err)
	}
	hs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("read hashes of entries [%d, %d): %w", begin, end, err)
	}
	if uint64(len(hs)) != n {
		return nil, fmt.Errorf("hashes of entries [%d, %d): %d of %d stored", begin, end, len(hs), n)
	}
	for len(hs) > 1 {
		for i := 0; i < len(hs)/2; i++ {
			hs[i] = rfc6962.DefaultHasher.HashChildren(hs[2*i], hs[2*i+1])
		}
		hs = hs[:len(hs)/2]
	}
	return hs[0], nil
}

func proofHashes(ctx context.Context, q querier, n proof.Nodes) ([][]byte, error) {
	hs := make([][]byte, len(n.IDs))
	for i, id := range n.IDs {
		h, err := nodeHash(ctx, q, id)
		if err != nil {
			return nil, err
		}
		hs[i] = h
	}
	return n.Rehash(hs, rfc6962.DefaultHasher.HashChildren)
}

func consistencyProof(ctx context.Context, q querier, size1, size2 uint64) ([][]byte, error) {
	n, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	return proofHashes(ctx, q, n)
}

// inclusionProof proves entry index against the latest checkpoint.
func inclusionProof(ctx context.Context, q querier, vkey string, index uint64) (audit.Proof, error) {
	signed, cp, err := latestCheckpoint(ctx, q, vkey)
	if err != nil {
		return audit.Proof{}, err
	}
	if index >= cp.Size {
		return audit.Proof{}, fmt.Errorf("entry %d is not covered by the latest checkpoint (size %d); checkpoints are signed every few seconds: %w",
			index, cp.Size, audit.ErrNotFound)
	}
	var payload, leaf []byte
	err = q.QueryRow(ctx, entryAt("e.payload, e.leaf"), int64(index)).Scan(&payload, &leaf)
	if errors.Is(err, pgx.ErrNoRows) {
		return audit.Proof{}, fmt.Errorf("entry %d: %w", index, audit.ErrPruned)
	}
	if err != nil {
		return audit.Proof{}, fmt.Errorf("read audit entry %d: %w", index, err)
	}
	if string(rfc6962.DefaultHasher.HashLeaf(payload)) != string(leaf) {
		return audit.Proof{}, fmt.Errorf("entry %d: stored entry does not match its leaf hash (run gatehouse audit verify)", index)
	}
	n, err := proof.Inclusion(index, cp.Size)
	if err != nil {
		return audit.Proof{}, err
	}
	hashes, err := proofHashes(ctx, q, n)
	if err != nil {
		return audit.Proof{}, fmt.Errorf("inclusion proof for entry %d: %w", index, err)
	}
	return audit.Proof{
		Index: index, TreeSize: cp.Size, LeafHash: leaf, Hashes: hashes,
		RootHash: cp.Root, Checkpoint: string(signed), Entry: json.RawMessage(payload),
	}, nil
}

// Proof returns an inclusion proof of entry index against the latest
// checkpoint.
func (l *Log) Proof(ctx context.Context, index uint64) (audit.Proof, error) {
	p, err := inclusionProof(ctx, l.pool, l.vkey, index)
	if errors.Is(err, audit.ErrNotFound) {
		// On the leader, a checkpoint covering it can be signed now.
		if _, ok, serr := l.seq.syncIfLeader(ctx); ok && serr == nil {
			return inclusionProof(ctx, l.pool, l.vkey, index)
		}
	}
	return p, err
}

// ConsistencyProof returns the hashes proving that the tree of size1 is a
// prefix of the tree of the latest stored checkpoint, and that checkpoint
// (as audit.Log.ConsistencyProof does for a log in files).
func (l *Log) ConsistencyProof(ctx context.Context, size1 uint64) ([][]byte, []byte, error) {
	signed, cp, err := latestCheckpoint(ctx, l.pool, l.vkey)
	if err != nil {
		return nil, nil, err
	}
	if size1 > cp.Size {
		return nil, nil, fmt.Errorf("size %d is beyond the latest checkpoint (size %d): %w", size1, cp.Size, audit.ErrNotFound)
	}
	p, err := consistencyProof(ctx, l.pool, size1, cp.Size)
	if err != nil {
		return nil, nil, fmt.Errorf("consistency proof %d→%d: %w", size1, cp.Size, err)
	}
	return p, signed, nil
}

// filterSQL is the conditions of a Filter for entriesFrom, with its
// arguments from $2 on ($1 is the first index).
func filterSQL(f audit.Filter) (string, []any) {
	var where string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where += fmt.Sprintf(" AND "+cond, len(args)+1)
	}
	if !f.Since.IsZero() {
		add("e.time >= $%d", f.Since)
	}
	if !f.Until.IsZero() {
		add("e.time < $%d", f.Until)
	}
	if f.Type != "" {
		if p, ok := strings.CutSuffix(f.Type, "*"); ok {
			add("starts_with(e.type, $%d)", p)
		} else {
			add("e.type = $%d", f.Type)
		}
	}
	if f.Actor != "" {
		args = append(args, f.Actor)
		n := len(args) + 1
		where += fmt.Sprintf(" AND (e.actor_id = $%d OR e.actor_kind || ':' || e.actor_id = $%d)", n, n)
	}
	return where, args
}

// Query returns up to limit sequenced entries matching f, oldest first,
// from cursor on (as audit.Log.Query). Events queued but not yet sequenced
// (for a few milliseconds) are not listed yet.
func (l *Log) Query(ctx context.Context, f audit.Filter, cursor string, limit int) (audit.Page, error) {
	if limit <= 0 {
		limit = 100
	}
	var from uint64
	if cursor != "" {
		n, err := strconv.ParseUint(cursor, 10, 64)
		if err != nil {
			return audit.Page{}, gatehouse.Errorf(gatehouse.EINVALID, "bad cursor %q", cursor)
		}
		from = n
	}
	where, args := filterSQL(f)
	rows, err := l.pool.Query(ctx, entriesFrom(entryIndex+", e.payload", where)+` LIMIT `+strconv.Itoa(limit),
		append([]any{int64(from)}, args...)...)
	if err != nil {
		return audit.Page{}, fmt.Errorf("query audit log: %w", err)
	}
	defer rows.Close()
	page := audit.Page{Entries: []audit.Entry{}}
	var last int64
	for rows.Next() {
		var payload []byte
		if err := rows.Scan(&last, &payload); err != nil {
			return audit.Page{}, fmt.Errorf("query audit log: %w", err)
		}
		var e gatehouse.Event
		if err := json.Unmarshal(payload, &e); err != nil {
			return audit.Page{}, fmt.Errorf("decode audit entry %d: %w", last, err)
		}
		page.Entries = append(page.Entries, audit.Entry{Index: uint64(last), Event: e})
	}
	if err := rows.Err(); err != nil {
		return audit.Page{}, fmt.Errorf("query audit log: %w", err)
	}
	if len(page.Entries) == limit {
		page.Next = strconv.FormatInt(last+1, 10)
	}
	return page, nil
}

// export writes the sequenced entries matching f as JSON lines.
func export(ctx context.Context, q querier, f audit.Filter, w io.Writer) (int, error) {
	where, args := filterSQL(f)
	bw := bufio.NewWriterSize(w, 64<<10)
	n := 0
	from := int64(0)
	for {
		rows, err := q.Query(ctx, entriesFrom(entryIndex+", e.payload", where)+` LIMIT 10000`, append([]any{from}, args...)...)
		if err != nil {
			return n, fmt.Errorf("export audit log: %w", err)
		}
		got := 0
		for rows.Next() {
			var payload []byte
			if err := rows.Scan(&from, &payload); err != nil {
				rows.Close()
				return n, fmt.Errorf("export audit log: %w", err)
			}
			bw.Write(payload)
			bw.WriteByte('\n')
			got++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return n, fmt.Errorf("export audit log: %w", err)
		}
		n += got
		if got < 10000 {
			return n, bw.Flush()
		}
		from++
	}
}

// Export writes every sequenced entry matching f to w as JSON lines.
func (l *Log) Export(ctx context.Context, f audit.Filter, w io.Writer) (int, error) {
	return export(ctx, l.pool, f, w)
}

// connect opens one connection for an offline command.
func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to the audit log's database: %w", err)
	}
	return conn, nil
}

// VerifierKey returns the verifier key recorded in the database named by
// dsn (what `gatehouse audit pubkey --store` prints).
func VerifierKey(ctx context.Context, dsn string) (string, error) {
	conn, err := connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return readVerifierKey(ctx, conn)
}

// LatestCheckpoint returns the newest signed checkpoint in the database
// named by dsn, checked with the verifier key stored there.
func LatestCheckpoint(ctx context.Context, dsn string) ([]byte, error) {
	conn, err := connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	vkey, err := readVerifierKey(ctx, conn)
	if err != nil {
		return nil, err
	}
	signed, _, err := latestCheckpoint(ctx, conn, vkey)
	return signed, err
}

// InclusionProof proves entry index against the latest checkpoint in the
// database named by dsn, without a running server.
func InclusionProof(ctx context.Context, dsn string, index uint64) (audit.Proof, error) {
	conn, err := connect(ctx, dsn)
	if err != nil {
		return audit.Proof{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	vkey, err := readVerifierKey(ctx, conn)
	if err != nil {
		return audit.Proof{}, err
	}
	return inclusionProof(ctx, conn, vkey, index)
}

// Export writes the sequenced entries matching f in the database named by
// dsn to w as JSON lines, without a running server.
func Export(ctx context.Context, dsn string, f audit.Filter, w io.Writer) (int, error) {
	conn, err := connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return export(ctx, conn, f, w)
}
