package authz

import (
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// EventDecision is the audit event type for an authorization decision.
const EventDecision = "authz.decision"

// NewDecisionEvent returns the audit event for decision d on in, made at
// now: outcome success or denied, the reasons joined with "; ", and the
// policy revision and decision ID in Details. The gateway adds Request and
// TraceID. Every denial must be audited (issue 4); allows may be too.
func NewDecisionEvent(d Decision, in *Input, now time.Time) gatehouse.Event {
	ev := gatehouse.Event{
		ID:      d.DecisionID.String(),
		Time:    now.UTC(),
		Type:    EventDecision,
		Outcome: gatehouse.OutcomeSuccess,
		Reason:  strings.Join(d.Reasons, "; "),
		Details: map[string]any{
			"revision":    d.Revision,
			"decision_id": d.DecisionID.String(),
			"cached":      d.Cached,
		},
	}
	if !d.Allow {
		ev.Outcome = gatehouse.OutcomeDenied
	}
	if in != nil {
		ev.Actor = gatehouse.Actor{Kind: in.Principal.Kind, ID: in.Principal.ID}
		ev.Action = in.Action
		if ev.Action == "" {
			ev.Action = ActionHTTPRequest
		}
		ev.Resource = in.Resource
		if ev.Resource == "" && in.Route != nil {
			ev.Resource = "route:" + in.Route.Name
		}
		ev.Details["mode"] = in.Mode
	}
	return ev
}
