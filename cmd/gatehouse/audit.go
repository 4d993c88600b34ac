package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/audit"
	pgaudit "github.com/gatehouse/gatehouse/internal/audit/postgres"
)

func newAuditCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify, prove and export the tamper-evident audit log (offline)",
		Long: `The audit log is an RFC 6962 Merkle tree of events with Ed25519-signed
checkpoints (C2SP signed notes). These commands read the data directory
(or, with --store, the PostgreSQL database that replicas share) directly;
they need no running server and trust nothing it says.`,
	}
	var dataDir, dsn string
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", "", "data directory (default $GATEHOUSE_DATA_DIR or ./gatehouse-data)")
	cmd.PersistentFlags().StringVar(&dsn, "store", "", "PostgreSQL DSN of a log kept in postgres (audit.backend postgres), e.g. postgres://user@db:5432/gatehouse")
	dir := func() string {
		d := dataDir
		if d == "" {
			d = env.Getenv("GATEHOUSE_DATA_DIR")
		}
		if d == "" {
			d = "./gatehouse-data"
		}
		return filepath.Join(d, "audit")
	}

	var cpFile, key string
	verify := &cobra.Command{
		Use:   "verify [--data-dir D] [--checkpoint FILE] [--key VERIFIER_KEY]",
		Short: "Recompute the tree, check every checkpoint, and prove the log extends a saved checkpoint",
		Long: `Recompute the Merkle tree from the stored events (checking every record's
checksum), check every stored checkpoint's signature and root, and, given a
checkpoint saved elsewhere earlier (--checkpoint), prove that the current
log extends it. Exit 0 with one summary line, or 1 naming the first bad
entry or checkpoint.

Pass --key with the verifier key you recorded (gatehouse audit pubkey) to
avoid trusting the one stored beside the log. After an audit key rotation
(gatehouse secrets rotate audit-key) any key of the chain will do, the
first one or a later one: a successor key is accepted only through the
hand-over checkpoint its predecessor signed with it, and the summary
lists the chain (each key and the tree size of its hand-over).`,
		Example: `  gatehouse audit verify
  gatehouse audit verify --checkpoint /backup/checkpoint-2026-11-01.txt --key "$(cat audit.pub)"
  gatehouse audit verify --store postgres://gatehouse@db:5432/gatehouse --key "$(cat audit.pub)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := audit.VerifyOptions{VerifierKey: key}
			if cpFile != "" {
				b, err := os.ReadFile(cpFile)
				if err != nil {
					return usageError{fmt.Errorf("read checkpoint: %w", err)}
				}
				opts.Checkpoint = b
			}
			verify := audit.Verify
			if dsn != "" {
				verify = pgaudit.Verify
			}
			res, err := verify(cmd.Context(), orDSN(dsn, dir()), opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), res)
			return nil
		},
	}
	verify.Flags().StringVar(&cpFile, "checkpoint", "", "a signed checkpoint saved earlier; verify proves the log extends it")
	verify.Flags().StringVar(&key, "key", "", "note verifier key to check signatures with (default: the one in the data dir)")

	checkpoint := &cobra.Command{
		Use: "checkpoint", Short: "Print the latest signed checkpoint (save it elsewhere to detect rollback)", Args: cobra.NoArgs,
		Example: "  gatehouse audit checkpoint > /backup/checkpoint-$(date +%F).txt",
		RunE: func(cmd *cobra.Command, args []string) error {
			latest := func(ctx context.Context, dir string) ([]byte, error) { return audit.LatestCheckpoint(dir) }
			if dsn != "" {
				latest = pgaudit.LatestCheckpoint
			}
			cp, err := latest(cmd.Context(), orDSN(dsn, dir()))
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(cp)
			return err
		},
	}
	pubkey := &cobra.Command{
		Use: "pubkey", Short: "Print the note verifier key of the audit log's signing key", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			read := func(ctx context.Context, dir string) (string, error) { return audit.ReadVerifierKey(dir) }
			if dsn != "" {
				read = pgaudit.VerifierKey
			}
			k, err := read(cmd.Context(), orDSN(dsn, dir()))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), k)
			return nil
		},
	}
	keys := &cobra.Command{
		Use:   "keys [--data-dir D | --store DSN] [--json]",
		Short: "List the audit log's checkpoint keys, oldest first, with the tree size of each hand-over",
		Long: `List the verifier keys that have signed the log's checkpoints: the first
key, then one per audit key rotation, each with the tree size and position
of the hand-over checkpoint that both the old and the new key signed. Only
public keys are printed. The hand-overs' signatures are checked; verify
checks everything else.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			chain := func(ctx context.Context, dir string) ([]audit.KeyEpoch, error) { return audit.ReadKeyChain(dir) }
			if dsn != "" {
				chain = pgaudit.KeyChain
			}
			c, err := chain(cmd.Context(), orDSN(dsn, dir()))
			if err != nil {
				return err
			}
			return output(cmd, c, func(w io.Writer) error {
				return table(w, "KEY\tSINCE TREE SIZE\tHAND-OVER CHECKPOINT\tVERIFIER KEY", c, func(e audit.KeyEpoch) []string {
					ho := "-"
					if e.HandOver >= 0 {
						ho = strconv.Itoa(e.HandOver)
					}
					return []string{e.KeyID, strconv.FormatUint(e.Since, 10), ho, e.VerifierKey}
				})
			})
		},
	}
	keys.Flags().Bool("json", false, "print JSON")
	var index int64 = -1
	proof := &cobra.Command{
		Use: "proof --index N", Short: "Print an inclusion proof of entry N against the latest checkpoint (JSON)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if index < 0 {
				return usageError{errors.New("--index is required")}
			}
			prove := audit.InclusionProof
			if dsn != "" {
				prove = pgaudit.InclusionProof
			}
			p, err := prove(cmd.Context(), orDSN(dsn, dir()), uint64(index))
			if err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), p)
		},
	}
	proof.Flags().Int64Var(&index, "index", -1, "entry index")
	var f audit.Filter
	var since string
	export := &cobra.Command{
		Use: "export [--since T] [--type X] [--actor A]", Short: "Print events as JSON lines", Args: cobra.NoArgs,
		Example: "  gatehouse audit export --since 2026-11-01T00:00:00Z --type authn.failure",
		RunE: func(cmd *cobra.Command, args []string) error {
			// A misspelt type would match nothing and look like an empty log.
			if err := audit.CheckTypeFilter(f.Type); err != nil {
				return usageError{err}
			}
			if since != "" {
				t, err := time.Parse(time.RFC3339, since)
				if err != nil {
					return usageError{fmt.Errorf("--since must be an RFC 3339 time, e.g. 2026-11-01T00:00:00Z")}
				}
				f.Since = t
			}
			export := audit.Export
			if dsn != "" {
				export = pgaudit.Export
			}
			_, err := export(cmd.Context(), orDSN(dsn, dir()), f, cmd.OutOrStdout())
			return err
		},
	}
	export.Flags().StringVar(&since, "since", "", "only events at or after this time (RFC 3339)")
	export.Flags().StringVar(&f.Type, "type", "", "only events of this type, or of a prefix ending in * (admin.*); docs/audit.md lists them")
	export.Flags().StringVar(&f.Actor, "actor", "", "only events by this actor id")
	cmd.AddCommand(verify, checkpoint, pubkey, keys, proof, export)
	return cmd
}

// orDSN is where an offline audit command reads: the DSN when --store was
// given, otherwise the audit directory.
func orDSN(dsn, dir string) string {
	if dsn != "" {
		return dsn
	}
	return dir
}
