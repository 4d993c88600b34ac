package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Retention limits enforced by ValidateRetention.
const (
	MinRetentionProd = 90 * 24 * time.Hour
	MinRetentionDev  = 30 * 24 * time.Hour
)

// ValidateRetention checks an audit retention period: at least 90 days, or
// 30 days in dev mode. Zero (keep forever) is valid.
func ValidateRetention(d time.Duration, devMode bool) error {
	switch {
	case d == 0:
		return nil
	case d < 0:
		return fmt.Errorf("audit.retention %s is negative", d)
	case devMode && d < MinRetentionDev:
		return fmt.Errorf("audit.retention %s is below the 30-day minimum allowed in dev mode", d)
	case !devMode && d < MinRetentionProd:
		return fmt.Errorf("audit.retention %s is below the 90-day minimum (SOC 2 baseline); only dev mode allows down to 30 days", d)
	}
	return nil
}

// PruneResult says what Prune removed.
type PruneResult struct {
	Segments     int    `json:"segments"`      // segment files removed
	Entries      uint64 `json:"entries"`       // entries removed
	RetainedFrom uint64 `json:"retained_from"` // index of the first retained entry
}

// Prune removes whole segments whose newest event is older than
// Config.Retention, oldest first, never the segment being written. Before
// removing anything it signs a checkpoint covering the removed entries and
// stores the compact range of the removed prefix in the "pruned" file, so
// the rest still verifies against every remaining checkpoint. With zero
// retention it does nothing. Prune also runs every PruneInterval.
func (l *Log) Prune(ctx context.Context) (PruneResult, error) {
	var res PruneResult
	var perr error
	if err := l.do(ctx, func() { res, perr = l.prune(ctx) }); err != nil {
		return res, err
	}
	return res, perr
}

// prune runs on the writer goroutine.
func (l *Log) prune(ctx context.Context) (PruneResult, error) {
	v := l.view()
	res := PruneResult{RetainedFrom: v.prefix.begin}
	if l.cfg.Retention <= 0 {
		return res, nil
	}
	cutoff := l.clock.Now().Add(-l.cfg.Retention)
	begin := v.prefix.begin
	var drop []segInfo
	if len(v.segs) < 2 {
		return res, nil // the newest segment is never pruned
	}
	for _, s := range v.segs[:len(v.segs)-1] {
		if s.root == nil {
			break
		}
		payload, _, err := v.readRecord(s.start + s.count - 1)
		if err != nil {
			return res, fmt.Errorf("prune: %w", err)
		}
		var e struct {
			Time time.Time `json:"time"`
		}
		if err := json.Unmarshal(payload, &e); err != nil {
			return res, fmt.Errorf("prune: decode entry %d: %w", s.start+s.count-1, err)
		}
		if !e.Time.Before(cutoff) {
			break
		}
		drop = append(drop, s)
		begin = s.start + s.count
	}
	if len(drop) == 0 {
		return res, nil
	}
	if !l.w.haveCP || l.w.lastCPSize < begin {
		if _, err := l.checkpoint(true); err != nil {
			return res, fmt.Errorf("prune: %w", err)
		}
	}
	ids := compactIDs(begin)
	p := prefixState{begin: begin, ids: ids}
	for _, id := range ids {
		h, err := v.nodeHash(id)
		if err != nil {
			return res, fmt.Errorf("prune: %w", err)
		}
		p.hashes = append(p.hashes, h)
	}
	if err := writeFileSync(filepath.Join(l.dir, prunedFile), encodePrune(p), 0o600); err != nil {
		return res, fmt.Errorf("prune: write prune state: %w", err)
	}
	l.mu.Lock()
	l.prefix = p
	l.segs = l.segs[len(drop):]
	l.mu.Unlock()
	if err := l.dropCheckpointsBefore(begin); err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	for _, s := range drop {
		if err := os.Remove(segPath(l.dir, s.start)); err != nil {
			return res, fmt.Errorf("prune: remove segment %d: %w", s.start, err)
		}
		os.Remove(idxPath(l.dir, s.start))
		os.Remove(midPath(l.dir, s.start))
	}
	if err := syncDir(filepath.Join(l.dir, segDirName)); err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	res = PruneResult{Segments: len(drop), Entries: begin - v.prefix.begin, RetainedFrom: begin}
	l.logger.Info("audit log pruned", logKeyNSegs, res.Segments, logKeyCount, res.Entries, logKeyFrom, begin)
	return res, nil
}

// dropCheckpointsBefore rewrites the checkpoints file without checkpoints
// of trees smaller than begin: they can no longer be checked.
func (l *Log) dropCheckpointsBefore(begin uint64) error {
	cps, _, err := readCheckpoints(l.dir, false)
	if err != nil {
		return err
	}
	var out []byte
	for _, c := range cps {
		// Signed by this log's keys, old and new: verify checks them.
		text, err := noteTextOf(c.Signed)
		if err != nil {
			return fmt.Errorf("checkpoint %d: %w", c.Seq, err)
		}
		cp, err := ParseCheckpoint(text)
		if err != nil {
			return fmt.Errorf("checkpoint %d: %w", c.Seq, err)
		}
		// Hand-overs are kept: the key chain runs through them.
		if cp.Size >= begin || IsHandOver(c.Signed) {
			out = appendFrame(out, c.Signed)
		}
	}
	path := filepath.Join(l.dir, checkpointsFile)
	if err := writeFileSync(path, out, 0o600); err != nil {
		return fmt.Errorf("rewrite audit checkpoints: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open audit checkpoints: %w", err)
	}
	l.w.cp.Close()
	l.w.cp = f
	return nil
}
