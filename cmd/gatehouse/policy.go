package main

import (
	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/authz"
)

func newPolicyCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with authorization policies (Rego)",
	}
	var verbose bool
	test := &cobra.Command{
		Use:   "test [DIR]",
		Short: "Run the Rego tests of a policy directory (default: the embedded policy)",
		Long: `Run the *_test.rego tests of a policy directory with OPA's tester.
Output and exit codes match ` + "`opa test`" + `: 0 all passed, 2 a test failed,
1 the policy did not compile.`,
		Example: "  gatehouse policy test\n  gatehouse policy test ./policy -v",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := ""
			if len(args) == 1 {
				dir = args[0]
			}
			code, err := authz.RunTests(cmd.Context(), dir, verbose, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
	test.Flags().BoolVarP(&verbose, "verbose", "v", false, "print every test and its output")
	cmd.AddCommand(test)
	return cmd
}
