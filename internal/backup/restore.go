package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"

	"github.com/gatehouse/gatehouse/internal/audit"
	pgaudit "github.com/gatehouse/gatehouse/internal/audit/postgres"
)

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// Layout is the deployment restored into, as its config says.
	Layout Layout
	// Identities open the backup.
	Identities Identities
	// Origin is the deployment's audit origin (audit.origin): a backup
	// of another origin is foreign.
	Origin string
	// VerifierKey, if set, is the audit verifier key the backup must be
	// signed with (kept elsewhere: `gatehouse audit pubkey`). Otherwise
	// the key of the data already at the target holds, if there is any;
	// else the key the backup names, which proves it whole but not whose.
	VerifierKey string
	// Force replaces a data dir or database that holds data (moved aside,
	// not deleted); AllowForeign accepts a backup of another deployment.
	Force, AllowForeign bool
	Tools               PGTools
	// Size, if known, is the backup's size, for Progress lines.
	Size     int64
	Progress func(line string)
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	ID           string     `json:"id"`
	Origin       string     `json:"origin"`
	CreatedAt    time.Time  `json:"created_at"`
	AuditEntries uint64     `json:"audit_entries"`
	Store        StoreCheck `json:"store"`
	Bytes        int64      `json:"bytes"`
	DurationMS   int64      `json:"duration_ms"`
	// TrustedKey says what the manifest's signature was checked against.
	TrustedKey string `json:"trusted_key"`
	// MovedAside are the directories that held data before, kept.
	MovedAside []string `json:"moved_aside,omitempty"`
	// Config is where the backup's config file was written, if it had one.
	Config string `json:"config,omitempty"`
}

// RestoredMarker is the file Restore leaves in the data dir; the next
// serve records a backup.restored audit event from it and removes it.
const RestoredMarker = "backup-restored.json"

// ErrLive is returned when the target holds data and Force is not set.
var ErrLive = errors.New("the target holds a deployment's data")

// Restore restores the backup read from r into opts.Layout, offline. The
// whole backup is read, checked and written beside the target before the
// target changes: then the data dir (and a separate audit dir) is swapped
// for the restored one, the old one moved aside, and a PostgreSQL store is
// loaded in one transaction. It refuses a target a running gatehouse
// uses, one that holds data unless Force, and a foreign backup unless
// AllowForeign.
func Restore(ctx context.Context, r io.Reader, opts RestoreOptions) (res RestoreResult, err error) {
	start := time.Now()
	l := opts.Layout
	if l.DataDir, err = filepath.Abs(l.DataDir); err != nil {
		return res, err
	}
	if l.AuditDir == "" {
		l.AuditDir = filepath.Join(l.DataDir, "audit")
	}
	if l.AuditDir, err = filepath.Abs(l.AuditDir); err != nil {
		return res, err
	}
	if err := notRunning(l.AuditDir); err != nil {
		return res, err
	}
	held, err := holdsData(ctx, l)
	if err != nil {
		return res, err
	}
	if len(held) > 0 && !opts.Force {
		return res, fmt.Errorf("%w (%s); pass --force to replace it (the data dir is moved aside, not deleted)", ErrLive, strings.Join(held, ", "))
	}
	trust := Trust{VerifierKey: opts.VerifierKey, Origin: opts.Origin, AllowForeign: opts.AllowForeign}
	res.TrustedKey = "the given verifier key"
	cur, chain, err := existingKeys(ctx, l)
	if err != nil {
		return res, err
	}
	// A backup made before an audit key rotation is signed by an earlier
	// key of the target's chain.
	trust.Accepted = chain
	if trust.VerifierKey == "" {
		trust.VerifierKey = cur
		res.TrustedKey = "the audit key of the data at the target"
	}
	if trust.VerifierKey == "" {
		res.TrustedKey = "the key the backup names (pass --verifier-key to check whose it is)"
	}

	var ids []age.Identity
	if opts.Identities != nil {
		if ids, err = opts.Identities(ctx); err != nil {
			return res, err
		}
	}
	prog := startProgress("restore", opts.Size, time.Second, opts.Progress)
	defer func() { res.Bytes, _ = prog.stop() }()
	a, err := openArchive(io.TeeReader(r, prog), ids, trust)
	if err != nil {
		return res, err
	}
	m := a.Manifest
	res.ID, res.Origin, res.CreatedAt = m.ID, m.Origin, m.CreatedAt
	if err := l.accepts(m); err != nil {
		return res, err
	}

	// Staging beside the targets, so that the swap is a rename.
	if err := os.MkdirAll(filepath.Dir(l.DataDir), 0o700); err != nil {
		return res, err
	}
	suffix := ".restore-" + randHex()
	stage := restored{data: l.DataDir + suffix, audit: l.AuditDir + suffix, dump: l.DataDir + suffix + ".dump"}
	inside := within(l.AuditDir, l.DataDir)
	if inside {
		rel, _ := filepath.Rel(l.DataDir, l.AuditDir)
		stage.audit = filepath.Join(stage.data, rel)
	}
	defer func() {
		os.RemoveAll(stage.data)
		os.RemoveAll(stage.audit)
		os.Remove(stage.dump)
	}()
	for _, d := range []string{stage.data, stage.audit} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return res, err
		}
	}
	if err := a.extract(ctx, stage.place, true); err != nil {
		return res, err
	}
	if err := stage.checkKey(m); err != nil {
		return res, err
	}
	if m.Store == "sqlite" {
		if res.Store, err = checkSQLite(ctx, filepath.Join(stage.data, dbFile)); err != nil {
			return res, err
		}
	}
	if m.AuditBackend == "file" {
		v, err := audit.Verify(ctx, stage.audit, audit.VerifyOptions{VerifierKey: m.VerifierKey, Checkpoint: []byte(m.Checkpoint)})
		if err != nil {
			return res, fmt.Errorf("restored audit log: %w", err)
		}
		res.AuditEntries = v.TreeSize
	}
	if _, err := os.Stat(filepath.Join(stage.data, RestoredConfig)); err == nil {
		res.Config = filepath.Join(l.DataDir, RestoredConfig)
	}
	marker, _ := json.Marshal(map[string]any{"id": m.ID, "origin": m.Origin, "created_at": m.CreatedAt, "restored_at": time.Now().UTC()})
	if err := os.WriteFile(filepath.Join(stage.data, RestoredMarker), marker, 0o600); err != nil {
		return res, err
	}

	// Everything is read and checked: now the target changes.
	if m.Store == "postgres" {
		if err := opts.Tools.restore(ctx, l.DSN, stage.dump, true); err != nil {
			return res, fmt.Errorf("load the store: %w", err)
		}
		if res.Store, err = checkPostgres(ctx, l.DSN); err != nil {
			return res, err
		}
	}
	ts := time.Now().UTC().Format(idTimeLayout)
	swaps := [][2]string{{stage.data, l.DataDir}}
	if !inside {
		swaps = append(swaps, [2]string{stage.audit, l.AuditDir})
	}
	for _, sw := range swaps {
		aside, err := swap(sw[0], sw[1], ts)
		if err != nil {
			return res, err
		}
		if aside != "" {
			res.MovedAside = append(res.MovedAside, aside)
		}
	}
	if m.AuditBackend == "postgres" {
		v, err := pgaudit.Verify(ctx, l.DSN, audit.VerifyOptions{VerifierKey: m.VerifierKey})
		if err != nil {
			return res, fmt.Errorf("restored audit log: %w", err)
		}
		res.AuditEntries = v.TreeSize
	}
	res.DurationMS = time.Since(start).Milliseconds()
	return res, nil
}

