package audit

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Filter selects events for Query and Export. Zero fields match everything.
type Filter struct {
	// Since keeps events at or after this time.
	Since time.Time
	// Until keeps events before this time.
	Until time.Time
	// Type keeps events of this type; a trailing "*" matches a prefix
	// ("auth.*").
	Type string
	// Actor keeps events whose actor ID, or "kind:id", equals it.
	Actor string
}

// Match reports whether e passes the filter.
func (f Filter) Match(e *gatehouse.Event) bool {
	return f.match(e.Time, e.Type, e.Actor)
}

// match reports whether an event of this time, type and actor passes f.
func (f Filter) match(at time.Time, typ string, actor gatehouse.Actor) bool {
	if !f.Since.IsZero() && at.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !at.Before(f.Until) {
		return false
	}
	if f.Type != "" {
		if p, ok := strings.CutSuffix(f.Type, "*"); ok {
			if !strings.HasPrefix(typ, p) {
				return false
			}
		} else if typ != f.Type {
			return false
		}
	}
	if f.Actor != "" && actor.ID != f.Actor && actor.Kind+":"+actor.ID != f.Actor {
		return false
	}
	return true
}

// ScanBudget is the most entries one Query reads. A filter that matches
// rarely returns the matches among them, fewer than limit or none, with
// Page.Next where the scan stopped, so that one request's cost is bounded
// (about 1 µs an entry with a filter, which is read before the whole event).
const ScanBudget = 10_000

// Page is one page of Query results.
type Page struct {
	Entries []Entry `json:"entries"`
	// Next is the cursor of the following page; empty when the end of the
	// log was reached. A page may hold fewer than limit entries, or none,
	// and still have Next: the scan stopped at ScanBudget entries.
	Next string `json:"next,omitempty"`
}

// matchFields are the fields of an event a Filter reads, decoded from a
// stored record before (and instead of, when it does not match) the whole
// event.
type matchFields struct {
	Time      time.Time       `json:"time"`
	EventType string          `json:"type"`
	Actor     gatehouse.Actor `json:"actor"`
}

// MatchRecord reports whether the stored event payload passes f, decoding
// only the fields f reads (much cheaper than decoding the whole event).
func (f Filter) MatchRecord(payload []byte) (bool, error) {
	if f == (Filter{}) {
		return true, nil
	}
	var m matchFields
	if err := json.Unmarshal(payload, &m); err != nil {
		return false, err
	}
	return f.match(m.Time, m.EventType, m.Actor), nil
}

