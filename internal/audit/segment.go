package audit

import (
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
			return &scanStop{Offset: int64(pos), Reason: fmt.Sprintf("bad record length %d", n), Tail: allZero(rest[4:])}, nil
		}
		if frameHeaderLn+n > len(rest) {
			return &scanStop{Offset: int64(pos), Reason: "record extends past end of file", Tail: true}, nil
		}
		payload := rest[frameHeaderLn : frameHeaderLn+n]
		if checksum(payload) != binary.BigEndian.Uint32(rest[4:8]) {
			return &scanStop{Offset: int64(pos), Reason: "record checksum mismatch", Tail: allZero(rest[frameHeaderLn+n:])}, nil
		}
		if err := fn(int64(pos), payload); err != nil {
			return nil, err
		}
		pos += frameHeaderLn + n
	}
	return nil, nil
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
