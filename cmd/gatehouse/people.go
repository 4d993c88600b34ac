package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gatehouse/gatehouse/internal/admin"
)

// credentials is what `gatehouse login` stores for later commands.
type credentials struct {
	Addr     string `json:"addr"`
	Token    string `json:"token"`
	TokenID  string `json:"token_id"`
	Username string `json:"username"`
}

func credentialsPath(env Env) (string, error) {
	if d := env.Getenv("GATEHOUSE_CONFIG_DIR"); d != "" {
		return filepath.Join(d, "credentials.json"), nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config dir: %w (set GATEHOUSE_CONFIG_DIR)", err)
	}
	return filepath.Join(d, "gatehouse", "credentials.json"), nil
}

func loadCredentials(env Env) (*credentials, error) {
	p, err := credentialsPath(env)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var c credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return &c, nil
}

// readPassword reads a password from stdin (one line) when fromStdin, or
// prompts without echo on the terminal.
func readPassword(env Env, prompt string, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(env.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	f, ok := env.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usageError{errors.New("no terminal to prompt for a password: use --password-stdin")}
	}
	fmt.Fprint(env.Stderr, prompt)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(env.Stderr)
	return string(b), err
}

func newUsersCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage the people who run Gatehouse (admin, security, auditor)",
	}
	client := clientFlags(cmd, env)
	var (
		req      admin.CreateUserRequest
		scopes   string
		pwdStdin bool
		listJSON bool
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
			c, err := client()
			if err != nil {
				return err
			}
			var u admin.User
			if err := c.do(cmd.Context(), "POST", "/v1/users", req, &u); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created user %s (%s).\n", u.Username, u.Role)
			return nil
		},
	}
	create.Flags().StringVar(&req.Role, "role", "", "admin, security or auditor")
	create.Flags().StringVar(&scopes, "scopes", "", "gateway scopes the user may delegate to tokens")
	create.Flags().BoolVar(&pwdStdin, "password-stdin", false, "read the password from standard input")
	list := &cobra.Command{
		Use: "list", Short: "List users", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var out struct {
				Users []admin.User `json:"users"`
			}
			if err := c.do(cmd.Context(), "GET", "/v1/users", nil, &out); err != nil {
				return err
			}
			if listJSON {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USERNAME\tROLE\tSTATUS\tTOTP\tPASSWORD CHANGED\tCREATED BY\tON BEHALF OF")
			for _, u := range out.Users {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%s\n", u.Username, u.Role, u.Status, u.TOTPEnabled, u.PasswordChangedAt.Format(time.RFC3339),
					dash(u.CreatedBy), dash(u.CreatedByRoot))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")
	var resetStdin bool
	reset := &cobra.Command{
		Use: "reset-password USERNAME [--password-stdin]", Short: "Set a temporary password the user must change at next sign-in", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(env, "Temporary password for "+args[0]+": ", resetStdin)
			if err != nil {
				return err
			}
			c, err := client()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "POST", "/v1/users/"+url.PathEscape(args[0])+"/password", admin.PasswordRequest{NewPassword: pw}, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Reset the password of %s; they must choose a new one at next sign-in.\n", args[0])
			return nil
		},
	}
	reset.Flags().BoolVar(&resetStdin, "password-stdin", false, "read the password from standard input")
	// post is a command that POSTs to /v1/users/NAME/<what> and prints done.
	post := func(use, short, what, done string) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := client()
				if err != nil {
					return err
				}
				if err := c.do(cmd.Context(), "POST", "/v1/users/"+url.PathEscape(args[0])+"/"+what, nil, nil); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), done+"\n", args[0])
				return nil
			},
		}
	}
	disable := post("disable USERNAME", "Disable a user: their sessions and tokens stop working at once", "disable", "Disabled user %s.")
	unlock := post("unlock USERNAME", "End a sign-in lockout and forget the failed attempts (audited)", "unlock", "Unlocked user %s.")
	resetTOTP := post("reset-totp USERNAME", "Remove a user's second factor (a lost authenticator) and end their sessions (audited)", "totp/reset",
		"Removed the second factor of %s; they enrol a new one at their next sign-in.")
	cmd.AddCommand(create, list, disable, reset, unlock, resetTOTP)
	return cmd
}

func newLoginCmd(env Env) *cobra.Command {
	var (
		addr, username, totp string
		pwdStdin             bool
		expires              string
	)
	cmd := &cobra.Command{
		Use:   "login --username NAME [--password-stdin] [--totp CODE]",
		Short: "Sign in and store a personal access token for this CLI",
		Long: `Sign in to the admin API and create a personal access token for this CLI
(with your role and scopes, 90 days by default). It is stored in your
config dir (mode 0600) and used by later commands when GATEHOUSE_TOKEN is
unset. ` + "`gatehouse logout`" + ` revokes and deletes it.`,
		Example: "  gatehouse login --username alice\n  echo \"$PW\" | gatehouse login --username alice --password-stdin --totp 123456",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if username == "" {
				return usageError{errors.New("--username is required")}
			}
			if addr == "" {
				addr = env.Getenv("GATEHOUSE_ADDR")
			}
			if addr == "" {
				addr = defaultAddr
			}
			pw, err := readPassword(env, "Password for "+username+": ", pwdStdin)
			if err != nil {
				return err
			}
			return runLogin(cmd.Context(), env, cmd.OutOrStdout(), strings.TrimSuffix(addr, "/"), admin.LoginRequest{Username: username, Password: pw, TOTPCode: totp}, expires)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "admin API address (default $GATEHOUSE_ADDR or "+defaultAddr+")")
	cmd.Flags().StringVar(&username, "username", "", "your username")
	cmd.Flags().StringVar(&totp, "totp", "", "one-time code, if your account has a second factor")
	cmd.Flags().BoolVar(&pwdStdin, "password-stdin", false, "read the password from standard input")
	cmd.Flags().StringVar(&expires, "expires", "90d", "lifetime of the CLI token (at most 365d)")
	return cmd
}

