package audit

// Recovery at open: reading the directory state, cutting a torn tail,
// resealing old segments and checking the latest checkpoint.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// load reads the directory state and prepares the writer state.
func (l *Log) load(ctx context.Context) error {
	if l.cfg.Signer != nil {
		cps, _, err := readCheckpoints(l.dir, true)
		if err != nil {
			return err
		}
		use, pending, err := adoptKey(l.dir, &Key{Signer: l.cfg.Signer, VerifierKey: l.cfg.VerifierKey}, l.cfg.Previous, cps)
		if err != nil {
			return err
		}
		l.key.Store(use)
		l.pendingKey = pending
	} else {
		signer, vkey, err := loadOrCreateKey(l.dir, l.cfg.Origin)
		if err != nil {
			return err
		}
		l.key.Store(&Key{Signer: signer, VerifierKey: vkey})
	}
	prefix, err := readPrune(l.dir)
	if err != nil {
		return err
	}
	l.prefix = prefix
	// A segment being created, and the zero-filled next segment earlier
	// versions prepared.
	os.Remove(filepath.Join(l.dir, segDirName, "new.seg.tmp"))
	os.Remove(filepath.Join(l.dir, segDirName, "next.seg.tmp"))
	starts, err := listSegments(l.dir)
	if err != nil {
		return err
	}
	l.removeStrayMids(starts)
	// Segments wholly below the pruned prefix are left over from an
	// interrupted prune.
	for len(starts) > 0 && starts[0] < prefix.begin {
		l.logger.Info("removing pruned segment left by an interrupted prune", logKeySeg, starts[0])
		os.Remove(segPath(l.dir, starts[0]))
		os.Remove(idxPath(l.dir, starts[0]))
		os.Remove(midPath(l.dir, starts[0]))
		starts = starts[1:]
	}
	if len(starts) > 0 {
		b := make([]byte, fileHeaderLen)
		f, err := os.Open(segPath(l.dir, starts[0]))
		if err != nil {
			return fmt.Errorf("open audit segment %d: %w", starts[0], err)
		}
		_, err = io.ReadFull(f, b)
		f.Close()
		if err != nil {
			return fmt.Errorf("read audit segment %d: %w", starts[0], err)
		}
		segBits, err := parseHeader(b, segMagic, starts[0])
		if err != nil {
			return fmt.Errorf("read audit segment %d: %w", starts[0], err)
		}
		l.segBits = segBits
	}
	if prefix.begin%(1<<l.segBits) != 0 {
		return fmt.Errorf("audit prune state begins at %d, not a segment boundary", prefix.begin)
	}
	w := &l.w
	w.visit = func(id compact.NodeID, h []byte) {
		switch id.Level {
		case l.segBits:
			w.segRoot = h
		case midLevel(l.segBits):
			w.mids = append(w.mids, h...)
		}
	}
	factory := newRangeFactory()
	rng, err := factory.NewRange(0, prefix.begin, slices.Clone(prefix.hashes)) // the range mutates its slice
	if err != nil {
		return fmt.Errorf("audit prune state: %w", err)
	}
	w.rng = rng
	next := prefix.begin
	full := uint64(1) << l.segBits
	for i, start := range starts {
		if start != next {
			return fmt.Errorf("audit segment %d: expected a segment starting at entry %d", start, next)
		}
		if i == len(starts)-1 {
			break
		}
		root, err := readSegmentRoot(l.dir, start, l.segBits)
		if err != nil {
			return err
		}
		if root == nil {
			// A crash lost the index of a full segment before it was
			// synced.
			if root, err = l.reseal(start); err != nil {
				return err
			}
		}
		seg, err := factory.NewRange(start, start+full, [][]byte{root})
		if err != nil {
			return err
		}
		if err := w.rng.AppendRange(seg, nil); err != nil {
			return fmt.Errorf("audit segment %d: %w", start, err)
		}
		l.segs = append(l.segs, segInfo{start: start, count: full, root: root})
		next = start + full
	}
	// The checkpoints are read first: recovery must not cut what the
	// latest one covers.
	cps, torn, err := readCheckpoints(l.dir, true)
	if err != nil {
		return err
	}
	var latest *Checkpoint
	if len(cps) > 0 {
		keys, err := logKeys(l.dir, cps)
		if err != nil {
			return err
		}
		cp, err := OpenCheckpointKeys(cps[len(cps)-1].Signed, keys)
		if err != nil {
			return fmt.Errorf("latest audit checkpoint: %w", err)
		}
		latest = &cp
	}
	if len(starts) == 0 {
		if err := l.createSegment(next); err != nil {
			return err
		}
	} else if err := l.recoverActive(starts[len(starts)-1], latest); err != nil {
		return err
	}
	return l.loadCheckpoints(ctx, cps, torn, latest)
}

