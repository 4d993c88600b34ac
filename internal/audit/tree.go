package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// segInfo describes one retained segment.
type segInfo struct {
	start uint64
	count uint64 // entries written (for the active segment, as of the snapshot)
	root  []byte // root of the segment's perfect subtree once sealed
	// mids are the active segment's node hashes at midLevel so far (one
	// per complete node within count); nil for sealed segments, whose
	// come from segmentMids.
	mids []byte
}

// treeView computes Merkle node hashes from the files in a directory. It is
// an immutable snapshot: the Log hands out a fresh one under its lock.
type treeView struct {
	dir     string
	segBits uint
	prefix  prefixState
	segs    []segInfo
	// mids caches sealed segments' mid hashes (nil: no cache, offline);
	// persistMids lets a rebuild write the segment's .mid file.
	mids        *midCache
	persistMids bool
}

// prefixState is the compact range covering the pruned entries [0, begin).
type prefixState struct {
	begin  uint64
	ids    []compact.NodeID
	hashes [][]byte
}

func newRangeFactory() *compact.RangeFactory {
	return &compact.RangeFactory{Hash: hashChildren}
}

// hashChildren is RFC 6962's interior node hash, SHA-256(0x01 || l || r),
// what rfc6962.DefaultHasher.HashChildren computes, with one allocation
// (the result, which compact ranges keep) instead of its three (a hash
// state, its copy in Sum and the result): the writer hashes about one
// node per event.
func hashChildren(l, r []byte) []byte {
	if len(l) != sha256.Size || len(r) != sha256.Size {
		return rfc6962.DefaultHasher.HashChildren(l, r)
	}
	var buf [1 + 2*sha256.Size]byte
	buf[0] = rfc6962.RFC6962NodeHashPrefix
	copy(buf[1:], l)
	copy(buf[1+sha256.Size:], r)
	h := sha256.Sum256(buf[:])
	return h[:]
}

// size is the number of entries (pruned and retained) in the view.
func (v *treeView) size() uint64 {
	if len(v.segs) == 0 {
		return v.prefix.begin
	}
	last := v.segs[len(v.segs)-1]
	return last.start + last.count
}

