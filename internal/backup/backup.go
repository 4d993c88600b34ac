package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
)

// Defaults of Config.
const (
	DefaultSchedule       = time.Hour           // RPO 1 h: at most an hour of changes lost
	DefaultRetention      = 30 * 24 * time.Hour // 30 days
	DefaultVerifySchedule = 720 * time.Hour     // a restore test every 30 days
	DefaultRTO            = 4 * time.Hour
	DefaultRPO            = time.Hour
)

// LiveLog is what backups need of the running audit log (audit.Log or
// audit/postgres.Log).
type LiveLog interface {
	// Sync returns the latest signed checkpoint, signing one first where
	// this process can.
	Sync(ctx context.Context) ([]byte, error)
	// ConsistencyProof proves that the tree of size1 is a prefix of the
	// latest checkpoint's, which it returns.
	ConsistencyProof(ctx context.Context, size1 uint64) ([][]byte, []byte, error)
}

// Snapshotter copies a file-backed audit log at a checkpoint
// (audit.Log.Snapshot).
type Snapshotter interface {
	Snapshot(ctx context.Context, dst string) (audit.Snapshot, error)
}

// Identities returns the age identities that open backups. IdentityFile
// reads them from a file; a secrets provider can take its place.
type Identities func(ctx context.Context) ([]age.Identity, error)

// Config configures a Service.
type Config struct {
	Layout      Layout
	Destination Destination
	// Recipients are the age recipients every backup is encrypted to.
	Recipients []age.Recipient
	// Identities open backups for Verify; nil refuses Verify.
	Identities Identities
	// Signer signs manifests: the audit checkpoint key, whose name is the
	// deployment's origin. VerifierKey is its verifier key.
	Signer      note.Signer
	VerifierKey string
	// Key, if set, returns the audit key in use now, in place of Signer
	// and VerifierKey (which an audit key rotation leaves behind), and
	// History the verifier keys of the log's key chain, oldest first: a
	// manifest signed by an earlier key of the chain (a backup made before
	// a rotation) is this deployment's.
	Key     func() (note.Signer, string)
	History func(ctx context.Context) ([]string, error)
	// Log is the live audit log; Snapshot copies it when it is in files
	// (nil with the postgres audit backend).
	Log      LiveLog
	Snapshot Snapshotter
	// Secrets are the server secrets a backup carries (default:
	// FileSecrets of Layout).
	Secrets Secrets
	// Auditor records every create, verify and deletion.
	Auditor gatehouse.Auditor
	Clock   gatehouse.Clock
	Logger  *slog.Logger
	// Version is the running version, recorded in manifests.
	Version string
	// Retention is how long backups are kept (default 30 days); RTO and
	// RPO are the targets restore tests are measured against (4 h, 1 h).
	Retention time.Duration
	RTO, RPO  time.Duration
	// Tools are the PostgreSQL client programs.
	Tools PGTools
	// ProgressEvery is how often long operations log how far they are
	// (default 5s).
	ProgressEvery time.Duration
}

// Service makes, lists, verifies and prunes the backups of the running
// deployment. It is safe for concurrent use: operations run one at a
// time, each waiting for the one before.
type Service struct {
	cfg Config
	log *slog.Logger
	// busy holds a token while an operation runs; the next one waits.
	busy chan struct{}
	// lastCreated and lastVerified are when the newest backup was made and
	// the newest passing restore test ran, unix nanos (0: not known).
	lastCreated, lastVerified atomic.Int64
}

// LastSuccess returns when the newest backup known to this process was
// made and when its newest passing restore test ran (zero: none). Run
// learns the stored ones when it starts.
func (s *Service) LastSuccess() (created, verified time.Time) {
	at := func(ns int64) time.Time {
		if ns == 0 {
			return time.Time{}
		}
		return time.Unix(0, ns)
	}
	return at(s.lastCreated.Load()), at(s.lastVerified.Load())
}

