package compliance

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// OSCALVersion is the OSCAL version RenderOSCAL writes.
const OSCALVersion = "1.1.2"

// oscalNS is the namespace of Gatehouse's OSCAL properties.
const oscalNS = "https://gatehouse.dev/ns/oscal"

// The OSCAL assessment-results model, as much of it as the report needs
// (field names as the NIST schema spells them).
type (
	oscalDoc struct {
		AR oscalAR `json:"assessment-results"`
	}
	oscalAR struct {
		UUID       string          `json:"uuid"`
		Metadata   oscalMetadata   `json:"metadata"`
		ImportAP   oscalHref       `json:"import-ap"`
		Results    []oscalResult   `json:"results"`
		BackMatter oscalBackMatter `json:"back-matter"`
	}
	oscalMetadata struct {
		Title        string      `json:"title"`
		LastModified string      `json:"last-modified"`
		Version      string      `json:"version"`
		OSCALVersion string      `json:"oscal-version"`
		Props        []oscalProp `json:"props,omitempty"`
	}
	oscalHref struct {
		Href string `json:"href"`
	}
	oscalProp struct {
		Name  string `json:"name"`
		NS    string `json:"ns,omitempty"`
		Value string `json:"value"`
	}
	oscalLink struct {
		Href string `json:"href"`
		Rel  string `json:"rel,omitempty"`
		Text string `json:"text,omitempty"`
	}
	oscalResult struct {
		UUID             string             `json:"uuid"`
		Title            string             `json:"title"`
		Description      string             `json:"description"`
		Start            string             `json:"start"`
		End              string             `json:"end"`
		Props            []oscalProp        `json:"props,omitempty"`
		ReviewedControls oscalReviewed      `json:"reviewed-controls"`
		Observations     []oscalObservation `json:"observations,omitempty"`
		Findings         []oscalFinding     `json:"findings,omitempty"`
	}
	oscalReviewed struct {
		ControlSelections []oscalSelection `json:"control-selections"`
	}
	oscalSelection struct {
		IncludeControls []oscalControlID `json:"include-controls"`
	}
	oscalControlID struct {
		ControlID string `json:"control-id"`
	}
	oscalObservation struct {
		UUID             string          `json:"uuid"`
		Title            string          `json:"title"`
		Description      string          `json:"description"`
		Props            []oscalProp     `json:"props,omitempty"`
		Links            []oscalLink     `json:"links,omitempty"`
		Methods          []string        `json:"methods"`
		Types            []string        `json:"types,omitempty"`
		RelevantEvidence []oscalEvidence `json:"relevant-evidence,omitempty"`
		Collected        string          `json:"collected"`
		Remarks          string          `json:"remarks,omitempty"`
	}
	oscalEvidence struct {
		Href        string      `json:"href,omitempty"`
		Description string      `json:"description"`
		Props       []oscalProp `json:"props,omitempty"`
	}
	oscalFinding struct {
		UUID                string            `json:"uuid"`
		Title               string            `json:"title"`
		Description         string            `json:"description"`
		Props               []oscalProp       `json:"props,omitempty"`
		Target              oscalTarget       `json:"target"`
		RelatedObservations []oscalRelatedObs `json:"related-observations,omitempty"`
	}
	oscalTarget struct {
		Type     string      `json:"type"`
		TargetID string      `json:"target-id"`
		Status   oscalStatus `json:"status"`
	}
	oscalStatus struct {
		State  string `json:"state"`
		Reason string `json:"reason,omitempty"`
	}
	oscalRelatedObs struct {
		ObservationUUID string `json:"observation-uuid"`
	}
	oscalBackMatter struct {
		Resources []oscalResource `json:"resources"`
	}
	oscalResource struct {
		UUID        string      `json:"uuid"`
		Title       string      `json:"title"`
		Description string      `json:"description"`
		Base64      oscalBase64 `json:"base64"`
	}
	oscalBase64 struct {
		Filename  string `json:"filename"`
		MediaType string `json:"media-type"`
		Value     string `json:"value"`
	}
)

// oscalUUID is a name-based UUID (version 5 layout over SHA-256) of the
// report id and a name: the same report always renders the same UUIDs.
func oscalUUID(reportID, name string) string {
	sum := sha256.Sum256([]byte(reportID + "\x00" + name))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// oscalText makes s a valid OSCAL string: no leading or trailing space,
// never empty.
func oscalText(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "-"
	}
	return s
}

func oscalTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func prop(name, value string) oscalProp {
	return oscalProp{Name: name, NS: oscalNS, Value: oscalText(value)}
}

// oscalState maps a status to an OSCAL finding target status: only pass
// is satisfied; fail and manual (evidence still owed) are not;
// not_applicable is satisfied with reason other. The Gatehouse status is
// a property beside it.
func oscalState(s Status) oscalStatus {
	switch s {
	case StatusPass:
		return oscalStatus{State: "satisfied", Reason: "pass"}
	case StatusNotApplicable:
		return oscalStatus{State: "satisfied", Reason: "other"}
	case StatusFail:
		return oscalStatus{State: "not-satisfied", Reason: "fail"}
	}
	return oscalStatus{State: "not-satisfied", Reason: "other"}
}

