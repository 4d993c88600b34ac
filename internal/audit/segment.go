package audit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
)

// On-disk constants. See doc.go for the layout they describe.
const (
	segMagic      = "GHAUDSEG"
	idxMagic      = "GHAUDIDX"
	fileHeaderLen = 24 // magic(8) start(8) segBits(4) crc32c(4)
	frameHeaderLn = 8  // length(4) crc32c(4)
	idxEntryLen   = 40 // offset(8) leaf hash(32)
	hashLen       = 32
	segDirName    = "segments"

	// MaxEventSize is the largest encoded event a Log accepts.
	MaxEventSize = 1 << 20
)

// castagnoli is a read-only lookup table; it is never written after
// initialisation, so it is not mutable package state.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func segPath(dir string, start uint64) string {
	return filepath.Join(dir, segDirName, fmt.Sprintf("%020d.seg", start))
}

func idxPath(dir string, start uint64) string {
	return filepath.Join(dir, segDirName, fmt.Sprintf("%020d.idx", start))
}

// fileHeader encodes the 24-byte header shared by segment and index files.
func fileHeader(magic string, start uint64, segBits uint) []byte {
	h := make([]byte, fileHeaderLen)
	copy(h, magic)
	binary.BigEndian.PutUint64(h[8:], start)
	binary.BigEndian.PutUint32(h[16:], uint32(segBits))
	binary.BigEndian.PutUint32(h[20:], checksum(h[:20]))
	return h
}

// parseHeader checks a file header and returns the segment bits it names.
func parseHeader(b []byte, magic string, start uint64) (uint, error) {
	if len(b) < fileHeaderLen {
		return 0, errors.New("short file header")
	}
	if string(b[:8]) != magic {
		return 0, errors.New("bad magic")
	}
	if binary.BigEndian.Uint32(b[20:24]) != checksum(b[:20]) {
		return 0, errors.New("header checksum mismatch")
	}
	if got := binary.BigEndian.Uint64(b[8:16]); got != start {
		return 0, fmt.Errorf("header names first entry %d, file name says %d", got, start)
	}
	bits := uint(binary.BigEndian.Uint32(b[16:20]))
	if bits < 1 || bits > 30 {
		return 0, fmt.Errorf("bad segment size exponent %d", bits)
	}
	return bits, nil
}

// listSegments returns the first-entry indexes of the segment files in dir,
// sorted ascending.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(filepath.Join(dir, segDirName))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list audit segments: %w", err)
	}
	var starts []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil || len(name) != 20 {
			return nil, fmt.Errorf("list audit segments: unexpected file %s", e.Name())
		}
		starts = append(starts, n)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	return starts, nil
}

// appendFrame appends one framed record to dst.
func appendFrame(dst, payload []byte) []byte {
	var h [frameHeaderLn]byte
	binary.BigEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(h[4:8], checksum(payload))
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// appendIdxEntry appends one index entry to dst.
func appendIdxEntry(dst []byte, off uint64, leaf []byte) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], off)
	dst = append(dst, b[:]...)
	return append(dst, leaf...)
}

// scanStop says why a segment scan stopped before the end of its data.
type scanStop struct {
	Offset int64  // where the bad frame starts
	Reason string // what was wrong
	Tail   bool   // true when only a torn tail follows (safe to cut)
}

