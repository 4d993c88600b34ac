package postgres

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

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

// scanPage is how many batches scan reads per query: a few thousand
// events, at most 64 × (maxBatchBytes + audit.MaxEventSize) bytes.
const scanPage = 64

// scan calls fn with each sequenced entry from index from on, in index
// order, until fn returns false or an error, reading the payloads only if
// withPayloads. Entries are stored by batch: entry i is element
// i - b.first_idx of the record of the audit_batches row b with the
// greatest first_idx <= i. Skipped are entries before from, elements
// NULL in both arrays (removed) and, if w is not zero, batches whose
// events are all outside it. Tampering can make the indexes go backwards
// or skip: scan reports them as stored, for Verify to name.
func scan(ctx context.Context, q querier, from uint64, withPayloads bool, w window,
	fn func(i uint64, leaf, payload []byte) (bool, error)) error {
	payloads := "NULL::bytea[]"
	if withPayloads {
		payloads = "r.payloads"
	}
	// A lateral join, fenced by OFFSET 0, so that the planner walks
	// audit_batches in order and finds each record by its key rather than
	// scanning both tables: a page costs what it returns.
	query := `SELECT b.first_idx, r.leaves, ` + payloads + ` FROM audit_batches b
		CROSS JOIN LATERAL (SELECT * FROM audit_records r WHERE r.batch = b.batch OFFSET 0) r
		WHERE b.first_idx >= coalesce((SELECT max(first_idx) FROM audit_batches WHERE first_idx <= $1), 0) AND b.first_idx > $2
		AND ($3::timestamptz IS NULL OR r.max_time >= $3) AND ($4::timestamptz IS NULL OR r.min_time < $4)
		ORDER BY b.first_idx LIMIT ` + strconv.Itoa(scanPage)
	after := int64(-1)
	for {
		rows, err := q.Query(ctx, query, int64(from), after, w.since(), w.until())
		if err != nil {
			return fmt.Errorf("read audit entries: %w", err)
		}
		// Collected, not streamed: fn may query on the same connection.
		page, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (record, error) {
			var r record
			err := row.Scan(&r.first, &r.leaves, &r.payloads)
			return r, err
		})
		if err != nil {
			return fmt.Errorf("read audit entries: %w", err)
		}
		for _, r := range page {
			for k := range max(len(r.leaves), len(r.payloads)) {
				i := uint64(r.first) + uint64(k)
				leaf, payload := element(r.leaves, k), element(r.payloads, k)
				if i < from || leaf == nil && (payload == nil || !withPayloads) {
					continue
				}
				if more, err := fn(i, leaf, payload); err != nil || !more {
					return err
				}
			}
		}
		if len(page) < scanPage {
			return nil
		}
		after = page[len(page)-1].first
	}
}

// record is a sequenced batch's row, as scan reads it.
type record struct {
	first            int64
	leaves, payloads [][]byte
}

func element(a [][]byte, k int) []byte {
	if k < len(a) {
		return a[k]
	}
	return nil
}

// window is the times a scan's batches must have events in; zero bounds
// are open.
type window struct{ from, to time.Time }

func (w window) since() *time.Time {
	if w.from.IsZero() {
		return nil
	}
	return &w.from
}

func (w window) until() *time.Time {
	if w.to.IsZero() {
		return nil
	}
	return &w.to
}

