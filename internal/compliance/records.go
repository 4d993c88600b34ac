package compliance

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/gatehouse/gatehouse"
)

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
	Action  string    `json:"action"` // revoke_principal | revoke_before | lockdown | lift_lockdown
	Target  string    `json:"target"`
	Revoked []string  `json:"revoked"`
	// Allow is the allow list of a lockdown (and of the lockdown lifted).
	Allow []string `json:"allow,omitempty"`
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

// Settings is where Records keeps reviews and incidents: the store's
// settings (store.Store provides it).
type Settings interface {
	GetSetting(ctx context.Context, name string) ([]byte, error)
	PutSetting(ctx context.Context, name string, value []byte) error
}

// Setting names of the records.
const (
	settingReviews   = "compliance.reviews"
	settingIncidents = "compliance.incidents"
)

// Limits on what people write into records.
const (
	maxText  = 4000
	maxTitle = 200
)

// Records keeps access reviews and incidents. Changes are serialised in
// this process; replicas sharing a store may interleave (last write wins
// on a review's row, on the index of reviews and on the whole list of
// incidents), which docs/evidence.md notes.
type Records struct {
	st    Settings
	clock gatehouse.Clock
	mu    sync.Mutex
}

// NewRecords returns the records kept in st.
func NewRecords(st Settings, clock gatehouse.Clock) *Records {
	if clock == nil {
		clock = gatehouse.SystemClock{}
	}
	return &Records{st: st, clock: clock}
}

func load[T any](ctx context.Context, st Settings, name string) ([]T, error) {
	b, err := st.GetSetting(ctx, name)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return []T{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	var out []T
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	return out, nil
}

func save[T any](ctx context.Context, st Settings, name string, v []T) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := st.PutSetting(ctx, name, b); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func newID(prefix string, t time.Time) string {
	return prefix + strings.ToLower(ulid.MustNew(ulid.Timestamp(t), rand.Reader).String())
}

// ReviewSummary is a review without its items: what a list of reviews
// shows (a review holds every principal, 10,000 keys make 3 MB).
type ReviewSummary struct {
	ID          string    `json:"id"`
	StartedAt   time.Time `json:"started_at"`
	StartedBy   string    `json:"started_by"`
	CompletedAt time.Time `json:"completed_at,omitzero"`
	CompletedBy string    `json:"completed_by,omitempty"`
	// ItemCount is how many items the review holds, Decided how many of
	// them are decided, Decisions how many of each decision.
	ItemCount int            `json:"item_count"`
	Decided   int            `json:"decided"`
	Decisions map[string]int `json:"decisions"`
}

// Summary returns rv without its items, with their counts.
func (rv Review) Summary() ReviewSummary {
	s := ReviewSummary{ID: rv.ID, StartedAt: rv.StartedAt, StartedBy: rv.StartedBy, CompletedAt: rv.CompletedAt,
		CompletedBy: rv.CompletedBy, ItemCount: len(rv.Items), Decisions: map[string]int{}}
	for _, it := range rv.Items {
		if it.Decision != "" {
			s.Decided++
			s.Decisions[it.Decision]++
		}
	}
	return s
}

// Reviews are kept one settings row each (settingReviews+"/"+id) with an
// index row of their summaries (settingReviewIndex), oldest first, so a
// decision rewrites one review rather than all of them. A store holding
// the old format (every review in the one row settingReviews) is
// migrated on first read; the old row is left as it was.
const settingReviewIndex = settingReviews + ".index"

func reviewSetting(id string) string { return settingReviews + "/" + id }

// readIndex reads the index of reviews; found is false if there is none.
func (r *Records) readIndex(ctx context.Context) (index []ReviewSummary, found bool, err error) {
	b, err := r.st.GetSetting(ctx, settingReviewIndex)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", settingReviewIndex, err)
	}
	if err := json.Unmarshal(b, &index); err != nil {
		return nil, false, fmt.Errorf("decode %s: %w", settingReviewIndex, err)
	}
	return index, true, nil
}