// noteCreated records t as the newest backup's time, if it is newer.
func (s *Service) noteCreated(t time.Time) {
	for {
		old := s.lastCreated.Load()
		if t.UnixNano() <= old || s.lastCreated.CompareAndSwap(old, t.UnixNano()) {
			return
		}
	}
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Destination == nil || (cfg.Signer == nil && cfg.Key == nil) || cfg.Log == nil || len(cfg.Recipients) == 0 {
		return nil, errors.New("backup: Destination, Recipients, Signer (or Key) and Log are required")
	}
	if cfg.Layout.AuditBackend == "file" && cfg.Snapshot == nil {
		return nil, errors.New("backup: Snapshot is required with a file-backed audit log")
	}
	if cfg.Secrets == nil {
		cfg.Secrets = FileSecrets(cfg.Layout)
	}
	if cfg.Clock == nil {
		cfg.Clock = gatehouse.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.RTO == 0 {
		cfg.RTO = DefaultRTO
	}
	if cfg.RPO == 0 {
		cfg.RPO = DefaultRPO
	}
	if cfg.ProgressEvery == 0 {
		cfg.ProgressEvery = progressEvery
	}
	return &Service{cfg: cfg, log: cfg.Logger.WithGroup("backup"), busy: make(chan struct{}, 1)}, nil
}

// acquire waits until no other operation runs (or ctx ends).
func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.busy <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) release() { <-s.busy }

// By says who asked for an operation, for its audit event.
type By struct {
	Actor   gatehouse.Actor
	Request *gatehouse.RequestInfo
}

// Info describes one stored backup.
type Info struct {
	ID        string    `json:"id"`
	Location  string    `json:"location"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256,omitempty"` // of the stored file; known when it was just written
	CreatedAt time.Time `json:"created_at"`
	// The rest is known only for a backup just made.
	DurationMS   int64  `json:"duration_ms,omitempty"`
	AuditEntries uint64 `json:"audit_entries,omitempty"`
	Parts        int    `json:"parts,omitempty"`
}

// Create makes a backup of the deployment and stores it. It does not stop
// the gateway: the store is copied in one read transaction (SQLite) or one
// snapshot (pg_dump), the audit log at a checkpoint.
func (s *Service) Create(ctx context.Context, by By) (Info, error) {
	if err := s.acquire(ctx); err != nil {
		return Info{}, err
	}
	defer s.release()
	began := time.Now() // durations in real time, whatever the clock says
	info, err := s.create(ctx, s.cfg.Clock.Now())
	details := map[string]any{"duration_ms": time.Since(began).Milliseconds()}
	if err != nil {
		details["error"] = err.Error()
		s.record(ctx, by, "backup.create", "backup:"+info.ID, gatehouse.OutcomeFailure, details)
		return info, err
	}
	details["location"], details["size"], details["sha256"] = info.Location, info.Size, info.SHA256
	details["audit_entries"] = info.AuditEntries
	s.record(ctx, by, "backup.create", "backup:"+info.ID, gatehouse.OutcomeSuccess, details)
	s.noteCreated(info.CreatedAt)
	s.log.Info("backup created", "id", info.ID, "location", info.Location, "size", info.Size, "duration_ms", info.DurationMS)
	return info, nil
}

