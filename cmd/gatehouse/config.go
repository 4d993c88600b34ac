package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
)

func newConfigCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Work with the config file",
	}
	var configPath string
	check := &cobra.Command{
		Use:   "check",
		Short: "Check a config file completely, without starting anything",
		Long: `Check a config file as serve would before it starts: every field, every
file it names (the policy directory or bundle is compiled and its tests run,
TLS certificates and keys are loaded and matched, CA files parsed, JSON
Schemas compiled) and every tier it names. Nothing is created or written.

Every problem is printed on stderr, one a line, as FILE:LINE: field: message
(with --json, one error object whose message holds those lines).
Exit codes: 0 the config is valid (one "ok" line on stdout), 2 it is not.`,
		Example: `  gatehouse config check --config gatehouse.yaml
  GATEHOUSE_CONFIG=gatehouse.yaml gatehouse config check`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd, configPath, env)
			if err != nil {
				return err
			}
			name := cfg.Source
			if name == "" {
				name = "built-in defaults"
			}
			warnings := []string{}
			for _, p := range app.Warnings(cfg) {
				warnings = append(warnings, p.String())
			}
			return output(cmd, map[string]any{"config": name, "ok": true, "warnings": warnings}, func(w io.Writer) error {
				for _, s := range warnings {
					fmt.Fprintln(env.Stderr, "warning: "+s)
				}
				_, err := fmt.Fprintf(w, "%s: ok\n", name)
				return err
			})
		},
	}
	check.Flags().StringVarP(&configPath, "config", "c", "", "config file (YAML); default: $GATEHOUSE_CONFIG, else built-in defaults")
	cmd.AddCommand(check)
	return cmd
}

// loadConfig loads the config at path ($GATEHOUSE_CONFIG when "") and
// checks what it names on disk, before anything else happens. Problems are
// printed to stderr, one a line, and come back as a usage error (exit 2);
// with --json they are only in the error, for Run to print as JSON.
func loadConfig(cmd *cobra.Command, path string, env Env) (*config.Config, error) {
	if path == "" {
		path = env.Getenv("GATEHOUSE_CONFIG")
	}
	cfg, err := config.Load(path, env.Getenv)
	ps := config.AsProblems(err)
	if err != nil && ps == nil {
		return nil, err
	}
	if cfg != nil {
		ps = ps.With(app.Check(cmd.Context(), cfg))
	}
	if len(ps) == 0 {
		return cfg, nil
	}
	if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
		return nil, usageError{ps}
	}
	for _, p := range ps {
		fmt.Fprintln(env.Stderr, p)
	}
	noun := "problems"
	if len(ps) == 1 {
		noun = "problem"
	}
	return nil, usageError{fmt.Errorf("invalid config: %d %s", len(ps), noun)}
}