// reviewIndex returns the summaries, migrating the old single row if
// there is no index yet.
func (r *Records) reviewIndex(ctx context.Context) ([]ReviewSummary, error) {
	index, found, err := r.readIndex(ctx)
	if err != nil || found {
		return index, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.indexLocked(ctx)
}

// indexLocked is reviewIndex with r.mu held: a migration does not race
// a change in this process.
func (r *Records) indexLocked(ctx context.Context) ([]ReviewSummary, error) {
	index, found, err := r.readIndex(ctx)
	if err != nil || found {
		return index, err
	}
	old, err := load[Review](ctx, r.st, settingReviews)
	if err != nil {
		return nil, err
	}
	index = make([]ReviewSummary, 0, len(old))
	for _, rv := range old {
		if err := r.putReview(ctx, rv); err != nil {
			return nil, fmt.Errorf("migrate review %s: %w", rv.ID, err)
		}
		index = append(index, rv.Summary())
	}
	if len(old) > 0 {
		// The index last: a migration cut short is done again.
		if err := save(ctx, r.st, settingReviewIndex, index); err != nil {
			return nil, fmt.Errorf("migrate reviews: %w", err)
		}
	}
	return index, nil
}

func (r *Records) putReview(ctx context.Context, rv Review) error {
	b, err := json.Marshal(rv)
	if err != nil {
		return fmt.Errorf("encode review %s: %w", rv.ID, err)
	}
	if err := r.st.PutSetting(ctx, reviewSetting(rv.ID), b); err != nil {
		return fmt.Errorf("write review %s: %w", rv.ID, err)
	}
	return nil
}

// ReviewSummaries lists the reviews without their items, oldest first.
func (r *Records) ReviewSummaries(ctx context.Context) ([]ReviewSummary, error) {
	return r.reviewIndex(ctx)
}

// Reviews lists the access reviews with every item, oldest first.
func (r *Records) Reviews(ctx context.Context) ([]Review, error) {
	index, err := r.reviewIndex(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Review, 0, len(index))
	for _, s := range index {
		rv, err := r.readReview(ctx, s.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, rv)
	}
	return out, nil
}

// Review returns one review (ENOTFOUND if there is none).
func (r *Records) Review(ctx context.Context, id string) (Review, error) {
	notFound := gatehouse.Errorf(gatehouse.ENOTFOUND, "review %q not found", id)
	if !validReviewID(id) {
		return Review{}, notFound
	}
	if _, err := r.reviewIndex(ctx); err != nil { // migrates the old format
		return Review{}, err
	}
	return r.readReview(ctx, id)
}

// readReview reads review id's row.
func (r *Records) readReview(ctx context.Context, id string) (Review, error) {
	notFound := gatehouse.Errorf(gatehouse.ENOTFOUND, "review %q not found", id)
	if !validReviewID(id) {
		return Review{}, notFound
	}
	b, err := r.st.GetSetting(ctx, reviewSetting(id))
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return Review{}, notFound
	}
	if err != nil {
		return Review{}, fmt.Errorf("read review %s: %w", id, err)
	}
	var rv Review
	if err := json.Unmarshal(b, &rv); err != nil {
		return Review{}, fmt.Errorf("decode review %s: %w", id, err)
	}
	return rv, nil
}

