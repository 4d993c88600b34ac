package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// VerifyOptions tunes Verify.
type VerifyOptions struct {
	// VerifierKey is the note verifier key to check checkpoints with. Empty
	// means the key stored in the directory; pass a key kept elsewhere to
	// catch a replaced key.
	VerifierKey string
	// Checkpoint is a signed checkpoint saved earlier outside the log
	// (by a witness, in object storage). Verify proves the current log
	// extends it.
	Checkpoint []byte
}

// VerifyResult summarises a successful verification.
type VerifyResult struct {
	// Entries is the number of retained entries checked.
	Entries uint64 `json:"entries"`
	// TreeSize counts every entry ever appended, pruned ones included.
	TreeSize uint64 `json:"tree_size"`
	// RootHash is the root of the tree of TreeSize entries.
	RootHash []byte `json:"root_hash"`
	// RetainedFrom is the index of the first retained entry (0 if nothing
	// was pruned) and RetainedSince its time.
	RetainedFrom  uint64    `json:"retained_from"`
	RetainedSince time.Time `json:"retained_since,omitzero"`
	// Checkpoints is the number of stored checkpoints whose signature and
	// root were checked; Unchecked those older than the retained log, whose
	// signature only was checked.
	Checkpoints int `json:"checkpoints"`
	Unchecked   int `json:"unchecked_checkpoints,omitempty"`
	// LatestCheckpoint is the size of the newest stored checkpoint.
	LatestCheckpoint uint64 `json:"latest_checkpoint"`
	// ExternalChecked says whether VerifyOptions.Checkpoint was proven.
	ExternalChecked bool `json:"external_checked,omitempty"`
	// Bytes is the amount of record data read.
	Bytes int64 `json:"bytes"`
	// TornTail describes an incomplete record at the end of the newest
	// segment that no index or checkpoint covers, or an incomplete last
	// checkpoint frame: what a crash leaves and the next Open cuts. Empty
	// when there is none.
	TornTail string `json:"torn_tail,omitempty"`
	// Pending counts events committed by replicas but not yet sequenced
	// into the tree (PostgreSQL only): they are checked once sequenced.
	Pending int64 `json:"pending,omitempty"`
	// Keys is the chain of checkpoint keys the checkpoints were verified
	// along, oldest first: one key until the first rotation, then one
	// more for each hand-over checkpoint.
	Keys []KeyEpoch `json:"keys,omitempty"`
}

// String is the one-line summary `gatehouse audit verify` prints.
func (r VerifyResult) String() string {
	s := fmt.Sprintf("audit log OK: %d entries, tree size %d, root %s, %d checkpoints verified",
		r.Entries, r.TreeSize, base64.StdEncoding.EncodeToString(r.RootHash), r.Checkpoints)
	if r.RetainedFrom > 0 {
		s += fmt.Sprintf(", retained log begins at entry %d", r.RetainedFrom)
		if !r.RetainedSince.IsZero() {
			s += " (" + r.RetainedSince.Format(time.RFC3339) + ")"
		}
	}
	if r.ExternalChecked {
		s += ", extends the given checkpoint"
	}
	if r.TornTail != "" {
		s += ", torn tail: " + r.TornTail
	}
	if r.Pending > 0 {
		s += fmt.Sprintf(", %d events awaiting sequencing", r.Pending)
	}
	if len(r.Keys) > 1 {
		s += ", keys: " + FormatKeyChain(r.Keys)
	}
	return s
}

// VerifyError is the error Verify returns when the log fails a check. It
// names the first bad entry, or the bad checkpoint.
type VerifyError struct {
	// Entry is the index of the first bad entry, or -1.
	Entry int64
	// Checkpoint is the position of the bad checkpoint in the checkpoints
	// file (0 is the oldest), -1 if none, or -2 for the external one.
	Checkpoint int
	// Reason says what is wrong.
	Reason string
}