func runLogin(ctx context.Context, env Env, w io.Writer, addr string, login admin.LoginRequest, expires string) error {
	jar, _ := cookiejar.New(nil)
	c := &apiClient{addr: addr, http: &http.Client{Timeout: 30 * time.Second, Jar: jar}}
	var sess admin.SessionResponse
	if err := c.do(ctx, "POST", "/v1/session", login, &sess); err != nil {
		return err
	}
	if sess.Restricted != "" {
		return fmt.Errorf("your role requires a second factor and you have none yet: enrol one first (POST /v1/me/totp)")
	}
	c.csrf = sess.CSRFToken
	host, _ := os.Hostname()
	var tok admin.Token
	err := c.do(ctx, "POST", "/v1/tokens", admin.CreateTokenRequest{Name: "gatehouse CLI on " + host, Role: sess.User.Role, Scopes: sess.User.Scopes, ExpiresIn: expires}, &tok)
	c.do(ctx, "DELETE", "/v1/session", nil, nil)
	if err != nil {
		return err
	}
	p, err := credentialsPath(env)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(credentials{Addr: addr, Token: tok.Token, TokenID: tok.ID, Username: login.Username}, "", "  ")
	if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return err
	}
	fmt.Fprintf(w, "Signed in as %s (%s). Token %s stored in %s, valid until %s.\n", login.Username, sess.User.Role, tok.ID, p, tok.ExpiresAt.Format(time.RFC3339))
	return nil
}

func newLogoutCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use: "logout", Short: "Revoke and delete the token stored by `gatehouse login`", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cr, err := loadCredentials(env)
			if err != nil {
				return fmt.Errorf("not signed in (%v)", err)
			}
			c := &apiClient{addr: cr.Addr, token: cr.Token, http: &http.Client{Timeout: 30 * time.Second}}
			if err := c.do(cmd.Context(), "POST", "/v1/tokens/"+url.PathEscape(cr.TokenID)+"/revoke", nil, nil); err != nil {
				return fmt.Errorf("revoke token %s: %w (the file was kept)", cr.TokenID, err)
			}
			p, _ := credentialsPath(env)
			if err := os.Remove(p); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Signed out: token %s revoked and %s deleted.\n", cr.TokenID, p)
			return nil
		},
	}
}

func newTokensCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{Use: "tokens", Short: "Create, list and revoke your personal access tokens"}
	client := clientFlags(cmd, env)
	var (
		req      admin.CreateTokenRequest
		scopes   string
		asJSON   bool
		all      bool
		listJSON bool
	)
	create := &cobra.Command{
		Use: "create --name N [--scopes a,b] [--role R] [--expires 90d]", Short: "Create a token with a subset of your scopes (printed once)", Args: cobra.NoArgs,
		Example: "  gatehouse tokens create --name ci --scopes read:signals --expires 30d",
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Scopes = splitList(scopes)
			c, err := client()
			if err != nil {
				return err
			}
			var t admin.Token
			if err := c.do(cmd.Context(), "POST", "/v1/tokens", req, &t); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), t)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created token %s, valid until %s. It is shown only now:\n\n    %s\n\n", t.ID, t.ExpiresAt.Format(time.RFC3339), t.Token)
			return nil
		},
	}
	create.Flags().StringVar(&req.Name, "name", "", "what the token is for")
	create.Flags().StringVar(&scopes, "scopes", "", "comma-separated subset of your scopes")
	create.Flags().StringVar(&req.Role, "role", "", "admin-API role, at most yours")
	create.Flags().StringVar(&req.ExpiresIn, "expires", "", "lifetime (default 90d, at most 365d)")
	create.Flags().BoolVar(&asJSON, "json", false, "print JSON (has id and token)")
	list := &cobra.Command{
		Use: "list [--all]", Short: "List your tokens (admins: --all)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			path := "/v1/tokens"
			if all {
				path += "?all=true"
			}
			var out struct {
				Tokens []admin.Token `json:"tokens"`
			}
			if err := c.do(cmd.Context(), "GET", path, nil, &out); err != nil {
				return err
			}
			if listJSON {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tUSER\tNAME\tSCOPES\tROLE\tSTATUS\tEXPIRES\tCREATED BY\tLAST USED")
			for _, t := range out.Tokens {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Username, t.Name, strings.Join(t.Scopes, ","), dash(t.Role), t.Status, t.ExpiresAt.Format(time.RFC3339),
					dash(t.CreatedBy), when(t.LastUsedAt, "never"))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&all, "all", false, "everyone's tokens (admins)")
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke a token", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "POST", "/v1/tokens/"+url.PathEscape(args[0])+"/revoke", nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked token %s.\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