// validReviewID reports whether id can be a review's id (rev_ and a
// lower-case ULID): anything else names no settings row.
func validReviewID(id string) bool {
	rest, ok := strings.CutPrefix(id, "rev_")
	if !ok || len(rest) != 26 {
		return false
	}
	for _, c := range rest {
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// updateReview applies fn to review id and saves it and its summary.
func (r *Records) updateReview(ctx context.Context, id string, fn func(*Review) error) (Review, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.indexLocked(ctx); err != nil { // migrates the old format
		return Review{}, err
	}
	rv, err := r.readReview(ctx, id)
	if err != nil {
		return Review{}, err
	}
	if err := fn(&rv); err != nil {
		return Review{}, err
	}
	if err := r.putReview(ctx, rv); err != nil {
		return Review{}, err
	}
	return rv, r.putSummary(ctx, rv.Summary())
}

// putSummary replaces (or appends) a review's summary in the index; r.mu
// is held.
func (r *Records) putSummary(ctx context.Context, s ReviewSummary) error {
	index, err := r.indexLocked(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(index, func(v ReviewSummary) bool { return v.ID == s.ID })
	if i < 0 {
		index = append(index, s)
	} else {
		index[i] = s
	}
	return save(ctx, r.st, settingReviewIndex, index)
}

// StartReview records a new review of items (the snapshot of every
// principal), started by by. Only one review may be open at a time.
func (r *Records) StartReview(ctx context.Context, by string, items []ReviewItem) (Review, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	index, err := r.indexLocked(ctx)
	if err != nil {
		return Review{}, err
	}
	for _, s := range index {
		if s.CompletedAt.IsZero() {
			return Review{}, gatehouse.Errorf(gatehouse.ECONFLICT, "review %s is still open: complete it first", s.ID)
		}
	}
	now := r.clock.Now().UTC()
	rv := Review{ID: newID("rev_", now), StartedAt: now, StartedBy: by, Items: items}
	for i := range rv.Items {
		rv.Items[i].ID = "item_" + strconv.Itoa(i+1)
		if rv.Items[i].Scopes == nil {
			rv.Items[i].Scopes = []string{}
		}
	}
	if rv.Items == nil {
		rv.Items = []ReviewItem{}
	}
	// The review first, then the index that lists it.
	if err := r.putReview(ctx, rv); err != nil {
		return Review{}, err
	}
	return rv, r.putSummary(ctx, rv.Summary())
}

// Decisions on review items.
const (
	DecisionApprove = "approve"
	DecisionRevoke  = "revoke"
	DecisionChange  = "change"
)

// ValidateDecision checks a decision and its reason, naming the field.
func ValidateDecision(decision, reason string) error {
	switch decision {
	case DecisionApprove, DecisionRevoke, DecisionChange:
	default:
		return gatehouse.Errorf(gatehouse.EINVALID, "decision: must be approve, revoke or change")
	}
	if strings.TrimSpace(reason) == "" {
		return gatehouse.Errorf(gatehouse.EINVALID, "reason: required: say why")
	}
	if len(reason) > maxText {
		return gatehouse.Errorf(gatehouse.EINVALID, "reason: at most %d bytes", maxText)
	}
	return nil
}

// ReviewItemOf returns an item of an open review, for a decision on it.
func (r *Records) ReviewItemOf(ctx context.Context, reviewID, itemID string) (ReviewItem, error) {
	rv, err := r.Review(ctx, reviewID)
	if err != nil {
		return ReviewItem{}, err
	}
	if !rv.CompletedAt.IsZero() {
		return ReviewItem{}, gatehouse.Errorf(gatehouse.ECONFLICT, "review %s is complete", reviewID)
	}
	for _, it := range rv.Items {
		if it.ID == itemID {
			if it.Decision == DecisionRevoke {
				return ReviewItem{}, gatehouse.Errorf(gatehouse.ECONFLICT, "item %s was revoked already", itemID)
			}
			return it, nil
		}
	}
	return ReviewItem{}, gatehouse.Errorf(gatehouse.ENOTFOUND, "item %q not found in review %s", itemID, reviewID)
}

// Decide records a decision on an item of an open review.
func (r *Records) Decide(ctx context.Context, reviewID, itemID, decision, reason, by string) (ReviewItem, error) {
	if err := ValidateDecision(decision, reason); err != nil {
		return ReviewItem{}, err
	}
	var out ReviewItem
	_, err := r.updateReview(ctx, reviewID, func(rv *Review) error {
		if !rv.CompletedAt.IsZero() {
			return gatehouse.Errorf(gatehouse.ECONFLICT, "review %s is complete", reviewID)
		}
		for i := range rv.Items {
			it := &rv.Items[i]
			if it.ID == itemID {
				it.Decision, it.Reason, it.DecidedBy, it.DecidedAt = decision, reason, by, r.clock.Now().UTC()
				out = *it
				return nil
			}
		}
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "item %q not found in review %s", itemID, reviewID)
	})
	return out, err
}

// CompleteReview closes a review whose every item is decided.
func (r *Records) CompleteReview(ctx context.Context, id, by string) (Review, error) {
	return r.updateReview(ctx, id, func(rv *Review) error {
		if !rv.CompletedAt.IsZero() {
			return gatehouse.Errorf(gatehouse.ECONFLICT, "review %s is complete already", id)
		}
		var open []string
		for _, it := range rv.Items {
			if it.Decision == "" {
				open = append(open, it.ID)
			}
		}
		if len(open) > 0 {
			return gatehouse.Errorf(gatehouse.ECONFLICT, "%d items are not decided: %s", len(open), strings.Join(open, ", "))
		}
		rv.CompletedAt, rv.CompletedBy = r.clock.Now().UTC(), by
		return nil
	})
}

// ReviewDigest is the SHA-256 of a review's canonical JSON, recorded when
// it is completed (what the reviewer signed off).
func ReviewDigest(rv Review) string { return digest(rv) }

// Incident severities.
var severities = []string{"low", "medium", "high", "critical"}

// Incidents lists the incidents, oldest first.
func (r *Records) Incidents(ctx context.Context) ([]Incident, error) {
	return load[Incident](ctx, r.st, settingIncidents)
}

// Incident returns one incident (ENOTFOUND if there is none).
func (r *Records) Incident(ctx context.Context, id string) (Incident, error) {
	list, err := r.Incidents(ctx)
	if err != nil {
		return Incident{}, err
	}
	for _, in := range list {
		if in.ID == id {
			return in, nil
		}
	}
	return Incident{}, gatehouse.Errorf(gatehouse.ENOTFOUND, "incident %q not found", id)
}

func textField(name, v string, max int) error {
	switch {
	case strings.TrimSpace(v) == "":
		return gatehouse.Errorf(gatehouse.EINVALID, "%s: required", name)
	case len(v) > max:
		return gatehouse.Errorf(gatehouse.EINVALID, "%s: at most %d bytes", name, max)
	case strings.ContainsAny(v, "\x00"):
		return gatehouse.Errorf(gatehouse.EINVALID, "%s: must not contain NUL", name)
	}
	return nil
}

// OpenIncident records a new incident.
func (r *Records) OpenIncident(ctx context.Context, by, title, severity, impact string) (Incident, error) {
	if err := textField("title", title, maxTitle); err != nil {
		return Incident{}, err
	}
	if !slices.Contains(severities, severity) {
		return Incident{}, gatehouse.Errorf(gatehouse.EINVALID, "severity: must be low, medium, high or critical")
	}
	if err := textField("impact", impact, maxText); err != nil {
		return Incident{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	list, err := r.Incidents(ctx)
	if err != nil {
		return Incident{}, err
	}
	now := r.clock.Now().UTC()
	in := Incident{ID: newID("inc_", now), Title: title, Severity: severity, Impact: impact, OpenedAt: now, OpenedBy: by,
		Notes: []IncidentNote{}, Actions: []Containment{}}
	list = append(list, in)
	return in, save(ctx, r.st, settingIncidents, list)
}

// UpdateIncident applies fn to incident id and saves it.
func (r *Records) UpdateIncident(ctx context.Context, id string, fn func(*Incident) error) (Incident, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	list, err := r.Incidents(ctx)
	if err != nil {
		return Incident{}, err
	}
	for i := range list {
		if list[i].ID == id {
			if err := fn(&list[i]); err != nil {
				return Incident{}, err
			}
			return list[i], save(ctx, r.st, settingIncidents, list)
		}
	}
	return Incident{}, gatehouse.Errorf(gatehouse.ENOTFOUND, "incident %q not found", id)
}

// AddNote adds a note to an open incident's timeline.
func (r *Records) AddNote(ctx context.Context, id, by, text string) (Incident, error) {
	if err := textField("text", text, maxText); err != nil {
		return Incident{}, err
	}
	return r.UpdateIncident(ctx, id, func(in *Incident) error {
		if !in.ClosedAt.IsZero() {
			return gatehouse.Errorf(gatehouse.ECONFLICT, "incident %s is closed", id)
		}
		in.Notes = append(in.Notes, IncidentNote{At: r.clock.Now().UTC(), By: by, Text: text})
		return nil
	})
}

// OpenCheck returns an incident that is still open, for containment.
func (r *Records) OpenCheck(ctx context.Context, id string) (Incident, error) {
	in, err := r.Incident(ctx, id)
	if err == nil && !in.ClosedAt.IsZero() {
		err = gatehouse.Errorf(gatehouse.ECONFLICT, "incident %s is closed", id)
	}
	return in, err
}

// AddContainment records a containment action taken.
func (r *Records) AddContainment(ctx context.Context, id string, c Containment) (Incident, error) {
	return r.UpdateIncident(ctx, id, func(in *Incident) error {
		c.At = r.clock.Now().UTC()
		if c.Revoked == nil {
			c.Revoked = []string{}
		}
		in.Actions = append(in.Actions, c)
		return nil
	})
}

// CloseIncident closes an incident; its post-incident review is due
// reviewDays business days later.
func (r *Records) CloseIncident(ctx context.Context, id, by string, reviewDays int) (Incident, error) {
	return r.UpdateIncident(ctx, id, func(in *Incident) error {
		if !in.ClosedAt.IsZero() {
			return gatehouse.Errorf(gatehouse.ECONFLICT, "incident %s is closed already", id)
		}
		in.ClosedAt, in.ClosedBy = r.clock.Now().UTC(), by
		in.ReviewDue = BusinessDaysAfter(in.ClosedAt, reviewDays)
		return nil
	})
}

// ReviewIncident records the post-incident review of a closed incident.
func (r *Records) ReviewIncident(ctx context.Context, id, by, summary string) (Incident, error) {
	if err := textField("summary", summary, maxText); err != nil {
		return Incident{}, err
	}
	return r.UpdateIncident(ctx, id, func(in *Incident) error {
		switch {
		case in.ClosedAt.IsZero():
			return gatehouse.Errorf(gatehouse.ECONFLICT, "incident %s is open: close it first", id)
		case !in.ReviewedAt.IsZero():
			return gatehouse.Errorf(gatehouse.ECONFLICT, "incident %s was reviewed already", id)
		}
		in.ReviewedAt, in.ReviewedBy, in.Review = r.clock.Now().UTC(), by, summary
		return nil
	})
}