func (v *treeView) segFor(index uint64) (segInfo, bool) {
	lo, hi := 0, len(v.segs)
	for lo < hi {
		m := (lo + hi) / 2
		if v.segs[m].start+v.segs[m].count <= index {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(v.segs) || v.segs[lo].start > index {
		return segInfo{}, false
	}
	return v.segs[lo], true
}

// nodeHash returns the hash of a complete tree node.
func (v *treeView) nodeHash(id compact.NodeID) ([]byte, error) {
	begin, end := id.Coverage()
	if end > v.size() {
		return nil, fmt.Errorf("node %d/%d is beyond tree size %d", id.Level, id.Index, v.size())
	}
	switch {
	case end <= v.prefix.begin:
		for i, pid := range v.prefix.ids {
			if pid == id {
				return v.prefix.hashes[i], nil
			}
		}
		return nil, fmt.Errorf("entries [%d, %d) were pruned: %w", begin, end, ErrPruned)
	case begin < v.prefix.begin || id.Level > v.segBits:
		l, err := v.nodeHash(compact.NewNodeID(id.Level-1, id.Index*2))
		if err != nil {
			return nil, err
		}
		r, err := v.nodeHash(compact.NewNodeID(id.Level-1, id.Index*2+1))
		if err != nil {
			return nil, err
		}
		return hashChildren(l, r), nil
	}
	seg, ok := v.segFor(begin)
	if !ok {
		return nil, fmt.Errorf("no segment holds entry %d", begin)
	}
	if id.Level == v.segBits && seg.root != nil {
		return seg.root, nil
	}
	if k := midLevel(v.segBits); id.Level >= k {
		lo, hi := (begin-seg.start)>>k, (end-seg.start)>>k
		if mids := v.segmentMids(seg); uint64(len(mids)) >= hi*hashLen {
			return combine(mids[lo*hashLen : hi*hashLen])
		}
	}
	leaves, err := v.leafHashes(seg.start, begin, end)
	if err != nil {
		return nil, err
	}
	r := newRangeFactory().NewEmptyRange(begin)
	for i := 0; i < len(leaves); i += hashLen {
		if err := r.Append(leaves[i:i+hashLen], nil); err != nil {
			return nil, err
		}
	}
	h := r.Hashes()
	if len(h) != 1 {
		return nil, fmt.Errorf("node %d/%d: range is not a perfect subtree", id.Level, id.Index)
	}
	return h[0], nil
}

// leafHashes reads the leaf hashes of entries [begin, end) of the segment
// starting at segStart from its index file.
func (v *treeView) leafHashes(segStart, begin, end uint64) ([]byte, error) {
	f, err := os.Open(idxPath(v.dir, segStart))
	if err != nil {
		return nil, fmt.Errorf("open audit index %d: %w", segStart, err)
	}
	defer f.Close()
	n := end - begin
	buf := make([]byte, n*idxEntryLen)
	if _, err := f.ReadAt(buf, fileHeaderLen+int64(begin-segStart)*idxEntryLen); err != nil {
		return nil, fmt.Errorf("read audit index %d: %w", segStart, err)
	}
	out := make([]byte, 0, n*hashLen)
	for i := uint64(0); i < n; i++ {
		out = append(out, buf[i*idxEntryLen+8:(i+1)*idxEntryLen]...)
	}
	return out, nil
}

// rootAt returns the root hash of the tree of the given size.
func (v *treeView) rootAt(size uint64) ([]byte, error) {
	if size == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	ids := compact.RangeNodes(0, size, nil)
	var root []byte
	for i := len(ids) - 1; i >= 0; i-- {
		h, err := v.nodeHash(ids[i])
		if err != nil {
			return nil, err
		}
		if root == nil {
			root = h
		} else {
			root = hashChildren(h, root)
		}
	}
	return root, nil
}

func (v *treeView) proofHashes(n proof.Nodes) ([][]byte, error) {
	hs := make([][]byte, len(n.IDs))
	for i, id := range n.IDs {
		h, err := v.nodeHash(id)
		if err != nil {
			return nil, err
		}
		hs[i] = h
	}
	return n.Rehash(hs, rfc6962.DefaultHasher.HashChildren)
}

// inclusion returns the inclusion proof of entry index in the tree of size.
func (v *treeView) inclusion(index, size uint64) ([][]byte, error) {
	n, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	return v.proofHashes(n)
}

// consistency returns the consistency proof between two tree sizes.
func (v *treeView) consistency(size1, size2 uint64) ([][]byte, error) {
	n, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	return v.proofHashes(n)
}

// readRecord returns the stored bytes of entry index.
func (v *treeView) readRecord(index uint64) ([]byte, []byte, error) {
	seg, ok := v.segFor(index)
	if !ok {
		if index < v.prefix.begin {
			return nil, nil, fmt.Errorf("entry %d: %w", index, ErrPruned)
		}
		return nil, nil, fmt.Errorf("entry %d: %w", index, ErrNotFound)
	}
	f, err := os.Open(idxPath(v.dir, seg.start))
	if err != nil {
		return nil, nil, fmt.Errorf("open audit index %d: %w", seg.start, err)
	}
	defer f.Close()
	var e [idxEntryLen]byte
	if _, err := f.ReadAt(e[:], fileHeaderLen+int64(index-seg.start)*idxEntryLen); err != nil {
		return nil, nil, fmt.Errorf("read audit index %d: %w", seg.start, err)
	}
	off := int64(binary.BigEndian.Uint64(e[:8]))
	sf, err := os.Open(segPath(v.dir, seg.start))
	if err != nil {
		return nil, nil, fmt.Errorf("open audit segment %d: %w", seg.start, err)
	}
	defer sf.Close()
	var h [frameHeaderLn]byte
	if _, err := sf.ReadAt(h[:], off); err != nil {
		return nil, nil, fmt.Errorf("read audit entry %d: %w", index, err)
	}
	n := binary.BigEndian.Uint32(h[:4])
	if n == 0 || n > MaxEventSize {
		return nil, nil, fmt.Errorf("read audit entry %d: bad record length %d", index, n)
	}
	payload := make([]byte, n)
	if _, err := sf.ReadAt(payload, off+frameHeaderLn); err != nil {
		return nil, nil, fmt.Errorf("read audit entry %d: %w", index, err)
	}
	if checksum(payload) != binary.BigEndian.Uint32(h[4:]) {
		return nil, nil, fmt.Errorf("read audit entry %d: record checksum mismatch", index)
	}
	return payload, append([]byte(nil), e[8:]...), nil
}

// compactIDs lists the nodes of the compact range [0, size), left to right.
func compactIDs(size uint64) []compact.NodeID {
	return compact.RangeNodes(0, size, nil)
}