// scanFrames walks the frames of a segment's data (header excluded from
// frames but included in data), calling fn for each good record. It stops
// at the first bad frame and describes it; nil means the data ended cleanly.
// A zero length word followed by only zero bytes is treated as the clean end
// of preallocated space.
//
// A bad frame is a torn tail, not damage, when nothing but zeros follows it,
// or when it shows a lost write and nothing but zeros lies maxUnsynced bytes
// beyond it. A crash can tear only the unsynced end of a segment, at most
// maxUnsynced bytes; within preallocated space the sectors of that write
// that did not reach the disk read as zeros, in any order, so the first bad
// frame is the first to hold such zeros and written sectors may follow it.
// Zeros where a length or a payload should be are that sign: no record has
// a zero length, and its payload is JSON, which has no NUL bytes.
func scanFrames(data []byte, fn func(off int64, payload []byte) error) (*scanStop, error) {
	pos := fileHeaderLen
	for pos < len(data) {
		rest := data[pos:]
		if len(rest) < frameHeaderLn {
			return &scanStop{Offset: int64(pos), Reason: "partial record header", Tail: true}, nil
		}
		n := int(binary.BigEndian.Uint32(rest[0:4]))
		if n == 0 && allZero(rest) {
			return nil, nil
		}
		if n == 0 || n > MaxEventSize {
			return &scanStop{Offset: int64(pos), Reason: fmt.Sprintf("bad record length %d", n), Tail: tornTail(data, pos, n, rest[4:])}, nil
		}
		if frameHeaderLn+n > len(rest) {
			return &scanStop{Offset: int64(pos), Reason: "record extends past end of file", Tail: true}, nil
		}
		payload := rest[frameHeaderLn : frameHeaderLn+n]
		if checksum(payload) != binary.BigEndian.Uint32(rest[4:8]) {
			return &scanStop{Offset: int64(pos), Reason: "record checksum mismatch", Tail: tornTail(data, pos, n, rest[frameHeaderLn+n:])}, nil
		}
		if err := fn(int64(pos), payload); err != nil {
			return nil, err
		}
		pos += frameHeaderLn + n
	}
	return nil, nil
}

// tornTail says whether the bad frame at pos, whose length word says n and
// which after follows, can be a torn tail (see scanFrames).
func tornTail(data []byte, pos, n int, after []byte) bool {
	return allZero(after) || lostWrite(data[pos:], n) && allZero(data[min(len(data), pos+maxUnsynced):])
}

// lostWrite says whether the bad frame at the start of rest, whose length
// word says n, holds zeros where a write of it was lost: in the length, or
// in the payload (its first byte when the length is implausible).
func lostWrite(rest []byte, n int) bool {
	body := rest[frameHeaderLn:]
	switch {
	case n == 0:
		return true
	case n > MaxEventSize:
		body = body[:min(1, len(body))]
	case n < len(body):
		body = body[:n]
	}
	return bytes.IndexByte(body, 0) >= 0
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// readIndex reads an index file and returns its entries (offset, leaf hash)
// and, when the segment is sealed, the segment root stored as its trailer.
func readIndex(dir string, start uint64, segBits uint) (offs []uint64, leaves []byte, root []byte, err error) {
	b, err := os.ReadFile(idxPath(dir, start))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read audit index %d: %w", start, err)
	}
	bits, err := parseHeader(b, idxMagic, start)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read audit index %d: %w", start, err)
	}
	if bits != segBits {
		return nil, nil, nil, fmt.Errorf("read audit index %d: segment size exponent %d, want %d", start, bits, segBits)
	}
	body := b[fileHeaderLen:]
	full := (1 << segBits) * idxEntryLen
	if len(body) == full+hashLen {
		root = body[full:]
		body = body[:full]
	}
	n := len(body) / idxEntryLen
	offs = make([]uint64, n)
	leaves = make([]byte, 0, n*hashLen)
	for i := 0; i < n; i++ {
		e := body[i*idxEntryLen:]
		offs[i] = binary.BigEndian.Uint64(e[:8])
		leaves = append(leaves, e[8:idxEntryLen]...)
	}
	return offs, leaves, root, nil
}

// readSegmentRoot returns the root stored in a sealed index's trailer, or
// nil if the index is not sealed. It reads only the header and trailer.
func readSegmentRoot(dir string, start uint64, segBits uint) ([]byte, error) {
	f, err := os.Open(idxPath(dir, start))
	if err != nil {
		return nil, fmt.Errorf("open audit index %d: %w", start, err)
	}
	defer f.Close()
	hdr := make([]byte, fileHeaderLen)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return nil, fmt.Errorf("read audit index %d: %w", start, err)
	}
	bits, err := parseHeader(hdr, idxMagic, start)
	if err != nil {
		return nil, fmt.Errorf("read audit index %d: %w", start, err)
	}
	if bits != segBits {
		return nil, fmt.Errorf("read audit index %d: segment size exponent %d, want %d", start, bits, segBits)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read audit index %d: %w", start, err)
	}
	full := int64(1)<<segBits*idxEntryLen + fileHeaderLen
	if st.Size() != full+hashLen {
		return nil, nil
	}
	root := make([]byte, hashLen)
	if _, err := f.ReadAt(root, full); err != nil {
		return nil, fmt.Errorf("read audit index %d: %w", start, err)
	}
	return root, nil
}

