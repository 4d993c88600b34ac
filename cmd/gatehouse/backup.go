package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/backup"
	"github.com/gatehouse/gatehouse/internal/config"
)

func newBackupCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Make, list, restore-test, restore and prune encrypted backups",
		Long: `A backup holds the store, the audit log, the server secrets and the config,
encrypted with age to the recipients in backup.recipients, in backup.dir or
at backup.url. serve makes one every backup.schedule (default 1h), keeps
them backup.retention (30d) and restore-tests the newest every
backup.verify_schedule (720h); see docs/recovery.md.

create, list, verify and prune ask the running server (GATEHOUSE_ADDR,
GATEHOUSE_TOKEN; admin role); restore works offline, on a stopped
deployment's data dir (and database).`,
	}
	client := clientFlags(cmd, env)
	// Backups take as long as the data: no client timeout.
	longClient := func() (*apiClient, error) {
		c, err := client()
		if err == nil {
			c.http.Timeout = 0
		}
		return c, err
	}
	cmd.AddCommand(newBackupCreateCmd(longClient), newBackupListCmd(client), newBackupVerifyCmd(longClient),
		newBackupPruneCmd(longClient), newBackupRestoreCmd(env), newBackupKeygenCmd())
	return cmd
}

func newBackupCreateCmd(client func() (*apiClient, error)) *cobra.Command {
	return &cobra.Command{
		Use:     "create [--json]",
		Short:   "Make a backup now (the server makes and stores it)",
		Example: "  gatehouse backup create\n  gatehouse backup create --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var info backup.Info
			if err := c.do(cmd.Context(), "POST", "/v1/backups", nil, &info); err != nil {
				return err
			}
			return output(cmd, info, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Backup %s: %s (%s, %d audit entries, %s)\nsha256 %s\n",
					info.ID, info.Location, size(info.Size), info.AuditEntries, time.Duration(info.DurationMS)*time.Millisecond, info.SHA256)
				return err
			})
		},
	}
}

func newBackupListCmd(client func() (*apiClient, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "list [--json]",
		Short: "List the stored backups, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var out struct {
				Backups []backup.Info `json:"backups"`
			}
			if err := c.do(cmd.Context(), "GET", "/v1/backups", nil, &out); err != nil {
				return err
			}
			return output(cmd, out.Backups, func(w io.Writer) error {
				return table(w, "ID\tCREATED\tSIZE\tLOCATION", out.Backups, func(b backup.Info) []string {
					return []string{b.ID, b.CreatedAt.Format(time.RFC3339), size(b.Size), b.Location}
				})
			})
		},
	}
}

func newBackupVerifyCmd(client func() (*apiClient, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "verify ID_OR_FILE [--json]",
		Short: "Restore-test a backup: restore it into scratch, check it, and measure RTO and RPO",
		Long: `Ask the server to restore a stored backup (by id), or a backup file sent from
here, into a scratch directory (a scratch database for PostgreSQL): decrypt
it, check the manifest's signature and every part's SHA-256, run PRAGMA
integrity_check, verify the audit log and prove it a prefix of the live one.
Prints how long that took (RTO evidence) and how old the backup is and how
many audit entries it would lose (RPO evidence). Exit 1 if it is refused.`,
		Example: "  gatehouse backup verify 20260102T150405.000Z-a1b2c3\n  gatehouse backup verify ./gatehouse-20260102T150405.000Z-a1b2c3.age --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var res backup.VerifyResult
			if f, ferr := os.Open(args[0]); ferr == nil {
				defer f.Close()
				err = c.do(cmd.Context(), "POST", "/v1/backups/verify", f, &res) // sent from here
			} else {
				err = c.do(cmd.Context(), "POST", "/v1/backups/"+url.PathEscape(args[0])+"/verify", nil, &res)
			}
			if err != nil {
				return err
			}
			// The result is printed either way: a refusal is a result.
			err = output(cmd, res, func(w io.Writer) error {
				if !res.OK {
					return nil
				}
				_, err := fmt.Fprintln(w, verifySummary(res))
				return err
			})
			if err == nil && !res.OK {
				err = fmt.Errorf("backup %s refused: %s", orName(res.ID, args[0]), res.Error)
			}
			return err
		},
	}
}

func orName(id, arg string) string {
	if id != "" {
		return id
	}
	return arg
}

