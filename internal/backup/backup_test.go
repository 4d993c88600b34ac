package backup_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/backup"
	"github.com/gatehouse/gatehouse/internal/backup/desttest"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlite"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Markers planted in a deployment's data: none may appear in a backup file.
const (
	markerKey   = "canary-key-name-7f3a9c"
	markerEvent = "canary-audit-reason-0b6d21"
)

// deployment is one Gatehouse data dir (SQLite store, audit log in files)
// and a backup service over it.
type deployment struct {
	layout   backup.Layout
	store    store.Store
	log      *audit.Log
	svc      *backup.Service
	dest     backup.Dir
	identity *age.X25519Identity
	idFile   string
	clock    gatehouse.Clock
	pepper   []byte
}

type depOpts struct {
	origin   string
	identity *age.X25519Identity // nil: a new one
	dest     string              // "": a new directory
	clock    gatehouse.Clock     // nil: a fake clock at t0
}

func MustDeployment(tb testing.TB, o depOpts) *deployment {
	tb.Helper()
	ctx := context.Background()
	if o.origin == "" {
		o.origin = "gatehouse/test-a"
	}
	if o.identity == nil {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			tb.Fatal(err)
		}
		o.identity = id
	}
	if o.dest == "" {
		o.dest = filepath.Join(tb.TempDir(), "backups")
	}
	if o.clock == nil {
		o.clock = gatehouse.NewFakeClock(t0)
	}
	root := tb.TempDir()
	d := &deployment{identity: o.identity, dest: backup.Dir{Path: o.dest}, clock: o.clock}
	d.layout = backup.Layout{DataDir: filepath.Join(root, "data"), Store: "sqlite", AuditBackend: "file"}
	d.layout.AuditDir = filepath.Join(d.layout.DataDir, "audit")
	d.pepper = make([]byte, 32)
	rand.Read(d.pepper)
	mustWrite(tb, filepath.Join(d.layout.DataDir, "server.secret"), d.pepper)
	mustWrite(tb, filepath.Join(d.layout.DataDir, "signing-keys.json"), []byte(`{"keys":[]}`))
	d.layout.Config = []byte("mode: prod\n")
	var err error
	if d.log, err = audit.Open(ctx, audit.Config{Dir: d.layout.AuditDir, Origin: o.origin, CheckpointInterval: -1, PruneInterval: -1, SegmentEntries: 16, Clock: o.clock}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.log.Close(context.Background()) })
	if d.store, err = sqlite.Open(ctx, filepath.Join(d.layout.DataDir, "gatehouse.db")); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.store.Close() })
	d.idFile = filepath.Join(root, "backup.key")
	mustWrite(tb, d.idFile, []byte(o.identity.String()+"\n"))
	signer, vkey, err := audit.LoadOrCreateSigner(d.layout.AuditDir, o.origin)
	if err != nil {
		tb.Fatal(err)
	}
	d.svc, err = backup.New(backup.Config{
		Layout: d.layout, Destination: d.dest, Recipients: []age.Recipient{o.identity.Recipient()},
		Identities: backup.IdentityFile(d.idFile), Signer: signer, VerifierKey: vkey,
		Log: d.log, Snapshot: d.log, Auditor: d.log, Clock: o.clock, Version: "test",
	})
	if err != nil {
		tb.Fatal(err)
	}
	d.addData(tb, 0, 40)
	return d
}

// addData creates keys [from, to) and as many audit events.
func (d *deployment) addData(tb testing.TB, from, to int) {
	tb.Helper()
	ctx := context.Background()
	for i := from; i < to; i++ {
		k := &store.Key{ID: fmt.Sprintf("key_%04d", i), Name: fmt.Sprintf("%s-%d", markerKey, i), Hash: bytes.Repeat([]byte{byte(i)}, 32),
			Scopes: []string{"demo:read"}, CreatedAt: d.clock.Now()}
		if err := d.store.CreateKey(ctx, k); err != nil {
			tb.Fatal(err)
		}
		if err := d.log.Record(ctx, gatehouse.Event{Type: "admin.key.create", Actor: gatehouse.Actor{Kind: "admin", ID: "root"},
			Action: "key.create", Resource: "key:" + k.ID, Outcome: gatehouse.OutcomeSuccess, Reason: markerEvent}); err != nil {
			tb.Fatal(err)
		}
	}
}

