package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/compliance"
)

func newEvidenceCmd(env Env) *cobra.Command {
	var format, out, period, dataDir, storeDSN, configPath string
	cmd := &cobra.Command{
		Use:   "evidence [--format json|html|oscal|md] [--out FILE] [--period FROM..TO]",
		Short: "Write a signed SOC 2 evidence report; verify one offline",
		Long: `Ask the running server (GATEHOUSE_ADDR, GATEHOUSE_TOKEN; admin, security or
auditor role) for an evidence report of the period (default: the last 90
days): every control of the catalog decided from live state, each finding
citing audit entries with RFC 6962 inclusion proofs against a signed
checkpoint, the report signed with the audit log's key. The server records
the evaluation and the report's SHA-256 in the audit log.

json is the signed machine form; html is one self-contained page and oscal
an OSCAL 1.1 assessment-results document, both carrying the signed JSON; md
is Markdown. Check json, html or oscal with gatehouse evidence verify FILE
--key PUB (docs/evidence.md).

Offline, without a running server: --data-dir D (the file audit log and
store of a stopped server; a running one holds the log's lock) or --store
DSN (PostgreSQL, where replicas share the log), with the deployment's
--config. The report is built and signed on this host with the audit
log's key, and recorded in that log. Nothing is served, so the listeners
are described from the config but not probed: the checks that need a
probe (routes, TLS, headers) say manual.`,
		Example: `  gatehouse evidence --format html --out soc2-q4.html --period 2026-10-01..2026-12-31
  gatehouse evidence --format json --out soc2-q4.json
  gatehouse evidence --data-dir /var/lib/gatehouse --config gatehouse.yaml --format json --out soc2-q4.json
  gatehouse evidence verify soc2-q4.json --key "$(cat audit.pub)"`,
		Args: cobra.NoArgs,
	}
	client := clientFlags(cmd, env)
	cmd.Flags().StringVar(&format, "format", "json", "json, html, oscal (assessment-results) or md")
	cmd.Flags().StringVar(&out, "out", "", "file to write (default: standard output)")
	cmd.Flags().StringVar(&period, "period", "", "FROM..TO, dates (both included) or RFC 3339 times")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "offline: the data directory of a stopped server (no admin API)")
	cmd.Flags().StringVar(&storeDSN, "store", "", "offline: the PostgreSQL DSN of the deployment's store and audit log (no admin API)")
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "offline: the deployment's config file; default $GATEHOUSE_CONFIG, else built-in defaults")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		switch format {
		case "json", "html", "md", "oscal":
		default:
			return usageError{fmt.Errorf("--format %q: must be json, html, oscal or md", format)}
		}
		if period != "" && !strings.Contains(period, "..") {
			return usageError{fmt.Errorf("--period %q: must be FROM..TO, e.g. 2026-10-01..2026-12-31", period)}
		}
		var raw json.RawMessage
		var err error
		if dataDir != "" || storeDSN != "" {
			raw, err = offlineReport(cmd, env, configPath, dataDir, storeDSN, period)
		} else {
			raw, err = serverReport(cmd, client, period)
		}
		if err != nil {
			return err
		}
		var r compliance.Report
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("decode report: %w", err)
		}
		var buf bytes.Buffer
		switch format {
		case "json":
			// Indented for people; the signature covers the canonical
			// form, which whitespace does not change.
			err = json.Indent(&buf, raw, "", "  ")
			buf.WriteByte('\n')
		case "html":
			err = compliance.RenderHTML(&buf, &r, raw)
		case "md":
			err = compliance.RenderMarkdown(&buf, &r)
		case "oscal":
			err = compliance.RenderOSCAL(&buf, &r, raw)
		}
		if err != nil {
			return err
		}
		if out == "" {
			_, err = cmd.OutOrStdout().Write(buf.Bytes())
			return err
		}
		if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil { // #nosec G306 -- a report is made to be shared; it holds no secret
			return &localError{codeError, fmt.Errorf("write %s: %w", out, err)}
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "Report %s written to %s: %d pass, %d fail, %d manual, %d not applicable\n", r.ID, out,
			r.Summary[compliance.StatusPass], r.Summary[compliance.StatusFail], r.Summary[compliance.StatusManual], r.Summary[compliance.StatusNotApplicable])
		return nil
	}
	cmd.AddCommand(newEvidenceVerifyCmd())
	return cmd
}