// verifySummary is the line `backup verify` prints for a passed test.
func verifySummary(r backup.VerifyResult) string {
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	return fmt.Sprintf("backup %s OK: restored and checked in %s (RTO target %s: %s); made %s ago, %d audit entries behind the live log (RPO target %s: %s); store %s (%d keys, %d clients, %d users); audit log of %d entries is a prefix of the live one",
		r.ID, time.Duration(r.DurationMS)*time.Millisecond, time.Duration(r.RTOTargetSeconds)*time.Second, met(r.RTOMet),
		time.Duration(r.RPOSeconds)*time.Second, r.EntriesLost, time.Duration(r.RPOTargetSeconds)*time.Second, met(r.RPOMet),
		r.Store.Integrity, r.Store.Keys, r.Store.Clients, r.Store.Users, r.AuditEntries)
}

func newBackupPruneCmd(client func() (*apiClient, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "prune [--json]",
		Short: "Delete the backups older than backup.retention (never the newest); each deletion is audited",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var out struct {
				Deleted []backup.Info `json:"deleted"`
			}
			if err := c.do(cmd.Context(), "POST", "/v1/backups/prune", nil, &out); err != nil {
				return err
			}
			return output(cmd, out.Deleted, func(w io.Writer) error {
				for _, b := range out.Deleted {
					fmt.Fprintf(w, "deleted %s (%s)\n", b.ID, b.Location)
				}
				_, err := fmt.Fprintf(w, "%d backups deleted\n", len(out.Deleted))
				return err
			})
		},
	}
}

