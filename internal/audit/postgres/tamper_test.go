package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/audit/postgres"
	"github.com/gatehouse/gatehouse/internal/store/postgres/pgtest"
)

// The shape of the log every tamper case starts from (see mustBuildTamperLog).
const (
	tamperSequenced = 750 // entries sequenced; 700–749 are after the last checkpoint
	tamperPending   = 5   // events committed by a replica but never sequenced
	// leaderLockID is the sequencer's advisory lock key ("gaudit_l"), held
	// by the test to keep a replica from leading.
	leaderLockID int64 = 0x6761_7564_6974_5f6c
	// nodeSpan is how many entries a stored node hash covers (level 8).
	nodeSpan = 256
)

// tamperCheckpoints are the sizes of the checkpoints the leader signs, at
// positions 0–3 of audit_checkpoints.
var tamperCheckpoints = []uint64{100, 300, 520, 700}

// tamperLog is a closed log in its own database, untouched so far.
type tamperLog struct {
	dsn   string
	vkey  string // the log's verifier key, kept outside the database
	saved []byte // the checkpoint of size 700, saved outside the database
}

// mustBuildTamperLog builds, in a fresh database, a log of 750 entries with
// checkpoints of sizes 100, 300, 520 and 700 (positions 0–3); entries
// 700–749 are sequenced after the last checkpoint by a leader whose host
// then dies before it signs another; 5 more events are committed by a
// replica but not sequenced. Entries are 256 to a stored node hash, so the
// hashes of [0, 256) and [256, 512) are stored and [512, 750) has none.
func mustBuildTamperLog(t *testing.T) *tamperLog {
	t.Helper()
	ctx := context.Background()
	dsn := pgtest.MustCreateDatabase(t)
	proxy, proxied := pgtest.MustProxy(t, dsn)
	keys := t.TempDir()
	leader := MustOpen(t, proxied, keys)
	waitLeader(t, leader)
	f := &tamperLog{dsn: dsn, vkey: leader.VerifierKey()}
	var prev uint64
	for _, size := range tamperCheckpoints {
		recordN(t, leader, int(size-prev), "leader")
		prev = size
		signed, err := leader.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := audit.OpenCheckpoint(signed, f.vkey)
		if err != nil || cp.Size != size {
			t.Fatalf("checkpoint after %d records: size %d, %v", size, cp.Size, err)
		}
		f.saved = signed
	}

	// The tail: sequenced, then the leader's host dies before the next
	// checkpoint (CheckpointInterval is off and Close cannot reach the
	// database to sign one).
	recordN(t, leader, tamperSequenced-int(prev), "leader")
	db := mustConnect(t, dsn)
	deadline := time.Now().Add(10 * time.Second)
	for stateSize(t, db) != tamperSequenced {
		if time.Now().After(deadline) {
			t.Fatalf("the leader did not sequence the tail: tree size %d, want %d", stateSize(t, db), tamperSequenced)
		}
		time.Sleep(5 * time.Millisecond)
	}
	proxy.Cut()
	leader.Close(ctx) // fails: the database is out of reach

	// Pending events: a replica commits them while the test holds the
	// leader lock, so nobody sequences them.
	if _, err := db.Exec(ctx, `SELECT pg_advisory_lock($1)`, leaderLockID); err != nil {
		t.Fatal(err)
	}
	// (Closing db below releases the lock.)
	replica := MustOpen(t, dsn, keys)
	recordN(t, replica, tamperPending, "replica")
	if err := replica.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

// clone copies the log into a fresh database of its own, dropped when t
// ends, and returns it: building the log once and cloning it is much
// faster than building it for each case.
func (f *tamperLog) clone(t *testing.T) *tamperLog {
	t.Helper()
	ctx := context.Background()
	u, err := url.Parse(f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	src := pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()
	var b [8]byte
	rand.Read(b[:])
	name := "gh_test_" + hex.EncodeToString(b[:])
	admin := pgtest.MustConnectAdmin(t) // kept for the drop: t.Context() ends before cleanups
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+` TEMPLATE `+src); err != nil {
		admin.Close(ctx)
		t.Fatalf("clone the audit log's database: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	c := *f
	c.dsn = u.String()
	return &c
}

func mustConnect(tb testing.TB, dsn string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func stateSize(t *testing.T, db *pgx.Conn) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(context.Background(), `SELECT size FROM audit_state WHERE id = 1`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// tamperDB edits the log's tables the way an attacker with write access
// to the database would.
type tamperDB struct {
	t    *testing.T
	conn *pgx.Conn
}

// mustTamperDB connects to the log's database with a view of its entries
// by index: entries (idx, batch, k, leaf, payload), entry idx being
// element k (from 1) of the arrays of its batch's audit_records row.
func mustTamperDB(t *testing.T, dsn string) *tamperDB {
	t.Helper()
	d := &tamperDB{t: t, conn: mustConnect(t, dsn)}
	d.exec(`CREATE TEMPORARY VIEW entries AS
		SELECT b.first_idx + u.k - 1 AS idx, r.batch, u.k, u.leaf, u.payload
		FROM audit_batches b JOIN audit_records r ON r.batch = b.batch, unnest(r.leaves, r.payloads) WITH ORDINALITY AS u(leaf, payload, k)`)
	return d
}

// set sets the elements of entry idx's record: set is "leaves[e.k] = …,
// payloads[e.k] = …", with e the entry's row of entries and args from $2.
func (d *tamperDB) set(idx int64, set string, args ...any) {
	d.t.Helper()
	if d.exec(`UPDATE audit_records r SET `+set+` FROM entries e WHERE r.batch = e.batch AND e.idx = $1`, append([]any{idx}, args...)...) != 1 {
		d.t.Fatalf("no entry %d", idx)
	}
}

// entry returns the leaf hash and payload of entry idx.
func (d *tamperDB) entry(idx int64) (leaf, payload []byte) {
	d.t.Helper()
	if err := d.conn.QueryRow(context.Background(), `SELECT leaf, payload FROM entries WHERE idx = $1`, idx).Scan(&leaf, &payload); err != nil {
		d.t.Fatalf("entry %d: %v", idx, err)
	}
	return leaf, payload
}

// swap swaps entries a and b, leaf hashes with them.
func (d *tamperDB) swap(a, b int64) {
	d.t.Helper()
	la, pa := d.entry(a)
	lb, pb := d.entry(b)
	d.set(a, `leaves[e.k] = $2, payloads[e.k] = $3`, lb, pb)
	d.set(b, `leaves[e.k] = $2, payloads[e.k] = $3`, la, pa)
}

// truncate removes the entries from idx on.
func (d *tamperDB) truncate(idx int64) {
	d.t.Helper()
	d.exec(`UPDATE audit_records r SET leaves = r.leaves[1:$1 - b.first_idx], payloads = r.payloads[1:$1 - b.first_idx]
		FROM audit_batches b WHERE b.batch = r.batch AND b.first_idx < $1 AND b.first_idx + cardinality(r.leaves) > $1`, idx)
	d.exec(`DELETE FROM audit_records r USING audit_batches b WHERE b.batch = r.batch AND b.first_idx >= $1`, idx)
	d.exec(`DELETE FROM audit_batches WHERE first_idx >= $1`, idx)
}

func (d *tamperDB) exec(sql string, args ...any) int64 {
	d.t.Helper()
	tag, err := d.conn.Exec(context.Background(), sql, args...)
	if err != nil {
		d.t.Fatalf("%s: %v", sql, err)
	}
	return tag.RowsAffected()
}

// flipPayload flips a bit of entry idx's payload.
func (d *tamperDB) flipPayload(idx int64) {
	d.t.Helper()
	d.set(idx, `payloads[e.k] = set_byte(e.payload, 10, get_byte(e.payload, 10) # 1)`)
}

// fixLeaf stores the leaf hash of entry idx's current payload.
func (d *tamperDB) fixLeaf(idx int64) {
	d.t.Helper()
	d.set(idx, `leaves[e.k] = sha256('\x00'::bytea || e.payload)`)
}

// leaves returns the stored leaf hashes, in index order.
func (d *tamperDB) leaves() [][]byte {
	d.t.Helper()
	rows, err := d.conn.Query(context.Background(), `SELECT leaf FROM entries ORDER BY idx`)
	if err != nil {
		d.t.Fatal(err)
	}
	ls, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		d.t.Fatal(err)
	}
	return ls
}

// fixNode recomputes the stored level-8 node hash number k from the stored
// leaf hashes.
func (d *tamperDB) fixNode(k int) {
	d.t.Helper()
	level := d.leaves()[k*nodeSpan : (k+1)*nodeSpan]
	for len(level) > 1 {
		var up [][]byte
		for i := 0; i < len(level); i += 2 {
			up = append(up, rfc6962.DefaultHasher.HashChildren(level[i], level[i+1]))
		}
		level = up
	}
	if d.exec(`UPDATE audit_nodes SET hash = $1 WHERE level = 8 AND idx = $2`, level[0], k) != 1 {
		d.t.Fatalf("no node hash %d at level 8", k)
	}
}

// tree recomputes the tree of the stored leaves and returns the roots at
// sizes and the compact range of the whole tree, as the sequencer stores
// it in audit_state.
func (d *tamperDB) tree(sizes ...uint64) (roots [][]byte, size uint64, rng []byte) {
	d.t.Helper()
	r, err := audit.NewRange(0, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	for _, leaf := range d.leaves() {
		if err := r.Append(leaf, nil); err != nil {
			d.t.Fatal(err)
		}
		for _, s := range sizes {
			if s == r.End() {
				root, err := r.GetRootHash(nil)
				if err != nil {
					d.t.Fatal(err)
				}
				roots = append(roots, root)
			}
		}
	}
	for _, h := range r.Hashes() {
		rng = append(rng, h...)
	}
	return roots, r.End(), rng
}

// fixState rewrites audit_state to match the stored entries.
func (d *tamperDB) fixState() {
	d.t.Helper()
	_, size, rng := d.tree()
	d.exec(`UPDATE audit_state SET size = $1, range = $2 WHERE id = 1`, int64(size), rng)
}

// checkpoints returns the seq column and note of each stored checkpoint,
// oldest first.
func (d *tamperDB) checkpoints() (seqs []int64, notes [][]byte) {
	d.t.Helper()
	rows, err := d.conn.Query(context.Background(), `SELECT seq, note FROM audit_checkpoints ORDER BY seq`)
	if err != nil {
		d.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var n []byte
		if err := rows.Scan(&seq, &n); err != nil {
			d.t.Fatal(err)
		}
		seqs, notes = append(seqs, seq), append(notes, n)
	}
	if err := rows.Err(); err != nil {
		d.t.Fatal(err)
	}
	return seqs, notes
}

// setCheckpoint replaces the note of the checkpoint at position pos.
func (d *tamperDB) setCheckpoint(pos int, signed []byte, size uint64) {
	d.t.Helper()
	seqs, _ := d.checkpoints()
	d.exec(`UPDATE audit_checkpoints SET note = $1, size = $2 WHERE seq = $3`, signed, int64(size), seqs[pos])
}

// attackerSigner returns a signer of a fresh key named like the log's.
func attackerSigner(t *testing.T) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

func mustSign(t *testing.T, s note.Signer, size uint64, root []byte) []byte {
	t.Helper()
	signed, err := audit.SignCheckpoint(s, size, root)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// rewriteEntry400 alters entry 400 and fixes its leaf hash, the node hash
// of [256, 512) and audit_state, so only checkpoints can tell.
func rewriteEntry400(d *tamperDB) {
	d.flipPayload(400)
	d.fixLeaf(400)
	d.fixNode(1)
	d.fixState()
}

// TestVerifyTamper builds a log (see mustBuildTamperLog), checks it
// verifies, then, in a copy of it for each case, edits its tables the way
// an attacker with write access to the database would and checks Verify
// names the first bad entry or checkpoint.
func TestVerifyTamper(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, d *tamperDB)
		// external passes the checkpoint of size 700 saved before
		// tampering, trueKey the log's verifier key kept outside the
		// database.
		external, trueKey bool
		// forgedExternal passes, instead, a checkpoint of size 700 signed
		// by another key.
		forgedExternal bool
		// undetectedWithout says the tampering passes Verify without
		// external and trueKey: they are what catches it.
		undetectedWithout bool
		// wantOK says nothing can catch it: Verify passes.
		wantOK         bool
		wantEntry      int64
		wantCheckpoint int
		wantReason     string
	}{
		{name: "modified payload",
			tamper:    func(t *testing.T, d *tamperDB) { d.flipPayload(400) },
			wantEntry: 400, wantCheckpoint: -1, wantReason: "leaf hash differs"},
		{name: "modified payload of the first entry",
			tamper:    func(t *testing.T, d *tamperDB) { d.flipPayload(0) },
			wantEntry: 0, wantCheckpoint: -1, wantReason: "leaf hash differs"},
		{name: "modified payload of the last entry",
			tamper:    func(t *testing.T, d *tamperDB) { d.flipPayload(749) },
			wantEntry: 749, wantCheckpoint: -1, wantReason: "leaf hash differs"},
		{name: "modified leaf hash",
			tamper: func(t *testing.T, d *tamperDB) {
				d.set(400, `leaves[e.k] = set_byte(e.leaf, 0, get_byte(e.leaf, 0) # 1)`)
			},
			wantEntry: 400, wantCheckpoint: -1, wantReason: "leaf hash differs"},
		{name: "modified payload with leaf fixed",
			tamper: func(t *testing.T, d *tamperDB) {
				d.flipPayload(400)
				d.fixLeaf(400)
			},
			wantEntry: 256, wantCheckpoint: -1, wantReason: "node hash of entries [256, 512) differs"},
		{name: "modified payload with leaf and node hash fixed",
			tamper: func(t *testing.T, d *tamperDB) {
				d.flipPayload(400)
				d.fixLeaf(400)
				d.fixNode(1)
			},
			wantEntry: 300, wantCheckpoint: 2, wantReason: "root hash of tree size 520 does not match"},
		{name: "modified payload with leaf, node hash and state fixed",
			tamper:    func(t *testing.T, d *tamperDB) { rewriteEntry400(d) },
			wantEntry: 300, wantCheckpoint: 2, wantReason: "first altered entry is in [300, 520)"},
		{name: "modified first checkpointed entry with leaf and node hash fixed",
			tamper: func(t *testing.T, d *tamperDB) {
				d.flipPayload(50)
				d.fixLeaf(50)
				d.fixNode(0)
			},
			wantEntry: 0, wantCheckpoint: 0, wantReason: "root hash of tree size 100 does not match"},
		{name: "modified payload with leaf fixed where no node hash is stored",
			tamper: func(t *testing.T, d *tamperDB) {
				d.flipPayload(600)
				d.fixLeaf(600)
			},
			wantEntry: 520, wantCheckpoint: 3, wantReason: "root hash of tree size 700 does not match"},
		{name: "modified payload with leaf fixed after the last checkpoint",
			tamper: func(t *testing.T, d *tamperDB) {
				d.flipPayload(740)
				d.fixLeaf(740)
			},
			wantEntry: 749, wantCheckpoint: -1, wantReason: "recorded tree differs"},
		{name: "modified node hash",
			tamper: func(t *testing.T, d *tamperDB) {
				d.exec(`UPDATE audit_nodes SET hash = set_byte(hash, 31, get_byte(hash, 31) # 1) WHERE level = 8 AND idx = 1`)
			},
			wantEntry: 256, wantCheckpoint: -1, wantReason: "node hash of entries [256, 512) differs"},
		{name: "removed node hash",
			tamper:    func(t *testing.T, d *tamperDB) { d.exec(`DELETE FROM audit_nodes WHERE level = 8 AND idx = 0`) },
			wantEntry: 0, wantCheckpoint: -1, wantReason: "node hash of entries [0, 256) is missing"},
		{name: "removed entry",
			tamper:    func(t *testing.T, d *tamperDB) { d.set(400, `leaves[e.k] = NULL, payloads[e.k] = NULL`) },
			wantEntry: 400, wantCheckpoint: -1, wantReason: "missing: the next stored entry is 401"},
		{name: "removed entry, later ones moved up",
			tamper: func(t *testing.T, d *tamperDB) {
				d.set(400, `leaves = r.leaves[:e.k - 1] || r.leaves[e.k + 1:], payloads = r.payloads[:e.k - 1] || r.payloads[e.k + 1:]`)
				// In two steps: first_idx is unique at every row.
				d.exec(`UPDATE audit_batches SET first_idx = -first_idx WHERE first_idx > 400`)
				d.exec(`UPDATE audit_batches SET first_idx = -first_idx - 1 WHERE first_idx < 0`)
			},
			wantEntry: 256, wantCheckpoint: -1, wantReason: "node hash of entries [256, 512) differs"},
		{name: "removed payload, leaf hash kept",
			tamper:    func(t *testing.T, d *tamperDB) { d.set(400, `payloads = r.payloads[:e.k - 1]`) },
			wantEntry: 400, wantCheckpoint: -1, wantReason: "leaf hash differs"},
		{name: "removed first entry",
			tamper:    func(t *testing.T, d *tamperDB) { d.set(0, `leaves[e.k] = NULL, payloads[e.k] = NULL`) },
			wantEntry: 0, wantCheckpoint: -1, wantReason: "missing: the next stored entry is 1"},
		{name: "swapped entries",
			tamper: func(t *testing.T, d *tamperDB) {
				d.swap(400, 401)
			},
			wantEntry: 256, wantCheckpoint: -1, wantReason: "node hash of entries [256, 512) differs"},
		{name: "swapped entries after the last stored node hash",
			tamper: func(t *testing.T, d *tamperDB) {
				d.swap(600, 601)
			},
			wantEntry: 520, wantCheckpoint: 3, wantReason: "root hash of tree size 700 does not match"},
		{name: "removed entries after the last checkpoint",
			tamper: func(t *testing.T, d *tamperDB) {
				d.truncate(730)
			},
			wantEntry: 730, wantCheckpoint: -1, wantReason: "the sequencer recorded 750 entries but the log holds 730"},
		{name: "removed entries after the last checkpoint, state rewritten",
			tamper: func(t *testing.T, d *tamperDB) {
				d.truncate(730)
				d.fixState()
			},
			// Nothing signed covers entries after the last checkpoint:
			// CheckpointInterval bounds what can be lost this way.
			external: true, wantOK: true},
		{name: "truncated log with state rewritten",
			tamper: func(t *testing.T, d *tamperDB) {
				d.truncate(600)
				d.fixState()
			},
			wantEntry: 600, wantCheckpoint: 3, wantReason: "covers 700 entries but the log holds only 600"},
		{name: "truncated log with state and checkpoints rolled back",
			tamper: func(t *testing.T, d *tamperDB) {
				d.truncate(600)
				d.fixState()
				d.exec(`DELETE FROM audit_checkpoints WHERE size > 600`)
			},
			external: true, undetectedWithout: true,
			wantEntry: 600, wantCheckpoint: -2, wantReason: "covers 700 entries but the log holds only 600"},
		{name: "rewritten history with checkpoints removed",
			tamper: func(t *testing.T, d *tamperDB) {
				rewriteEntry400(d)
				d.exec(`DELETE FROM audit_checkpoints`)
			},
			external: true, undetectedWithout: true,
			wantEntry: 0, wantCheckpoint: -2, wantReason: "root hash of tree size 700 does not match"},
		{name: "forged checkpoint",
			tamper: func(t *testing.T, d *tamperDB) {
				s, _ := attackerSigner(t)
				roots, _, _ := d.tree(700)
				d.setCheckpoint(3, mustSign(t, s, 700, roots[0]), 700)
			},
			wantEntry: -1, wantCheckpoint: 3, wantReason: "not signed by the log's key"},
		{name: "modified checkpoint text",
			tamper: func(t *testing.T, d *tamperDB) {
				_, notes := d.checkpoints()
				n := bytes.Replace(notes[1], []byte("\n300\n"), []byte("\n310\n"), 1)
				if bytes.Equal(n, notes[1]) {
					t.Fatalf("checkpoint 1 is not of size 300:\n%s", notes[1])
				}
				d.setCheckpoint(1, n, 310)
			},
			wantEntry: -1, wantCheckpoint: 1, wantReason: "signature"},
		{name: "reordered checkpoints",
			tamper: func(t *testing.T, d *tamperDB) {
				seqs, _ := d.checkpoints()
				d.exec(`UPDATE audit_checkpoints a SET note = b.note, size = b.size
					FROM audit_checkpoints b WHERE (a.seq, b.seq) IN (($1, $2), ($2, $1))`, seqs[1], seqs[2])
			},
			wantEntry: -1, wantCheckpoint: 2, wantReason: "smaller than the previous checkpoint's 520 (rollback"},
		{name: "old checkpoint appended",
			tamper: func(t *testing.T, d *tamperDB) {
				d.exec(`INSERT INTO audit_checkpoints (size, note) SELECT size, note FROM audit_checkpoints WHERE size = 300`)
			},
			wantEntry: -1, wantCheckpoint: 4, wantReason: "smaller than the previous checkpoint's 700 (rollback"},
		{name: "replaced verifier key with history rewritten and re-signed",
			tamper: func(t *testing.T, d *tamperDB) {
				rewriteEntry400(d)
				s, vkey := attackerSigner(t)
				roots, _, _ := d.tree(tamperCheckpoints...)
				for i, size := range tamperCheckpoints {
					d.setCheckpoint(i, mustSign(t, s, size, roots[i]), size)
				}
				d.exec(`UPDATE audit_meta SET value = $1 WHERE key = 'verifier_key'`, vkey)
			},
			trueKey: true, undetectedWithout: true,
			wantEntry: -1, wantCheckpoint: 0, wantReason: "not signed by the log's key"},
		{name: "inserted entry at the end",
			tamper: func(t *testing.T, d *tamperDB) {
				d.set(749, `leaves = r.leaves || e.leaf, payloads = r.payloads || e.payload`)
			},
			wantEntry: 750, wantCheckpoint: -1, wantReason: "not sequenced: the log holds 751 entries but the sequencer recorded 750"},
		{name: "altered state range",
			tamper: func(t *testing.T, d *tamperDB) {
				d.exec(`UPDATE audit_state SET range = set_byte(range, 0, get_byte(range, 0) # 1) WHERE id = 1`)
			},
			wantEntry: 749, wantCheckpoint: -1, wantReason: "recorded tree differs"},
		{name: "malformed state range",
			tamper: func(t *testing.T, d *tamperDB) {
				d.exec(`UPDATE audit_state SET range = substr(range, 33) WHERE id = 1`)
			},
			wantEntry: 749, wantCheckpoint: -1, wantReason: "recorded tree is malformed"},
		{name: "state size raised",
			tamper:    func(t *testing.T, d *tamperDB) { d.exec(`UPDATE audit_state SET size = 760 WHERE id = 1`) },
			wantEntry: 750, wantCheckpoint: -1, wantReason: "the sequencer recorded 760 entries but the log holds 750"},
		{name: "forged external checkpoint",
			tamper:         func(t *testing.T, d *tamperDB) {},
			forgedExternal: true,
			wantEntry:      -1, wantCheckpoint: -2, wantReason: "not signed by the log's key"},
	}
	base := mustBuildTamperLog(t)
	t.Run("untampered", func(t *testing.T) { checkUntampered(t, base.clone(t)) })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := base.clone(t)
			var opts audit.VerifyOptions
			if tt.external {
				opts.Checkpoint = f.saved
			}
			if tt.trueKey {
				opts.VerifierKey = f.vkey
			}
			if _, err := postgres.Verify(ctx, f.dsn, opts); err != nil {
				t.Fatalf("verify before tampering: %v", err)
			}
			if tt.forgedExternal {
				s, _ := attackerSigner(t)
				opts.Checkpoint = mustSign(t, s, 700, make([]byte, 32))
			}
			tt.tamper(t, mustTamperDB(t, f.dsn))

			if tt.undetectedWithout {
				if res, err := postgres.Verify(ctx, f.dsn, audit.VerifyOptions{}); err != nil {
					t.Fatalf("verify without the external checkpoint or key: %v; want it to pass (this tampering is consistent)", err)
				} else {
					t.Logf("without the external checkpoint or key: %v", res)
				}
			}
			res, err := postgres.Verify(ctx, f.dsn, opts)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("verify after tampering: %v, want it to pass", err)
				}
				t.Logf("undetected: %v", res)
				return
			}
			var ve *audit.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("verify after tampering: %v (%v), want a *VerifyError", err, res)
			}
			if ve.Entry != tt.wantEntry || ve.Checkpoint != tt.wantCheckpoint || !strings.Contains(ve.Reason, tt.wantReason) {
				t.Fatalf("verify error %q names entry %d, checkpoint %d; want entry %d, checkpoint %d, reason containing %q",
					err, ve.Entry, ve.Checkpoint, tt.wantEntry, tt.wantCheckpoint, tt.wantReason)
			}
			t.Logf("%v", err)
		})
	}
}