// createSegment creates and opens an empty segment starting at start.
func (l *Log) createSegment(start uint64) error {
	w := &l.w
	path := segPath(l.dir, start)
	// The segment gets its header under a temporary name and appears
	// under its real name only once the header is durable, so a crash
	// never leaves a headerless newest segment. The first zeros ahead of
	// the writer are synced with it.
	tmp := filepath.Join(l.dir, segDirName, "new.seg.tmp")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create audit segment %d: %w", start, err)
	}
	head := fileHeader(segMagic, start, l.segBits)
	if !l.cfg.NoPreallocate {
		head = append(head, make([]byte, minExtend-fileHeaderLen)...)
	}
	if _, err := f.WriteAt(head, 0); err != nil {
		f.Close()
		return fmt.Errorf("create audit segment %d: %w", start, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync audit segment %d: %w", start, err)
	}
	if _, err := f.Seek(fileHeaderLen, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("create audit segment %d: %w", start, err)
	}
	xf, err := os.OpenFile(idxPath(l.dir, start), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		f.Close()
		return fmt.Errorf("create audit index %d: %w", start, err)
	}
	if _, err := xf.Write(fileHeader(idxMagic, start, l.segBits)); err != nil {
		f.Close()
		xf.Close()
		return fmt.Errorf("create audit index %d: %w", start, err)
	}
	// The index exists (with its header) before the segment appears, so a
	// concurrent offline reader never finds a segment without one.
	if err := os.Rename(tmp, path); err != nil {
		f.Close()
		xf.Close()
		return fmt.Errorf("create audit segment %d: %w", start, err)
	}
	if err := syncDir(filepath.Join(l.dir, segDirName)); err != nil {
		return fmt.Errorf("sync audit segment dir: %w", err)
	}
	w.seg, w.idx = f, xf
	w.segStart, w.segCount, w.segOff = start, 0, fileHeaderLen
	w.allocEnd, w.extStep = int64(len(head)), minExtend
	w.size = start
	w.segRoot = nil
	w.mids = make([]byte, 0, (1<<(l.segBits-midLevel(l.segBits)))*hashLen)
	l.mu.Lock()
	l.segs = append(l.segs, segInfo{start: start})
	l.mu.Unlock()
	l.extend()
	return nil
}

// Preallocation: the active segment keeps zeros, written and synced,
// ahead of the writer, so that an append overwrites allocated blocks
// inside the file's size and its fdatasync has no metadata to commit. On
// ext4 here that halves the CPU and the time of an append's fdatasync.
// fallocate(2) does not do it on ext4: it leaves unwritten extents, and
// converting them when data lands is a metadata change that fdatasync
// commits (as slow as growing the file, measured).
const (
	minExtend = 64 << 10 // zeros written with a new segment's header
	maxExtend = 4 << 20  // largest zero-fill step
)

// extension is a zero-fill of the active segment, from allocEnd to end,
// running on its own goroutine.
type extension struct {
	end  int64
	done chan error
}

