package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/store"
)

func newAdminTokenCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin-token",
		Short: "Rotate or disable the bootstrap admin token",
		Long: `The bootstrap admin token is printed once, by the first start that gets as
far as serving. It is a break-glass credential: rotate it offline with
access to the data dir (and the config, for PostgreSQL), or disable it once
an admin user exists. Offline changes are audited at the next start.`,
	}
	client := clientFlags(cmd, env)
	var dataDir, configPath, storeDSN string
	offlineFlags := func(c *cobra.Command) {
		c.Flags().StringVar(&dataDir, "data-dir", "", "the data dir (server.secret, and the SQLite database); default: the config's data_dir")
		c.Flags().StringVarP(&configPath, "config", "c", "", "config file, for the store and data_dir; default $GATEHOUSE_CONFIG")
		c.Flags().StringVar(&storeDSN, "store", "", "PostgreSQL DSN of the store (instead of the config's store)")
	}
	rotate := &cobra.Command{
		Use:   "rotate --data-dir D [--config F | --store DSN]",
		Short: "Make a new bootstrap admin token (offline; also re-enables a disabled one)",
		Long: `Make a new bootstrap admin token and print it once; the old one stops
working at once, also on a running server. It works on the data dir
directly (no admin API, no credential needed): whoever can read the data
dir owns the deployment anyway. Audited at the next start.`,
		Example: "  gatehouse admin-token rotate --data-dir /var/lib/gatehouse",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, pepper, err := openOffline(cmd.Context(), env, configPath, dataDir, storeDSN)
			if err != nil {
				return err
			}
			defer st.Close()
			token, err := authn.RotateAdminToken(cmd.Context(), st, pepper, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "New bootstrap admin token (shown once; the old one no longer works):\n\n    %s\n\nUse it with the CLI:  export GATEHOUSE_TOKEN=%s\n", token, token)
			return nil
		},
	}
	offlineFlags(rotate)
	disable := &cobra.Command{
		Use:   "disable [--data-dir D [--config F | --store DSN]]",
		Short: "Switch the bootstrap admin token off (refused unless an enabled admin user exists)",
		Long: `Switch the bootstrap admin token off on every replica. Through the admin
API (an admin's credential) by default, or offline on the data dir with
--data-dir or --config. Refused unless an enabled user with role admin
exists. ` + "`gatehouse admin-token rotate`" + ` makes a new one if ever needed.`,
		Example: "  gatehouse admin-token disable\n  gatehouse admin-token disable --data-dir /var/lib/gatehouse",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dataDir == "" && configPath == "" && storeDSN == "" {
				c, err := client()
				if err != nil {
					return err
				}
				if err := c.do(cmd.Context(), "POST", "/v1/admin-token/disable", nil, nil); err != nil {
					return err
				}
			} else {
				st, pepper, err := openOffline(cmd.Context(), env, configPath, dataDir, storeDSN)
				if err != nil {
					return err
				}
				defer st.Close()
				if err := authn.DisableAdminToken(cmd.Context(), st, pepper, time.Now()); err != nil {
					return err
				}
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Disabled the bootstrap admin token.")
			return nil
		},
	}
	offlineFlags(disable)
	cmd.AddCommand(rotate, disable)
	return cmd
}

// openOffline opens the store and loads the server secret of an existing
// deployment, as `gatehouse serve` would with the same config.
func openOffline(ctx context.Context, env Env, configPath, dataDir, storeDSN string) (store.Store, *authn.Pepper, error) {
	if configPath == "" {
		configPath = env.Getenv("GATEHOUSE_CONFIG")
	}
	cfg, err := config.Load(configPath, env.Getenv)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("invalid config: %w", err)}
	}
	if dataDir != "" {
		cfg.DataDir = dataDir
	}
	if storeDSN != "" {
		cfg.Store.Driver, cfg.Store.DSN = "postgres", storeDSN
	}
	dir, err := cfg.ResolveDataDir()
	if err != nil {
		return nil, nil, err
	}
	sec, err := app.OpenSecrets(ctx, cfg, dir, app.SecretsOptions{Getenv: env.Getenv, ReadOnly: true})
	if errors.Is(err, app.ErrNoSecrets) {
		return nil, nil, usageError{fmt.Errorf("%s is not the data dir of a Gatehouse that has started (no pepper in its secrets provider, %s, nor %s)", dir, cfg.Secrets.Provider, app.SecretFile)}
	}
	if err != nil {
		return nil, nil, err
	}
	sec.Close()
	pepper := sec.Peppers
	st, err := app.OpenStore(ctx, cfg, dir)
	if err != nil {
		return nil, nil, err
	}
	return st, pepper, nil
}
