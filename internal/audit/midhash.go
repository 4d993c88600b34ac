package audit

// Mid-level node hashes: the hashes of a segment's nodes at level
// midLevel(segBits), kept so that a proof's nodes inside a segment cost a
// bounded amount (at most 2^(segBits-midLevel) cached hashes combined, or
// fewer than 2^midLevel leaves read) instead of rehashing the segment.
//
// They are derived data. The writer collects them for the active segment
// as its compact range visits them, and writes a sealed segment's to
// NNN.mid beside its index (not synced). A reader checks a sealed
// segment's mid hashes against the root in its index trailer before using
// them, and rebuilds them from the index when the file is missing, torn or
// wrong; Verify never reads them.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/transparency-dev/merkle/compact"
)

const (
	midMagic = "GHAUDMID"
	// midCacheSegments bounds the sealed segments whose mid hashes a Log
	// keeps in memory (8 KiB each with the default segment size).
	midCacheSegments = 256
)

// midLevel is the tree level whose node hashes are cached in a segment of
// 2^segBits entries.
func midLevel(segBits uint) uint { return segBits / 2 }

func midPath(dir string, start uint64) string {
	return filepath.Join(dir, segDirName, fmt.Sprintf("%020d.mid", start))
}

// midCache keeps the checked mid hashes of recently used sealed segments.
// It is safe for concurrent use.
type midCache struct {
	mu    sync.Mutex
	m     map[uint64][]byte
	order []uint64 // insertion order, for eviction
}

func newMidCache() *midCache { return &midCache{m: map[uint64][]byte{}} }

func (c *midCache) get(start uint64) []byte {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[start]
}

func (c *midCache) put(start uint64, mids []byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[start]; ok {
		return
	}
	if len(c.order) >= midCacheSegments {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.m[start] = mids
	c.order = append(c.order, start)
}

// combine returns the hash of the perfect subtree whose level-aligned child
// hashes are hs (concatenated, a power of two of them).
func combine(hs []byte) ([]byte, error) {
	r := newRangeFactory().NewEmptyRange(0)
	for i := 0; i < len(hs); i += hashLen {
		if err := r.Append(hs[i:i+hashLen], nil); err != nil {
			return nil, err
		}
	}
	h := r.Hashes()
	if len(h) != 1 {
		return nil, errors.New("hashes do not form a perfect subtree")
	}
	return h[0], nil
}

// checkMids says whether mids are all the mid hashes of a sealed segment
// of 2^segBits entries whose root is root.
func checkMids(mids []byte, segBits uint, root []byte) bool {
	if len(mids) != (1<<(segBits-midLevel(segBits)))*hashLen {
		return false
	}
	h, err := combine(mids)
	return err == nil && bytes.Equal(h, root)
}

// encodeMids returns the contents of a .mid file.
func encodeMids(start uint64, segBits uint, mids []byte) []byte {
	return append(fileHeader(midMagic, start, segBits), mids...)
}

// writeMids stores a sealed segment's mid hashes. It is not synced: a file
// lost or torn in a crash is rebuilt when it is next needed.
func writeMids(dir string, start uint64, segBits uint, mids []byte) error {
	tmp := midPath(dir, start) + ".tmp"
	if err := os.WriteFile(tmp, encodeMids(start, segBits, mids), 0o600); err != nil {
		return fmt.Errorf("write audit mid hashes %d: %w", start, err)
	}
	if err := os.Rename(tmp, midPath(dir, start)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write audit mid hashes %d: %w", start, err)
	}
	return nil
}

// readMids reads a sealed segment's .mid file, unchecked.
func readMids(dir string, start uint64, segBits uint) ([]byte, error) {
	b, err := os.ReadFile(midPath(dir, start))
	if err != nil {
		return nil, err
	}
	bits, err := parseHeader(b, midMagic, start)
	if err != nil {
		return nil, err
	}
	if bits != segBits {
		return nil, fmt.Errorf("segment size exponent %d, want %d", bits, segBits)
	}
	return b[fileHeaderLen:], nil
}

// removeStrayMids removes .mid files (and torn .mid.tmp ones) of segments
// no longer in the directory: a reader may rebuild one while a prune
// removes its segment.
func (l *Log) removeStrayMids(starts []uint64) {
	have := make(map[string]bool, len(starts))
	for _, s := range starts {
		have[midPath(l.dir, s)] = true
	}
	for _, pat := range []string{"*.mid", "*.mid.tmp"} {
		paths, _ := filepath.Glob(filepath.Join(l.dir, segDirName, pat))
		for _, p := range paths {
			if !have[p] {
				os.Remove(p)
			}
		}
	}
}

// midCollector returns a compact-range visitor that appends the hashes of
// nodes at level to *dst.
func midCollector(level uint, dst *[]byte) compact.VisitFn {
	return func(id compact.NodeID, h []byte) {
		if id.Level == level {
			*dst = append(*dst, h...)
		}
	}
}

// segmentMids returns the mid hashes of seg: the active segment's so far
// (nil offline), or a sealed segment's, checked against its root. It
// returns nil when they cannot be had; callers then read leaves.
func (v *treeView) segmentMids(seg segInfo) []byte {
	if seg.root == nil {
		return seg.mids
	}
	if m := v.mids.get(seg.start); m != nil {
		return m
	}
	if m, err := readMids(v.dir, seg.start, v.segBits); err == nil && checkMids(m, v.segBits, seg.root) {
		m = bytes.Clone(m)
		v.mids.put(seg.start, m)
		return m
	}
	// Missing, torn or wrong: rebuild from the index.
	full := uint64(1) << v.segBits
	leaves, err := v.leafHashes(seg.start, seg.start, seg.start+full)
	if err != nil {
		return nil
	}
	k := midLevel(v.segBits)
	m := make([]byte, 0, (full>>k)*hashLen)
	visit := midCollector(k, &m)
	r := newRangeFactory().NewEmptyRange(seg.start)
	for i := 0; i < len(leaves); i += hashLen {
		if err := r.Append(leaves[i:i+hashLen], visit); err != nil {
			return nil
		}
	}
	if !checkMids(m, v.segBits, seg.root) {
		return nil
	}
	v.mids.put(seg.start, m)
	if v.persistMids {
		// Best effort: the next reader rebuilds it otherwise.
		_ = writeMids(v.dir, seg.start, v.segBits, m)
	}
	return m
}