// entryAt returns the leaf hash and payload of entry i, or found false.
func entryAt(ctx context.Context, q querier, i uint64) (leaf, payload []byte, found bool, err error) {
	err = scan(ctx, q, i, true, window{}, func(j uint64, l, p []byte) (bool, error) {
		leaf, payload, found = l, p, j == i
		return false, nil
	})
	return leaf, payload, found, err
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
	first := id.Index << (id.Level - base)
	n := uint64(1) << (id.Level - base)
	var hs [][]byte
	if base == 0 {
		next := begin
		err := scan(ctx, q, begin, false, window{}, func(i uint64, leaf, _ []byte) (bool, error) {
			if i != next || i >= end {
				return false, nil
			}
			hs, next = append(hs, leaf), next+1
			return next < end, nil
		})
		if err != nil {
			return nil, fmt.Errorf("read hashes of entries [%d, %d): %w", begin, end, err)
		}
	} else {
		rows, err := q.Query(ctx, `SELECT hash FROM audit_nodes WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx`,
			int16(base), int64(first), int64(first+n))
		if err != nil {
			return nil, fmt.Errorf("read hashes of entries [%d, %d): %w", begin, end, err)
		}
		if hs, err = pgx.CollectRows(rows, pgx.RowTo[[]byte]); err != nil {
			return nil, fmt.Errorf("read hashes of entries [%d, %d): %w", begin, end, err)
		}
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
func inclusionProof(ctx context.Context, q querier, index uint64) (audit.Proof, error) {
	signed, cp, err := latestCheckpoint(ctx, q)
	if err != nil {
		return audit.Proof{}, err
	}
	if index >= cp.Size {
		return audit.Proof{}, fmt.Errorf("entry %d is not covered by the latest checkpoint (size %d); checkpoints are signed every few seconds: %w",
			index, cp.Size, audit.ErrNotFound)
	}
	leaf, payload, found, err := entryAt(ctx, q, index)
	if err != nil {
		return audit.Proof{}, fmt.Errorf("read audit entry %d: %w", index, err)
	}
	if !found {
		return audit.Proof{}, fmt.Errorf("entry %d: %w", index, audit.ErrPruned)
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
	p, err := inclusionProof(ctx, l.pool, index)
	if errors.Is(err, audit.ErrNotFound) {
		// On the leader, a checkpoint covering it can be signed now.
		if _, ok, serr := l.seq.syncIfLeader(ctx); ok && serr == nil {
			return inclusionProof(ctx, l.pool, index)
		}
	}
	return p, err
}

// ConsistencyProof returns the hashes proving that the tree of size1 is a
// prefix of the tree of the latest stored checkpoint, and that checkpoint
// (as audit.Log.ConsistencyProof does for a log in files).
func (l *Log) ConsistencyProof(ctx context.Context, size1 uint64) ([][]byte, []byte, error) {
	signed, cp, err := latestCheckpoint(ctx, l.pool)
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

// Query returns up to limit sequenced entries matching f, oldest first,
// from cursor on (as audit.Log.Query). Events queued but not yet sequenced
// (for up to Config.SequenceInterval) are not listed yet.
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
	page := audit.Page{Entries: []audit.Entry{}}
	var last uint64
	scanned := 0
	err := scan(ctx, l.pool, from, true, window{f.Since, f.Until}, func(i uint64, _, payload []byte) (bool, error) {
		last = i
		scanned++
		ok, err := f.MatchRecord(payload)
		if err != nil {
			return false, fmt.Errorf("decode audit entry %d: %w", i, err)
		}
		if ok {
			var e gatehouse.Event
			if err := json.Unmarshal(payload, &e); err != nil {
				return false, fmt.Errorf("decode audit entry %d: %w", i, err)
			}
			page.Entries = append(page.Entries, audit.Entry{Index: i, Event: e})
		}
		return len(page.Entries) < limit && scanned < audit.ScanBudget, nil
	})
	if err != nil {
		return audit.Page{}, fmt.Errorf("query audit log: %w", err)
	}
	// A full page, or a scan stopped at the budget (a short page, or an
	// empty one, that is not the end).
	if len(page.Entries) == limit || scanned >= audit.ScanBudget {
		page.Next = strconv.FormatUint(last+1, 10)
	}
	return page, nil
}

// export writes the sequenced entries matching f as JSON lines, exactly
// as stored.
func export(ctx context.Context, q querier, f audit.Filter, w io.Writer) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	n := 0
	err := scan(ctx, q, 0, true, window{f.Since, f.Until}, func(i uint64, _, payload []byte) (bool, error) {
		if f != (audit.Filter{}) {
			var e gatehouse.Event
			if err := json.Unmarshal(payload, &e); err != nil {
				return false, fmt.Errorf("decode audit entry %d: %w", i, err)
			}
			if !f.Match(&e) {
				return true, nil
			}
		}
		bw.Write(payload)
		bw.WriteByte('\n')
		n++
		return true, nil
	})
	if err != nil {
		return n, fmt.Errorf("export audit log: %w", err)
	}
	return n, bw.Flush()
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
	signed, _, err := latestCheckpoint(ctx, conn)
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
	return inclusionProof(ctx, conn, index)
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

// SignReport signs an evidence report's SHA-256 with the log's checkpoint
// key (see audit.SignReport).
func (l *Log) SignReport(sum [32]byte) ([]byte, error) {
	return audit.SignReport(l.SigningKey().Signer, sum)
}