func (s *Service) create(ctx context.Context, start time.Time) (Info, error) {
	id := newID(start)
	info := Info{ID: id, CreatedAt: idTime(id)}
	stage, err := os.MkdirTemp(s.cfg.Layout.DataDir, ".backup-"+id+"-")
	if err != nil {
		return info, fmt.Errorf("backup staging dir: %w", err)
	}
	defer os.RemoveAll(stage)
	m, parts, err := s.stage(ctx, stage)
	if err != nil {
		return info, err
	}
	m.ID, m.CreatedAt = id, info.CreatedAt
	signed, err := m.sign(m.signer)
	if err != nil {
		return info, err
	}
	var total int64
	for _, p := range parts {
		total += p.Size
	}
	prog := startProgress("backup "+id, total, s.cfg.ProgressEvery, s.logLine)
	name := FileName(id)
	pr, pw := io.Pipe()
	written := make(chan struct{})
	go func() {
		defer close(written)
		pw.CloseWithError(writeArchive(io.MultiWriter(pw, prog), s.cfg.Recipients, signed, parts, m.CreatedAt))
	}()
	h := sha256.New()
	err = s.cfg.Destination.Put(ctx, name, io.TeeReader(pr, h))
	pr.CloseWithError(errors.New("backup write ended"))
	<-written
	size, took := prog.stop()
	if err != nil {
		return info, fmt.Errorf("store backup: %w", err)
	}
	info.Location = s.cfg.Destination.Location(name)
	info.Size, info.SHA256 = size, hex.EncodeToString(h.Sum(nil))
	info.DurationMS, info.AuditEntries, info.Parts = took.Milliseconds(), m.AuditSize, len(parts)+1
	return info, nil
}

// stage copies every part into dir and returns the manifest (without id
// and time) and the parts, hashed.
func (s *Service) stage(ctx context.Context, dir string) (*Manifest, []*staged, error) {
	l := s.cfg.Layout
	var parts []*staged
	// In postgres the log's tables are in the dump: the checkpoint comes
	// first so that the dump holds it. In files, the store is copied
	// first, so that the log covers every change the copy holds. The key
	// is asked for after the PostgreSQL checkpoint: a replica signs with
	// the key of the checkpoint it last saw.
	var cp []byte
	if l.AuditBackend == "postgres" {
		var err error
		if cp, err = s.cfg.Log.Sync(ctx); err != nil {
			return nil, nil, fmt.Errorf("audit checkpoint: %w", err)
		}
	}
	signer, vkey := s.key()
	keys, err := s.keys(ctx)
	if err != nil {
		return nil, nil, err
	}
	m := &Manifest{Origin: signer.Name(), VerifierKey: vkey, Version: s.cfg.Version, Store: l.Store, AuditBackend: l.AuditBackend, signer: signer}
	if l.AuditBackend == "postgres" {
		if err := m.setCheckpoint(cp, keys); err != nil {
			return nil, nil, err
		}
		parts = append(parts, &staged{Part: Part{Name: "audit/" + auditPubFile}, data: []byte(vkey + "\n")})
	}
	storeFile := filepath.Join(dir, "store")
	if l.Store == "postgres" {
		dsn, err := l.dsn(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("back up the store: %w", err)
		}
		if err := s.cfg.Tools.dump(ctx, dsn, storeFile); err != nil {
			return nil, nil, fmt.Errorf("back up the store: %w", err)
		}
	} else if err := vacuumInto(ctx, filepath.Join(l.DataDir, dbFile), storeFile); err != nil {
		return nil, nil, err
	}
	parts = append(parts, &staged{Part: Part{Name: storePart(l.Store)}, path: storeFile})
	if l.AuditBackend == "file" {
		adir := filepath.Join(dir, "audit")
		snap, err := s.cfg.Snapshot.Snapshot(ctx, adir)
		if err != nil {
			return nil, nil, err
		}
		if err := m.setCheckpoint(snap.Checkpoint, keys); err != nil {
			return nil, nil, err
		}
		for _, f := range snap.Files {
			parts = append(parts, &staged{Part: Part{Name: "audit/" + f}, path: filepath.Join(adir, filepath.FromSlash(f))})
		}
	}
	secrets, err := s.cfg.Secrets.Load(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, sec := range secrets {
		parts = append(parts, &staged{Part: Part{Name: "secrets/" + sec.Name}, data: sec.Data})
	}
	if l.Config != nil {
		parts = append(parts, &staged{Part: Part{Name: "config/gatehouse.yaml"}, data: l.Config})
	}
	for _, p := range parts {
		if err := p.hash(); err != nil {
			return nil, nil, err
		}
		m.Parts = append(m.Parts, p.Part)
	}
	return m, parts, nil
}

// key is the audit key that signs manifests now.
func (s *Service) key() (note.Signer, string) {
	if s.cfg.Key != nil {
		return s.cfg.Key()
	}
	return s.cfg.Signer, s.cfg.VerifierKey
}

// keys are the verifier keys of the deployment's audit key chain, the
// current one last.
func (s *Service) keys(ctx context.Context) ([]string, error) {
	_, cur := s.key()
	var keys []string
	if s.cfg.History != nil {
		h, err := s.cfg.History(ctx)
		if err != nil {
			return nil, fmt.Errorf("audit key chain: %w", err)
		}
		keys = h
	}
	if !slices.Contains(keys, cur) {
		keys = append(keys, cur)
	}
	return keys, nil
}

// setCheckpoint records the signed checkpoint the backup's log ends at.
func (m *Manifest) setCheckpoint(signed []byte, keys []string) error {
	cp, err := audit.OpenCheckpointKeys(signed, keys)
	if err != nil {
		return fmt.Errorf("audit checkpoint: %w", err)
	}
	m.Checkpoint, m.AuditSize = string(signed), cp.Size
	return nil
}

// List returns the stored backups, newest first.
func (s *Service) List(ctx context.Context) ([]Info, error) {
	objs, err := s.cfg.Destination.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(objs))
	for _, o := range objs {
		id := IDOf(o.Name)
		out = append(out, Info{ID: id, Location: s.cfg.Destination.Location(o.Name), Size: o.Size, CreatedAt: idTime(id)})
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(b.ID, a.ID) })
	return out, nil
}

