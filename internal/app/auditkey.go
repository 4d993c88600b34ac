package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/secrets"
)

// auditKeyState is the audit-key secret as this process last read or
// wrote it: the key ring and where it lives. Its value never leaves the
// process but into the secret store and backups.
type auditKeyState struct {
	ring     audit.KeyRing
	secret   secrets.Secret
	provider string
	where    string
}

// rotatable reports whether the audit key lives where Gatehouse writes
// its generated secrets (not in an operator's env or dotenv).
func (s *Secrets) auditKeyRotatable() bool {
	st := s.auditKey.Load()
	return st != nil && s.Generated != nil && st.provider == s.Generated.Name()
}

// AuditKeys returns the audit-key ring in use: the active key and the
// one it succeeds.
func (s *Secrets) AuditKeys() audit.KeyRing {
	if st := s.auditKey.Load(); st != nil {
		return st.ring
	}
	return audit.KeyRing{}
}

// auditKeyNow returns the audit key to sign backups with now: the
// active key, or, in PostgreSQL while the leader has not yet handed the
// log over to it, the key the log is still signed by (pgaudit SigningKey).
func (a *App) auditKeyNow() (note.Signer, string) {
	if a.pgAudit != nil {
		k := a.pgAudit.SigningKey()
		return k.Signer, k.VerifierKey
	}
	r := a.secrets.AuditKeys()
	return r.Active.Signer, r.Active.VerifierKey
}

// auditKeyChain returns the log's chain of checkpoint keys, oldest first.
func (a *App) auditKeyChain(ctx context.Context) ([]audit.KeyEpoch, error) {
	if a.pgAudit != nil {
		return a.pgAudit.KeyChain(ctx)
	}
	return audit.ReadKeyChain(AuditDir(a.cfg, a.dataDir))
}

// auditKeyHistory is the chain's verifier keys (backups accept a
// manifest signed by any).
func (a *App) auditKeyHistory(ctx context.Context) ([]string, error) {
	chain, err := a.auditKeyChain(ctx)
	if err != nil {
		return nil, err
	}
	return audit.ChainKeys(chain), nil
}

// AuditKeyRotation is what rotating the audit key did, without a value.
type AuditKeyRotation struct {
	From, To audit.KeyEpoch
	// HandedOver says whether the hand-over checkpoint is written (at
	// TreeSize); in PostgreSQL, when another replica leads, that replica
	// writes it when it reads the new key.
	HandedOver bool
	TreeSize   uint64
}

