package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
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
			k, err := request[admin.Key](cmd.Context(), client, "POST", "/v1/keys", req)
			if err != nil {
				return err
			}
			return output(cmd, k, func(w io.Writer) error {
				fmt.Fprintf(w, "Created key %s (%s) with scopes %s", k.ID, k.Name, strings.Join(k.Scopes, ","))
				if k.ExpiresAt != nil {
					fmt.Fprintf(w, ", expires %s", k.ExpiresAt.Format(time.RFC3339))
				}
				_, err := fmt.Fprintf(w, ".\nThe key is shown only now; store it safely:\n\n    %s\n\n", k.Key)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&req.Name, "name", "", "a name for the key (who or what uses it)")
	cmd.Flags().StringVar(&scopes, "scopes", "", "comma-separated scopes, e.g. read:signals,demo:read")
	cmd.Flags().StringVar(&req.Tier, "tier", "", "rate-limit tier")
	cmd.Flags().StringVar(&req.ExpiresIn, "expires", "", "lifetime, e.g. 90d or 36h (default: never)")
	return cmd
}

func newKeysListCmd(client func() (*apiClient, error)) *cobra.Command {
	var status, name string
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List API keys (never their secrets)",
		Long:    "List API keys, oldest first. The server sends them a page at a time; this follows every page.",
		Example: "  gatehouse keys list\n  gatehouse keys list --status active --name ci\n  gatehouse keys list --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Keys []admin.Key `json:"keys"`
			}
			var err error
			out.Keys, err = listAll(cmd.Context(), client, "/v1/keys", filterQuery("status", status, "name", name),
				func(p admin.KeyList) []admin.Key {
					out := make([]admin.Key, 0, len(p.Keys))
					for _, k := range p.Keys {
						out = append(out, *k)
					}
					return out
				}, func(p admin.KeyList) string { return p.Next })
			if err != nil {
				return err
			}
			return output(cmd, out, func(w io.Writer) error {
				return table(w, "ID\tNAME\tSCOPES\tTIER\tSTATUS\tEXPIRES\tCREATED BY\tON BEHALF OF\tLAST USED", out.Keys, func(k admin.Key) []string {
					return []string{k.ID, k.Name, strings.Join(k.Scopes, ","), dash(k.Tier), k.Status, when(k.ExpiresAt, "never"),
						dash(k.CreatedBy), dash(k.CreatedByRoot), when(k.LastUsedAt, "never")}
				})
			})
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only keys in this state: active, expired or revoked")
	cmd.Flags().StringVar(&name, "name", "", "only keys whose name contains this (any case)")
	return cmd
}

func newKeysGetCmd(client func() (*apiClient, error)) *cobra.Command {
	return &cobra.Command{
		Use:     "get ID",
		Short:   "Show one API key",
		Example: "  gatehouse keys get key_3k2x7q9mfa4ebz6c",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := request[admin.Key](cmd.Context(), client, "GET", "/v1/keys/"+url.PathEscape(args[0]), nil)
			if err != nil {
				return err
			}
			return output(cmd, k, func(w io.Writer) error {
				return fields(w, "ID", k.ID, "Name", k.Name, "Scopes", strings.Join(k.Scopes, ","), "Tier", dash(k.Tier), "Status", k.Status,
					"Created", k.CreatedAt.Format(time.RFC3339), "Expires", when(k.ExpiresAt, "never"), "Revoked", when(k.RevokedAt, "-"),
					"Rotated to", dash(k.RotatedTo), "Created by", dash(k.CreatedBy), "On behalf of", dash(k.CreatedByRoot), "Last used", when(k.LastUsedAt, "never"))
			})
		},
	}
}

func newKeysRevokeCmd(client func() (*apiClient, error)) *cobra.Command {
	return &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke an API key: the next request that presents it fails",
		Example: "  gatehouse keys revoke key_3k2x7q9mfa4ebz6c",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := request[admin.Key](cmd.Context(), client, "POST", "/v1/keys/"+url.PathEscape(args[0])+"/revoke", nil)
			if err != nil {
				return err
			}
			return output(cmd, k, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Revoked key %s (%s).\n", k.ID, k.Name)
				return err
			})
		},
	}
}

func newKeysRotateCmd(client func() (*apiClient, error)) *cobra.Command {
	var grace string
	cmd := &cobra.Command{
		Use:   "rotate ID [--grace 24h]",
		Short: "Replace an API key; the old one keeps working for a grace period",
		Long: `Issue a new key with the same name, scopes and tier. The old key keeps
working for the grace period (default 24h), then fails. The new key is
printed once.`,
		Example: "  gatehouse keys rotate key_3k2x7q9mfa4ebz6c\n  gatehouse keys rotate key_3k2x7q9mfa4ebz6c --grace 0s --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := request[admin.Key](cmd.Context(), client, "POST", "/v1/keys/"+url.PathEscape(args[0])+"/rotate", admin.RotateKeyRequest{Grace: grace})
			if err != nil {
				return err
			}
			return output(cmd, k, func(w io.Writer) error {
				until := "now"
				if k.Previous != nil && k.Previous.ExpiresAt != nil {
					until = k.Previous.ExpiresAt.Format(time.RFC3339)
				}
				_, err := fmt.Fprintf(w, "Rotated %s to %s. The old key works until %s.\nThe new key is shown only now; store it safely:\n\n    %s\n\n", args[0], k.ID, until, k.Key)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&grace, "grace", "", "how long the old key keeps working (default 24h)")
	return cmd
}
