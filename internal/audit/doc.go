// Package audit is Gatehouse's tamper-evident audit log (DESIGN.md §4).
//
// Every event is a leaf of an RFC 6962 Merkle tree whose leaf hash is
// SHA-256(0x00 || the event's stored JSON bytes). Checkpoints of the tree
// are signed with Ed25519 as C2SP signed notes, so anyone holding the
// verifier key, and a checkpoint saved elsewhere, can detect modified,
// removed, reordered or truncated entries and rolled-back checkpoints.
//
// # On-disk format
//
// A log directory holds:
//
//	LOCK                 flock(2) held by the process that has the log open
//	log.key              note signer key (Ed25519), mode 0600; after a key
//	                     rotation the key ring: the active key, then the one
//	                     it succeeds (KeyRing)
//	log.pub              verifier key of the key in use, what `gatehouse audit pubkey` prints
//	checkpoints          append-only list of signed checkpoints, oldest first;
//	                     a hand-over checkpoint (keys.go) is signed by two keys
//	pruned               compact range of the pruned prefix (only after pruning)
//	segments/NNN.seg     records of entries NNN.. (NNN: 20-digit first index)
//	segments/NNN.idx     fixed-width index of the same entries
//	segments/NNN.mid     a sealed segment's node hashes at level k/2 (derived)
//	segments/new.seg.tmp a segment being created (header only, no data)
//
// All integers are big-endian. Segment and index files start with a 24-byte
// header: an 8-byte magic ("GHAUDSEG" or "GHAUDIDX"), the index of the
// segment's first entry (uint64), log2 of the entries per segment (uint32)
// and a CRC32C of the preceding 20 bytes.
//
// A segment holds exactly 2^k entries (k from Config.SegmentEntries, 16 by
// default) before the next one starts, so every full segment is one perfect
// subtree of the Merkle tree. After the header come records, each framed as
//
//	length  uint32   length of the payload
//	crc     uint32   CRC32C (Castagnoli) of the payload
//	payload          the event as JSON (its canonical, hashed bytes)
//
// The index has one 40-byte entry per record: the record's byte offset in
// the segment (uint64) and its leaf hash (32 bytes). Entry N is found by
// reading index entry N-start of the segment holding N, then one ReadAt in
// the segment: no scanning. When a segment is full it is sealed: the root
// hash of its subtree is appended to the index as a 32-byte trailer, and
// neither file is written again. The segment is fsynced on the append path;
// the index is fsynced in the background, and if a crash loses it Open
// rebuilds it from the segment. Node hashes needed for
// proofs come from sealed segment roots and, below segment level, from the
// segment's node hashes at level k/2 (its "mid hashes", 2^(k-k/2) of them,
// 8 KiB by default) and below that from at most 2^(k/2) leaf hashes in its
// index file, so a proof of any entry reads and hashes a bounded amount and
// leaf hashes are never all held in RAM: a Log keeps the compact range of
// the whole tree (O(log n) hashes), the active segment's mid hashes and a
// bounded cache of sealed ones'. The .mid file (header magic "GHAUDMID",
// then the hashes) is written, unsynced, when a segment is sealed; it is
// derived data, checked against the segment root before each use (and
// rebuilt from the index when missing, torn or wrong), and Verify never
// reads it.
// The active segment's index is rebuilt from the segment at every Open, so
// it is not fsynced on the append path.
//
// The checkpoints file holds frames of the same shape as records (length,
// CRC32C, bytes); each payload is a signed note whose text is a C2SP
// tlog-checkpoint:
//
//	<origin>
//	<tree size, decimal>
//	<root hash, base64>
//
//	— <origin> <base64 of key hash and Ed25519 signature>
//
// The signing key's name is the origin. Checkpoints are signed every
// Config.CheckpointInterval (10s) when the tree grew, on Close, and on Sync,
// Proof and Prune when needed. Before a checkpoint is written, a consistency
// proof from the previous checkpoint to the new tree is built from the files
// and checked with the transparency-dev/merkle verifier; if it fails, no
// checkpoint is written.
//
// # Durability
//
// A single writer goroutine owns the files. Record queues the encoded event
// and waits on a channel (no spinning); the writer takes everything queued,
// writes it with one write per file and, in "sync" mode (the default), has
// the segment's write wait for the disk (pwritev2 with RWF_DSYNC, the
// guarantee of fdatasync in the same system call; a batch that needs more
// than one write ends with an fdatasync), then wakes all the callers of
// that batch (group commit).
// Record therefore returns only after its event is on stable storage, and
// concurrent callers share the cost of an fsync. Like PostgreSQL's
// commit_delay with commit_siblings, when fewer events are queued than
// there were concurrent callers during the last commit, the writer waits
// for the missing ones (at most Config.CommitDelay, 1ms), so that the
// callers just woken by an fsync share the next one; a lone caller never
// waits. The active segment keeps zeros, written and synced by a
// background goroutine, up to a few MiB ahead of the writer
// (Config.NoPreallocate turns this off), so an append's fdatasync has no
// file size or extent to update; a clean Close cuts them. No more than 4
// MiB is ever written to a segment without an fdatasync, in either mode.
// In "batch" mode Record returns once the batch is written
// to the operating system, and the writer fsyncs every BatchSyncInterval
// (100ms) and before every checkpoint: a process crash loses nothing, a
// power loss can lose the last acknowledged events (never a checkpointed
// one). Log.Stats counts events, bytes, fsyncs and batches.
//
// # Crash recovery
//
// Open rescans the newest segment. A bad record at its tail is a torn
// write: a partial frame, a length running past the end of the file, a bad
// record followed by nothing but zeros, or a bad record showing a lost
// write (zeros where its length or JSON payload should be: in preallocated
// space the sectors a power cut lost read as zeros, and later ones of the
// same write may have landed) with nothing but zeros 4 MiB beyond it. Open
// cuts it, logs it and appends an "audit.recovered" event that says what
// was cut. Any other bad record (valid data follows it) is damage, not a
// torn write, and so is one the latest checkpoint covers: Open refuses to
// start, leaves the files alone, and Verify names the entry. Open also
// checks the latest checkpoint against the stored tree.
//
// # Retention
//
// Prune removes whole segments, oldest first, whose newest event is older
// than Config.Retention. Before deleting, it makes sure a checkpoint covers
// them and writes the compact range of the removed prefix [0, B) to the
// "pruned" file (a handful of hashes). Verify starts its recomputation from
// that range, so every remaining checkpoint of size ≥ B still checks, and
// the result says the retained log begins at entry B. A tampered "pruned"
// file changes every later root and fails verification. Checkpoints of trees
// smaller than B are dropped, and proofs about pruned entries return
// ErrPruned.
//
// # Verification
//
// Verify (offline, on the directory) checks, in order: each checkpoint's
// signature and that sizes never decrease; each record's CRC32C, offset and
// leaf hash against the index; each sealed segment's root; the recomputed
// root at every checkpoint's size; that no checkpoint covers more entries
// than are stored; and, given a checkpoint saved elsewhere, that the log
// extends it (its root is recomputed and a consistency proof is checked).
// Errors are *VerifyError values naming the first bad entry or checkpoint.
//
// # Where the code lives
//
// log.go is the Log's lifecycle (Config, Open, Sync, Close); open.go the
// recovery at open; append.go the write path (Record, the group-committing
// writer, fdatasync); segment.go the segment files (format, creation,
// preallocation, sealing); checkpoint.go signing and checking checkpoints;
// tree.go node hashes and proofs; verify.go offline verification; prune.go
// retention; query.go reads for the admin API; stream.go the JSON-lines
// copy.
package audit