func (e *VerifyError) Error() string {
	var parts []string
	switch {
	case e.Checkpoint == -2:
		parts = append(parts, "external checkpoint")
	case e.Checkpoint >= 0:
		parts = append(parts, fmt.Sprintf("checkpoint %d", e.Checkpoint))
	}
	if e.Entry >= 0 {
		parts = append(parts, fmt.Sprintf("entry %d", e.Entry))
	}
	return "audit verify: " + strings.Join(parts, ", ") + ": " + e.Reason
}

func entryErr(i uint64, format string, args ...any) error {
	return &VerifyError{Entry: int64(i), Checkpoint: -1, Reason: fmt.Sprintf(format, args...)}
}

func cpErr(seq int, entry int64, format string, args ...any) error {
	return &VerifyError{Entry: entry, Checkpoint: seq, Reason: fmt.Sprintf(format, args...)}
}

// target is a tree size at which the recomputed root must match a
// checkpoint.
type target struct {
	seq  int // checkpoint position, -2 for the external one
	size uint64
	root []byte
}

// ReadVerifierKey returns the note verifier key stored in dir.
func ReadVerifierKey(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, verifierKeyFile))
	if err != nil {
		return "", fmt.Errorf("read audit verifier key: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Verify checks the log in dir without a running server. It recomputes the
// Merkle tree from the stored records, checking each record's checksum and
// its leaf hash against the index; checks every stored checkpoint's
// signature, order and root; and, given opts.Checkpoint, proves the log
// extends it. On failure the error is a *VerifyError naming the first bad
// entry or checkpoint. Verify does not lock the directory; run it on a live
// log only to spot-check, as a concurrent append may look like a torn tail.
func Verify(ctx context.Context, dir string, opts VerifyOptions) (VerifyResult, error) {
	var res VerifyResult
	vkey := opts.VerifierKey
	if vkey == "" {
		k, err := ReadVerifierKey(dir)
		if err != nil {
			return res, err
		}
		vkey = k
	}
	prefix, err := readPrune(dir)
	if err != nil {
		return res, err
	}
	res.RetainedFrom = prefix.begin
	cps, torn, err := readCheckpoints(dir, false)
	if err != nil {
		var seq int
		if _, e := fmt.Sscanf(err.Error(), "checkpoint %d:", &seq); e == nil {
			return res, cpErr(seq, -1, "%v", strings.TrimPrefix(err.Error(), fmt.Sprintf("checkpoint %d: ", seq)))
		}
		return res, err
	}
	signed := make([][]byte, len(cps))
	for i, c := range cps {
		signed[i] = c.Signed
	}
	chk, err := NewChecker(vkey, signed, opts.Checkpoint, prefix.begin, prefix.hashes)
	if err != nil {
		return res, err
	}
	if torn >= 0 {
		// A checkpoint write cut short by a crash; Open removes it.
		chk.Result.TornTail = fmt.Sprintf("incomplete checkpoint %d at offset %d", len(cps), torn)
	}
	// The loop below fills in what only the files know (bytes read, torn
	// tail, the retained log's first time); the checker does the rest.
	r := &chk.Result

	starts, err := listSegments(dir)
	if err != nil {
		return *r, err
	}
	for len(starts) > 0 && starts[0] < prefix.begin {
		starts = starts[1:]
	}
	segBits := uint(0)
	next := prefix.begin
	for si, start := range starts {
		if err := ctx.Err(); err != nil {
			return *r, err
		}
		if start != next {
			if start > next {
				return *r, entryErr(next, "missing: no segment holds it (next segment starts at %d)", start)
			}
			return *r, entryErr(start, "segment starts at %d, overlapping the previous one", start)
		}
		last := si == len(starts)-1
		// The index is read before the segment: a live writer appends to
		// the segment first, so the segment read holds at least what the
		// index lists.
		idxBits, err := indexBits(dir, start)
		if err != nil {
			return *r, entryErr(start, "%v", err)
		}
		offs, leaves, segRoot, err := readIndex(dir, start, idxBits)
		if err != nil {
			return *r, entryErr(start, "%v", err)
		}
		data, err := os.ReadFile(segPath(dir, start))
		if err != nil {
			return *r, fmt.Errorf("audit verify: %w", err)
		}
		bits, err := parseHeader(data, segMagic, start)
		if err != nil {
			return *r, entryErr(start, "segment file: %v", err)
		}
		if segBits == 0 {
			segBits = bits
			if prefix.begin%(1<<segBits) != 0 {
				return *r, entryErr(prefix.begin, "prune state does not end on a segment boundary")
			}
		} else if bits != segBits {
			return *r, entryErr(start, "segment size exponent %d differs from %d", bits, segBits)
		}
		if idxBits != segBits {
			return *r, entryErr(start, "index size exponent %d differs from the segment's %d", idxBits, segBits)
		}
		var gotSegRoot []byte
		visit := func(id compact.NodeID, h []byte) {
			if id.Level == segBits {
				gotSegRoot = h
			}
		}
		j := 0
		stop, err := scanFrames(data, func(off int64, payload []byte) error {
			i := start + uint64(j)
			if j >= len(offs) {
				if !last {
					return entryErr(i, "missing from the index")
				}
			} else if offs[j] != uint64(off) {
				return entryErr(i, "stored at offset %d but the index says %d (entry removed, inserted or reordered)", off, offs[j])
			}
			leaf := rfc6962.DefaultHasher.HashLeaf(payload)
			if j < len(offs) && !bytes.Equal(leaf, leaves[j*hashLen:(j+1)*hashLen]) {
				return entryErr(i, "leaf hash differs from the index (entry modified, removed or reordered)")
			}
			if i == prefix.begin {
				var e struct {
					Time time.Time `json:"time"`
				}
				if json.Unmarshal(payload, &e) == nil {
					r.RetainedSince = e.Time
				}
			}
			r.Bytes += int64(frameHeaderLn + len(payload))
			j++
			return chk.Append(leaf, visit)
		})
		if err != nil {
			return *r, err
		}
		count := uint64(j)
		if stop != nil {
			i := start + count
			switch {
			case !stop.Tail:
				return *r, entryErr(i, "%s at offset %d", stop.Reason, stop.Offset)
			case !last || int(count) < len(offs):
				return *r, entryErr(i, "%s at offset %d (record damaged or log truncated)", stop.Reason, stop.Offset)
			default:
				r.TornTail = strings.TrimPrefix(r.TornTail+"; ", "; ") + fmt.Sprintf("entry %d at offset %d: %s", i, stop.Offset, stop.Reason)
			}
		}
		if int(count) < len(offs) {
			return *r, entryErr(start+count, "listed in the index but missing from the segment (log truncated)")
		}
		full := uint64(1) << segBits
		if count > full {
			return *r, entryErr(start+full, "segment holds more than %d entries", full)
		}
		if !last && count != full {
			return *r, entryErr(start+count, "missing: segment %d holds only %d of %d entries", start, count, full)
		}
		if segRoot != nil && !bytes.Equal(segRoot, gotSegRoot) {
			return *r, entryErr(start, "segment root in the index trailer does not match the entries of segment %d", start)
		}
		next = start + count
	}
	res, err = chk.Finish()
	if err != nil {
		return res, err
	}
	if opts.Checkpoint != nil {
		if err := verifyExtends(dir, opts.Checkpoint, chk.Keys(), res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// verifyExtends additionally checks a consistency proof, built from the
// verified files, from the external checkpoint to the recomputed root.
func verifyExtends(dir string, signed []byte, vkeys []string, res VerifyResult) error {
	ext, err := OpenCheckpointKeys(signed, vkeys)
	if err != nil {
		return cpErr(-2, -1, "%v", err)
	}
	view, err := openView(dir)
	if err != nil {
		return err
	}
	p, err := view.consistency(ext.Size, res.TreeSize)
	if err != nil {
		return cpErr(-2, -1, "consistency proof: %v", err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, ext.Size, res.TreeSize, p, ext.Root, res.RootHash); err != nil {
		return cpErr(-2, -1, "the log does not extend it: %v", err)
	}
	return nil
}

// indexBits reads the segment size exponent from an index file header.
func indexBits(dir string, start uint64) (uint, error) {
	f, err := os.Open(idxPath(dir, start))
	if err != nil {
		return 0, fmt.Errorf("open audit index %d: %w", start, err)
	}
	defer f.Close()
	hdr := make([]byte, fileHeaderLen)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return 0, fmt.Errorf("read audit index %d: %w", start, err)
	}
	bits, err := parseHeader(hdr, idxMagic, start)
	if err != nil {
		return 0, fmt.Errorf("read audit index %d: %w", start, err)
	}
	return bits, nil
}

// openView builds a read-only view of the log in dir from its index files.
func openView(dir string) (*treeView, error) {
	prefix, err := readPrune(dir)
	if err != nil {
		return nil, err
	}
	starts, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	for len(starts) > 0 && starts[0] < prefix.begin {
		starts = starts[1:]
	}
	v := &treeView{dir: dir, prefix: prefix}
	for _, start := range starts {
		f, err := os.Open(idxPath(dir, start))
		if err != nil {
			return nil, fmt.Errorf("open audit index %d: %w", start, err)
		}
		hdr := make([]byte, fileHeaderLen)
		_, err = io.ReadFull(f, hdr)
		if err == nil {
			var bits uint
			bits, err = parseHeader(hdr, idxMagic, start)
			v.segBits = bits
		}
		var size int64
		if err == nil {
			var st os.FileInfo
			st, err = f.Stat()
			if st != nil {
				size = st.Size() - fileHeaderLen
			}
		}
		seg := segInfo{start: start}
		full := int64(1) << v.segBits
		if err == nil && size == full*idxEntryLen+hashLen {
			seg.root = make([]byte, hashLen)
			_, err = f.ReadAt(seg.root, fileHeaderLen+full*idxEntryLen)
			size -= hashLen
		}
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read audit index %d: %w", start, err)
		}
		seg.count = uint64(size / idxEntryLen)
		v.segs = append(v.segs, seg)
	}
	return v, nil
}

// latestStored returns the newest stored checkpoint, verified with the
// directory's key.
func latestStored(dir string) ([]byte, Checkpoint, error) {
	cps, _, err := readCheckpoints(dir, true)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	keys, err := logKeys(dir, cps)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	if len(cps) == 0 {
		return nil, Checkpoint{}, fmt.Errorf("no audit checkpoint yet: %w", ErrNotFound)
	}
	signed := cps[len(cps)-1].Signed
	cp, err := OpenCheckpointKeys(signed, keys)
	if err != nil {
		return nil, Checkpoint{}, fmt.Errorf("latest audit checkpoint: %w", err)
	}
	return signed, cp, nil
}

// LatestCheckpoint returns the newest signed checkpoint stored in dir, after
// checking its signature with the directory's verifier key.
func LatestCheckpoint(dir string) ([]byte, error) {
	signed, _, err := latestStored(dir)
	return signed, err
}

// InclusionProof returns a proof that entry index is in the tree of the
// latest stored checkpoint in dir, without a running server.
func InclusionProof(ctx context.Context, dir string, index uint64) (Proof, error) {
	signed, cp, err := latestStored(dir)
	if err != nil {
		return Proof{}, err
	}
	v, err := openView(dir)
	if err != nil {
		return Proof{}, err
	}
	return v.inclusionProof(index, signed, cp)
}

// Export writes the retained entries in dir that match f to w as JSON lines,
// exactly as stored, without a running server. It returns how many it wrote.
func Export(ctx context.Context, dir string, f Filter, w io.Writer) (int, error) {
	v, err := openView(dir)
	if err != nil {
		return 0, err
	}
	return v.export(ctx, f, w)
}
