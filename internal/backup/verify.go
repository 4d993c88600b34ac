package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
	pgaudit "github.com/gatehouse/gatehouse/internal/audit/postgres"
)

// VerifyResult is what a restore test found. OK is false, with Error
// saying why, when the backup was refused or did not restore.
type VerifyResult struct {
	OK        bool      `json:"ok"`
	Error     string    `json:"error,omitempty"`
	ID        string    `json:"id,omitempty"`
	Origin    string    `json:"origin,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	// DurationMS is how long the restore test took, from the first byte
	// read to the last check: the RTO evidence.
	DurationMS int64 `json:"duration_ms"`
	// RPOSeconds is the backup's age when tested and EntriesLost how many
	// audit entries the live log holds beyond it: what restoring it now
	// would lose (the RPO evidence).
	RPOSeconds  int64  `json:"rpo_seconds"`
	EntriesLost uint64 `json:"entries_lost"`
	// AuditEntries is the size of the backup's audit log, LiveEntries the
	// live log's latest checkpoint it was proven a prefix of.
	AuditEntries uint64     `json:"audit_entries"`
	LiveEntries  uint64     `json:"live_entries"`
	Store        StoreCheck `json:"store"`
	Bytes        int64      `json:"bytes"`
	// The targets, and whether this test met them.
	RTOTargetSeconds int64 `json:"rto_target_seconds"`
	RPOTargetSeconds int64 `json:"rpo_target_seconds"`
	RTOMet           bool  `json:"rto_met"`
	RPOMet           bool  `json:"rpo_met"`
}

// Verify restore-tests the stored backup with the given id. A backup that
// fails the test is a result with OK false (and an audit event), not an
// error; errors are for a backup that could not be read at all (unknown
// id, unreachable destination, another operation running).
func (s *Service) Verify(ctx context.Context, by By, id string) (VerifyResult, error) {
	if err := s.acquire(ctx); err != nil {
		return VerifyResult{}, err
	}
	defer s.release()
	r, err := s.find(ctx, id)
	if err != nil {
		return VerifyResult{}, err
	}
	defer r.Close()
	return s.verifyAndRecord(ctx, by, r, "backup:"+id), nil
}

// VerifyFile restore-tests a backup read from r (an uploaded file).
func (s *Service) VerifyFile(ctx context.Context, by By, r io.Reader) (VerifyResult, error) {
	if err := s.acquire(ctx); err != nil {
		return VerifyResult{}, err
	}
	defer s.release()
	return s.verifyAndRecord(ctx, by, r, "backup:upload"), nil
}

func (s *Service) verifyAndRecord(ctx context.Context, by By, r io.Reader, resource string) VerifyResult {
	res := s.verify(ctx, r)
	if res.ID != "" {
		resource = "backup:" + res.ID
	}
	details := map[string]any{
		"ok": res.OK, "duration_ms": res.DurationMS, "rto_target_seconds": res.RTOTargetSeconds, "rto_met": res.RTOMet,
		"rpo_seconds": res.RPOSeconds, "rpo_target_seconds": res.RPOTargetSeconds, "rpo_met": res.RPOMet,
		"entries_lost": res.EntriesLost, "audit_entries": res.AuditEntries, "bytes": res.Bytes,
	}
	outcome := gatehouse.OutcomeSuccess
	if !res.OK {
		outcome, details["error"] = gatehouse.OutcomeFailure, res.Error
	}
	s.record(ctx, by, "backup.verify", resource, outcome, details)
	if res.OK {
		s.lastVerified.Store(time.Now().UnixNano())
		s.log.Info("backup verified", "id", res.ID, "duration_ms", res.DurationMS, "rpo_seconds", res.RPOSeconds, "entries_lost", res.EntriesLost)
	} else {
		s.log.Warn("backup verification failed", "id", res.ID, "err", res.Error)
	}
	return res
}

// verify decrypts and restores r into a scratch directory (and database),
// checks what it restored and proves its audit log a prefix of the live one.
func (s *Service) verify(ctx context.Context, r io.Reader) (res VerifyResult) {
	start := time.Now()
	res.RTOTargetSeconds, res.RPOTargetSeconds = int64(s.cfg.RTO/time.Second), int64(s.cfg.RPO/time.Second)
	prog := startProgress("backup verify", 0, s.cfg.ProgressEvery, s.logLine)
	defer func() {
		res.Bytes, _ = prog.stop()
		took := time.Since(start)
		res.DurationMS = took.Milliseconds()
		res.RTOMet = res.OK && took <= s.cfg.RTO
		res.RPOMet = res.OK && time.Duration(res.RPOSeconds)*time.Second <= s.cfg.RPO
	}()
	err := func() error {
		scratch, err := os.MkdirTemp(s.cfg.Layout.DataDir, ".backup-verify-")
		if err != nil {
			return fmt.Errorf("scratch dir: %w", err)
		}
		defer os.RemoveAll(scratch)
		var ids []age.Identity
		if s.cfg.Identities != nil {
			if ids, err = s.cfg.Identities(ctx); err != nil {
				return err
			}
		}
		signer, vkey := s.key()
		keys, err := s.keys(ctx)
		if err != nil {
			return err
		}
		a, err := openArchive(io.TeeReader(r, prog), ids, Trust{VerifierKey: vkey, Accepted: keys, Origin: signer.Name()})
		if err != nil {
			return err
		}
		m := a.Manifest
		res.ID, res.Origin, res.CreatedAt = m.ID, m.Origin, m.CreatedAt
		res.RPOSeconds = int64(s.cfg.Clock.Now().Sub(m.CreatedAt) / time.Second)
		t := restored{data: filepath.Join(scratch, "data"), audit: filepath.Join(scratch, "audit"), dump: filepath.Join(scratch, "postgres.dump")}
		if err := a.extract(ctx, t.place, false); err != nil {
			return err
		}
		if err := t.checkKey(m); err != nil {
			return err
		}
		var vres audit.VerifyResult
		if m.Store == "postgres" {
			live, err := s.cfg.Layout.dsn(ctx)
			if err != nil {
				return err
			}
			dsn, drop, err := scratchDB(ctx, live)
			if err != nil {
				return err
			}
			defer drop()
			if err := s.cfg.Tools.restore(ctx, dsn, t.dump, false); err != nil {
				return fmt.Errorf("restore the store into a scratch database: %w", err)
			}
			if res.Store, err = checkPostgres(ctx, dsn); err != nil {
				return err
			}
			if m.AuditBackend == "postgres" {
				if vres, err = pgaudit.Verify(ctx, dsn, audit.VerifyOptions{VerifierKey: m.VerifierKey}); err != nil {
					return fmt.Errorf("restored audit log: %w", err)
				}
			}
		} else if res.Store, err = checkSQLite(ctx, filepath.Join(t.data, dbFile)); err != nil {
			return err
		}
		if m.AuditBackend == "file" {
			if vres, err = audit.Verify(ctx, t.audit, audit.VerifyOptions{VerifierKey: m.VerifierKey, Checkpoint: []byte(m.Checkpoint)}); err != nil {
				return fmt.Errorf("restored audit log: %w", err)
			}
		}
		res.AuditEntries = vres.TreeSize
		if res.LiveEntries, err = s.provePrefix(ctx, vres.TreeSize, vres.RootHash); err != nil {
			return err
		}
		res.EntriesLost = res.LiveEntries - res.AuditEntries
		return nil
	}()
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.OK = true
	return res
}

// provePrefix proves with a consistency proof from the live log that the
// tree of size n and root is a prefix of the live log's latest checkpoint,
// and returns that checkpoint's size.
func (s *Service) provePrefix(ctx context.Context, n uint64, root []byte) (uint64, error) {
	// Against the live log as it is now, not its last periodic checkpoint.
	if _, err := s.cfg.Log.Sync(ctx); err != nil {
		return 0, fmt.Errorf("live audit checkpoint: %w", err)
	}
	p, signed, err := s.cfg.Log.ConsistencyProof(ctx, n)
	if errors.Is(err, audit.ErrNotFound) {
		return 0, damaged(fmt.Sprintf("the backup's audit log holds %d entries, more than the live log: the live log was cut or rolled back, or the backup is not of it", n))
	}
	if err != nil {
		return 0, fmt.Errorf("consistency proof from the live audit log: %w", err)
	}
	keys, err := s.keys(ctx)
	if err != nil {
		return 0, err
	}
	cp, err := audit.OpenCheckpointKeys(signed, keys)
	if err != nil {
		return 0, fmt.Errorf("live audit checkpoint: %w", err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, n, cp.Size, p, root, cp.Root); err != nil {
		return 0, damaged(fmt.Sprintf("the backup's audit log (%d entries) is not a prefix of the live one (%d): %v", n, cp.Size, err))
	}
	return cp.Size, nil
}

// restored is where the parts of a backup being read go.
type restored struct {
	data, audit string // data dir and audit dir
	dump        string // the PostgreSQL dump
}

func (t restored) place(name string) string {
	if name == storePart("postgres") {
		return t.dump
	}
	return place(name, t.data, t.audit)
}

// checkKey checks that the audit signing key restored is the one that
// signed the manifest (and so the log's checkpoints).
func (t restored) checkKey(m *Manifest) error {
	b, err := os.ReadFile(filepath.Join(t.audit, auditKeyFile))
	if err != nil {
		return damaged("it holds no audit signing key")
	}
	// The audit-key ring: its active key signed the manifest.
	ring, err := audit.ParseKeyRing(string(b), m.Origin)
	if err != nil || ring.Active.VerifierKey != m.VerifierKey {
		return damaged("its audit signing key is not the one that signed it")
	}
	return nil
}