// serverReport asks the running server for the report.
func serverReport(cmd *cobra.Command, client func() (*apiClient, error), period string) (json.RawMessage, error) {
	c, err := client()
	if err != nil {
		return nil, err
	}
	c.http.Timeout = 0 // a report over a long log takes a while
	path := "/v1/evidence"
	if period != "" {
		path += "?period=" + url.QueryEscape(period)
	}
	var raw json.RawMessage
	if err := c.do(cmd.Context(), "GET", path, nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// offlineReport builds the report on this host from the deployment's data
// directory or PostgreSQL store, without a server.
func offlineReport(cmd *cobra.Command, env Env, configPath, dataDir, storeDSN, period string) (json.RawMessage, error) {
	cfg, err := restoreConfig(env, configPath, storeDSN)
	if err != nil {
		return nil, err
	}
	if dataDir != "" {
		cfg.DataDir = dataDir
	}
	dir, err := cfg.ResolveDataDir()
	if err != nil {
		return nil, usageError{err}
	}
	if cfg.Audit.Backend != "postgres" {
		// A fresh directory would be a new deployment, not evidence.
		if _, err := os.Stat(filepath.Join(app.AuditDir(cfg, dir), "LOCK")); err != nil {
			return nil, usageError{fmt.Errorf("no audit log in %s: --data-dir names the data directory of a deployment that has run", app.AuditDir(cfg, dir))}
		}
	}
	p, err := admin.ParsePeriod(period, time.Now().UTC())
	if err != nil {
		return nil, usageError{err}
	}
	r, err := app.OfflineReport(cmd.Context(), cfg, app.Options{Getenv: env.Getenv, Stderr: io.Discard, Logger: slog.New(slog.DiscardHandler)},
		gatehouse.Actor{Kind: "system", ID: "evidence-offline"}, p)
	if errors.Is(err, audit.ErrLocked) {
		return nil, fmt.Errorf("offline report: the audit log in %s is held by a running server: stop it, or ask it over the admin API (gatehouse evidence without --data-dir)", app.AuditDir(cfg, dir))
	}
	if err != nil {
		return nil, fmt.Errorf("offline report: %w", err)
	}
	return json.Marshal(r)
}

func newEvidenceVerifyCmd() *cobra.Command {
	var key []string
	cmd := &cobra.Command{
		Use:   "verify FILE [--key VERIFIER_KEY]... [--json]",
		Short: "Check a report offline: its signature, the checkpoint, every inclusion proof and every cited entry",
		Long: `Verify an evidence report (JSON, or the signed JSON an HTML or OSCAL
rendering carries) without
any server: the report's signature, the checkpoint's signature, every
inclusion proof, that each cited entry is the event the finding claims (the
evaluation entry: the finding's status and the digest of its observed
data), that no check claims pass without data. Exit 0 when everything
checks, 1 naming each problem, 2 when the file cannot be read.

Pass --key with the log's verifier key obtained from the operator out of
band (gatehouse audit pubkey); without it the report's own key is used,
which proves nothing against someone who re-signed it with another key.
After an audit key rotation, give every key of the chain (one --key each,
as gatehouse audit keys lists them): a report is signed by the key of its
time.`,
		Example: `  gatehouse evidence verify soc2-q4.json --key "$(cat audit.pub)"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return usageError{fmt.Errorf("read %s: %w", args[0], err)}
			}
			res, err := compliance.VerifyKeys(compliance.ExtractJSON(data), key)
			if err != nil {
				return usageError{err}
			}
			if err := output(cmd, res, func(w io.Writer) error {
				for _, p := range res.Problems {
					fmt.Fprintln(w, "FAIL", p)
				}
				if res.KeyFromReport {
					fmt.Fprintln(w, "warning: no --key given: checked against the report's own audit_public_key")
				}
				if res.OK() {
					fmt.Fprintf(w, "evidence report OK: signature, checkpoint (tree size %d), %d inclusion proofs, %d findings of %d controls\n",
						res.TreeSize, res.Proofs, res.Findings, res.Controls)
				} else {
					fmt.Fprintf(w, "evidence report does NOT verify: %d problems\n", len(res.Problems))
				}
				return nil
			}); err != nil {
				return err
			}
			if !res.OK() {
				return exitCode(exitError)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&key, "key", nil, "the audit log's note verifier key (gatehouse audit pubkey); repeat it for each key of the chain after a rotation (gatehouse audit keys)")
	return cmd
}