// rotateAuditKey makes a new audit key succeeding the active one,
// stores the new ring (check-and-set on the version read), and has the
// log hand over to it: the hand-over checkpoint of the current tree,
// signed by both keys. Recorded as audit.key.rotate (key ids and
// verifier keys, tree size; never a private key).
func (a *App) rotateAuditKey(ctx context.Context) (AuditKeyRotation, error) {
	a.auditKeyMu.Lock()
	defer a.auditKeyMu.Unlock()
	var rot AuditKeyRotation
	st := a.secrets.auditKey.Load()
	if st == nil || !a.secrets.auditKeyRotatable() {
		return rot, gatehouse.Errorf(gatehouse.ECONFLICT, "the audit key comes from the %s provider, which Gatehouse does not write: rotate it there (docs/secrets.md)", a.auditKeyProvider())
	}
	// One rotation at a time: the last one's hand-over must be in the
	// log, or the new ring would drop the key the log still needs.
	logKey := a.audit.(interface{ VerifierKey() string }).VerifierKey()
	if a.pgAudit != nil {
		chain, err := a.pgAudit.KeyChain(ctx)
		if err != nil {
			return rot, fmt.Errorf("rotate audit key: %w", err)
		}
		logKey = chain[len(chain)-1].VerifierKey
	}
	if logKey != st.ring.Active.VerifierKey {
		return rot, gatehouse.Errorf(gatehouse.ECONFLICT, "the previous audit key rotation is not handed over yet: the leader writes the hand-over when it reads the new key (within %s); try again then", a.secrets.reloadEvery(a.cfg))
	}
	next, err := st.ring.Rotate()
	if err != nil {
		return rot, err
	}
	sec, err := a.secrets.Generated.Put(ctx, secrets.AuditKey, next.Marshal(), st.secret.Version)
	if errors.Is(err, secrets.ErrConflict) {
		return rot, gatehouse.Errorf(gatehouse.ECONFLICT, "the audit key was rotated elsewhere meanwhile; this replica reads it within %s", a.secrets.reloadEvery(a.cfg))
	}
	if err != nil {
		return rot, fmt.Errorf("store the new audit key: %w", err)
	}
	a.secrets.auditKey.Store(&auditKeyState{ring: next, secret: sec, provider: st.provider, where: sec.Where})
	rot.From = audit.KeyEpoch{VerifierKey: st.ring.Active.VerifierKey, KeyID: st.ring.Active.String()}
	rot.To = audit.KeyEpoch{VerifierKey: next.Active.VerifierKey, KeyID: next.Active.String()}
	var ho audit.HandOver
	switch l := a.audit.(type) {
	case *audit.Log:
		ho, err = l.RotateKey(ctx, next.Active)
		rot.HandedOver = err == nil
	default:
		ho, rot.HandedOver, err = a.pgAudit.RotateKey(ctx, next.Active)
	}
	if err != nil {
		// The new ring is stored: the next start (file) or step (leader)
		// writes the hand-over.
		a.log.Error("audit key hand-over failed; it is retried at the next start or sequencer step", "err", err)
		rot.HandedOver = false
	}
	rot.TreeSize, rot.To.Since = ho.Size, ho.Size
	a.system(ctx, "audit.key.rotate", map[string]any{
		"from_key": rot.From.KeyID, "from_verifier_key": rot.From.VerifierKey,
		"to_key": rot.To.KeyID, "to_verifier_key": rot.To.VerifierKey,
		"handed_over": rot.HandedOver, "tree_size": rot.TreeSize,
		"provider": st.provider, "version_before": st.secret.Version, "version_after": sec.Version,
	})
	a.log.Info("audit key rotated", "from", rot.From.KeyID, "to", rot.To.KeyID, "handed_over", rot.HandedOver, "tree_size", rot.TreeSize)
	return rot, nil
}

func (a *App) auditKeyProvider() string {
	if st := a.secrets.auditKey.Load(); st != nil {
		return st.provider
	}
	return "unknown"
}

// runAuditKeyWatch follows rotations of the audit key made by another
// replica (PostgreSQL log with the sealed store or Vault): every
// reloadEvery it asks the secret's version, and on a new one reads the
// ring and gives it to the log, whose leader hands over to it.
func (a *App) runAuditKeyWatch(ctx context.Context) {
	every := a.secrets.reloadEvery(a.cfg)
	v, ok := a.secrets.Generated.(secrets.Versioner)
	if a.pgAudit == nil || every <= 0 || !ok || !a.secrets.auditKeyRotatable() {
		return
	}
	a.every(ctx, every, "audit key: cannot read a new version", func(ctx context.Context) error {
		return a.reloadAuditKey(ctx, v)
	})
}

// every runs fn every d until ctx ends, in a goroutine the App waits for
// at shutdown; an error fn returns while ctx lives is logged as warn.
func (a *App) every(ctx context.Context, d time.Duration, warn string, fn func(context.Context) error) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := fn(ctx); err != nil && ctx.Err() == nil {
					a.log.Warn(warn, "err", err)
				}
			}
		}
	}()
}

// reloadAuditKey reads the audit-key ring when its version changed.
func (a *App) reloadAuditKey(ctx context.Context, v secrets.Versioner) error {
	a.auditKeyMu.Lock()
	defer a.auditKeyMu.Unlock()
	st := a.secrets.auditKey.Load()
	cur, err := v.CurrentVersion(ctx, secrets.AuditKey)
	if err != nil || cur == st.secret.Version {
		return err
	}
	sec, err := a.secrets.Generated.Get(ctx, secrets.AuditKey)
	if err != nil {
		return err
	}
	ring, err := audit.ParseKeyRing(string(sec.Value), a.cfg.Audit.Origin)
	if err != nil {
		return fmt.Errorf("secret %s version %d: %w", secrets.AuditKey, sec.Version, err)
	}
	if err := a.pgAudit.SetKeys(ring.Active, ring.Previous); err != nil {
		return err
	}
	a.secrets.auditKey.Store(&auditKeyState{ring: ring, secret: sec, provider: st.provider, where: sec.Where})
	a.log.Info("audit key: a new version from the shared secrets", "version", sec.Version, "key", ring.Active.String())
	return nil
}