// accepts checks that a backup's store and audit log fit the layout.
func (l Layout) accepts(m *Manifest) error {
	if m.Store == "postgres" && l.DSN == "" {
		return errNoPG
	}
	if m.Store != l.Store {
		return fmt.Errorf("the backup holds a %s store, and this deployment's store is %s (store.driver)", m.Store, l.Store)
	}
	if m.AuditBackend != l.AuditBackend {
		return fmt.Errorf("the backup holds an audit log in %s, and this deployment keeps it in %s (audit.backend)", m.AuditBackend, l.AuditBackend)
	}
	return nil
}

// swap puts the staged directory in place of target, moving an existing
// target aside (returned), and syncs the parent.
func swap(staged, target, ts string) (string, error) {
	var aside string
	if _, err := os.Lstat(target); err == nil {
		aside = target + ".before-restore-" + ts
		if err := os.Rename(target, aside); err != nil {
			return "", fmt.Errorf("move %s aside: %w", target, err)
		}
	}
	if err := os.Rename(staged, target); err != nil {
		return aside, fmt.Errorf("put the restored %s in place: %w", target, err)
	}
	return aside, syncDir(filepath.Dir(target))
}

// notRunning refuses a target whose audit log a process holds open.
func notRunning(auditDir string) error {
	f, err := os.Open(filepath.Join(auditDir, "LOCK"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("a gatehouse process is running on %s (it holds its audit log): stop it before restoring", filepath.Dir(auditDir))
	}
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// holdsData lists what of a deployment's data the target already holds.
func holdsData(ctx context.Context, l Layout) ([]string, error) {
	var held []string
	for _, p := range []string{
		filepath.Join(l.DataDir, dbFile), filepath.Join(l.DataDir, pepperFile), filepath.Join(l.DataDir, signingKeysFile),
		filepath.Join(l.AuditDir, auditKeyFile), filepath.Join(l.AuditDir, "segments"),
	} {
		if _, err := os.Lstat(p); err == nil {
			held = append(held, p)
		}
	}
	if l.Store == "postgres" && l.DSN != "" {
		has, err := pgHasTables(ctx, l.DSN)
		if err != nil {
			return nil, err
		}
		if has {
			held = append(held, "tables in the store's database")
		}
	}
	return held, nil
}

// existingKeys are the audit verifier key of the data at the target, if
// any, and the keys of its key chain (the earlier ones, after rotations).
func existingKeys(ctx context.Context, l Layout) (string, []string, error) {
	b, err := os.ReadFile(filepath.Join(l.AuditDir, auditPubFile))
	if err == nil {
		cur := strings.TrimSpace(string(b))
		chain, err := audit.ReadKeyChain(l.AuditDir)
		if err != nil {
			return cur, nil, nil // verify names what is wrong with the log
		}
		return cur, audit.ChainKeys(chain), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", nil, err
	}
	if l.AuditBackend == "postgres" && l.DSN != "" {
		if has, err := pgHasTables(ctx, l.DSN); err != nil || !has {
			return "", nil, err
		}
		if k, err := pgaudit.VerifierKey(ctx, l.DSN); err == nil {
			chain, err := pgaudit.KeyChain(ctx, l.DSN)
			if err != nil {
				return k, nil, nil
			}
			return k, audit.ChainKeys(chain), nil
		}
	}
	return "", nil, nil
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func randHex() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