// RenderOSCAL writes r as an OSCAL assessment-results document: one result
// for the period, one observation per check (its reason, status, the
// cited audit entries as relevant evidence), one finding per criterion
// linked to its checks' observations, and the signed JSON report in
// back-matter (base64), which `gatehouse evidence verify` checks.
func RenderOSCAL(w io.Writer, r *Report, signedJSON []byte) error {
	resUUID := oscalUUID(r.ID, "back-matter/signed-report")
	doc := oscalDoc{AR: oscalAR{
		UUID: oscalUUID(r.ID, "assessment-results"),
		Metadata: oscalMetadata{
			Title:        fmt.Sprintf("Gatehouse SOC 2 evidence %s to %s", r.Period.From.UTC().Format(time.DateOnly), r.Period.To.UTC().Format(time.DateOnly)),
			LastModified: oscalTime(r.GeneratedAt), Version: r.ID, OSCALVersion: OSCALVersion,
			Props: []oscalProp{prop("generated-by", r.GeneratedBy), prop("criteria", "AICPA TSC 2017 (points of focus 2022)")},
		},
		ImportAP: oscalHref{Href: "#" + resUUID},
		BackMatter: oscalBackMatter{Resources: []oscalResource{{
			UUID: resUUID, Title: "Signed Gatehouse evidence report",
			Description: "The report as signed with the audit log's key: every finding's audit entries with RFC 6962 inclusion proofs against the signed checkpoint. Check with gatehouse evidence verify.",
			Base64:      oscalBase64{Filename: "evidence-" + r.ID + ".json", MediaType: "application/json", Value: base64.StdEncoding.EncodeToString(signedJSON)},
		}}},
	}}
	res := oscalResult{
		UUID: oscalUUID(r.ID, "result"), Title: "Controls decided from live state",
		Description: "Each check read the running Gatehouse and its tamper-evident audit log; see the observations' relevant evidence.",
		Start:       oscalTime(r.Period.From), End: oscalTime(r.Period.To),
		Props: []oscalProp{prop("pass", fmt.Sprint(r.Summary[StatusPass])), prop("fail", fmt.Sprint(r.Summary[StatusFail])),
			prop("manual", fmt.Sprint(r.Summary[StatusManual])), prop("not-applicable", fmt.Sprint(r.Summary[StatusNotApplicable]))},
	}
	seen := map[string]bool{}
	var sel oscalSelection
	for _, c := range r.Controls {
		cid := strings.ToLower(c.ID)
		sel.IncludeControls = append(sel.IncludeControls, oscalControlID{ControlID: cid})
		f := oscalFinding{
			UUID: oscalUUID(r.ID, "finding/"+c.ID), Title: c.ID + " " + c.Title, Description: oscalText(c.Reason),
			Props:  []oscalProp{prop("status", string(c.Status)), prop("criterion", c.ID)},
			Target: oscalTarget{Type: "objective-id", TargetID: cid, Status: oscalState(c.Status)},
		}
		for _, fd := range c.Findings {
			obsUUID := oscalUUID(r.ID, "observation/"+fd.Check)
			f.RelatedObservations = append(f.RelatedObservations, oscalRelatedObs{ObservationUUID: obsUUID})
			if seen[fd.Check] {
				continue
			}
			seen[fd.Check] = true
			o := oscalObservation{
				UUID: obsUUID, Title: fd.Title, Description: oscalText(fd.Reason), Methods: []string{"TEST"}, Types: []string{"finding"},
				Collected: oscalTime(r.GeneratedAt),
				Props:     []oscalProp{prop("check", fd.Check), prop("status", string(fd.Status))},
				Links:     []oscalLink{{Href: "#" + resUUID, Rel: "evidence", Text: "signed report"}},
			}
			if fd.Remediation != "" {
				o.Props = append(o.Props, prop("remediation", fd.Remediation))
			}
			if fd.Provide != "" {
				o.Remarks = "A person must provide: " + fd.Provide
			}
			if len(fd.Observed) > 0 {
				b, _ := json.Marshal(fd.Observed)
				o.Props = append(o.Props, prop("observed-sha256", digest(fd.Observed)))
				if o.Remarks != "" {
					o.Remarks += "\n\n"
				}
				o.Remarks += "Observed: " + string(b)
			}
			for _, e := range fd.Evidence {
				o.RelevantEvidence = append(o.RelevantEvidence, oscalEvidence{
					Href:        "#" + resUUID,
					Description: fmt.Sprintf("Audit entry %d (%s %s), included in the tree of the signed checkpoint", e.Index, e.Claim.Type, e.Claim.ID),
					Props: []oscalProp{prop("audit-index", fmt.Sprint(e.Index)), prop("leaf-hash", base64.StdEncoding.EncodeToString(e.LeafHash)),
						prop("proof-hashes", fmt.Sprint(len(e.Proof)))},
				})
			}
			res.Observations = append(res.Observations, o)
		}
		res.Findings = append(res.Findings, f)
	}
	res.ReviewedControls = oscalReviewed{ControlSelections: []oscalSelection{sel}}
	doc.AR.Results = []oscalResult{res}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
