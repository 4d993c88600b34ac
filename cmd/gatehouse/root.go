package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // bad flags, arguments or config
)

// Env is what a command may touch of its process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// usageError marks errors that exit with code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Run runs the gatehouse command line with args and returns the exit code.
// Errors print as one line: "gatehouse: …".
func Run(ctx context.Context, args []string, env Env) int {
	root := newRootCmd(env)
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ec exitCode
	if errors.As(err, &ec) {
		return int(ec)
	}
	fmt.Fprintf(env.Stderr, "gatehouse: %s\n", strings.TrimSpace(err.Error()))
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return exitUsage
	}
	return exitError
}

func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires ", "invalid argument", "flag needs an argument", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func newRootCmd(env Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "gatehouse",
		Short: "An API gateway that enforces a SOC 2 security baseline, and proves it did",
		Long: `Gatehouse stands in front of HTTP APIs: it authenticates every request
(API keys), authorizes it against the route's scopes, proxies it upstream,
and sets the security headers on every response.

Start it with no configuration to try it:

    gatehouse serve

Commands that manage a running gateway talk to its admin API, found at
GATEHOUSE_ADDR (default http://127.0.0.1:8081) with the token in
GATEHOUSE_TOKEN.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetVersionTemplate("gatehouse {{.Version}}\n")
	root.AddCommand(newServeCmd(env), newKeysCmd(env), newClientsCmd(env), newSigningKeysCmd(env), newPolicyCmd(env),
		newUsersCmd(env), newAdminTokenCmd(env), newLoginCmd(env), newLogoutCmd(env), newTokensCmd(env), newAuditCmd(env), newVersionCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "gatehouse %s\n", version)
			return nil
		},
	}
}
