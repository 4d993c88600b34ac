package compliance

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"
)

// mdEscape keeps text from changing the Markdown around it (tables,
// emphasis, links, HTML).
func mdEscape(s string) string {
	r := strings.NewReplacer("\\", "\\\\", "|", "\\|", "*", "\\*", "_", "\\_", "`", "\\`", "[", "\\[", "]", "\\]",
		"<", "&lt;", ">", "&gt;", "#", "\\#", "\n", " ", "\r", " ")
	return r.Replace(s)
}

func mdDate(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// RenderMarkdown writes r as Markdown: summary, the verification
// checklist, controls with findings and their cited entries, corrections,
// reviews and incidents. The proofs
// themselves are in the JSON form, which is what verify checks.
func RenderMarkdown(w io.Writer, r *Report) error {
	b := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("# SOC 2 evidence report\n\n")
	p("Period %s to %s · generated %s by %s · mode %s · report %s\n\n", mdDate(r.Period.From), mdDate(r.Period.To),
		mdDate(r.GeneratedAt), mdEscape(r.GeneratedBy), mdEscape(r.Mode), r.ID)
	p("Criteria: AICPA Trust Services Criteria (2017, points of focus revised 2022). Verify the JSON form offline with `gatehouse evidence verify FILE --key PUB`.\n\n")
	p("## Summary\n\n| pass | fail | manual | not applicable |\n|---|---|---|---|\n| %d | %d | %d | %d |\n\n",
		r.Summary[StatusPass], r.Summary[StatusFail], r.Summary[StatusManual], r.Summary[StatusNotApplicable])
	p("| Criterion | Title | Status | Reason |\n|---|---|---|---|\n")
	for _, c := range r.Controls {
		p("| %s | %s | **%s** | %s |\n", c.ID, mdEscape(c.Title), c.Status, mdEscape(c.Reason))
	}
	p("\n## Verification checklist\n\nEach item is decided from the finding named; its evidence is in that finding.\n\n| Item | Status | Rests on | Reason |\n|---|---|---|---|\n")
	for _, it := range r.Checklist {
		p("| %s | **%s** | `%s` (%s) | %s |\n", mdEscape(it.Title), it.Status, it.Check, it.FindingStatus, mdEscape(it.Reason))
	}
	if tl := r.Timeline; tl != nil {
		p("\n## Controls over the period\n\nFrom the daily compliance.snapshot entries of the audit log: %d snapshots over %d days of the period.", len(tl.Snapshots), tl.Days)
		if len(tl.Missing) > 0 {
			var m []string
			for _, d := range tl.Missing {
				m = append(m, dayRange(d))
			}
			p(" Days without a snapshot: %s.", strings.Join(m, ", "))
		}
		p("\n\n| Criterion | pass | fail | manual | not applicable | Days |\n|---|---|---|---|---|---|\n")
		for _, c := range tl.Controls {
			var segs []string
			for _, sg := range c.Segments {
				segs = append(segs, dayRange(sg.DayRange)+" "+string(sg.Status))
			}
			p("| %s | %d | %d | %d | %d | %s |\n", c.ID, c.Days[StatusPass], c.Days[StatusFail], c.Days[StatusManual], c.Days[StatusNotApplicable], strings.Join(segs, "; "))
		}
	}
	p("\n## Controls\n")
	for _, c := range r.Controls {
		p("\n### %s %s — %s\n\n%s\n\n", c.ID, mdEscape(c.Title), c.Status, mdEscape(c.Criterion))
		for _, f := range c.Findings {
			p("- **%s** `%s` — %s: %s\n", f.Status, f.Check, mdEscape(f.Title), mdEscape(f.Reason))
			if f.Provide != "" {
				p("  - A person must provide: %s\n", mdEscape(f.Provide))
			}
			if f.Remediation != "" {
				p("  - Remediation: %s\n", mdEscape(f.Remediation))
			}
			for _, e := range f.Evidence {
				p("  - Audit entry %d: %s `%s` (proof of %d hashes)\n", e.Index, mdEscape(e.Claim.Type), e.Claim.ID, len(e.Proof))
			}
		}
	}
	p("\n## Corrections of commonly mislabelled criteria\n\n| Topic | Commonly filed under | Criteria as written | Why |\n|---|---|---|---|\n")
	for _, c := range r.Corrections {
		p("| %s | %s | %s | %s |\n", mdEscape(c.Topic), c.Mislabel, strings.Join(c.Criteria, ", "), mdEscape(c.Why))
	}
	p("\n## Access reviews\n\n")
	if len(r.Reviews) == 0 {
		p("No access review on record.\n")
	}
	for _, rv := range r.Reviews {
		p("- %s: started %s, completed %s by %s, %d items\n", rv.ID, mdDate(rv.StartedAt), mdDate(rv.CompletedAt), mdEscape(rv.CompletedBy), len(rv.Items))
	}
	p("\n## Incidents\n\n")
	if len(r.Incidents) == 0 {
		p("No incident on record.\n")
	}
	for _, in := range r.Incidents {
		p("- %s (%s): %s; opened %s, closed %s, review due %s, reviewed %s\n", in.ID, mdEscape(in.Severity), mdEscape(in.Title),
			mdDate(in.OpenedAt), mdDate(in.ClosedAt), mdDate(in.ReviewDue), mdDate(in.ReviewedAt))
	}
	p("\n## Verification\n\nVerifier key:\n\n```\n%s\n```\n\nCheckpoint:\n\n```\n%s```\n", r.AuditPublicKey, r.Checkpoint)
	return b.Flush()
}

func dayRange(d DayRange) string {
	if d.From == d.To {
		return d.From
	}
	return d.From + " to " + d.To
}
