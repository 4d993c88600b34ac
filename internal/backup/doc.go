// Package backup makes, lists, verifies, restores and prunes encrypted
// backups of one Gatehouse deployment (SOC 2 A1.2, A1.3, C1.2): the store,
// the audit log, the server secrets and the config, in one file that only
// the holders of the backup identity can read.
//
// # What a backup holds
//
// A backup is one age file (filippo.io/age, X25519 recipients) whose
// plaintext is a tar stream. Its first entry, MANIFEST, is a signed note
// (golang.org/x/mod/sumdb/note) whose text is the line
// "gatehouse backup manifest v1" and a JSON Manifest: the deployment's
// origin and verifier key, when and by which version it was made, the
// audit checkpoint it ends at, and the name, size and SHA-256 of every
// other entry (a part):
//
//	store/gatehouse.db          SQLite, written by VACUUM INTO (never a copy of the WAL-mode file)
//	store/postgres.dump         PostgreSQL, pg_dump --format=custom (the audit tables too, in postgres mode)
//	audit/…                     a file-backed audit log: segments and indexes up to the checkpoint, checkpoints, pruned, log.pub
//	audit/log.pub               the audit verifier key (postgres mode: only this)
//	secrets/server.secret       the key-hash pepper (version 1)
//	secrets/pepper-versions     every pepper version, once rotated
//	secrets/signing-keys.json   the JWT signing keys
//	secrets/audit-log.key       the audit checkpoint signing key
//	config/gatehouse.yaml       the config file, when serve runs with one
//
// The manifest is signed with the audit log's checkpoint key, under a first
// line that no checkpoint can have, so the key that vouches for the log
// vouches for its backups, and a backup names the deployment it belongs
// to. age authenticates the ciphertext (a changed byte fails its MAC) but
// not its author: anyone holding a recipient could write a file that
// decrypts; the signature is what a reader trusts.
//
// # Writing and reading
//
// Create stages the parts in a private directory inside the data dir
// (hard links for sealed audit segments), hashes them, signs the manifest
// and streams manifest and parts through age to the Destination, which
// makes the file appear atomically: a directory writes a temporary file,
// fsyncs it, renames it and fsyncs the directory; S3 completes one upload.
// Nothing on the destination is ever plaintext.
//
// Readers (Verify, Restore) refuse, before writing anything, a file
// without an age header, one no identity opens, a manifest that is not
// signed by the expected key or names another origin (foreign), and then,
// part by part, any entry the manifest does not list, any size beyond the
// listed one and any hash that differs. Parts are written to a scratch
// directory; only a backup read to its end without fault is used.
//
// # Verification is a restore
//
// Verify restores into a scratch directory (a scratch database for
// PostgreSQL), runs PRAGMA integrity_check and opens the store, verifies
// the restored audit log from its files (or tables), proves with a
// consistency proof from the live log that the backup's log is a prefix
// of it, and reports the restore's duration (RTO evidence), the backup's
// age and the number of audit entries it would lose (RPO evidence)
// against the configured targets. Every create, verify and deletion is an
// audit event.
package backup
