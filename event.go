package gatehouse

import (
	"context"
	"time"
)

// Outcome of an audited action.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeDenied  = "denied"
)

// Actor is who did something. ID never holds a credential.
type Actor struct {
	Kind string `json:"kind"`
	ID   string `json:"id,omitempty"`
}

// RequestInfo describes the HTTP request behind an event.
type RequestInfo struct {
	Method     string  `json:"method,omitempty"`
	Path       string  `json:"path,omitempty"`
	Status     int     `json:"status,omitempty"`
	DurationMS float64 `json:"duration_ms,omitempty"`
	SourceIP   string  `json:"source_ip,omitempty"`
	RequestID  string  `json:"request_id,omitempty"`
}

// Event is one audit record (fields after OCSF, see DESIGN.md §4).
type Event struct {
	ID       string         `json:"id"`
	Time     time.Time      `json:"time"`
	Type     string         `json:"type"`
	Actor    Actor          `json:"actor"`
	Action   string         `json:"action"`
	Resource string         `json:"resource,omitempty"`
	Outcome  string         `json:"outcome"`
	Reason   string         `json:"reason,omitempty"`
	Request  *RequestInfo   `json:"request,omitempty"`
	TraceID  string         `json:"trace_id,omitempty"`
	Details  map[string]any `json:"details,omitempty"`
}

// Auditor records audit events. Record returns once the event is as durable
// as the auditor promises (see the audit package). Implementations are safe
// for concurrent use.
type Auditor interface {
	Record(ctx context.Context, e Event) error
}