// extend starts zero-filling the active segment beyond allocEnd once the
// writer has used half of the last step. Steps double from minExtend to
// maxExtend, so a new segment soon has zeros well ahead, but stop at what
// the rest of the segment is likely to need (from its records so far). The
// writer never writes beyond allocEnd while a zero-fill runs (commit waits
// for it), so the zeros never overwrite records.
func (l *Log) extend() {
	w := &l.w
	ahead := w.allocEnd - w.segOff
	if l.cfg.NoPreallocate || w.ext != nil || ahead >= w.extStep/2 {
		return
	}
	step := w.extStep
	if w.segCount > 0 {
		left := int64(uint64(1)<<l.segBits - w.segCount)
		need := (w.segOff-fileHeaderLen)/int64(w.segCount)*left*5/4 - ahead
		if need <= 0 {
			return
		}
		step = min(step, (need+minExtend-1)/minExtend*minExtend)
	}
	ext := &extension{end: w.allocEnd + step, done: make(chan error, 1)}
	w.extStep = min(2*w.extStep, maxExtend)
	w.ext = ext
	go func(f *os.File, from int64) { ext.done <- zeroRange(f, from, ext.end, &l.stopPrep) }(w.seg, w.allocEnd)
}

// collectExtension takes the zeros of a finished zero-fill. With wait set
// it waits for a running one; otherwise it leaves a running one alone.
func (l *Log) collectExtension(wait bool) {
	w := &l.w
	if w.ext == nil {
		return
	}
	var err error
	if wait {
		err = <-w.ext.done
	} else {
		select {
		case err = <-w.ext.done:
		default:
			return
		}
	}
	if err == nil {
		w.allocEnd = max(w.allocEnd, w.ext.end)
	} else if !l.stopPrep.Load() {
		// The writer grows the file instead; only fdatasync is slower.
		l.logger.Warn("audit: preallocating segment space failed", logKeySeg, w.segStart, logKeyErr, err)
	}
	w.ext = nil
}

// zeroRange writes zeros to f over [from, to) and syncs them, in 1 MiB
// steps so that no append's fdatasync has to flush many megabytes of them.
func zeroRange(f *os.File, from, to int64, stop *atomic.Bool) error {
	zeros := make([]byte, min(1<<20, to-from))
	for off := from; off < to; off += int64(len(zeros)) {
		if stop.Load() {
			return errors.New("log closing")
		}
		n := min(int64(len(zeros)), to-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
		if err := fdatasync(f); err != nil {
			return err
		}
	}
	return nil
}

// seal finishes a full segment: its root goes into the index trailer, both
// files are synced and closed, and the next segment is created.
func (l *Log) seal() error {
	w := &l.w
	if w.segRoot == nil {
		return fmt.Errorf("seal audit segment %d: no segment root", w.segStart)
	}
	root := bytes.Clone(w.segRoot)
	// Cut the unused preallocated tail.
	l.collectExtension(true)
	if err := w.seg.Truncate(w.segOff); err != nil {
		return fmt.Errorf("seal audit segment %d: %w", w.segStart, err)
	}
	if err := l.fdatasync(w.seg); err != nil {
		return fmt.Errorf("sync audit segment %d: %w", w.segStart, err)
	}
	w.unsyncedBytes = 0
	if _, err := w.idx.Write(root); err != nil {
		return fmt.Errorf("seal audit index %d: %w", w.segStart, err)
	}
	// The index (a few MB never synced so far) is synced off the append
	// path; if that is lost in a crash, Open rebuilds it from the segment.
	l.sealing.Add(1)
	go func(seg, idx *os.File, start uint64) {
		defer l.sealing.Done()
		err := idx.Sync()
		idx.Close()
		seg.Close()
		if err != nil {
			l.fail(fmt.Errorf("sync audit index %d: %w", start, err))
		}
	}(w.seg, w.idx, w.segStart)
	mids := w.mids
	if checkMids(mids, l.segBits, root) {
		l.mids.put(w.segStart, mids)
		if err := writeMids(l.dir, w.segStart, l.segBits, mids); err != nil {
			// Readers rebuild them from the index when needed.
			l.logger.Warn("audit log: storing mid hashes failed", logKeySeg, w.segStart, logKeyErr, err)
		}
	}
	l.mu.Lock()
	l.segs[len(l.segs)-1].root = root
	l.segs[len(l.segs)-1].count = w.segCount
	l.segs[len(l.segs)-1].mids = nil
	l.mu.Unlock()
	return l.createSegment(w.segStart + w.segCount)
}
