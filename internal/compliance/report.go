package compliance

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
)

// FormatVersion names the JSON report format: v2 added the verification
// checklist and the timeline. Verify still checks v1 reports, which have
// neither.
const FormatVersion = "gatehouse-evidence/v2"

// formatV1 is the format before the checklist and the timeline.
const formatV1 = "gatehouse-evidence/v1"

// Event types the report writes to the audit log.
const (
	// EventEvaluated records every check's status and a digest of what it
	// observed; every finding cites it.
	EventEvaluated = "compliance.evaluated"
	// EventReport records a signed report's SHA-256.
	EventReport = "compliance.report"
)

// Report is the machine form of the evidence (the JSON renderer writes it
// as is; the others render it).
type Report struct {
	Format      string    `json:"format"`
	ID          string    `json:"id"`
	GeneratedAt time.Time `json:"generated_at"`
	GeneratedBy string    `json:"generated_by"`
	Period      Period    `json:"period"`
	Mode        string    `json:"mode"`
	// Checkpoint is the signed note every proof verifies against, and
	// AuditPublicKey the note verifier key of the log.
	Checkpoint     string          `json:"checkpoint"`
	AuditPublicKey string          `json:"audit_public_key"`
	Thresholds     Thresholds      `json:"thresholds"`
	Summary        map[Status]int  `json:"summary"`
	Controls       []ControlResult `json:"controls"`
	// Checklist is the security baseline's verification checklist, each
	// item decided from one finding of Controls.
	Checklist []ChecklistItem `json:"checklist"`
	// Timeline is when each control held over the period, from the daily
	// compliance.snapshot entries of the log.
	Timeline    *Timeline    `json:"timeline"`
	Corrections []Correction `json:"corrections"`
	Traffic     []DayCount   `json:"traffic"`
	Reviews     []Review     `json:"reviews"`
	Incidents   []Incident   `json:"incidents"`
	// Signature is a signed note (the log's key) over the SHA-256 of the
	// report's canonical JSON without this field.
	Signature string `json:"signature,omitempty"`
}

// ControlResult is one control and the findings of its checks.
type ControlResult struct {
	Control
	Status   Status    `json:"status"`
	Reason   string    `json:"reason"`
	Findings []Finding `json:"findings"`
}

// Ref cites one audit entry: its stored bytes, leaf hash and RFC 6962
// inclusion proof against the report's checkpoint, and what the finding
// claims the entry says.
type Ref struct {
	Index    uint64   `json:"index"`
	Entry    []byte   `json:"entry"`
	LeafHash []byte   `json:"leaf_hash"`
	Proof    [][]byte `json:"proof"`
	Claim    Claim    `json:"claim"`
}

// Claim is what a finding says a cited entry holds; Verify compares it
// with the entry.
type Claim struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	// Check, Status and ObservedSHA256 are claimed of the evaluation
	// entry: the check's status and the digest of its observed data.
	Check          string `json:"check,omitempty"`
	Status         Status `json:"status,omitempty"`
	ObservedSHA256 string `json:"observed_sha256,omitempty"`
}

// Log is what a report needs of the audit log (both storages provide it).
type Log interface {
	gatehouse.Auditor
	Sync(ctx context.Context) ([]byte, error)
	Proof(ctx context.Context, index uint64) (audit.Proof, error)
	Query(ctx context.Context, f audit.Filter, cursor string, limit int) (audit.Page, error)
	VerifierKey() string
	// SignReport signs a report's SHA-256 with the log's key (see
	// audit.SignReport).
	SignReport(sum [32]byte) ([]byte, error)
}

// Evaluate runs every check on s and returns the findings by check ID. A
// pass with nothing observed becomes manual: a report never claims pass
// for a check without data.
func Evaluate(s *State) map[string]Finding {
	s.Thresholds = s.Thresholds.withDefaults()
	out := map[string]Finding{}
	for _, c := range Checks() {
		f := c.Run(s)
		f.Check, f.Title = c.ID, c.Title
		if !f.Status.Valid() {
			f.Status, f.Reason = StatusManual, "the check returned no status"
		}
		if f.Status == StatusPass && len(f.Observed) == 0 {
			f.Status, f.Reason = StatusManual, "no data to decide the check on"
			f.Provide = "the evidence this check reads"
		}
		out[c.ID] = f
	}
	return out
}

