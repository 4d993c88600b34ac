package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/authn"
)

// credentials is what `gatehouse login` stores for later commands.
type credentials struct {
	Addr     string `json:"addr"`
	Token    string `json:"token"`
	TokenID  string `json:"token_id"`
	Username string `json:"username"`
	// CACert and TLSServerName are the TLS settings the sign-in used,
	// for later commands that give none.
	CACert        string `json:"ca_cert,omitempty"`
	TLSServerName string `json:"tls_server_name,omitempty"`
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

// readLine reads one line of standard input (shared by every read of the
// command, so that a second secret comes from the second line).
func readLine(env Env) (string, error) {
	r := env.lines
	if r == nil {
		r = bufio.NewReader(env.Stdin)
	}
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// terminal returns the terminal standard input is, if it is one.
func terminal(env Env) (int, bool) {
	f, ok := env.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}

// readPassword reads a password from stdin (one line) when fromStdin, or
// prompts without echo on the terminal.
func readPassword(env Env, prompt string, fromStdin bool) (string, error) {
	if fromStdin {
		return readLine(env)
	}
	fd, ok := terminal(env)
	if !ok {
		return "", usageError{errors.New("no terminal to prompt for a password: use --password-stdin")}
	}
	fmt.Fprint(env.Stderr, prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(env.Stderr)
	return string(b), err
}

// prompt asks for one line on the terminal, echoed (a one-time code).
func prompt(env Env, text string) (string, error) {
	fmt.Fprint(env.Stderr, text)
	return readLine(env)
}

func newLoginCmd(env Env) *cobra.Command {
	var (
		username, totp   string
		pwdStdin, newPwd bool
		expires          string
	)
	cmd := &cobra.Command{
		Use:   "login --username NAME [--password-stdin [--new-password-stdin]] [--totp CODE]",
		Short: "Sign in and store a personal access token for this CLI",
		Long: `Sign in to the admin API and create a personal access token for this CLI
(with your role and scopes, 90 days by default). It is stored in your
config dir (mode 0600) and used by later commands when GATEHOUSE_TOKEN is
unset. ` + "`gatehouse logout`" + ` revokes and deletes it.

An expired or reset password is replaced as part of the sign-in: on a
terminal you are asked for the new one twice; in a script, give it as the
second line of standard input with --new-password-stdin (the first line
is the current password).

Accounts with a second factor give the one-time code with --totp; on a
terminal you are asked for it when the sign-in fails without one.`,
		Example: `  gatehouse login --username alice
  echo "$PW" | gatehouse login --username alice --password-stdin --totp 123456
  printf '%s\n%s\n' "$OLD" "$NEW" | gatehouse login --username alice --password-stdin --new-password-stdin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if username == "" {
				return usageError{errors.New("--username is required")}
			}
			if newPwd && !pwdStdin {
				return usageError{errors.New("--new-password-stdin reads the second line of standard input: give the current password on the first, with --password-stdin")}
			}
			pw, err := readPassword(env, "Password for "+username+": ", pwdStdin)
			if err != nil {
				return err
			}
			login := admin.LoginRequest{Username: username, Password: pw, TOTPCode: totp}
			if newPwd {
				if login.NewPassword, err = readLine(env); err != nil {
					return err
				}
				if login.NewPassword == "" {
					return usageError{errors.New("--new-password-stdin: no new password on the second line of standard input")}
				}
			}
			return runLogin(cmd, env, connOf(cmd.Flags(), env), login, expires)
		},
	}
	connFlags(cmd)
	cmd.Flags().StringVar(&username, "username", "", "your username")
	cmd.Flags().StringVar(&totp, "totp", "", "one-time code, if your account has a second factor")
	cmd.Flags().BoolVar(&pwdStdin, "password-stdin", false, "read the password from standard input")
	cmd.Flags().BoolVar(&newPwd, "new-password-stdin", false, "replace an expired password with the second line of standard input")
	cmd.Flags().StringVar(&expires, "expires", "90d", "lifetime of the CLI token (at most 365d)")
	return cmd
}

// isPasswordExpired reports the sign-in refusal that asks for a new
// password.
func isPasswordExpired(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Code == gatehouse.EFORBIDDEN && ae.Message == gatehouse.ErrorMessage(authn.ErrPasswordExpired)
}

// signIn posts the sign-in, completing it interactively on a terminal:
// the one-time code when it was missing, and a new password (twice) when
// the current one expired.
func signIn(ctx context.Context, env Env, c *apiClient, login admin.LoginRequest) (*admin.SessionResponse, error) {
	var sess admin.SessionResponse
	err := c.do(ctx, "POST", "/v1/session", login, &sess)
	_, tty := terminal(env)
	var ae *apiError
	if err != nil && tty && login.TOTPCode == "" && errors.As(err, &ae) && ae.Status == 401 {
		// The answer never says whether the password was right; ask for
		// a code in case the account has a second factor.
		code, perr := prompt(env, "One-time code (Enter if your account has no second factor): ")
		if perr != nil || code == "" {
			return nil, err
		}
		login.TOTPCode = code
		err = c.do(ctx, "POST", "/v1/session", login, &sess)
	}
	if isPasswordExpired(err) {
		if !tty {
			return nil, fmt.Errorf("%w: run `gatehouse login` on a terminal, or give the new password with --new-password-stdin", err)
		}
		fmt.Fprintln(env.Stderr, "Your password has expired or was reset: choose a new one.")
		if err := newPassword(env, &login); err != nil {
			return nil, err
		}
		err = c.do(ctx, "POST", "/v1/session", login, &sess)
	}
	if err != nil {
		return nil, err
	}
	return &sess, nil
}

// newPassword asks on the terminal for a new password, twice, and, when
// the sign-in used a one-time code, for the next one (a code is accepted
// once: the refused sign-in used it).
func newPassword(env Env, login *admin.LoginRequest) error {
	next, err := readPassword(env, "New password: ", false)
	if err != nil {
		return err
	}
	again, err := readPassword(env, "New password again: ", false)
	if err != nil {
		return err
	}
	if next != again {
		return usageError{errors.New("the new passwords do not match; nothing was changed")}
	}
	login.NewPassword = next
	if login.TOTPCode != "" {
		if login.TOTPCode, err = prompt(env, "Next one-time code (the last one was used): "); err != nil {
			return err
		}
	}
	return nil
}

// loginResult is what `gatehouse login --json` prints.
type loginResult struct {
	Username        string    `json:"username"`
	Role            string    `json:"role"`
	TokenID         string    `json:"token_id"`
	ExpiresAt       time.Time `json:"expires_at"`
	CredentialsFile string    `json:"credentials_file"`
}

func runLogin(cmd *cobra.Command, env Env, cn *conn, login admin.LoginRequest, expires string) error {
	ctx := cmd.Context()
	addr := cn.address("")
	c, err := cn.client(addr, "", true)
	if err != nil {
		return err
	}
	sess, err := signIn(ctx, env, c, login)
	if err != nil {
		return err
	}
	if sess.Restricted != "" {
		return fmt.Errorf("your role requires a second factor and you have none yet: enrol one first (POST /v1/me/totp)")
	}
	c.csrf = sess.CSRFToken
	host, _ := os.Hostname()
	var tok admin.Token
	err = c.do(ctx, "POST", "/v1/tokens", admin.CreateTokenRequest{Name: "gatehouse CLI on " + host, Role: sess.User.Role, Scopes: sess.User.Scopes, ExpiresIn: expires}, &tok)
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
	cr := credentials{Addr: addr, Token: tok.Token, TokenID: tok.ID, Username: login.Username,
		CACert: or(cn.caCert, env.Getenv("GATEHOUSE_CACERT")), TLSServerName: or(cn.serverName, env.Getenv("GATEHOUSE_TLS_SERVER_NAME"))}
	if cr.CACert != "" {
		if abs, err := filepath.Abs(cr.CACert); err == nil {
			cr.CACert = abs
		}
	}
	b, _ := json.MarshalIndent(cr, "", "  ")
	if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return err
	}
	res := loginResult{Username: login.Username, Role: sess.User.Role, TokenID: tok.ID, ExpiresAt: tok.ExpiresAt, CredentialsFile: p}
	return output(cmd, res, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "Signed in as %s (%s). Token %s stored in %s, valid until %s.\n", res.Username, res.Role, res.TokenID, p, res.ExpiresAt.Format(time.RFC3339))
		return err
	})
}

func newLogoutCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use: "logout", Short: "Revoke and delete the token stored by `gatehouse login`", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cr, err := loadCredentials(env)
			if err != nil {
				return fmt.Errorf("not signed in (%v)", err)
			}
			c, err := (&conn{env: env, caCert: cr.CACert, serverName: cr.TLSServerName}).client(cr.Addr, cr.Token, false)
			if err != nil {
				return err
			}
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
