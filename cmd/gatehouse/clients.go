package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/authn"
)

func newClientsCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "clients",
		Short: "Manage OAuth service clients (client-credentials grant)",
		Long: `Service clients exchange their client_id and client_secret for short-lived
JWTs at POST /oauth/token. The secret is shown once, at creation or
rotation; Gatehouse keeps only its HMAC.`,
	}
	client := clientFlags(cmd, env)
	var (
		req    admin.CreateClientRequest
		scopes string
	)
	create := &cobra.Command{
		Use:   "create --name NAME --scopes A,B [--tier T] [--expires 90d]",
		Short: "Register a client (its secret is printed once)",
		Example: `  gatehouse clients create --name billing --scopes read:signals
  gatehouse clients create --name etl --scopes read:signals,write:signals --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Scopes = splitList(scopes)
			if req.Name == "" || len(req.Scopes) == 0 {
				return usageError{fmt.Errorf("--name and --scopes are required")}
			}
			out, err := request[admin.Client](cmd.Context(), client, "POST", "/v1/clients", req)
			if err != nil {
				return err
			}
			return output(cmd, out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Created client %s (%s) with scopes %s.\nThe secret is shown only now; store it safely:\n\n    client_id:     %s\n    client_secret: %s\n\n",
					out.ClientID, out.Name, strings.Join(out.Scopes, ","), out.ClientID, out.ClientSecret)
				return err
			})
		},
	}
	create.Flags().StringVar(&req.Name, "name", "", "a name for the client")
	create.Flags().StringVar(&scopes, "scopes", "", "comma-separated scopes the client may request")
	create.Flags().StringVar(&req.Tier, "tier", "", "rate-limit tier")
	create.Flags().StringVar(&req.ExpiresIn, "expires", "", "lifetime, e.g. 90d or 36h (default: never; with a token as GATEHOUSE_TOKEN, when the token expires)")

	var status, name string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List clients (never their secrets)",
		Long:    "List service clients, oldest first. The server sends them a page at a time; this follows every page.",
		Example: "  gatehouse clients list\n  gatehouse clients list --status locked\n  gatehouse clients list --name billing --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Clients []admin.Client `json:"clients"`
			}
			var err error
			out.Clients, err = listAll(cmd.Context(), client, "/v1/clients", filterQuery("status", status, "name", name),
				func(p admin.ClientList) []admin.Client {
					out := make([]admin.Client, 0, len(p.Clients))
					for _, v := range p.Clients {
						out = append(out, *v)
					}
					return out
				}, func(p admin.ClientList) string { return p.Next })
			if err != nil {
				return err
			}
			return output(cmd, out, func(w io.Writer) error {
				return table(w, "CLIENT_ID\tNAME\tSCOPES\tTIER\tSTATUS\tCREATED\tEXPIRES\tCREATED BY\tON BEHALF OF\tLAST USED", out.Clients, func(cl admin.Client) []string {
					return []string{cl.ClientID, cl.Name, strings.Join(cl.Scopes, ","), dash(cl.Tier), lockedStatus(cl.Status, cl.LockedUntil), cl.CreatedAt.Format(time.RFC3339),
						when(cl.ExpiresAt, "never"), dash(cl.CreatedBy), dash(cl.CreatedByRoot), when(cl.LastUsedAt, "never")}
				})
			})
		},
	}
	list.Flags().StringVar(&status, "status", "", "only clients in this state: active, expired, revoked or locked")
	list.Flags().StringVar(&name, "name", "", "only clients whose name contains this (any case), or with this client id")
	get := &cobra.Command{
		Use:     "get CLIENT_ID",
		Short:   "Show one client (never its secret)",
		Example: "  gatehouse clients get cl_3k2x7q9mfa4ebz6c --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := request[admin.Client](cmd.Context(), client, "GET", "/v1/clients/"+url.PathEscape(args[0]), nil)
			if err != nil {
				return err
			}
			return output(cmd, cl, func(w io.Writer) error {
				return fields(w, "Client ID", cl.ClientID, "Name", cl.Name, "Scopes", strings.Join(cl.Scopes, ","), "Tier", dash(cl.Tier),
					"Status", lockedStatus(cl.Status, cl.LockedUntil), "Created", cl.CreatedAt.Format(time.RFC3339), "Secret rotated", when(cl.SecretRotatedAt, "never"),
					"Expires", when(cl.ExpiresAt, "never"), "Revoked", when(cl.RevokedAt, "-"), "Created by", dash(cl.CreatedBy),
					"On behalf of", dash(cl.CreatedByRoot), "Last used", when(cl.LastUsedAt, "never"))
			})
		},
	}
	action := func(use, short, path, done string) *cobra.Command {
		return &cobra.Command{
			Use:   use + " CLIENT_ID",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				out, err := request[admin.Client](cmd.Context(), client, "POST", "/v1/clients/"+url.PathEscape(args[0])+path, nil)
				if err != nil {
					return err
				}
				return output(cmd, out, func(w io.Writer) error {
					fmt.Fprintf(w, done+"\n", out.ClientID)
					if out.ClientSecret != "" {
						fmt.Fprintf(w, "The new secret is shown only now; store it safely:\n\n    client_secret: %s\n\n", out.ClientSecret)
					}
					return nil
				})
			},
		}
	}
	cmd.AddCommand(create, list, get,
		action("revoke", "Revoke a client: no new tokens, and its tokens fail on their next use", "/revoke", "Revoked client %s."),
		action("rotate", "Give a client a new secret (the old one stops working at once)", "/rotate", "Rotated the secret of client %s."),
		action("unlock", "Lift a client's lockouts after failed authentications (from every address)", "/unlock", "Unlocked client %s."))
	return cmd
}

// lockedStatus is a status, with "locked until T" while a lockout is in
// force.
func lockedStatus(status string, lockedUntil *time.Time) string {
	if lockedUntil == nil {
		return status
	}
	return status + ", locked until " + lockedUntil.Format(time.RFC3339)
}

func newSigningKeysCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "signing-keys",
		Short: "List or rotate the keys that sign Gatehouse's JWTs",
		Long: `Gatehouse signs its access tokens with one active key (EdDSA by default)
and publishes every key whose tokens may still be valid at
/.well-known/jwks.json. Keys rotate on schedule (auth.signing_key_rotation,
default 180d) and on demand; a retired key stays published until the tokens
it signed have expired.`,
	}
	client := clientFlags(cmd, env)
	show := func(cmd *cobra.Command, method, path string) error {
		out, err := request[struct {
			Keys []authn.SigningKeyInfo `json:"keys"`
		}](cmd.Context(), client, method, path, nil)
		if err != nil {
			return err
		}
		return output(cmd, out, func(w io.Writer) error {
			return table(w, "KID\tALG\tCREATED\tSTATE", out.Keys, func(k authn.SigningKeyInfo) []string {
				state := "active"
				if k.RetiredAt != nil {
					state = "retired " + k.RetiredAt.Format(time.RFC3339)
				}
				return []string{k.KID, k.Alg, k.CreatedAt.Format(time.RFC3339), state}
			})
		})
	}
	list := &cobra.Command{Use: "list", Short: "List signing keys", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return show(cmd, "GET", "/v1/signing-keys") }}
	rotate := &cobra.Command{Use: "rotate", Short: "Start signing with a new key now", Args: cobra.NoArgs,
		Example: "  gatehouse signing-keys rotate",
		RunE:    func(cmd *cobra.Command, args []string) error { return show(cmd, "POST", "/v1/signing-keys/rotate") }}
	cmd.AddCommand(list, rotate)
	return cmd
}