// controlStatus combines the statuses of a control's findings: any fail
// fails it; else any manual makes it manual; all not applicable make it
// not applicable; otherwise it passes.
func controlStatus(fs []Finding) (Status, string) {
	count := map[Status]int{}
	for _, f := range fs {
		count[f.Status]++
	}
	switch {
	case len(fs) == 0:
		return StatusManual, "no check decides this control"
	case count[StatusFail] > 0:
		return StatusFail, fmt.Sprintf("%d of %d checks fail", count[StatusFail], len(fs))
	case count[StatusManual] > 0:
		return StatusManual, fmt.Sprintf("%d of %d checks need evidence from a person", count[StatusManual], len(fs))
	case count[StatusNotApplicable] == len(fs):
		return StatusNotApplicable, "no check applies to this deployment"
	}
	return StatusPass, fmt.Sprintf("%d checks pass", count[StatusPass])
}

// BuildOptions are the inputs of Build beside the state.
type BuildOptions struct {
	Log Log
	By  gatehouse.Actor
	// Request is the admin request asking, for the audit events.
	Request *gatehouse.RequestInfo
}

// Build evaluates s, records the evaluation in the audit log, proves every
// cited entry against one signed checkpoint, signs the report and records
// its hash. It returns the report with its signature.
func Build(ctx context.Context, s *State, opts BuildOptions) (*Report, error) {
	findings := Evaluate(s)
	id := ulid.MustNew(ulid.Timestamp(s.Now), rand.Reader).String()
	checks := map[string]any{}
	for cid, f := range findings {
		checks[cid] = map[string]any{"status": string(f.Status), "observed_sha256": digest(f.Observed)}
	}
	ev := gatehouse.Event{
		ID: ulid.MustNew(ulid.Timestamp(s.Now), rand.Reader).String(), Time: s.Now.UTC(), Type: EventEvaluated,
		Actor: opts.By, Action: EventEvaluated, Resource: "report:" + id, Outcome: gatehouse.OutcomeSuccess,
		Request: opts.Request,
		Details: map[string]any{"report": id, "period_from": s.Period.From.UTC().Format(time.RFC3339),
			"period_to": s.Period.To.UTC().Format(time.RFC3339), "checks": checks},
	}
	evalEntry, err := recordAndFind(ctx, opts.Log, ev)
	if err != nil {
		return nil, fmt.Errorf("record the evaluation: %w", err)
	}
	// Every index cited, the evaluation first.
	want := []uint64{evalEntry.Index}
	for _, f := range findings {
		for _, c := range f.cites {
			want = append(want, c.Index)
		}
	}
	snaps := snapshotsOf(s)
	for _, e := range snaps {
		want = append(want, e.Index)
	}
	cp, proofs, err := proveAll(ctx, opts.Log, want)
	if err != nil {
		return nil, err
	}
	ref := func(e audit.Entry, claim Claim) Ref {
		p := proofs[e.Index]
		return Ref{Index: e.Index, Entry: p.Entry, LeafHash: p.LeafHash, Proof: p.Hashes, Claim: claim}
	}
	for cid, f := range findings {
		f.Evidence = []Ref{ref(evalEntry, Claim{ID: ev.ID, Type: EventEvaluated, Check: cid, Status: f.Status, ObservedSHA256: digest(f.Observed)})}
		seen := map[uint64]bool{evalEntry.Index: true}
		for _, c := range f.cites {
			if seen[c.Index] {
				continue
			}
			seen[c.Index] = true
			f.Evidence = append(f.Evidence, ref(c, Claim{ID: c.Event.ID, Type: c.Event.Type}))
		}
		findings[cid] = f
	}
	r := &Report{
		Format: FormatVersion, ID: id, GeneratedAt: s.Now.UTC(), GeneratedBy: opts.By.Kind + ":" + opts.By.ID,
		Period: Period{From: s.Period.From.UTC(), To: s.Period.To.UTC()}, Mode: s.Mode,
		Checkpoint: string(cp), AuditPublicKey: opts.Log.VerifierKey(), Thresholds: s.Thresholds,
		Summary: map[Status]int{}, Corrections: Corrections(), Traffic: s.Traffic,
		Reviews: s.Reviews, Incidents: s.Incidents,
	}
	if r.Traffic == nil {
		r.Traffic = []DayCount{}
	}
	if r.Reviews == nil {
		r.Reviews = []Review{}
	}
	if r.Incidents == nil {
		r.Incidents = []Incident{}
	}
	for _, c := range Catalog() {
		cr := ControlResult{Control: c}
		for _, cid := range c.Checks {
			cr.Findings = append(cr.Findings, findings[cid])
		}
		cr.Status, cr.Reason = controlStatus(cr.Findings)
		r.Summary[cr.Status]++
		r.Controls = append(r.Controls, cr)
	}
	r.Checklist = Checklist(findings)
	var days []snapshotDay
	for _, e := range snaps {
		if d, ok := snapshotOf(e.Event); ok {
			days = append(days, d)
		}
	}
	tl := timelineOf(r.Period, r.GeneratedAt, days)
	tl.Snapshots = []Ref{}
	for _, e := range snaps {
		tl.Snapshots = append(tl.Snapshots, ref(e, Claim{ID: e.Event.ID, Type: e.Event.Type}))
	}
	r.Timeline = &tl
	sum, err := Hash(r)
	if err != nil {
		return nil, err
	}
	sig, err := opts.Log.SignReport(sum)
	if err != nil {
		return nil, fmt.Errorf("sign the report: %w", err)
	}
	r.Signature = string(sig)
	err = opts.Log.Record(ctx, gatehouse.Event{
		Time: s.Now.UTC(), Type: EventReport, Actor: opts.By, Action: EventReport, Resource: "report:" + id,
		Outcome: gatehouse.OutcomeSuccess, Request: opts.Request,
		Details: map[string]any{"sha256": fmt.Sprintf("%x", sum), "evaluation": evalEntry.Index, "summary": r.Summary},
	})
	if err != nil {
		return nil, fmt.Errorf("record the report: %w", err)
	}
	return r, nil
}

