package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Snapshot is a copy of a log's files at one signed checkpoint, made by
// Log.Snapshot for a backup.
type Snapshot struct {
	// Checkpoint is the signed checkpoint the copy ends at; Size and Root
	// are its tree size and root hash.
	Checkpoint []byte
	Size       uint64
	Root       []byte
	// Files are the copied files, relative to the snapshot directory,
	// in the order a restore should write them (slash-separated).
	Files []string
}

// Snapshot copies the log into dst (an empty or missing directory) as of
// a checkpoint it signs first: every retained segment and its index up to
// that checkpoint's size (the segment being written cut after its last
// covered entry, without its preallocated zeros), the checkpoints up to it,
// the pruned-prefix state and the verifier key — never the signing key,
// which a backup carries among the server secrets. The copy is a log
// directory Open and Verify accept as it is.
//
// Sealed segments are hard-linked where dst is on the same filesystem (they
// are never written again), so the append path is held only while a
// checkpoint is signed and a few links are made; everything else is copied
// afterwards without holding it. Appends continue meanwhile: the copy ends
// at the checkpoint, not at the live end of the log.
func (l *Log) Snapshot(ctx context.Context, dst string) (Snapshot, error) {
	var snap Snapshot
	if err := os.MkdirAll(filepath.Join(dst, segDirName), 0o700); err != nil {
		return snap, fmt.Errorf("audit snapshot: %w", err)
	}
	var (
		v      *treeView
		cerr   error
		linked = map[uint64]bool{}
	)
	err := l.do(ctx, func() {
		if _, cerr = l.checkpoint(true); cerr != nil {
			return
		}
		l.mu.RLock()
		snap.Checkpoint, snap.Size, snap.Root = l.latest, l.latestCP.Size, l.latestCP.Root
		l.mu.RUnlock()
		v = l.view()
		// Prune removes sealed segments on this goroutine: linked now,
		// they outlive it.
		for _, s := range v.segs {
			if s.root == nil || s.start+s.count > snap.Size {
				break
			}
			if os.Link(segPath(l.dir, s.start), segPath(dst, s.start)) != nil {
				break
			}
			if os.Link(idxPath(l.dir, s.start), idxPath(dst, s.start)) != nil {
				os.Remove(segPath(dst, s.start))
				break
			}
			linked[s.start] = true
		}
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		return snap, fmt.Errorf("audit snapshot: %w", err)
	}
	for _, s := range v.segs {
		if s.start >= snap.Size {
			break
		}
		if !linked[s.start] {
			if err := l.copySegment(s, snap.Size, dst); err != nil {
				return snap, fmt.Errorf("audit snapshot: %w", err)
			}
		}
		base := fmt.Sprintf("%s/%020d", segDirName, s.start)
		snap.Files = append(snap.Files, base+".idx", base+".seg")
	}
	if v.prefix.begin > 0 {
		if err := os.WriteFile(filepath.Join(dst, prunedFile), encodePrune(v.prefix), 0o600); err != nil {
			return snap, fmt.Errorf("audit snapshot: %w", err)
		}
		snap.Files = append(snap.Files, prunedFile)
	}
	if err := l.copyCheckpoints(dst, snap.Size); err != nil {
		return snap, fmt.Errorf("audit snapshot: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dst, verifierKeyFile), []byte(l.VerifierKey()+"\n"), 0o600); err != nil {
		return snap, fmt.Errorf("audit snapshot: %w", err)
	}
	snap.Files = append(snap.Files, checkpointsFile, verifierKeyFile)
	return snap, nil
}

// copySegment copies segment s and its index into dst, cut after the
// entries below size.
func (l *Log) copySegment(s segInfo, size uint64, dst string) error {
	n := min(s.count, size-s.start)
	idx, err := os.Open(idxPath(l.dir, s.start))
	if err != nil {
		return fmt.Errorf("open audit index %d: %w", s.start, err)
	}
	defer idx.Close()
	idxLen := int64(fileHeaderLen) + int64(n)*idxEntryLen
	if n == s.count && s.root != nil {
		idxLen += hashLen // sealed: keep the root trailer
	}
	var last [idxEntryLen]byte
	if _, err := idx.ReadAt(last[:], int64(fileHeaderLen)+int64(n-1)*idxEntryLen); err != nil {
		return fmt.Errorf("read audit index %d: %w", s.start, err)
	}
	seg, err := os.Open(segPath(l.dir, s.start))
	if err != nil {
		return fmt.Errorf("open audit segment %d: %w", s.start, err)
	}
	defer seg.Close()
	off := int64(binary.BigEndian.Uint64(last[:8]))
	var h [frameHeaderLn]byte
	if _, err := seg.ReadAt(h[:], off); err != nil {
		return fmt.Errorf("read audit segment %d: %w", s.start, err)
	}
	segLen := off + frameHeaderLn + int64(binary.BigEndian.Uint32(h[:4]))
	if err := copyPrefix(idx, idxLen, idxPath(dst, s.start)); err != nil {
		return err
	}
	return copyPrefix(seg, segLen, segPath(dst, s.start))
}

// copyPrefix writes the first n bytes of src to a new file at path.
func copyPrefix(src *os.File, n int64, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.NewSectionReader(src, 0, n)); err != nil {
		f.Close()
		return fmt.Errorf("copy %s: %w", filepath.Base(path), err)
	}
	return f.Close()
}

// copyCheckpoints writes the stored checkpoints of trees up to size to dst.
func (l *Log) copyCheckpoints(dst string, size uint64) error {
	cps, _, err := readCheckpoints(l.dir, true)
	if err != nil {
		return err
	}
	var out []byte
	for _, c := range cps {
		// Only the size is read: signatures are checked where the copy
		// is verified.
		text, _, _ := bytes.Cut(c.Signed, []byte("\n\n"))
		cp, err := ParseCheckpoint(string(text) + "\n")
		if err != nil {
			return fmt.Errorf("checkpoint %d: %w", c.Seq, err)
		}
		if cp.Size > size {
			break
		}
		out = appendFrame(out, c.Signed)
	}
	if len(out) == 0 {
		return errors.New("no checkpoint covers the snapshot")
	}
	return os.WriteFile(filepath.Join(dst, checkpointsFile), out, 0o600)
}
