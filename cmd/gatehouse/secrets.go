package main

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/secrets"
)

func newSecretsCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Show the server's secrets' ages against their rotation cadence, and rotate them",
		Long: `The server's own secrets — the key-hash pepper, the JWT signing keys, the
audit checkpoint key, the backup identity, the Vault login — and the oldest
API key and client secret in use, each with where it lives (a file, an
environment variable, Vault, PostgreSQL sealed under the master key), its
age, its class's rotation cadence (secrets.cadence in the config), the date
it is due and whether it is overdue. Never a value. See docs/secrets.md.`,
	}
	client := clientFlags(cmd, env)
	status := &cobra.Command{
		Use:   "status",
		Short: "List every secret with its age, cadence, due date and where it lives",
		Long: `List every secret with its age, cadence, due date and where it lives.
With --json: a list of {name, class, provider, where, version, created_at,
age_seconds, cadence_seconds, due_at, overdue, rotatable, rotate}
(age_seconds, created_at and due_at are null when the provider cannot tell
when the value was made, as for an environment variable). The database and
Redis passwords named by reference (store.password_secret,
ratelimit.redis_password_secret) also have loaded_at, when this replica read
the value in use, and reload_error when reading it again failed; a password
written inline in the config is listed with a warning. Exit 0 whether or
not a secret is overdue: read "overdue".`,
		Example: "  gatehouse secrets status\n  gatehouse secrets status --json | jq '.[] | select(.overdue)'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := request[struct {
				Secrets []secrets.Status `json:"secrets"`
			}](cmd.Context(), client, "GET", "/v1/secrets", nil)
			if err != nil {
				return err
			}
			return output(cmd, out.Secrets, func(w io.Writer) error {
				err := table(w, "NAME\tCLASS\tPROVIDER\tAGE\tCADENCE\tDUE\tSTATE\tWHERE", out.Secrets, func(s secrets.Status) []string {
					return []string{s.Name, s.Class, s.Provider, days(s.AgeSeconds), days(&s.CadenceSeconds), when(s.DueAt, "-"), secretState(s), s.Where}
				})
				if err != nil {
					return err
				}
				// What a state of RELOAD FAILED or WARNING stands for.
				for _, s := range out.Secrets {
					switch {
					case s.ReloadError != "":
						_, err = fmt.Fprintf(w, "%s: reload failed: %s\n", s.Name, s.ReloadError)
					case s.Warning != "":
						_, err = fmt.Fprintf(w, "%s: warning: %s\n", s.Name, s.Warning)
					}
					if err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate NAME",
		Short: "Rotate one secret where its provider allows it (signing-keys, pepper, audit-key, vault-token)",
		Long: `Rotate one secret, as named by 'gatehouse secrets status':

  signing-keys  start signing JWTs with a new key; the retired key stays in
                the JWKS until the tokens it signed have expired
  pepper        add a pepper version: new API keys, client secrets, tokens
                and admin tokens hash under it; existing ones verify under
                the version their hash names until they are rotated (the
                status lists how many still use each version)
  audit-key     a new audit checkpoint key, and a hand-over checkpoint
                signed by the old and the new one
  vault-token   log in to Vault anew (token auth: read token_file again)

Any other secret is rotated otherwise, and the server says how (exit 1):
the status's "rotate" field too. An unknown name exits 1 (the server
answers 404); a malformed one exits 2 without asking. Audited as
admin.secret.rotate with the versions and ages before and after.`,
		Example: "  gatehouse secrets rotate signing-keys\n  gatehouse secrets rotate pepper\n  gatehouse secrets rotate vault-token --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := secrets.CheckName(name); err != nil {
				return usageError{err}
			}
			out, err := request[struct {
				Before secrets.Status `json:"before"`
				After  secrets.Status `json:"after"`
			}](cmd.Context(), client, "POST", "/v1/secrets/"+url.PathEscape(name)+"/rotate", nil)
			if err != nil {
				return err
			}
			return output(cmd, out, func(w io.Writer) error {
				return fields(w, "rotated", name, "provider", out.After.Provider, "where", out.After.Where,
					"created", when(out.After.CreatedAt, "unknown"), "due", when(out.After.DueAt, "-"),
					"before", "created "+when(out.Before.CreatedAt, "unknown")+", version "+strconv.Itoa(out.Before.Version))
			})
		},
	}
	reseal := &cobra.Command{
		Use:   "reseal",
		Short: "Re-seal every sealed secret under the current master key (master key rotation)",
		Long: `Re-seal every secret row in PostgreSQL that is still sealed under a previous
master key (` + secrets.MasterKeyPreviousEnv + `) under the current one
(` + secrets.MasterKeyEnv + `), in one transaction, through the running
server. Other replicas keep serving meanwhile: they hold both keys. It is
idempotent; once "sealed_under_previous" is 0 the previous key can be
removed from every replica. Same as 'gatehouse secrets rotate master-key';
audited as admin.secret.rotate with the key ids, never a key. See
docs/secrets.md, Rotating the master key.`,
		Example: "  gatehouse secrets reseal\n  gatehouse secrets reseal --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := request[struct {
				Before secrets.Status `json:"before"`
				After  secrets.Status `json:"after"`
			}](cmd.Context(), client, "POST", "/v1/secrets/master-key/rotate", nil)
			if err != nil {
				return err
			}
			count := func(n *int) string {
				if n == nil {
					return "-"
				}
				return strconv.Itoa(*n)
			}
			return output(cmd, out.After, func(w io.Writer) error {
				return fields(w, "resealed under key id", out.After.KeyID,
					"rows under a previous key before", count(out.Before.SealedUnderPrevious),
					"rows under a previous key now", count(out.After.SealedUnderPrevious),
					"where", out.After.Where)
			})
		},
	}
	cmd.AddCommand(status, rotate, reseal)
	return cmd
}

// days formats a number of seconds as days ("-" for unknown).
func days(secs *int64) string {
	if secs == nil {
		return "-"
	}
	d := time.Duration(*secs) * time.Second
	if d < 48*time.Hour {
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%dd", *secs/86400)
}

func secretState(s secrets.Status) string {
	switch {
	case s.ReloadError != "":
		return "RELOAD FAILED"
	case s.Overdue:
		return "OVERDUE"
	case s.Warning != "":
		return "WARNING"
	case s.AgeSeconds == nil:
		return "age unknown"
	}
	return "ok"
}