// Hash is the SHA-256 of the report's canonical JSON without its
// signature: what the signature signs.
func Hash(r *Report) ([32]byte, error) {
	c := *r
	c.Signature = ""
	b, err := canonical(&c)
	if err != nil {
		return [32]byte{}, fmt.Errorf("encode report: %w", err)
	}
	return sha256.Sum256(b), nil
}

// recordAndFind records e and returns it as stored, with its index.
func recordAndFind(ctx context.Context, log Log, e gatehouse.Event) (audit.Entry, error) {
	before, err := log.Sync(ctx)
	if err != nil {
		return audit.Entry{}, err
	}
	body, err := audit.ParseCheckpoint(noteText(before))
	if err != nil {
		return audit.Entry{}, err
	}
	if err := log.Record(ctx, e); err != nil {
		return audit.Entry{}, err
	}
	// The entry is sequenced at or after the checkpoint taken before it;
	// in PostgreSQL, once the sequencer has moved it.
	for attempt := 0; attempt < 50; attempt++ {
		if _, err := log.Sync(ctx); err != nil {
			return audit.Entry{}, err
		}
		cursor := strconv.FormatUint(body.Size, 10)
		for {
			page, err := log.Query(ctx, audit.Filter{Type: e.Type}, cursor, 1000)
			if err != nil {
				return audit.Entry{}, err
			}
			for _, en := range page.Entries {
				if en.Event.ID == e.ID {
					return en, nil
				}
			}
			if page.Next == "" {
				break
			}
			cursor = page.Next
		}
		select {
		case <-ctx.Done():
			return audit.Entry{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return audit.Entry{}, errors.New("the evaluation event was not sequenced into the log within 5s")
}

// noteText is the text of a signed note (before its blank line).
func noteText(signed []byte) string {
	s := string(signed)
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '\n' && s[i+1] == '\n' {
			return s[:i+1]
		}
	}
	return s
}

// proveAll returns inclusion proofs of every index against one checkpoint:
// proofs come against the newest checkpoint, so a checkpoint signed
// meanwhile makes it start over (at most a few times).
func proveAll(ctx context.Context, log Log, indexes []uint64) ([]byte, map[uint64]audit.Proof, error) {
	for round := 0; round < 5; round++ {
		cp, err := log.Sync(ctx)
		if err != nil {
			return nil, nil, err
		}
		proofs := map[uint64]audit.Proof{}
		again := false
		for _, i := range indexes {
			if _, ok := proofs[i]; ok {
				continue
			}
			p, err := log.Proof(ctx, i)
			if err != nil {
				return nil, nil, fmt.Errorf("inclusion proof of entry %d: %w", i, err)
			}
			if p.Checkpoint != string(cp) {
				again = true
				break
			}
			proofs[i] = p
		}
		if !again {
			return cp, proofs, nil
		}
	}
	return nil, nil, errors.New("checkpoints kept changing while the proofs were gathered; try again")
}

// MarshalReport is the JSON form of r, indented.
func MarshalReport(r *Report) ([]byte, error) {
	return json.MarshalIndent(r, "", "  ")
}
