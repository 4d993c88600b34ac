package main

import (
	"bufio"
	"context"
	"io"

	"github.com/spf13/cobra"
)

// Env is what a command may touch of its process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// lines reads Stdin by lines, for every read of one run.
	lines *bufio.Reader
}

// Run runs the gatehouse command line with args and returns the exit code
// (see errors.go). Errors print as one line, "gatehouse: …", or with
// --json as {"error": {…}} on stderr.
func Run(ctx context.Context, args []string, env Env) int {
	env.lines = bufio.NewReader(env.Stdin)
	root := newRootCmd(env)
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	return report(env.Stderr, err, wantsJSON(cmd, args))
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
		Version:       readBuildInfo().Version,
	}
	root.SetVersionTemplate("gatehouse {{.Version}}\n")
	root.PersistentFlags().Bool("json", false, "print results as JSON on stdout, and errors as JSON on stderr")
	root.AddCommand(newServeCmd(env), newKeysCmd(env), newClientsCmd(env), newSigningKeysCmd(env), newPolicyCmd(env),
		newUsersCmd(env), newAdminTokenCmd(env), newLoginCmd(env), newLogoutCmd(env), newTokensCmd(env), newAuditCmd(env), newBackupCmd(env), newSecretsCmd(env), newEvidenceCmd(env), newReviewCmd(env), newIncidentCmd(env), newSettingsCmd(env), newConfigCmd(env), newVersionCmd())
	root.AddCommand(newDocsCmd())
	root.InitDefaultCompletionCmd()
	addCompletions(root, env)
	strict(root)
	return root
}
