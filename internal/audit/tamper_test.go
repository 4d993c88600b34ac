package audit_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// The on-disk format as documented in doc.go, re-implemented here so the
// tests edit files the way an attacker would.
const (
	hdrLen      = 24
	idxEntryLen = 40
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type frame struct{ off, n int } // n includes the 8-byte frame header

func segFile(dir string, start int) string {
	return filepath.Join(dir, "segments", fmt.Sprintf("%020d.seg", start))
}

func idxFile(dir string, start int) string {
	return filepath.Join(dir, "segments", fmt.Sprintf("%020d.idx", start))
}

func frames(b []byte, pos int) []frame {
	var fs []frame
	for pos+8 <= len(b) {
		n := int(binary.BigEndian.Uint32(b[pos:]))
		if n == 0 {
			break
		}
		fs = append(fs, frame{pos, 8 + n})
		pos += 8 + n
	}
	return fs
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustWrite(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// editSegment lets fn rewrite the records of the segment starting at start.
func editSegment(t *testing.T, dir string, start int, fn func(b []byte, fs []frame) []byte) {
	t.Helper()
	p := segFile(dir, start)
	b := mustRead(t, p)
	mustWrite(t, p, fn(b, frames(b, hdrLen)))
}

// flipPayload flips a byte inside the payload of record k of a segment and,
// if fixCRC, recomputes the record checksum.
func flipPayload(k int, fixCRC bool) func([]byte, []frame) []byte {
	return func(b []byte, fs []frame) []byte {
		f := fs[k]
		b[f.off+8+10] ^= 0x01
		if fixCRC {
			binary.BigEndian.PutUint32(b[f.off+4:], crc32.Checksum(b[f.off+8:f.off+f.n], castagnoli))
		}
		return b
	}
}

// zeroPayload clears the payload of record k of a segment from its 12th
// byte on, as a lost sector would.
func zeroPayload(k int) func([]byte, []frame) []byte {
	return func(b []byte, fs []frame) []byte {
		clear(b[fs[k].off+20 : fs[k].off+fs[k].n])
		return b
	}
}

// fixIndexLeaf rewrites index entry k of a segment with the leaf hash of
// the record now stored there.
func fixIndexLeaf(t *testing.T, dir string, start, k int) {
	t.Helper()
	seg := mustRead(t, segFile(dir, start))
	f := frames(seg, hdrLen)[k]
	idx := mustRead(t, idxFile(dir, start))
	copy(idx[hdrLen+k*idxEntryLen+8:], rfc6962.DefaultHasher.HashLeaf(seg[f.off+8:f.off+f.n]))
	mustWrite(t, idxFile(dir, start), idx)
}

// fixSegmentRoot recomputes the root trailer of a sealed segment's index
// from its leaf hashes.
func fixSegmentRoot(t *testing.T, dir string, start int) {
	t.Helper()
	p := idxFile(dir, start)
	idx := mustRead(t, p)
	n := (len(idx) - hdrLen - 32) / idxEntryLen
	level := make([][]byte, n)
	for i := range level {
		level[i] = idx[hdrLen+i*idxEntryLen+8 : hdrLen+(i+1)*idxEntryLen]
	}
	for len(level) > 1 {
		var up [][]byte
		for i := 0; i < len(level); i += 2 {
			up = append(up, rfc6962.DefaultHasher.HashChildren(level[i], level[i+1]))
		}
		level = up
	}
	copy(idx[len(idx)-32:], level[0])
	mustWrite(t, p, idx)
}

func truncateFile(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// checkpointFrames splits the checkpoints file into its frames.
func checkpointFrames(t *testing.T, dir string) [][]byte {
	b := mustRead(t, filepath.Join(dir, "checkpoints"))
	var out [][]byte
	for _, f := range frames(b, 0) {
		out = append(out, b[f.off+8:f.off+f.n])
	}
	return out
}

func writeCheckpointFrames(t *testing.T, dir string, notes [][]byte) {
	var b []byte
	for _, n := range notes {
		b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
		b = binary.BigEndian.AppendUint32(b, crc32.Checksum(n, castagnoli))
		b = append(b, n...)
	}
	mustWrite(t, filepath.Join(dir, "checkpoints"), b)
}

func forgedCheckpoint(t *testing.T, size uint64) []byte {
	skey, _, err := note.GenerateKey(nil, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	body := audit.Checkpoint{Origin: testOrigin, Size: size, Root: make([]byte, 32)}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(body)}, s)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// TestVerifyTamper builds a log of 100 entries in segments of 16, with
// checkpoints at sizes 20, 40, 60, 80 and 100 (checkpoints 0–4), edits the
// files the way an attacker would and checks Verify names the first bad
// entry or checkpoint.
func TestVerifyTamper(t *testing.T) {
	// Entry 37 is record 5 of the segment starting at 32.
	tests := []struct {
		name           string
		tamper         func(t *testing.T, dir string)
		external       bool // pass the checkpoint of size 100 saved before tampering
		wantEntry      int64
		wantCheckpoint int
	}{
		{"modified byte", func(t *testing.T, dir string) {
			editSegment(t, dir, 32, flipPayload(5, false))
		}, false, 37, -1},
		{"modified byte in the newest segment", func(t *testing.T, dir string) {
			editSegment(t, dir, 96, flipPayload(1, false))
		}, false, 97, -1},
		{"modified byte of the last entry", func(t *testing.T, dir string) {
			editSegment(t, dir, 96, flipPayload(3, false))
		}, false, 99, -1},
		// Zeros look like a write lost in preallocated space, which is
		// forgiven only at the tail of the newest segment, and never for
		// an entry the index lists.
		{"zeroed bytes in an entry", func(t *testing.T, dir string) {
			editSegment(t, dir, 32, zeroPayload(5))
		}, false, 37, -1},
		{"zeroed bytes in an entry of the newest segment", func(t *testing.T, dir string) {
			editSegment(t, dir, 96, zeroPayload(1))
		}, false, 97, -1},
		{"modified byte with checksum fixed", func(t *testing.T, dir string) {
			editSegment(t, dir, 32, flipPayload(5, true))
		}, false, 37, -1},
		{"modified byte with checksum and index fixed", func(t *testing.T, dir string) {
			editSegment(t, dir, 32, flipPayload(5, true))
			fixIndexLeaf(t, dir, 32, 5)
		}, false, 20, 1},
		{"modified index entry", func(t *testing.T, dir string) {
			p := idxFile(dir, 32)
			b := mustRead(t, p)
			b[hdrLen+5*idxEntryLen+20] ^= 0x80
			mustWrite(t, p, b)
		}, false, 37, -1},
		{"removed entry", func(t *testing.T, dir string) {
			editSegment(t, dir, 32, func(b []byte, fs []frame) []byte {
				return append(b[:fs[5].off:fs[5].off], b[fs[6].off:]...)
			})
		}, false, 37, -1},
		{"reordered entries", func(t *testing.T, dir string) {
			editSegment(t, dir, 32, func(b []byte, fs []frame) []byte {
				out := append([]byte(nil), b[:fs[5].off]...)
				out = append(out, b[fs[6].off:fs[6].off+fs[6].n]...)
				out = append(out, b[fs[5].off:fs[5].off+fs[5].n]...)
				return append(out, b[fs[7].off:]...)
			})
		}, false, 37, -1},
		{"truncated segment", func(t *testing.T, dir string) {
			editSegment(t, dir, 96, func(b []byte, fs []frame) []byte { return b[:fs[2].off] })
		}, false, 98, -1},
		{"truncated mid-record", func(t *testing.T, dir string) {
			editSegment(t, dir, 96, func(b []byte, fs []frame) []byte { return b[:fs[2].off+20] })
		}, false, 98, -1},
		{"truncated segment and index", func(t *testing.T, dir string) {
			editSegment(t, dir, 96, func(b []byte, fs []frame) []byte { return b[:fs[2].off] })
			truncateFile(t, idxFile(dir, 96), hdrLen+2*idxEntryLen)
		}, false, 98, 4},
		{"removed newest segment", func(t *testing.T, dir string) {
			os.Remove(segFile(dir, 96))
			os.Remove(idxFile(dir, 96))
		}, false, 96, 4},
		{"removed middle segment", func(t *testing.T, dir string) {
			os.Remove(segFile(dir, 48))
			os.Remove(idxFile(dir, 48))
		}, false, 48, -1},
		{"rolled back checkpoint", func(t *testing.T, dir string) {
			cps := checkpointFrames(t, dir)
			writeCheckpointFrames(t, dir, append(cps[:4:4], cps[1]))
		}, false, -1, 4},
		{"forged checkpoint", func(t *testing.T, dir string) {
			cps := checkpointFrames(t, dir)
			cps[4] = forgedCheckpoint(t, 100)
			writeCheckpointFrames(t, dir, cps)
		}, false, -1, 4},
		{"modified checkpoint", func(t *testing.T, dir string) {
			cps := checkpointFrames(t, dir)
			cps[2][len(testOrigin)+1] = '7' // size 60 -> 70
			writeCheckpointFrames(t, dir, cps)
		}, false, -1, 2},
		{"modified checkpoint frame", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "checkpoints")
			b := mustRead(t, p)
			b[12] ^= 1
			mustWrite(t, p, b)
		}, false, -1, 0},
		{"rewritten history caught by external checkpoint", func(t *testing.T, dir string) {
			editSegment(t, dir, 32, flipPayload(5, true))
			fixIndexLeaf(t, dir, 32, 5)
			fixSegmentRoot(t, dir, 32)
			os.Remove(filepath.Join(dir, "checkpoints"))
		}, true, 0, -2},
		{"rewritten history without fixing the segment root", func(t *testing.T, dir string) {
			editSegment(t, dir, 32, flipPayload(5, true))
			fixIndexLeaf(t, dir, 32, 5)
			os.Remove(filepath.Join(dir, "checkpoints"))
		}, false, 32, -1},
		{"truncation caught by external checkpoint", func(t *testing.T, dir string) {
			editSegment(t, dir, 96, func(b []byte, fs []frame) []byte { return b[:fs[2].off] })
			truncateFile(t, idxFile(dir, 96), hdrLen+2*idxEntryLen)
			os.Remove(filepath.Join(dir, "checkpoints"))
		}, true, 98, -2},
		{"forged external checkpoint", func(t *testing.T, dir string) {}, true, -1, -2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := mustClosedLog(t, 100, 20)
			saved, err := audit.LatestCheckpoint(dir)
			if err != nil {
				t.Fatal(err)
			}
			var opts audit.VerifyOptions
			if tt.external {
				opts.Checkpoint = saved
			}
			if _, err := audit.Verify(context.Background(), dir, opts); err != nil {
				t.Fatalf("verify before tampering: %v", err)
			}
			if tt.name == "forged external checkpoint" {
				opts.Checkpoint = forgedCheckpoint(t, 100)
			}
			tt.tamper(t, dir)
			_, err = audit.Verify(context.Background(), dir, opts)
			var ve *audit.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("verify after tampering: %v, want a *VerifyError", err)
			}
			if ve.Entry != tt.wantEntry || ve.Checkpoint != tt.wantCheckpoint {
				t.Fatalf("verify error %q names entry %d, checkpoint %d; want entry %d, checkpoint %d",
					err, ve.Entry, ve.Checkpoint, tt.wantEntry, tt.wantCheckpoint)
			}
			t.Logf("%v", err)
		})
	}
}