// reseal rebuilds the index of a full, older segment from its records.
func (l *Log) reseal(start uint64) ([]byte, error) {
	data, err := os.ReadFile(segPath(l.dir, start))
	if err != nil {
		return nil, fmt.Errorf("read audit segment %d: %w", start, err)
	}
	if _, err := parseHeader(data, segMagic, start); err != nil {
		return nil, fmt.Errorf("read audit segment %d: %w", start, err)
	}
	idx := fileHeader(idxMagic, start, l.segBits)
	rng := newRangeFactory().NewEmptyRange(start)
	var mids []byte
	visit := midCollector(midLevel(l.segBits), &mids)
	stop, err := scanFrames(data, func(off int64, payload []byte) error {
		leaf := rfc6962.DefaultHasher.HashLeaf(payload)
		idx = appendIdxEntry(idx, uint64(off), leaf)
		return rng.Append(leaf, visit)
	})
	if err != nil {
		return nil, err
	}
	n := rng.End() - start
	if stop != nil {
		return nil, fmt.Errorf("audit segment %d: entry %d: %s (run verify)", start, rng.End(), stop.Reason)
	}
	if n != 1<<l.segBits || len(rng.Hashes()) != 1 {
		return nil, fmt.Errorf("audit segment %d holds %d entries, want %d (run verify)", start, n, 1<<l.segBits)
	}
	root := rng.Hashes()[0]
	if err := writeFileSync(idxPath(l.dir, start), append(idx, root...), 0o600); err != nil {
		return nil, fmt.Errorf("rebuild audit index %d: %w", start, err)
	}
	l.logger.Warn("audit log: rebuilt the index of a sealed segment", logKeySeg, start)
	if err := writeMids(l.dir, start, l.segBits, mids); err != nil {
		l.logger.Warn("audit log: storing mid hashes failed", logKeySeg, start, logKeyErr, err)
	}
	return root, nil
}

