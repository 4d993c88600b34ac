package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/admin"
)

func newKeysCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list, revoke and rotate API keys",
		Long: `Manage API keys through a running gateway's admin API.

A key is shown once, when it is created or rotated; Gatehouse keeps only its
HMAC. Callers send it as "Authorization: Bearer <key>" or "X-API-Key: <key>".`,
	}
	client := clientFlags(cmd, env)
	cmd.AddCommand(newKeysCreateCmd(client), newKeysListCmd(client), newKeysGetCmd(client),
		newKeysRevokeCmd(client), newKeysRotateCmd(client))
	return cmd
}

func newKeysCreateCmd(client func() (*apiClient, error)) *cobra.Command {
	var (
		req    admin.CreateKeyRequest
		scopes string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME --scopes A,B [--tier T] [--expires 90d]",
		Short: "Create an API key (the key is printed once)",
		Example: `  gatehouse keys create --name ci --scopes demo:read
  gatehouse keys create --name partner --scopes read:signals --tier free --expires 90d --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Name == "" {
				return usageError{fmt.Errorf("--name is required")}
			}
			req.Scopes = splitList(scopes)
			if len(req.Scopes) == 0 {
				return usageError{fmt.Errorf("--scopes is required (comma-separated, e.g. --scopes demo:read)")}
			}
			c, err := client()
			if err != nil {
				return err
			}
			var k admin.Key
			if err := c.do(cmd.Context(), "POST", "/v1/keys", req, &k); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(w, k)
			}
			fmt.Fprintf(w, "Created key %s (%s) with scopes %s", k.ID, k.Name, strings.Join(k.Scopes, ","))
			if k.ExpiresAt != nil {
				fmt.Fprintf(w, ", expires %s", k.ExpiresAt.Format(time.RFC3339))
			}
			fmt.Fprintf(w, ".\nThe key is shown only now; store it safely:\n\n    %s\n\n", k.Key)
			return nil
		},
	}
	cmd.Flags().StringVar(&req.Name, "name", "", "a name for the key (who or what uses it)")
	cmd.Flags().StringVar(&scopes, "scopes", "", "comma-separated scopes, e.g. read:signals,demo:read")
	cmd.Flags().StringVar(&req.Tier, "tier", "", "rate-limit tier")
	cmd.Flags().StringVar(&req.ExpiresIn, "expires", "", "lifetime, e.g. 90d or 36h (default: never)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (has id and key)")
	return cmd
}

func newKeysListCmd(client func() (*apiClient, error)) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List API keys (never their secrets)",
		Example: "  gatehouse keys list\n  gatehouse keys list --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var out struct {
				Keys []admin.Key `json:"keys"`
			}
			if err := c.do(cmd.Context(), "GET", "/v1/keys", nil, &out); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tTIER\tSTATUS\tEXPIRES\tCREATED BY\tON BEHALF OF\tLAST USED")
			for _, k := range out.Keys {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), dash(k.Tier), k.Status, when(k.ExpiresAt, "never"),
					dash(k.CreatedBy), dash(k.CreatedByRoot), when(k.LastUsedAt, "never"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newKeysGetCmd(client func() (*apiClient, error)) *cobra.Command {
	return &cobra.Command{
		Use:     "get ID",
		Short:   "Show one API key as JSON",
		Example: "  gatehouse keys get key_3k2x7q9mfa4ebz6c",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var k admin.Key
			if err := c.do(cmd.Context(), "GET", "/v1/keys/"+url.PathEscape(args[0]), nil, &k); err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), k)
		},
	}
}

func newKeysRevokeCmd(client func() (*apiClient, error)) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke an API key: the next request that presents it fails",
		Example: "  gatehouse keys revoke key_3k2x7q9mfa4ebz6c",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var k admin.Key
			if err := c.do(cmd.Context(), "POST", "/v1/keys/"+url.PathEscape(args[0])+"/revoke", nil, &k); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), k)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked key %s (%s).\n", k.ID, k.Name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newKeysRotateCmd(client func() (*apiClient, error)) *cobra.Command {
	var (
		grace  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "rotate ID [--grace 24h]",
		Short: "Replace an API key; the old one keeps working for a grace period",
		Long: `Issue a new key with the same name, scopes and tier. The old key keeps
working for the grace period (default 24h), then fails. The new key is
printed once.`,
		Example: "  gatehouse keys rotate key_3k2x7q9mfa4ebz6c\n  gatehouse keys rotate key_3k2x7q9mfa4ebz6c --grace 0s --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var k admin.Key
			if err := c.do(cmd.Context(), "POST", "/v1/keys/"+url.PathEscape(args[0])+"/rotate", admin.RotateKeyRequest{Grace: grace}, &k); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(w, k)
			}
			until := "now"
			if k.Previous != nil && k.Previous.ExpiresAt != nil {
				until = k.Previous.ExpiresAt.Format(time.RFC3339)
			}
			fmt.Fprintf(w, "Rotated %s to %s. The old key works until %s.\nThe new key is shown only now; store it safely:\n\n    %s\n\n", args[0], k.ID, until, k.Key)
			return nil
		},
	}
	cmd.Flags().StringVar(&grace, "grace", "", "how long the old key keeps working (default 24h)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (has id and key)")
	return cmd
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// when formats an optional time, or says none.
func when(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