// record writes an audit event for a backup operation.
func (s *Service) record(ctx context.Context, by By, action, resource, outcome string, details map[string]any) {
	if s.cfg.Auditor == nil {
		return
	}
	e := gatehouse.Event{
		Time: s.cfg.Clock.Now().UTC(), Type: action, Actor: by.Actor, Action: action,
		Resource: resource, Outcome: outcome, Details: details, Request: by.Request,
	}
	if err := s.cfg.Auditor.Record(ctx, e); err != nil {
		s.log.ErrorContext(ctx, "audit record failed", "action", action, "err", err)
	}
}

func (s *Service) logLine(line string) { s.log.Info(line) }

// IdentityFile returns the age identities in the file at path (as
// age-keygen or `gatehouse backup keygen` writes them). A file readable by
// group or others is refused.
func IdentityFile(path string) Identities {
	return func(ctx context.Context) ([]age.Identity, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("backup identity: %w", err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("backup identity: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("backup identity %s has mode %v; it must be readable only by its owner (chmod 600 %s)", path, fi.Mode().Perm(), path)
		}
		ids, err := age.ParseIdentities(f)
		if err != nil {
			return nil, fmt.Errorf("backup identity %s: %s", path, firstLine(err))
		}
		return ids, nil
	}
}

// ParseRecipients parses age X25519 recipients (age1…).
func ParseRecipients(list []string) ([]age.Recipient, error) {
	var out []age.Recipient
	for i, s := range list {
		r, err := age.ParseX25519Recipient(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("recipient %d: %s", i, firstLine(err))
		}
		out = append(out, r)
	}
	return out, nil
}

// find opens the stored backup with the given id.
func (s *Service) find(ctx context.Context, id string) (io.ReadCloser, error) {
	if !validID(id) {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "%q is not a backup id (like 20260102T150405.000Z-a1b2c3)", id)
	}
	r, err := s.cfg.Destination.Open(ctx, FileName(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, gatehouse.Errorf(gatehouse.ENOTFOUND, "no backup %s at %s", id, s.cfg.Destination.Location(""))
	}
	return r, err
}