// recoverActive scans the newest segment, cuts a torn tail, rebuilds its
// index and opens both files for appending. It refuses to cut entries that
// the latest checkpoint (nil if none) covers: those were synced, so a bad
// record among them is damage.
func (l *Log) recoverActive(start uint64, latest *Checkpoint) error {
	w := &l.w
	path := segPath(l.dir, start)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read audit segment %d: %w", start, err)
	}
	if _, err := parseHeader(data, segMagic, start); err != nil {
		return fmt.Errorf("read audit segment %d: %w", start, err)
	}
	idx := fileHeader(idxMagic, start, l.segBits)
	var count uint64
	validEnd := int64(fileHeaderLen)
	w.segRoot = nil
	w.mids = make([]byte, 0, (1<<(l.segBits-midLevel(l.segBits)))*hashLen)
	stop, err := scanFrames(data, func(off int64, payload []byte) error {
		leaf := rfc6962.DefaultHasher.HashLeaf(payload)
		idx = appendIdxEntry(idx, uint64(off), leaf)
		count++
		validEnd = off + frameHeaderLn + int64(len(payload))
		return w.rng.Append(leaf, w.visit)
	})
	if err != nil {
		return err
	}
	// Without a torn tail, any zeros after the last record are preallocated
	// space and stay; appends overwrite them.
	end := validEnd
	truncate := false
	if stop != nil {
		if !stop.Tail {
			return fmt.Errorf("audit segment %d: entry %d at offset %d: %s (not at the tail; run verify)", start, start+count, stop.Offset, stop.Reason)
		}
		if latest != nil && start+count < latest.Size {
			return fmt.Errorf("audit segment %d: entry %d at offset %d: %s (covered by the checkpoint of size %d; run verify)", start, start+count, stop.Offset, stop.Reason, latest.Size)
		}
		end, truncate = stop.Offset, true
		l.w.recoveredMsg = fmt.Sprintf("cut torn tail of segment %d at entry %d (offset %d, %d bytes): %s", start, start+count, end, int64(len(data))-end, stop.Reason)
		l.logger.Warn("audit log: cut torn tail", logKeySeg, start, logKeyOffset, end, logKeyBytes, int64(len(data))-end, logKeyReason, stop.Reason)
	}
	if count > 1<<l.segBits {
		return fmt.Errorf("audit segment %d holds %d entries, more than %d", start, count, 1<<l.segBits)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("open audit segment %d: %w", start, err)
	}
	if truncate {
		if err := f.Truncate(end); err != nil {
			f.Close()
			return fmt.Errorf("truncate audit segment %d: %w", start, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("sync audit segment %d: %w", start, err)
		}
	}
	if _, err := f.Seek(end, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	if err := writeFileSync(idxPath(l.dir, start), idx, 0o600); err != nil {
		f.Close()
		return fmt.Errorf("rebuild audit index %d: %w", start, err)
	}
	xf, err := os.OpenFile(idxPath(l.dir, start), os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		f.Close()
		return fmt.Errorf("open audit index %d: %w", start, err)
	}
	w.seg, w.idx = f, xf
	w.segStart, w.segCount, w.segOff = start, count, end
	w.allocEnd, w.extStep = end, minExtend
	if !truncate {
		w.allocEnd = int64(len(data)) // zeros preallocated before the crash
	}
	w.size = start + count
	l.segs = append(l.segs, segInfo{start: start, count: count, mids: w.mids})
	if count == 1<<l.segBits {
		return l.seal()
	}
	l.extend()
	return nil
}

// loadCheckpoints opens the checkpoints file (read into cps by load, a torn
// frame at offset torn, or -1), cuts a torn checkpoint and checks the
// latest (nil if none) against the stored tree.
func (l *Log) loadCheckpoints(ctx context.Context, cps []storedCheckpoint, torn int64, latest *Checkpoint) error {
	w := &l.w
	path := filepath.Join(l.dir, checkpointsFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open audit checkpoints: %w", err)
	}
	w.cp = f
	if torn >= 0 {
		l.logger.Warn("audit log: cut torn checkpoint", logKeyOffset, torn)
		if err := f.Truncate(torn); err != nil {
			return fmt.Errorf("truncate audit checkpoints: %w", err)
		}
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	if latest == nil {
		return nil
	}
	cp := *latest
	if cp.Size > w.size {
		return fmt.Errorf("latest audit checkpoint covers %d entries but the log holds %d: log truncated (run verify)", cp.Size, w.size)
	}
	root, err := l.view().rootAt(cp.Size)
	if err != nil {
		return fmt.Errorf("latest audit checkpoint: %w", err)
	}
	if !bytes.Equal(root, cp.Root) {
		return fmt.Errorf("latest audit checkpoint (size %d) does not match the stored log (run verify)", cp.Size)
	}
	w.haveCP, w.lastCPSize, w.lastCPRoot = true, cp.Size, cp.Root
	l.latest, l.latestCP = cps[len(cps)-1].Signed, cp
	if fi, err := f.Stat(); err == nil {
		// The latest checkpoint was the file's last write.
		l.checkpointAt.Store(fi.ModTime().UnixNano())
	}
	return nil
}