// checkUntampered checks the untampered log verifies, so that the tamper
// cases do not pass vacuously, and that events committed but not
// sequenced are reported, not failed.
func checkUntampered(t *testing.T, f *tamperLog) {
	ctx := context.Background()
	d := mustTamperDB(t, f.dsn)
	roots, _, _ := d.tree(700, tamperSequenced)
	for _, opts := range []audit.VerifyOptions{{}, {VerifierKey: f.vkey, Checkpoint: f.saved}} {
		res, err := postgres.Verify(ctx, f.dsn, opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.TreeSize != tamperSequenced || res.Entries != tamperSequenced || res.Checkpoints != len(tamperCheckpoints) ||
			res.LatestCheckpoint != 700 || res.ExternalChecked != (opts.Checkpoint != nil) || res.Pending != tamperPending ||
			!bytes.Equal(res.RootHash, roots[1]) {
			t.Fatalf("verify untampered log: %+v", res)
		}
		t.Log(res)
	}
	cp, err := audit.OpenCheckpoint(f.saved, f.vkey)
	if err != nil || !bytes.Equal(cp.Root, roots[0]) {
		t.Fatalf("saved checkpoint: %+v, %v; want the root of the first 700 entries", cp, err)
	}
	if n := stateSize(t, d.conn); n != tamperSequenced {
		t.Fatalf("tree size %d, want %d", n, tamperSequenced)
	}
}
