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

func newUsersCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage the people who run Gatehouse (admin, security, auditor)",
	}
	client := clientFlags(cmd, env)
	// show prints a user: fields, or JSON.
	show := func(cmd *cobra.Command, u admin.User, done string) error {
		return output(cmd, u, func(w io.Writer) error {
			if done != "" {
				_, err := fmt.Fprintf(w, done+"\n", u.Username)
				return err
			}
			return fields(w, "Username", u.Username, "Role", u.Role, "Scopes", dash(strings.Join(u.Scopes, ",")), "Status", userStatus(u),
				"Second factor", fmt.Sprint(u.TOTPEnabled), "Last sign-in", when(u.LastSignInAt, "never"), "Password changed", u.PasswordChangedAt.Format(time.RFC3339),
				"Created", u.CreatedAt.Format(time.RFC3339), "Created by", dash(u.CreatedBy), "On behalf of", dash(u.CreatedByRoot))
		})
	}
	var (
		req      admin.CreateUserRequest
		scopes   string
		pwdStdin bool
	)
	create := &cobra.Command{
		Use:   "create USERNAME --role admin|security|auditor [--scopes a,b] [--password-stdin]",
		Short: "Create a user (prompts for the password)",
		Example: `  gatehouse users create alice --role admin
  echo "$PASSWORD" | gatehouse users create audit-bob --role auditor --password-stdin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Username, req.Scopes = args[0], splitList(scopes)
			pw, err := readPassword(env, "Password for "+args[0]+": ", pwdStdin)
			if err != nil {
				return err
			}
			req.Password = pw
			u, err := request[admin.User](cmd.Context(), client, "POST", "/v1/users", req)
			if err != nil {
				return err
			}
			return show(cmd, u, "Created user %s ("+u.Role+").")
		},
	}
	create.Flags().StringVar(&req.Role, "role", "", "admin, security or auditor")
	create.Flags().StringVar(&scopes, "scopes", "", "gateway scopes the user may delegate to tokens")
	create.Flags().BoolVar(&pwdStdin, "password-stdin", false, "read the password from standard input")
	var status, role, name string
	list := &cobra.Command{
		Use: "list", Short: "List users", Args: cobra.NoArgs,
		Long:    "List users in username order. The server sends them a page at a time; this follows every page.",
		Example: "  gatehouse users list\n  gatehouse users list --role auditor --status active",
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Users []admin.User `json:"users"`
			}
			var err error
			out.Users, err = listAll(cmd.Context(), client, "/v1/users", filterQuery("status", status, "role", role, "name", name),
				func(p admin.UserList) []admin.User {
					out := make([]admin.User, 0, len(p.Users))
					for _, v := range p.Users {
						out = append(out, *v)
					}
					return out
				}, func(p admin.UserList) string { return p.Next })
			if err != nil {
				return err
			}
			return output(cmd, out, func(w io.Writer) error {
				return table(w, "USERNAME\tROLE\tSTATUS\tTOTP\tLAST SIGN-IN\tPASSWORD CHANGED\tCREATED BY\tON BEHALF OF", out.Users, func(u admin.User) []string {
					return []string{u.Username, u.Role, userStatus(u), fmt.Sprint(u.TOTPEnabled), when(u.LastSignInAt, "never"), u.PasswordChangedAt.Format(time.RFC3339),
						dash(u.CreatedBy), dash(u.CreatedByRoot)}
				})
			})
		},
	}
	list.Flags().StringVar(&status, "status", "", "only users in this state: active, disabled or locked")
	list.Flags().StringVar(&role, "role", "", "only users of this role: admin, security or auditor")
	list.Flags().StringVar(&name, "name", "", "only users whose username contains this (any case)")
	get := &cobra.Command{
		Use: "get USERNAME", Short: "Show one user", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := request[admin.User](cmd.Context(), client, "GET", "/v1/users/"+url.PathEscape(args[0]), nil)
			if err != nil {
				return err
			}
			return show(cmd, u, "")
		},
	}
	var resetStdin bool
	reset := &cobra.Command{
		Use: "reset-password USERNAME [--password-stdin]", Short: "Set a temporary password the user must change at next sign-in", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(env, "Temporary password for "+args[0]+": ", resetStdin)
			if err != nil {
				return err
			}
			u, err := request[admin.User](cmd.Context(), client, "POST", "/v1/users/"+url.PathEscape(args[0])+"/password", admin.PasswordRequest{NewPassword: pw})
			if err != nil {
				return err
			}
			return show(cmd, u, "Reset the password of %s; they must choose a new one at next sign-in.")
		},
	}
	reset.Flags().BoolVar(&resetStdin, "password-stdin", false, "read the password from standard input")
	// post is a command that POSTs to /v1/users/NAME/<what> and prints done.
	post := func(use, short, what, done string) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				u, err := request[admin.User](cmd.Context(), client, "POST", "/v1/users/"+url.PathEscape(args[0])+"/"+what, nil)
				if err != nil {
					return err
				}
				return show(cmd, u, done)
			},
		}
	}
	setRole := &cobra.Command{
		Use: "set-role USERNAME admin|security|auditor", Short: "Change a user's role (a demotion revokes their tokens and ends their sessions)",
		Example: "  gatehouse users set-role bob security",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !authn.ValidRole(args[1]) {
				return usageError{fmt.Errorf("role %q: must be one of %s", args[1], strings.Join(authn.Roles(), ", "))}
			}
			u, err := request[admin.User](cmd.Context(), client, "PUT", "/v1/users/"+url.PathEscape(args[0])+"/role", admin.RoleRequest{Role: args[1]})
			if err != nil {
				return err
			}
			return show(cmd, u, "User %s now has role "+u.Role+".")
		},
	}
	del := &cobra.Command{
		Use: "delete USERNAME", Short: "Delete a user: their sessions and tokens stop working at once, and the account is removed (audited)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "DELETE", "/v1/users/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			return output(cmd, map[string]string{"username": args[0], "status": "deleted"}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Deleted user %s.\n", args[0])
				return err
			})
		},
	}
	cmd.AddCommand(create, list, get, reset, setRole, del,
		post("disable USERNAME", "Disable a user: their sessions and tokens stop working at once", "disable", "Disabled user %s."),
		post("enable USERNAME", "Enable a disabled user again (their old sessions and tokens stay revoked)", "enable", "Enabled user %s."),
		post("unlock USERNAME", "End a sign-in lockout and forget the failed attempts (audited)", "unlock", "Unlocked user %s."),
		post("reset-totp USERNAME", "Remove a user's second factor (a lost authenticator) and end their sessions (audited)", "totp/reset",
			"Removed the second factor of %s; they enrol a new one at their next sign-in."))
	return cmd
}

// userStatus is a user's status, with its sign-in lockout.
func userStatus(u admin.User) string { return lockedStatus(u.Status, u.LockedUntil) }

func newTokensCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{Use: "tokens", Short: "Create, list and revoke your personal access tokens"}
	client := clientFlags(cmd, env)
	var (
		req    admin.CreateTokenRequest
		scopes string
		all    bool

		tokStatus, tokName string
	)
	create := &cobra.Command{
		Use: "create --name N [--scopes a,b] [--role R] [--expires 90d]", Short: "Create a token with a subset of your scopes (printed once)", Args: cobra.NoArgs,
		Example: "  gatehouse tokens create --name ci --scopes read:signals --expires 30d",
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Scopes = splitList(scopes)
			t, err := request[admin.Token](cmd.Context(), client, "POST", "/v1/tokens", req)
			if err != nil {
				return err
			}
			return output(cmd, t, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Created token %s, valid until %s. It is shown only now:\n\n    %s\n\n", t.ID, t.ExpiresAt.Format(time.RFC3339), t.Token)
				return err
			})
		},
	}
	create.Flags().StringVar(&req.Name, "name", "", "what the token is for")
	create.Flags().StringVar(&scopes, "scopes", "", "comma-separated subset of your scopes")
	create.Flags().StringVar(&req.Role, "role", "", "admin-API role, at most yours")
	create.Flags().StringVar(&req.ExpiresIn, "expires", "", "lifetime (default 90d, at most 365d)")
	list := &cobra.Command{
		Use: "list [--all]", Short: "List your tokens (admins: --all)", Args: cobra.NoArgs,
		Long:    "List your personal access tokens (admins: everyone's with --all), oldest first. The server sends them a page at a time; this follows every page.",
		Example: "  gatehouse tokens list\n  gatehouse tokens list --all --status active --name ci",
		RunE: func(cmd *cobra.Command, args []string) error {
			q := filterQuery("status", tokStatus, "name", tokName)
			if all {
				q.Set("all", "true")
			}
			var out struct {
				Tokens []admin.Token `json:"tokens"`
			}
			var err error
			out.Tokens, err = listAll(cmd.Context(), client, "/v1/tokens", q,
				func(p admin.TokenList) []admin.Token {
					out := make([]admin.Token, 0, len(p.Tokens))
					for _, v := range p.Tokens {
						out = append(out, *v)
					}
					return out
				}, func(p admin.TokenList) string { return p.Next })
			if err != nil {
				return err
			}
			return output(cmd, out, func(w io.Writer) error {
				return table(w, "ID\tUSER\tNAME\tSCOPES\tROLE\tSTATUS\tEXPIRES\tCREATED BY\tLAST USED", out.Tokens, func(t admin.Token) []string {
					return []string{t.ID, t.Username, t.Name, strings.Join(t.Scopes, ","), dash(t.Role), t.Status, t.ExpiresAt.Format(time.RFC3339),
						dash(t.CreatedBy), when(t.LastUsedAt, "never")}
				})
			})
		},
	}
	list.Flags().BoolVar(&all, "all", false, "everyone's tokens (admins)")
	list.Flags().StringVar(&tokStatus, "status", "", "only tokens in this state: active, expired or revoked")
	list.Flags().StringVar(&tokName, "name", "", "only tokens whose name contains this (any case), or with this id")
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke a token", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := request[admin.Token](cmd.Context(), client, "POST", "/v1/tokens/"+url.PathEscape(args[0])+"/revoke", nil)
			if err != nil {
				return err
			}
			return output(cmd, t, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Revoked token %s.\n", t.ID)
				return err
			})
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
