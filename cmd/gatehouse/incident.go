package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/compliance"
	"github.com/gatehouse/gatehouse/internal/lockdown"
)

func newIncidentCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "incident",
		Short: "Record incidents, contain them, close them with a post-incident review; run revocation drills",
		Long: `Incidents (SOC 2 CC7.3–CC7.5): open one with severity, title and impact,
add notes, contain it (revoke a principal and what it created, every
key, client and token created before a time, or lock the gateway down to
named roles and principals until lifted), close it — the post-incident
review is due 5 business days later — and record the review. Every action
is an audit event; show prints the timeline assembled from the audit log.
drill measures how long the gateway takes to refuse a revoked key.`,
	}
	client := clientFlags(cmd, env)
	path := func(id, rest string) string { return "/v1/incidents/" + url.PathEscape(id) + rest }
	printIncident := func(w io.Writer, in compliance.Incident) error {
		_, err := fmt.Fprintf(w, "Incident %s [%s] %s\nopened %s by %s; closed %s; review due %s; reviewed %s\n",
			in.ID, in.Severity, in.Title, in.OpenedAt.Format(time.RFC3339), in.OpenedBy, orDash(in.ClosedAt), orDash(in.ReviewDue), orDash(in.ReviewedAt))
		return err
	}
	incidentCall := func(cmd *cobra.Command, method, p string, body any) error {
		c, err := client()
		if err != nil {
			return err
		}
		var in compliance.Incident
		if err := c.do(cmd.Context(), method, p, body, &in); err != nil {
			return err
		}
		return output(cmd, in, func(w io.Writer) error { return printIncident(w, in) })
	}

	var severity, title, impact string
	open := &cobra.Command{
		Use:     "open --severity low|medium|high|critical --title T --impact I [--json]",
		Short:   "Open an incident",
		Example: `  gatehouse incident open --severity high --title "API key leaked" --impact "read access to signals" --json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains([]string{"low", "medium", "high", "critical"}, severity) {
				return usageError{errors.New("--severity: must be low, medium, high or critical")}
			}
			if strings.TrimSpace(title) == "" || strings.TrimSpace(impact) == "" {
				return usageError{errors.New("--title and --impact are required")}
			}
			return incidentCall(cmd, "POST", "/v1/incidents", map[string]string{"severity": severity, "title": title, "impact": impact})
		},
	}
	open.Flags().StringVar(&severity, "severity", "", "low, medium, high or critical")
	open.Flags().StringVar(&title, "title", "", "what happened, in a line")
	open.Flags().StringVar(&impact, "impact", "", "who or what is affected")

	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the incidents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var out struct {
				Incidents []compliance.Incident `json:"incidents"`
			}
			if err := c.do(cmd.Context(), "GET", "/v1/incidents", nil, &out); err != nil {
				return err
			}
			return output(cmd, out.Incidents, func(w io.Writer) error {
				return table(w, "ID\tSEVERITY\tOPENED\tCLOSED\tREVIEW DUE\tTITLE", out.Incidents, func(in compliance.Incident) []string {
					return []string{in.ID, in.Severity, in.OpenedAt.Format(time.RFC3339), orDash(in.ClosedAt), orDash(in.ReviewDue), in.Title}
				})
			})
		},
	}
	show := &cobra.Command{
		Use:   "show ID [--json]",
		Short: "Show an incident with its timeline from the audit log",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var in admin.IncidentJSON
			if err := c.do(cmd.Context(), "GET", path(args[0], ""), nil, &in); err != nil {
				return err
			}
			return output(cmd, in, func(w io.Writer) error {
				printIncident(w, in.Incident)
				if l := in.Lockdown; l != nil {
					fmt.Fprintf(w, "LOCKDOWN in force since %s (by %s): only %s pass the gateway; lift it with: gatehouse incident lift %s\n",
						l.Since.Format(time.RFC3339), l.By, strings.Join(l.Allow, ", "), in.ID)
				}
				return table(w, "ENTRY\tTIME\tTYPE\tACTOR\tRESOURCE\tOUTCOME", in.Timeline, func(e admin.TimelineEntry) []string {
					return []string{fmt.Sprint(e.Index), e.Time.Format(time.RFC3339), e.Type, e.Actor, orName(e.Target, "-"), e.Result}
				})
			})
		},
	}
	var text string
	note := &cobra.Command{
		Use:   "note ID --text TEXT [--json]",
		Short: "Add a note to an open incident",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(text) == "" {
				return usageError{errors.New("--text is required")}
			}
			return incidentCall(cmd, "POST", path(args[0], "/notes"), map[string]string{"text": text})
		},
	}
	note.Flags().StringVar(&text, "text", "", "the note")
	var principal, before string
	var lock bool
	var allow []string
	contain := &cobra.Command{
		Use:   "contain ID (--revoke-principal KIND:ID | --revoke-before TIME | --lockdown --allow ROLE_OR_PRINCIPAL…) [--json]",
		Short: "Containment: revoke a principal, everything created before a time, or lock the gateway down",
		Long: `Containment actions of an open incident, each audited:
  --revoke-principal KIND:ID  revoke a key, client or token (and what it created),
                              or disable a user with their tokens;
  --revoke-before TIME        revoke every key, client and token created before TIME;
  --lockdown                  only the roles (admin, security, auditor; admin also
                              admits credentials with the admin scope) and principals
                              (api_key:ID, client:ID, pat:ID, user:NAME) given with
                              --allow pass the gateway — routes, forward-auth and
                              /v1/authorize; everyone else gets 503 (code lockdown)
                              until 'gatehouse incident lift ID'. Every replica
                              follows; the admin API and /health are not affected.`,
		Example: `  gatehouse incident contain inc_01j… --revoke-principal api_key:key_7f3a…
  gatehouse incident contain inc_01j… --revoke-principal user:mallory
  gatehouse incident contain inc_01j… --revoke-before 2026-12-01T09:00:00Z
  gatehouse incident contain inc_01j… --lockdown --allow admin --allow api_key:key_9c1e…`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(allow) > 0 && !lock {
				return usageError{errors.New("--allow goes with --lockdown")}
			}
			given := 0
			for _, set := range []bool{principal != "", before != "", lock} {
				if set {
					given++
				}
			}
			if given != 1 {
				return usageError{errors.New("give exactly one of --revoke-principal, --revoke-before and --lockdown")}
			}
			if lock {
				if len(allow) == 0 {
					return usageError{errors.New("--lockdown needs at least one --allow ROLE_OR_PRINCIPAL (e.g. --allow admin): who may still pass")}
				}
				for _, e := range allow {
					if _, _, err := lockdown.ParseEntry(e); err != nil {
						return usageError{fmt.Errorf("--allow %q: must be a role (admin, security, auditor) or api_key:ID, client:ID, pat:ID or user:NAME", e)}
					}
				}
				return incidentCall(cmd, "POST", path(args[0], "/contain"), map[string]any{"lockdown": true, "allow": allow})
			}
			if before != "" {
				if _, err := time.Parse(time.RFC3339, before); err != nil {
					return usageError{fmt.Errorf("--revoke-before %q: must be an RFC 3339 time, e.g. 2026-12-01T09:00:00Z", before)}
				}
				return incidentCall(cmd, "POST", path(args[0], "/contain"), map[string]string{"revoke_before": before})
			}
			if k, id, ok := strings.Cut(principal, ":"); !ok || id == "" || !slices.Contains([]string{"api_key", "client", "pat", "user"}, k) {
				return usageError{fmt.Errorf("--revoke-principal %q: must be api_key:ID, client:ID, pat:ID or user:NAME", principal)}
			}
			return incidentCall(cmd, "POST", path(args[0], "/contain"), map[string]string{"revoke_principal": principal})
		},
	}
	contain.Flags().StringVar(&principal, "revoke-principal", "", "kind:id of the principal to revoke (a user is disabled with their tokens)")
	contain.Flags().StringVar(&before, "revoke-before", "", "revoke every key, client and token created before this RFC 3339 time")
	contain.Flags().BoolVar(&lock, "lockdown", false, "lock the gateway down: only the --allow roles and principals pass, everyone else gets 503")
	contain.Flags().StringArrayVar(&allow, "allow", nil, "with --lockdown: a role (admin, security, auditor) or principal (api_key:ID, client:ID, pat:ID, user:NAME) that still passes; repeat for more")
	lift := &cobra.Command{
		Use:     "lift ID [--json]",
		Short:   "Lift the lockdown an incident holds: the gateway admits every caller its policy allows again",
		Example: `  gatehouse incident lift inc_01j…`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return incidentCall(cmd, "POST", path(args[0], "/lift"), nil)
		},
	}
	closeCmd := &cobra.Command{
		Use:   "close ID [--json]",
		Short: "Close an incident; its post-incident review is due 5 business days later",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return incidentCall(cmd, "POST", path(args[0], "/close"), nil)
		},
	}
	var summary string
	review := &cobra.Command{
		Use:   "review ID --summary TEXT [--json]",
		Short: "Record the post-incident review of a closed incident",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(summary) == "" {
				return usageError{errors.New("--summary is required")}
			}
			return incidentCall(cmd, "POST", path(args[0], "/review"), map[string]string{"summary": summary})
		},
	}
	review.Flags().StringVar(&summary, "summary", "", "what happened, why, and what changes")
	drill := &cobra.Command{
		Use:   "drill [--json]",
		Short: "Revocation drill: create a canary key, use it, revoke it, measure until every replica (incidents.drill_targets) refuses it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var d admin.DrillResult
			if err := c.do(cmd.Context(), "POST", "/v1/incidents/drill", nil, &d); err != nil {
				return err
			}
			if err := output(cmd, d, func(w io.Writer) error {
				if _, err := fmt.Fprintf(w, "canary key %s refused by %d replicas %.1f ms after its revocation (SLA %d ms)\n", d.KeyID, len(d.Targets), d.DurationMS, d.SLAMS); err != nil {
					return err
				}
				for _, t := range d.Targets {
					state := "refused"
					if !t.Refused {
						state = "STILL ADMITTED"
					}
					if _, err := fmt.Fprintf(w, "  %-40s %s after %.1f ms\n", t.URL, state, t.DurationMS); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				return err
			}
			if !d.WithinSLA {
				return fmt.Errorf("drill over its SLA: refused %v after %.1f ms (SLA %d ms)", d.Refused, d.DurationMS, d.SLAMS)
			}
			return nil
		},
	}
	cmd.AddCommand(open, list, show, note, contain, lift, closeCmd, review, drill)
	return cmd
}
