package app

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/backup"
	"github.com/gatehouse/gatehouse/internal/backup/s3"
	"github.com/gatehouse/gatehouse/internal/config"
)

// AuditDir is the audit log's directory cfg names (audit.dir, default
// <data dir>/audit); with the postgres backend, where its signing key is.
func AuditDir(cfg *config.Config, dataDir string) string {
	if cfg.Audit.Dir != "" {
		return cfg.Audit.Dir
	}
	return filepath.Join(dataDir, "audit")
}

// BackupLayout is where the deployment cfg describes keeps what a backup
// holds.
func BackupLayout(cfg *config.Config, dataDir string) backup.Layout {
	return backup.Layout{
		DataDir: dataDir, AuditDir: AuditDir(cfg, dataDir), Store: cfg.Store.Driver, DSN: cfg.Store.DSN,
		AuditBackend: cfg.Audit.Backend,
	}
}

// BackupDestination opens the destination cfg names: a directory, or S3
// with credentials read through getenv.
func BackupDestination(cfg config.BackupConfig, getenv func(string) string) (backup.Destination, error) {
	if cfg.Dir != "" {
		return backup.Dir{Path: cfg.Dir}, nil
	}
	return s3.Open(cfg.URL, getenv)
}

// openBackups builds the backup service when cfg.Backup names a
// destination (nil otherwise). The identity file is read now, so that a
// wrong one fails the start rather than the first restore test.
func (a *App) openBackups(ctx context.Context, cfg *config.Config, dataDir string, opts Options) (*backup.Service, error) {
	b := cfg.Backup
	if !b.Enabled() {
		if cfg.Mode == config.ModeProd {
			a.log.Warn("backups are off: set backup.dir or backup.url (docs/recovery.md)")
		}
		return nil, nil
	}
	dest, err := BackupDestination(b, opts.Getenv)
	if err != nil {
		return nil, err
	}
	recipients, err := backup.ParseRecipients(b.Recipients)
	if err != nil {
		return nil, fmt.Errorf("backup.recipients: %w", err)
	}
	var ids backup.Identities
	if b.IdentityFile == "" {
		// The identity may come from the secrets provider instead.
		if ids, err = a.secrets.BackupIdentities(ctx); err != nil {
			return nil, err
		}
	} else {
		ids = backup.IdentityFile(b.IdentityFile)
	}
	if ids != nil {
		list, err := ids(ctx)
		if err != nil {
			return nil, err
		}
		if len(recipients) == 0 {
			for _, id := range list {
				if x, ok := id.(*age.X25519Identity); ok {
					recipients = append(recipients, x.Recipient())
				}
			}
		}
	}
	if len(recipients) == 0 {
		return nil, errors.New("backup.identity_file holds no X25519 identity to encrypt backups to; set backup.recipients")
	}
	layout := BackupLayout(cfg, dataDir)
	// pg_dump and the restore test's scratch database use the store
	// password in use at the time, not the one read at start.
	layout.Password = a.secrets.storePassword()
	if cfg.Source != "" {
		// The config as serve loaded it, not as the file may be later.
		if b, err := os.ReadFile(cfg.Source); err == nil && fmt.Sprintf("%x", sha256.Sum256(b)) == cfg.Hash {
			layout.Config = b
		} else {
			a.log.Warn("backups will not hold the config: the file cannot be read, or changed since it was loaded", "source", cfg.Source)
		}
	}
	bc := backup.Config{
		Layout: layout, Destination: dest, Recipients: recipients, Identities: ids,
		Signer: a.secrets.AuditSigner, VerifierKey: a.secrets.AuditVKey, Secrets: backupSecrets{a.secrets},
		Key: a.auditKeyNow, History: a.auditKeyHistory,
		Log: a.audit, Auditor: a.audit, Clock: opts.Clock, Logger: a.log, Version: opts.Version,
		Retention: time.Duration(b.Retention), RTO: time.Duration(b.RTO), RPO: time.Duration(b.RPO),
	}
	if l, ok := a.audit.(*audit.Log); ok {
		bc.Snapshot = l
	}
	if b.Schedule > b.RPO {
		a.log.Warn("backup.schedule is longer than the RPO target: a loss could take more than the target", "schedule", time.Duration(b.Schedule).String(), "rpo", time.Duration(b.RPO).String())
	}
	return backup.New(bc)
}

// backupAPI is the backup service for the admin API (nil without one).
func (a *App) backupAPI() admin.Backups {
	if a.backups == nil {
		return nil
	}
	return a.backups
}

// runBackups runs the backup schedule until ctx ends.
func (a *App) runBackups(ctx context.Context, dataDir string) {
	if a.backups == nil {
		return
	}
	a.backupWG.Add(1)
	go func() {
		defer a.backupWG.Done()
		a.backups.Run(ctx, backup.Schedule{
			Every: time.Duration(a.cfg.Backup.Schedule), VerifyEvery: time.Duration(a.cfg.Backup.VerifySchedule),
			StateFile: filepath.Join(dataDir, "backup-state.json"),
		})
	}()
}

// auditRestore records, once, the restore `gatehouse backup restore` left a
// marker of in the data dir.
func (a *App) auditRestore(ctx context.Context, dataDir string) {
	path := filepath.Join(dataDir, backup.RestoredMarker)
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var details map[string]any
	if json.Unmarshal(b, &details) != nil {
		details = map[string]any{"marker": "unreadable"}
	}
	err = a.audit.Record(ctx, gatehouse.Event{
		Time: time.Now().UTC(), Type: "backup.restored", Actor: gatehouse.Actor{Kind: "system", ID: a.cfg.Audit.Origin},
		Action: "backup.restored", Resource: fmt.Sprintf("backup:%v", details["id"]), Outcome: gatehouse.OutcomeSuccess, Details: details,
	})
	if err != nil {
		a.log.Error("audit record failed", "type", "backup.restored", "err", err)
		return
	}
	os.Remove(path)
}

// backup checks the backup identity file: readable by its owner only, and
// holding an identity.
func (c *checker) backup(ctx context.Context) {
	if f := c.cfg.Backup.IdentityFile; f != "" && c.readable("backup.identity_file", f) {
		if _, err := backup.IdentityFile(f)(ctx); err != nil {
			c.addErr("backup.identity_file", err)
		}
	}
}
