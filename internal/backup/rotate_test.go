package backup_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/backup"
)

// TestBackupsAcrossAuditKeyRotation: a backup signed before an audit key
// rotation still verifies and restores afterwards (its key is in the
// log's key chain); one made after is signed by the new key; without the
// chain the old backup is foreign.
func TestBackupsAcrossAuditKeyRotation(t *testing.T) {
	ctx := context.Background()
	d := MustDeployment(t, depOpts{})
	before := d.mustCreate(t)

	keyFile := filepath.Join(d.layout.AuditDir, "log.key")
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	r0, err := audit.ParseKeyRing(string(b), "gatehouse/test-a")
	if err != nil {
		t.Fatal(err)
	}
	r1, err := r0.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, keyFile, r1.Marshal()) // as the secrets provider stores it
	if _, err := d.log.RotateKey(ctx, r1.Active); err != nil {
		t.Fatal(err)
	}
	history := func(context.Context) ([]string, error) {
		chain, err := audit.ReadKeyChain(d.layout.AuditDir)
		return audit.ChainKeys(chain), err
	}
	service := func(withHistory bool) *backup.Service {
		cfg := backup.Config{
			Layout: d.layout, Destination: d.dest, Recipients: []age.Recipient{d.identity.Recipient()},
			Identities: backup.IdentityFile(d.idFile),
			Key:        func() (note.Signer, string) { return r1.Active.Signer, r1.Active.VerifierKey },
			Log:        d.log, Snapshot: d.log, Auditor: d.log, Clock: d.clock, Version: "test",
		}
		if withHistory {
			cfg.History = history
		}
		svc, err := backup.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	svc := service(true)
	if res, err := svc.Verify(ctx, system, before.ID); err != nil || !res.OK {
		t.Fatalf("verify a backup made before the rotation: %+v %v", res, err)
	}
	after, err := svc.Create(ctx, system)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := svc.Verify(ctx, system, after.ID); err != nil || !res.OK {
		t.Fatalf("verify a backup made after the rotation: %+v %v", res, err)
	}
	if res, err := service(false).Verify(ctx, system, before.ID); err != nil || res.OK || !strings.Contains(res.Error, "signed by another key") {
		t.Fatalf("without the key chain, the old backup: %+v %v, want refused as another key's", res, err)
	}

	// Restored over the rotated data dir: its chain holds the old key.
	if err := d.log.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := restore(d, before.Location, d.layout, func(o *backup.RestoreOptions) { o.Force = true }); err != nil {
		t.Fatalf("restore the backup made before the rotation: %v", err)
	}
	// A fresh target trusting only the new key refuses it.
	fresh := backup.Layout{DataDir: filepath.Join(t.TempDir(), "data"), Store: "sqlite", AuditBackend: "file"}
	if _, err := restore(d, before.Location, fresh, func(o *backup.RestoreOptions) { o.VerifierKey = r1.Active.VerifierKey }); !errors.Is(err, backup.ErrForeign) {
		t.Fatalf("fresh target with only the new key: %v, want foreign", err)
	}
}