func newBackupRestoreCmd(env Env) *cobra.Command {
	var (
		dataDir, identity, storeDSN, configPath, vkey string
		force, allowForeign                           bool
	)
	cmd := &cobra.Command{
		Use:   "restore FILE_OR_ID --data-dir D --identity F [--force] [--allow-foreign] [--store DSN]",
		Short: "Restore a backup into a stopped deployment's data dir (and database), offline",
		Long: `Decrypt the backup with the identity, check the manifest's signature and
every part's SHA-256, and write it beside the data dir; check the restored
store and audit log; then swap the data dir for it (the old one is moved
aside, not deleted) and, for PostgreSQL, load the store in one transaction.
Then start gatehouse serve. FILE_OR_ID is a backup file, or the id of one
at the config's backup.dir or backup.url.

Refused: a data dir a running gatehouse uses; one (or a database) that holds
data, unless --force; a backup of another deployment (another audit key or
audit.origin), unless --allow-foreign. The signature is checked against
--verifier-key, else the audit key of the data at the target, else the key
the backup names.`,
		Example: `  gatehouse backup restore /backups/gatehouse-20260102T150405.000Z-a1b2c3.age --data-dir /var/lib/gatehouse --identity /etc/gatehouse/backup.key
  gatehouse backup restore b.age --data-dir /var/lib/gatehouse --identity backup.key --store postgres://gatehouse@db:5432/gatehouse --force`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := restoreConfig(env, configPath, storeDSN)
			if err != nil {
				return err
			}
			if dataDir != "" {
				cfg.DataDir = dataDir
			}
			dir, err := cfg.ResolveDataDir()
			if err != nil {
				return err
			}
			if identity == "" {
				identity = cfg.Backup.IdentityFile
			}
			if identity == "" {
				return usageError{errors.New("--identity is required (the age identity file that opens the backup)")}
			}
			r, size, err := openBackupFile(cmd.Context(), env, cfg, args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			opts := backup.RestoreOptions{
				Layout: app.BackupLayout(cfg, dir), Identities: backup.IdentityFile(identity), Origin: cfg.Audit.Origin,
				VerifierKey: vkey, Force: force, AllowForeign: allowForeign, Progress: backup.LineWriter(cmd.ErrOrStderr()),
			}
			opts.Size = size
			res, err := backup.Restore(cmd.Context(), r, opts)
			if errors.Is(err, backup.ErrForeign) {
				return fmt.Errorf("%w (pass --allow-foreign to restore it anyway; then serve needs audit.origin: %s)", err, res.Origin)
			}
			if err != nil {
				return err
			}
			return output(cmd, res, func(w io.Writer) error {
				fmt.Fprintf(w, "Restored backup %s of %s (made %s) into %s in %s: %d keys, %d clients, %d users; audit log of %d entries; signature checked against %s.\n",
					res.ID, res.Origin, res.CreatedAt.Format(time.RFC3339), dir, time.Duration(res.DurationMS)*time.Millisecond,
					res.Store.Keys, res.Store.Clients, res.Store.Users, res.AuditEntries, res.TrustedKey)
				for _, a := range res.MovedAside {
					fmt.Fprintf(w, "The previous data was kept in %s.\n", a)
				}
				if res.Config != "" {
					fmt.Fprintf(w, "The backup's config is in %s: compare it with yours.\n", res.Config)
				}
				_, err := fmt.Fprintln(w, "Start `gatehouse serve` to run the restored deployment.")
				return err
			})
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "the data dir to restore into (default: the config's data_dir)")
	cmd.Flags().StringVar(&identity, "identity", "", "age identity file that opens the backup (default: the config's backup.identity_file)")
	cmd.Flags().StringVar(&storeDSN, "store", "", "PostgreSQL DSN of the database to restore a PostgreSQL store into")
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file of the deployment restored into (audit.dir, audit.origin, store); default $GATEHOUSE_CONFIG")
	cmd.Flags().StringVar(&vkey, "verifier-key", "", "the audit verifier key the backup must be signed with (gatehouse audit pubkey)")
	cmd.Flags().BoolVar(&force, "force", false, "replace a data dir or database that holds data (the data dir is moved aside)")
	cmd.Flags().BoolVar(&allowForeign, "allow-foreign", false, "restore a backup of another deployment")
	return cmd
}

// openBackupFile opens a backup file, or the backup with that id at the
// destination the config names, and returns its size if known.
func openBackupFile(ctx context.Context, env Env, cfg *config.Config, arg string) (io.ReadCloser, int64, error) {
	f, ferr := os.Open(arg)
	if ferr == nil {
		var n int64
		if fi, err := f.Stat(); err == nil {
			n = fi.Size()
		}
		return f, n, nil
	}
	if !cfg.Backup.Enabled() || backup.IDOf(backup.FileName(arg)) == "" {
		return nil, 0, usageError{fmt.Errorf("open backup: %w", ferr)}
	}
	dest, err := app.BackupDestination(cfg.Backup, env.Getenv)
	if err != nil {
		return nil, 0, err
	}
	r, err := dest.Open(ctx, backup.FileName(arg))
	if err != nil {
		return nil, 0, fmt.Errorf("open backup %s: %w", arg, err)
	}
	return r, 0, nil
}

// restoreConfig is the config of the deployment restored into: the file
// given (or $GATEHOUSE_CONFIG), else the defaults, with a PostgreSQL store
// when --store names one (and then, unless the file says otherwise, the
// audit log in it and its origin named for the database, as serve would).
func restoreConfig(env Env, configPath, storeDSN string) (*config.Config, error) {
	if configPath == "" {
		configPath = env.Getenv("GATEHOUSE_CONFIG")
	}
	var cfg *config.Config
	var err error
	if configPath == "" && storeDSN != "" {
		dsn, _ := json.Marshal(storeDSN)
		cfg, err = config.Parse("--store", []byte("store: {driver: postgres, dsn: "+string(dsn)+"}\n"))
	} else {
		cfg, err = config.Load(configPath, env.Getenv)
		if err == nil && storeDSN != "" {
			cfg.Store.Driver, cfg.Store.DSN = "postgres", storeDSN
		}
	}
	if err != nil {
		return nil, usageError{fmt.Errorf("invalid config: %w", err)}
	}
	return cfg, nil
}

func newBackupKeygenCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Make a backup identity (age X25519) and print its recipient",
		Long: `Write a new age identity to FILE (mode 0600; refused if it exists) and
print its recipient (age1…) for backup.recipients. Keep the identity away
from the backup destination: whoever holds it can read every backup.
age-keygen makes the same files.`,
		Example: "  gatehouse backup keygen --out /etc/gatehouse/backup.key",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{errors.New("--out is required")}
			}
			id, err := age.GenerateX25519Identity()
			if err != nil {
				return err
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("write identity: %w", err)
			}
			fmt.Fprintf(f, "# created: %s\n# public key: %s\n%s\n", time.Now().UTC().Format(time.RFC3339), id.Recipient(), id)
			if err := errors.Join(f.Sync(), f.Close()); err != nil {
				return fmt.Errorf("write identity: %w", err)
			}
			r := id.Recipient().String()
			return output(cmd, map[string]string{"recipient": r, "identity_file": out}, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, r)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the identity to")
	return cmd
}

// size writes a byte count for people.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
