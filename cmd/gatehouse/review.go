package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/compliance"
)

func newReviewCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "review",
		Short: "Run access reviews: snapshot every principal, decide each, complete",
		Long: `An access review (SOC 2 CC6.2, CC6.3) snapshots every active key, client,
token and enabled user. A reviewer decides each item approve, revoke (the
credential is revoked at once, with what it created; a user is disabled
with their tokens) or change, with a reason; completing the review needs
every item decided and is recorded, with the review's SHA-256, in the audit
log. Reviews are due every 90 days (docs/evidence.md).`,
	}
	client := clientFlags(cmd, env)
	start := &cobra.Command{
		Use:   "start [--json]",
		Short: "Start a review of every principal",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var rv compliance.Review
			if err := c.do(cmd.Context(), "POST", "/v1/reviews", nil, &rv); err != nil {
				return err
			}
			return output(cmd, rv, func(w io.Writer) error { return printReview(w, rv) })
		},
	}
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the reviews",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var out struct {
				Reviews []compliance.ReviewSummary `json:"reviews"`
			}
			if err := c.do(cmd.Context(), "GET", "/v1/reviews", nil, &out); err != nil {
				return err
			}
			return output(cmd, out.Reviews, func(w io.Writer) error {
				return table(w, "ID\tSTARTED\tCOMPLETED\tBY\tITEMS\tDECIDED", out.Reviews, func(r compliance.ReviewSummary) []string {
					return []string{r.ID, r.StartedAt.Format(time.RFC3339), orDash(r.CompletedAt), orName(r.CompletedBy, "-"), fmt.Sprint(r.ItemCount), fmt.Sprint(r.Decided)}
				})
			})
		},
	}
	show := &cobra.Command{
		Use:   "show REVIEW [--json]",
		Short: "Show a review's items and decisions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var rv compliance.Review
			if err := c.do(cmd.Context(), "GET", "/v1/reviews/"+url.PathEscape(args[0]), nil, &rv); err != nil {
				return err
			}
			return output(cmd, rv, func(w io.Writer) error { return printReview(w, rv) })
		},
	}
	var decision, reason string
	decide := &cobra.Command{
		Use:     "decide REVIEW ITEM --decision approve|revoke|change --reason TEXT [--json]",
		Short:   "Decide one item (revoke acts at once)",
		Example: "  gatehouse review decide rev_01j… item_3 --decision revoke --reason \"service retired\"",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := compliance.ValidateDecision(decision, reason); err != nil {
				return usageError{fmt.Errorf("--%s", strings.TrimPrefix(err.Error(), "invalid: "))}
			}
			c, err := client()
			if err != nil {
				return err
			}
			var it compliance.ReviewItem
			if err := c.do(cmd.Context(), "POST", "/v1/reviews/"+url.PathEscape(args[0])+"/items/"+url.PathEscape(args[1]),
				map[string]string{"decision": decision, "reason": reason}, &it); err != nil {
				return err
			}
			return output(cmd, it, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s %s: %s (%s)\n", it.ID, it.Principal, it.Decision, it.Reason)
				return err
			})
		},
	}
	decide.Flags().StringVar(&decision, "decision", "", "approve, revoke or change")
	decide.Flags().StringVar(&reason, "reason", "", "why (required)")
	complete := &cobra.Command{
		Use:   "complete REVIEW [--json]",
		Short: "Complete a review whose every item is decided",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var rv compliance.Review
			if err := c.do(cmd.Context(), "POST", "/v1/reviews/"+url.PathEscape(args[0])+"/complete", nil, &rv); err != nil {
				return err
			}
			return output(cmd, rv, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Review %s completed by %s: %d items\n", rv.ID, rv.CompletedBy, len(rv.Items))
				return err
			})
		},
	}
	cmd.AddCommand(start, list, show, decide, complete)
	return cmd
}

func orDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func printReview(w io.Writer, rv compliance.Review) error {
	fmt.Fprintf(w, "Review %s started %s by %s", rv.ID, rv.StartedAt.Format(time.RFC3339), rv.StartedBy)
	if !rv.CompletedAt.IsZero() {
		fmt.Fprintf(w, ", completed %s by %s", rv.CompletedAt.Format(time.RFC3339), rv.CompletedBy)
	}
	fmt.Fprintln(w)
	return table(w, "ITEM\tPRINCIPAL\tSCOPES\tROLE\tLAST USED\tDECISION", rv.Items, func(it compliance.ReviewItem) []string {
		return []string{it.ID, it.Principal, orName(strings.Join(it.Scopes, ","), "-"), orName(it.Role, "-"), orDash(it.LastUsedAt), orName(it.Decision, "-")}
	})
}