// scan reads entries [from, size of the view) in order, calling fn with each
// entry's index and stored bytes until fn returns false.
func (v *treeView) scan(ctx context.Context, from uint64, fn func(index uint64, payload []byte) (bool, error)) error {
	if from < v.prefix.begin {
		from = v.prefix.begin
	}
	for _, seg := range v.segs {
		if seg.count == 0 || seg.start+seg.count <= from {
			continue
		}
		more, err := v.scanSegment(ctx, seg, from, fn)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (v *treeView) scanSegment(ctx context.Context, seg segInfo, from uint64, fn func(uint64, []byte) (bool, error)) (bool, error) {
	first := max(from, seg.start)
	xf, err := os.Open(idxPath(v.dir, seg.start))
	if err != nil {
		return false, fmt.Errorf("open audit index %d: %w", seg.start, err)
	}
	var e [8]byte
	_, err = xf.ReadAt(e[:], fileHeaderLen+int64(first-seg.start)*idxEntryLen)
	xf.Close()
	if err != nil {
		return false, fmt.Errorf("read audit index %d: %w", seg.start, err)
	}
	f, err := os.Open(segPath(v.dir, seg.start))
	if err != nil {
		return false, fmt.Errorf("open audit segment %d: %w", seg.start, err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(io.NewSectionReader(f, int64(binary.BigEndian.Uint64(e[:])), 1<<62), 256<<10)
	var hdr [frameHeaderLn]byte
	buf := make([]byte, 0, 4096)
	for i := first; i < seg.start+seg.count; i++ {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return false, fmt.Errorf("read audit entry %d: %w", i, err)
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		if n == 0 || n > MaxEventSize {
			return false, fmt.Errorf("read audit entry %d: bad record length %d", i, n)
		}
		buf = buf[:0]
		buf = append(buf, make([]byte, n)...)
		if _, err := io.ReadFull(r, buf); err != nil {
			return false, fmt.Errorf("read audit entry %d: %w", i, err)
		}
		if checksum(buf) != binary.BigEndian.Uint32(hdr[4:]) {
			return false, fmt.Errorf("read audit entry %d: record checksum mismatch", i)
		}
		more, err := fn(i, buf)
		if err != nil || !more {
			return more, err
		}
	}
	return true, nil
}

// query implements Query on a view.
func (v *treeView) query(ctx context.Context, f Filter, cursor string, limit int) (Page, error) {
	if limit <= 0 {
		limit = 100
	}
	from := v.prefix.begin
	if cursor != "" {
		n, err := strconv.ParseUint(cursor, 10, 64)
		if err != nil {
			return Page{}, gatehouse.Errorf(gatehouse.EINVALID, "bad cursor %q", cursor)
		}
		from = max(n, v.prefix.begin)
	}
	page := Page{Entries: []Entry{}}
	size := v.size()
	next := from
	scanned := 0
	err := v.scan(ctx, from, func(i uint64, payload []byte) (bool, error) {
		next = i + 1
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
			page.Entries = append(page.Entries, Entry{Index: i, Event: e})
		}
		return len(page.Entries) < limit && scanned < ScanBudget, nil
	})
	if err != nil {
		return Page{}, err
	}
	if next < size {
		page.Next = strconv.FormatUint(next, 10)
	}
	return page, nil
}

// export writes matching entries' stored bytes as JSON lines.
func (v *treeView) export(ctx context.Context, f Filter, w io.Writer) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	n := 0
	err := v.scan(ctx, 0, func(i uint64, payload []byte) (bool, error) {
		var e gatehouse.Event
		if err := json.Unmarshal(payload, &e); err != nil {
			return false, fmt.Errorf("decode audit entry %d: %w", i, err)
		}
		if !f.Match(&e) {
			return true, nil
		}
		n++
		bw.Write(payload)
		return true, bw.WriteByte('\n')
	})
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// Query returns up to limit entries matching f, starting at cursor (empty
// for the start of the retained log), among at most ScanBudget entries
// read. Pass Page.Next back as the cursor for the next page: a short or
// empty page with Next means the scan stopped there, not that no later
// entry matches. A malformed cursor yields a gatehouse EINVALID error.
func (l *Log) Query(ctx context.Context, f Filter, cursor string, limit int) (Page, error) {
	return l.view().query(ctx, f, cursor, limit)
}

// Export writes every retained entry matching f to w as JSON lines, exactly
// as stored, and returns how many it wrote.
func (l *Log) Export(ctx context.Context, f Filter, w io.Writer) (int, error) {
	return l.view().export(ctx, f, w)
}

// Proof proves that one entry is in the tree a signed checkpoint
// commits to. Hashes are base64 in JSON.
type Proof struct {
	Index      uint64          `json:"index"`
	TreeSize   uint64          `json:"tree_size"`
	LeafHash   []byte          `json:"leaf_hash"`
	Hashes     [][]byte        `json:"hashes"`
	RootHash   []byte          `json:"root_hash"`
	Checkpoint string          `json:"checkpoint"`
	Entry      json.RawMessage `json:"entry"`
}

// Verify checks the proof: the checkpoint's signature against the verifier
// key vkey, that the leaf hash is the hash of Entry, and the inclusion path
// up to the checkpoint's root.
func (p Proof) Verify(vkey string) error {
	cp, err := OpenCheckpoint([]byte(p.Checkpoint), vkey)
	if err != nil {
		return err
	}
	if cp.Size != p.TreeSize || string(cp.Root) != string(p.RootHash) {
		return errors.New("proof does not match its checkpoint")
	}
	leaf := rfc6962.DefaultHasher.HashLeaf(p.Entry)
	if string(leaf) != string(p.LeafHash) {
		return errors.New("leaf hash does not match the entry")
	}
	return proof.VerifyInclusion(rfc6962.DefaultHasher, p.Index, p.TreeSize, leaf, p.Hashes, cp.Root)
}

// String renders the proof for people: one "key: value" per line.
func (p Proof) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "index: %d\ntree_size: %d\nleaf_hash: %s\nroot_hash: %s\n", p.Index, p.TreeSize,
		base64.StdEncoding.EncodeToString(p.LeafHash), base64.StdEncoding.EncodeToString(p.RootHash))
	for i, h := range p.Hashes {
		fmt.Fprintf(&b, "hash[%d]: %s\n", i, base64.StdEncoding.EncodeToString(h))
	}
	fmt.Fprintf(&b, "entry: %s\ncheckpoint:\n%s", p.Entry, p.Checkpoint)
	return b.String()
}

func (v *treeView) inclusionProof(index uint64, signed []byte, cp Checkpoint) (Proof, error) {
	if index < v.prefix.begin {
		return Proof{}, fmt.Errorf("entry %d: %w", index, ErrPruned)
	}
	if index >= cp.Size {
		return Proof{}, fmt.Errorf("entry %d is not covered by the latest checkpoint (size %d): %w", index, cp.Size, ErrNotFound)
	}
	payload, leaf, err := v.readRecord(index)
	if err != nil {
		return Proof{}, err
	}
	if string(rfc6962.DefaultHasher.HashLeaf(payload)) != string(leaf) {
		return Proof{}, fmt.Errorf("entry %d: stored record does not match its index (run verify)", index)
	}
	hashes, err := v.inclusion(index, cp.Size)
	if err != nil {
		return Proof{}, fmt.Errorf("inclusion proof for entry %d: %w", index, err)
	}
	return Proof{
		Index: index, TreeSize: cp.Size, LeafHash: leaf, Hashes: hashes,
		RootHash: cp.Root, Checkpoint: string(signed), Entry: json.RawMessage(payload),
	}, nil
}

// Proof returns an inclusion proof of entry index against the latest
// checkpoint, first signing a new checkpoint if the entry is newer than it.
func (l *Log) Proof(ctx context.Context, index uint64) (Proof, error) {
	l.mu.RLock()
	signed, cp := l.latest, l.latestCP
	l.mu.RUnlock()
	if signed == nil || index >= cp.Size {
		if index >= l.Size() {
			return Proof{}, fmt.Errorf("entry %d: %w", index, ErrNotFound)
		}
		if _, err := l.Sync(ctx); err != nil {
			return Proof{}, err
		}
		l.mu.RLock()
		signed, cp = l.latest, l.latestCP
		l.mu.RUnlock()
	}
	return l.view().inclusionProof(index, signed, cp)
}

// ConsistencyProof returns the hashes proving that the tree of size1 is a
// prefix of the tree of the latest checkpoint, and that checkpoint.
func (l *Log) ConsistencyProof(ctx context.Context, size1 uint64) ([][]byte, []byte, error) {
	l.mu.RLock()
	signed, cp := l.latest, l.latestCP
	l.mu.RUnlock()
	if signed == nil || size1 > cp.Size {
		return nil, nil, fmt.Errorf("size %d is beyond the latest checkpoint: %w", size1, ErrNotFound)
	}
	p, err := l.view().consistency(size1, cp.Size)
	if err != nil {
		return nil, nil, err
	}
	return p, signed, nil
}