func mustWrite(tb testing.TB, path string, b []byte) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}

var system = backup.By{Actor: gatehouse.Actor{Kind: "system", ID: "test"}}

func (d *deployment) mustCreate(tb testing.TB) backup.Info {
	tb.Helper()
	info, err := d.svc.Create(context.Background(), system)
	if err != nil {
		tb.Fatalf("create: %v", err)
	}
	return info
}

func TestCreateListVerifyRestore(t *testing.T) {
	ctx := context.Background()
	d := MustDeployment(t, depOpts{})
	info := d.mustCreate(t)
	b, err := os.ReadFile(info.Location)
	if err != nil {
		t.Fatalf("the backup is not where Create says: %v", err)
	}
	if sum := sha256.Sum256(b); int64(len(b)) != info.Size || hex.EncodeToString(sum[:]) != info.SHA256 {
		t.Errorf("Create says %d bytes, sha256 %s; the file has %d bytes, %x", info.Size, info.SHA256, len(b), sum)
	}
	if info.AuditEntries != 40 {
		t.Errorf("audit entries %d, want 40", info.AuditEntries)
	}
	list, err := d.svc.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != info.ID || list[0].Size != info.Size {
		t.Fatalf("list = %+v, %v; want the one backup", list, err)
	}

	d.addData(t, 40, 45) // after the backup: what a restore of it loses
	res, err := d.svc.Verify(ctx, system, info.ID)
	if err != nil || !res.OK {
		t.Fatalf("verify: %+v, %v", res, err)
	}
	// The live log holds the 5 new events and the backup.create event.
	if res.AuditEntries != 40 || res.EntriesLost != 6 || res.LiveEntries != 46 {
		t.Errorf("verify: audit %d, lost %d, live %d; want 40, 6, 46", res.AuditEntries, res.EntriesLost, res.LiveEntries)
	}
	if res.Store.Integrity != "ok" || res.Store.Keys != 40 || !res.RTOMet || !res.RPOMet || res.RPOSeconds != 0 {
		t.Errorf("verify: %+v", res)
	}
	page, err := d.log.Query(ctx, audit.Filter{Type: "backup.verify"}, "", 10)
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Event.Outcome != gatehouse.OutcomeSuccess ||
		page.Entries[0].Event.Details["entries_lost"] != float64(6) {
		t.Errorf("backup.verify audit event: %+v, %v", page.Entries, err)
	}

	target := filepath.Join(t.TempDir(), "restored")
	rr := mustRestore(t, d, info, backup.Layout{DataDir: target, Store: "sqlite", AuditBackend: "file"}, nil)
	if rr.AuditEntries != 40 || rr.Store.Keys != 40 || len(rr.MovedAside) != 0 || rr.Config != filepath.Join(target, backup.RestoredConfig) {
		t.Errorf("restore: %+v", rr)
	}
	// The restored dir is a deployment: its store holds the keys, its
	// secrets are the originals, its audit log opens and continues.
	s, err := sqlite.Open(ctx, filepath.Join(target, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if k, err := s.GetKey(ctx, "key_0007"); err != nil || k.Name != markerKey+"-7" {
		t.Errorf("restored key: %+v, %v", k, err)
	}
	if p, err := os.ReadFile(filepath.Join(target, "server.secret")); err != nil || !bytes.Equal(p, d.pepper) {
		t.Errorf("restored pepper differs: %v", err)
	}
	l, err := audit.Open(ctx, audit.Config{Dir: filepath.Join(target, "audit"), Origin: "gatehouse/test-a", CheckpointInterval: -1, PruneInterval: -1})
	if err != nil {
		t.Fatalf("open restored audit log: %v", err)
	}
	defer l.Close(ctx)
	if l.Size() != 40 {
		t.Errorf("restored audit log has %d entries, want 40", l.Size())
	}
	if err := l.Record(ctx, gatehouse.Event{Type: "system.startup", Actor: gatehouse.Actor{Kind: "system"}, Action: "startup", Outcome: gatehouse.OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(ctx, filepath.Join(target, "audit"), audit.VerifyOptions{VerifierKey: d.log.VerifierKey()}); err != nil {
		t.Errorf("restored and continued audit log: %v", err)
	}
	for _, f := range []string{"gatehouse.db", "server.secret", "signing-keys.json", "audit/log.key", backup.RestoredMarker} {
		fi, err := os.Stat(filepath.Join(target, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("restored %s: %v, mode %v; want 0600", f, err, fi.Mode())
		}
	}
}

func mustRestore(tb testing.TB, d *deployment, info backup.Info, l backup.Layout, mod func(*backup.RestoreOptions)) backup.RestoreResult {
	tb.Helper()
	rr, err := restore(d, info.Location, l, mod)
	if err != nil {
		tb.Fatalf("restore: %v", err)
	}
	return rr
}

func restore(d *deployment, file string, l backup.Layout, mod func(*backup.RestoreOptions)) (backup.RestoreResult, error) {
	f, err := os.Open(file)
	if err != nil {
		return backup.RestoreResult{}, err
	}
	defer f.Close()
	o := backup.RestoreOptions{Layout: l, Identities: backup.IdentityFile(d.idFile), Origin: "gatehouse/test-a"}
	if mod != nil {
		mod(&o)
	}
	return backup.Restore(context.Background(), f, o)
}

// Litestream once shipped a release that took an encryption setting and
// wrote plaintext: every file at the destination must begin with the age
// header and hold none of the deployment's plaintext.
func TestNoPlaintextAtTheDestination(t *testing.T) {
	d := MustDeployment(t, depOpts{})
	d.mustCreate(t)
	d.addData(t, 40, 100)
	d.mustCreate(t)
	ents, err := os.ReadDir(d.dest.Path)
	if err != nil || len(ents) != 2 {
		t.Fatalf("destination holds %d files (%v), want 2", len(ents), err)
	}
	markers := [][]byte{[]byte(markerKey), []byte(markerEvent), d.pepper, []byte("gatehouse backup manifest"), []byte("SQLite format 3"), []byte("GHAUDSEG")}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(d.dest.Path, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("age-encryption.org/v1\n")) {
			t.Errorf("%s does not begin with the age header: %q", e.Name(), b[:min(len(b), 32)])
		}
		for _, m := range markers {
			if bytes.Contains(b, m) {
				t.Errorf("%s holds plaintext %q", e.Name(), m)
			}
		}
	}
	// Nothing staged is left beside the live data.
	left, _ := filepath.Glob(filepath.Join(d.layout.DataDir, ".backup-*"))
	if len(left) > 0 {
		t.Errorf("staging left behind: %v", left)
	}
}

// A backup that was changed, cut, made for other recipients, made by
// another deployment or is no backup at all is refused by verify and by
// restore, with a message saying which, and a restore refused leaves the
// target as it was.
func TestRefusedBackups(t *testing.T) {
	ctx := context.Background()
	d := MustDeployment(t, depOpts{})
	info := d.mustCreate(t)
	good, err := os.ReadFile(info.Location)
	if err != nil {
		t.Fatal(err)
	}
	other := MustDeployment(t, depOpts{origin: "gatehouse/test-b", identity: d.identity})
	foreignInfo := other.mustCreate(t)
	foreignFile, _ := os.ReadFile(foreignInfo.Location)
	stranger, _ := age.GenerateX25519Identity()
	strangerFile := encryptTo(t, good, d, stranger)

	flip := func(off int) []byte {
		b := bytes.Clone(good)
		b[off] ^= 0x01
		return b
	}
	for _, tc := range []struct {
		name string
		file []byte
		kind error
		want string
	}{
		{"one byte changed in the header's MAC", flip(bytes.Index(good, []byte("\n--- ")) + 10), backup.ErrDamaged, "damaged or tampered"},
		{"one character changed in the recipient stanza", swapBase64(good, 40), backup.ErrWrongIdentity, "not encrypted to this backup identity"},
		{"one byte changed in the middle", flip(len(good) / 2), backup.ErrDamaged, "damaged or tampered"},
		{"last byte changed", flip(len(good) - 1), backup.ErrDamaged, "damaged or tampered"},
		{"cut short", good[:len(good)-100], backup.ErrDamaged, "damaged or tampered"},
		{"other recipients", strangerFile, backup.ErrWrongIdentity, "not encrypted to this backup identity"},
		{"another deployment", foreignFile, backup.ErrForeign, `made by deployment "gatehouse/test-b", and this is "gatehouse/test-a"`},
		{"plaintext", []byte("SQLite format 3\x00 not a backup"), backup.ErrNotBackup, "does not begin with an age header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := d.svc.VerifyFile(ctx, system, bytes.NewReader(tc.file))
			if err != nil || res.OK || !strings.Contains(res.Error, tc.want) {
				t.Errorf("verify: ok=%v error=%q (%v); want refused with %q", res.OK, res.Error, err, tc.want)
			}
			path := filepath.Join(t.TempDir(), "b.age")
			mustWrite(t, path, tc.file)
			target := filepath.Join(t.TempDir(), "restored")
			_, err = restore(d, path, backup.Layout{DataDir: target, Store: "sqlite", AuditBackend: "file"}, nil)
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("restore: %v; want %v with %q", err, tc.kind, tc.want)
			}
			if _, err := os.Stat(target); !os.IsNotExist(err) {
				t.Errorf("a refused restore created %s", target)
			}
			if left, _ := filepath.Glob(target + "*"); len(left) > 0 {
				t.Errorf("a refused restore left %v", left)
			}
		})
	}
	page, err := d.log.Query(ctx, audit.Filter{Type: "backup.verify"}, "", 100)
	if err != nil || len(page.Entries) != 8 {
		t.Fatalf("%d backup.verify events, want 8: %v", len(page.Entries), err)
	}
	for _, e := range page.Entries {
		if e.Event.Outcome != gatehouse.OutcomeFailure || e.Event.Details["error"] == "" {
			t.Errorf("refused verify recorded as %+v", e.Event)
		}
	}
	// A foreign backup restores when asked for.
	target := filepath.Join(t.TempDir(), "restored")
	rr, err := restore(d, foreignInfo.Location, backup.Layout{DataDir: target, Store: "sqlite", AuditBackend: "file"},
		func(o *backup.RestoreOptions) { o.AllowForeign = true })
	if err != nil || rr.Origin != "gatehouse/test-b" {
		t.Errorf("restore --allow-foreign: %+v, %v", rr, err)
	}
}

// swapBase64 replaces the base64 character at off with another one.
func swapBase64(b []byte, off int) []byte {
	b = bytes.Clone(b)
	if b[off] == 'A' {
		b[off] = 'B'
	} else {
		b[off] = 'A'
	}
	return b
}

// encryptTo re-encrypts the plaintext of a backup to another recipient.
func encryptTo(tb testing.TB, file []byte, d *deployment, to *age.X25519Identity) []byte {
	tb.Helper()
	r, err := age.Decrypt(bytes.NewReader(file), d.identity)
	if err != nil {
		tb.Fatal(err)
	}
	var out bytes.Buffer
	w, err := age.Encrypt(&out, to.Recipient())
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(w, r); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

func TestRestoreRefusesLiveTargets(t *testing.T) {
	d := MustDeployment(t, depOpts{})
	info := d.mustCreate(t)
	// The deployment's own data dir: in use by its audit log.
	_, err := restore(d, info.Location, d.layout, func(o *backup.RestoreOptions) { o.Force = true })
	if err == nil || !strings.Contains(err.Error(), "a gatehouse process is running") {
		t.Errorf("restore onto a running deployment: %v", err)
	}
	// A data dir with data, no process: --force moves it aside.
	target := filepath.Join(t.TempDir(), "data")
	mustWrite(t, filepath.Join(target, "server.secret"), []byte("old pepper"))
	l := backup.Layout{DataDir: target, Store: "sqlite", AuditBackend: "file"}
	if _, err := restore(d, info.Location, l, nil); !errors.Is(err, backup.ErrLive) || !strings.Contains(err.Error(), "--force") {
		t.Errorf("restore onto data without --force: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "server.secret")); string(b) != "old pepper" {
		t.Error("a refused restore changed the data dir")
	}
	rr := mustRestore(t, d, info, l, func(o *backup.RestoreOptions) { o.Force = true })
	if len(rr.MovedAside) != 1 {
		t.Fatalf("moved aside: %v", rr.MovedAside)
	}
	if b, _ := os.ReadFile(filepath.Join(rr.MovedAside[0], "server.secret")); string(b) != "old pepper" {
		t.Error("the old data dir was not kept")
	}
	if b, _ := os.ReadFile(filepath.Join(target, "server.secret")); !bytes.Equal(b, d.pepper) {
		t.Error("the data dir was not replaced")
	}
}

func TestPruneKeepsRetentionAndTheNewest(t *testing.T) {
	ctx := context.Background()
	clock := gatehouse.NewFakeClock(t0)
	d := MustDeployment(t, depOpts{clock: clock})
	var ids []string
	for _, step := range []time.Duration{0, 10 * 24 * time.Hour, 15 * 24 * time.Hour} {
		clock.Advance(step)
		ids = append(ids, d.mustCreate(t).ID)
	}
	clock.Advance(16 * 24 * time.Hour) // ages 41d, 31d, 16d
	deleted, err := d.svc.Prune(ctx, system)
	if err != nil || len(deleted) != 2 || deleted[0].ID != ids[1] || deleted[1].ID != ids[0] {
		t.Fatalf("prune deleted %+v, %v; want the two older than 30d", deleted, err)
	}
	clock.Advance(60 * 24 * time.Hour)
	if deleted, err := d.svc.Prune(ctx, system); err != nil || len(deleted) != 0 {
		t.Errorf("prune of the last backup: %+v, %v; the newest is always kept", deleted, err)
	}
	list, _ := d.svc.List(ctx)
	if len(list) != 1 || list[0].ID != ids[2] {
		t.Errorf("left: %+v", list)
	}
	page, err := d.log.Query(ctx, audit.Filter{Type: "backup.delete"}, "", 10)
	if err != nil || len(page.Entries) != 2 {
		t.Fatalf("backup.delete events: %+v, %v", page.Entries, err)
	}
	for i, e := range page.Entries {
		if e.Event.Resource != "backup:"+ids[1-i] || e.Event.Outcome != gatehouse.OutcomeSuccess || e.Event.Details["reason"] != "older than the 30d retention" {
			t.Errorf("deletion event %d: %+v", i, e.Event)
		}
	}
}

// Serve's schedule: a backup every period, pruning after each, and a
// restore test after the first, recorded so a restart does not repeat it.
func TestSchedule(t *testing.T) {
	d := MustDeployment(t, depOpts{clock: gatehouse.SystemClock{}})
	state := filepath.Join(t.TempDir(), "state.json")
	sch := backup.Schedule{Every: 700 * time.Millisecond, VerifyEvery: time.Hour, StateFile: state}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.svc.Run(ctx, sch) }()
	events := func(typ string) []audit.Entry {
		page, err := d.log.Query(context.Background(), audit.Filter{Type: typ}, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		return page.Entries
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(events("backup.create")) < 3 || len(events("backup.verify")) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %d backups, %d restore tests", len(events("backup.create")), len(events("backup.verify")))
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	for _, e := range append(events("backup.create"), events("backup.verify")...) {
		if e.Event.Actor.ID != "backup-schedule" || e.Event.Outcome != gatehouse.OutcomeSuccess {
			t.Errorf("scheduled event %+v", e.Event)
		}
	}
	if n := len(events("backup.verify")); n != 1 {
		t.Errorf("%d restore tests within the hour, want 1", n)
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("no state file: %v", err)
	}
	// Restarted: the newest backup is recent and so is the restore test.
	before := len(events("backup.create"))
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	d.svc.Run(ctx, backup.Schedule{Every: time.Hour, VerifyEvery: time.Hour, StateFile: state})
	if n := len(events("backup.create")); n != before || len(events("backup.verify")) != 1 {
		t.Errorf("a restart made %d backups and %d tests, want none", n-before, len(events("backup.verify"))-1)
	}
}

func TestDirDestination(t *testing.T) {
	desttest.Run(t, func(t *testing.T) backup.Destination { return backup.Dir{Path: filepath.Join(t.TempDir(), "b")} })
}
