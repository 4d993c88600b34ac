package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/app"
)

func newServeCmd(env Env) *cobra.Command {
	var configPath string
	var pprof bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Long: `Run the gateway: the public listener (routes, health, auth endpoints) and
the admin listener (admin API).

With no config file it runs on embedded defaults: data in ./gatehouse-data
(SQLite), public listener 127.0.0.1:8080, admin listener 127.0.0.1:8081, and
one demo route /demo/ to a built-in echo upstream that needs scope demo:read.
On first start it prints a bootstrap admin token once, when it is serving.

Environment: GATEHOUSE_CONFIG (config file), GATEHOUSE_DATA_DIR,
GATEHOUSE_LISTEN, GATEHOUSE_ADMIN_LISTEN override the file;
GATEHOUSE_ADMIN_TOKEN sets the bootstrap admin token on first start.

SIGHUP reloads the policy (a policy that fails to compile or to pass its
tests is refused; the running one keeps serving). SIGTERM or SIGINT stops accepting connections, lets in-flight requests
finish (shutdown_timeout, default 15s) and exits 0.

--pprof serves the Go runtime profiles (net/http/pprof) under /debug/pprof/
on the admin listener only, to admin credentials only; off by default.`,
		Example: `  gatehouse serve
  gatehouse serve --config gatehouse.yaml
  gatehouse serve --pprof   # then: curl -H "Authorization: Bearer $GATEHOUSE_TOKEN" $GATEHOUSE_ADDR/debug/pprof/profile?seconds=30 >cpu.prof
  GATEHOUSE_LISTEN=0.0.0.0:8080 gatehouse serve --config gatehouse.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if configPath == "" {
				configPath = env.Getenv("GATEHOUSE_CONFIG")
			}
			return runServe(cmd, configPath, pprof, env)
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file (YAML); default: $GATEHOUSE_CONFIG, else built-in defaults")
	cmd.Flags().BoolVar(&pprof, "pprof", false, "serve net/http/pprof under /debug/pprof/ on the admin listener (admin credentials only)")
	return cmd
}

func runServe(cmd *cobra.Command, configPath string, pprof bool, env Env) error {
	ctx := cmd.Context()
	cfg, err := loadConfig(cmd, configPath, env)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a, err := app.New(ctx, cfg, app.Options{Getenv: env.Getenv, Stdout: env.Stdout, Stderr: env.Stderr, Version: readBuildInfo().Version, Pprof: pprof})
	if err != nil {
		return err
	}
	if err := a.Start(); err != nil {
		a.Shutdown(context.Background())
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var serveErr error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case serveErr = <-a.Err():
			break wait
		case <-hup:
			// Reload errors are logged and audited by the policy engine;
			// the running policy keeps serving.
			a.ReloadPolicy(ctx)
		}
	}
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := a.Shutdown(sctx); err != nil {
		return err
	}
	return serveErr
}
