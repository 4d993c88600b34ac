package compliance

import (
	"encoding/json"
	"fmt"
)

// ChecklistItem is one item of the security baseline's verification
// checklist, decided from the finding of one check (whose evidence the
// finding carries).
type ChecklistItem struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Status Status `json:"status"`
	Reason string `json:"reason"`
	// Check is the check whose finding decides the item, and
	// FindingStatus that finding's status.
	Check         string `json:"check"`
	FindingStatus Status `json:"finding_status"`
}

// checklistRule decides one checklist item from a finding.
type checklistRule struct {
	id, title, check string
	// decide returns the item's status and reason; nil: the finding's.
	decide func(f Finding) (Status, string)
}

// checklistRules are the items of the baseline's verification checklist,
// in its order.
func checklistRules() []checklistRule {
	return []checklistRule{
		{id: "secrets_rotated", title: "Vault tokens and secrets rotated", check: "secrets.rotation"},
		{id: "signing_keys_rotated", title: "Auth-service signing keys rotated", check: "credentials.rotation_age", decide: decideSigningKeys},
		{id: "policy_tested", title: "Policy bundles validated with their tests (opa test)", check: "policy.deny_by_default"},
		{id: "scans_clear", title: "Dependency scans clear of critical CVEs", check: "dependencies.scan"},
		{id: "drills_within_sla", title: "Incident drills within SLA", check: "revocation.propagation"},
	}
}

// decideSigningKeys takes the signing-key part of credentials.rotation_age:
// an old API key fails the finding but not this item.
func decideSigningKeys(f Finding) (Status, string) {
	keys := observedNumber(f, "signing_keys")
	old := observedLen(f, "signing_keys_past_rotation_age")
	switch {
	case f.Status == StatusManual:
		return StatusManual, f.Reason
	case old < 0:
		return StatusManual, "the finding does not say which signing keys are past their rotation age"
	case old > 0:
		return StatusFail, fmt.Sprintf("%d of %.0f active signing keys past their rotation age (%v)", old, keys, f.Observed["max_age_signing_keys"])
	case keys <= 0:
		return StatusNotApplicable, "no token signing keys in use"
	}
	return StatusPass, fmt.Sprintf("%.0f signing keys, each within %v", keys, f.Observed["max_age_signing_keys"])
}

// observedJSON reads one value of a finding's observed data as generic
// JSON, the same whether the finding was just evaluated or read back
// from a report.
func observedJSON(f Finding, key string) any {
	b, err := json.Marshal(f.Observed[key])
	if err != nil {
		return nil
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return nil
	}
	return v
}

// observedLen is the length of a list in the observed data; -1 when it
// is not a list.
func observedLen(f Finding, key string) int {
	switch l := observedJSON(f, key).(type) {
	case []any:
		return len(l)
	case nil:
		if _, ok := f.Observed[key]; ok {
			return 0 // a nil list
		}
	}
	return -1
}

func observedNumber(f Finding, key string) float64 {
	n, _ := observedJSON(f, key).(float64)
	return n
}

// Checklist decides the verification checklist from the findings by
// check ID. A check with no finding makes its item manual.
func Checklist(findings map[string]Finding) []ChecklistItem {
	var out []ChecklistItem
	for _, r := range checklistRules() {
		it := ChecklistItem{ID: r.id, Title: r.title, Check: r.check}
		f, ok := findings[r.check]
		switch {
		case !ok:
			it.Status, it.FindingStatus, it.Reason = StatusManual, StatusManual, "the report has no finding of "+r.check
		case r.decide != nil:
			it.FindingStatus = f.Status
			it.Status, it.Reason = r.decide(f)
		default:
			it.FindingStatus = f.Status
			it.Status, it.Reason = f.Status, f.Reason
		}
		out = append(out, it)
	}
	return out
}

// findingsOf indexes a report's findings by check ID (a check deciding
// several controls has the same finding in each).
func findingsOf(r *Report) map[string]Finding {
	out := map[string]Finding{}
	for _, c := range r.Controls {
		for _, f := range c.Findings {
			if _, ok := out[f.Check]; !ok {
				out[f.Check] = f
			}
		}
	}
	return out
}

// verifyChecklist names every item of r's checklist that does not follow
// from the report's findings, and every item missing or added.
func verifyChecklist(r *Report) []string {
	var problems []string
	want := Checklist(findingsOf(r))
	got := map[string]ChecklistItem{}
	for _, it := range r.Checklist {
		got[it.ID] = it
	}
	known := map[string]bool{}
	for _, w := range want {
		known[w.ID] = true
		g, ok := got[w.ID]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("checklist[%s]: missing", w.ID))
		case g.Check != w.Check:
			problems = append(problems, fmt.Sprintf("checklist[%s]: rests on %s, it is decided by %s", w.ID, g.Check, w.Check))
		case g.FindingStatus != w.FindingStatus:
			problems = append(problems, fmt.Sprintf("checklist[%s]: says finding %s is %s, the report's finding is %s", w.ID, w.Check, g.FindingStatus, w.FindingStatus))
		case g.Status != w.Status:
			problems = append(problems, fmt.Sprintf("checklist[%s]: status %s does not follow from finding %s (%s)", w.ID, g.Status, w.Check, w.Status))
		}
	}
	for _, it := range r.Checklist {
		if !known[it.ID] {
			problems = append(problems, fmt.Sprintf("checklist[%s]: not an item of the verification checklist", it.ID))
		}
	}
	return problems
}
