package compliance

import "time"

// Review is an access review (CC6.2, CC6.3): a snapshot of every
// principal, each item decided by a reviewer.
type Review struct {
	ID          string       `json:"id"`
	StartedAt   time.Time    `json:"started_at"`
	StartedBy   string       `json:"started_by"`
	CompletedAt time.Time    `json:"completed_at,omitzero"`
	CompletedBy string       `json:"completed_by,omitempty"`
	Items       []ReviewItem `json:"items"`
}

// ReviewItem is one principal under review and its decision.
type ReviewItem struct {
	ID         string    `json:"id"`
	Principal  string    `json:"principal"` // kind:id, e.g. api_key:key_…, user:alice
	Kind       string    `json:"kind"`      // api_key | client | pat | user
	Name       string    `json:"name,omitempty"`
	Scopes     []string  `json:"scopes"`
	Role       string    `json:"role,omitempty"`
	CreatedBy  string    `json:"created_by,omitempty"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	Decision   string    `json:"decision,omitempty"` // approve | revoke | change
	Reason     string    `json:"reason,omitempty"`
	DecidedBy  string    `json:"decided_by,omitempty"`
	DecidedAt  time.Time `json:"decided_at,omitzero"`
}

// Incident is a security incident (CC7.3–CC7.5) from detection to its
// post-incident review.
type Incident struct {
	ID         string         `json:"id"`
	Title      string         `json:"title"`
	Severity   string         `json:"severity"` // low | medium | high | critical
	Impact     string         `json:"impact"`
	OpenedAt   time.Time      `json:"opened_at"`
	OpenedBy   string         `json:"opened_by"`
	Notes      []IncidentNote `json:"notes"`
	Actions    []Containment  `json:"containment"`
	ClosedAt   time.Time      `json:"closed_at,omitzero"`
	ClosedBy   string         `json:"closed_by,omitempty"`
	ReviewDue  time.Time      `json:"review_due,omitzero"`
	ReviewedAt time.Time      `json:"reviewed_at,omitzero"`
	ReviewedBy string         `json:"reviewed_by,omitempty"`
	Review     string         `json:"review,omitempty"`
}

// IncidentNote is one note of an incident's timeline.
type IncidentNote struct {
	At   time.Time `json:"at"`
	By   string    `json:"by"`
	Text string    `json:"text"`
}

// Containment is one containment action taken for an incident.
type Containment struct {
	At      time.Time `json:"at"`
	By      string    `json:"by"`
	Action  string    `json:"action"` // revoke_principal | revoke_before
	Target  string    `json:"target"`
	Revoked []string  `json:"revoked"`
}

// BusinessDaysAfter returns the end of the nth business day (Monday to
// Friday, UTC) after t: when a post-incident review is due.
func BusinessDaysAfter(t time.Time, n int) time.Time {
	d := t.UTC()
	for n > 0 {
		d = d.AddDate(0, 0, 1)
		if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
			n--
		}
	}
	y, m, day := d.Date()
	return time.Date(y, m, day, 23, 59, 59, 0, time.UTC)
}
