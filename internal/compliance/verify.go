package compliance

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
)

// VerifyResult is what Verify checked.
type VerifyResult struct {
	// Problems name every part of the report that does not check; empty
	// when the report is intact.
	Problems []string `json:"problems"`
	// KeyFromReport is set when no key was given and the report's own
	// audit_public_key was used: that proves integrity only against edits
	// that did not also replace the key.
	KeyFromReport bool `json:"key_from_report"`
	// Format is the report's format (gatehouse-evidence/v1 reports have
	// no checklist or timeline to check).
	Format   string `json:"format"`
	Controls int    `json:"controls"`
	Findings int    `json:"findings"`
	Proofs   int    `json:"proofs"`
	TreeSize uint64 `json:"tree_size"`
}

// OK reports whether nothing failed.
func (v VerifyResult) OK() bool { return len(v.Problems) == 0 }

// ExtractJSON returns the JSON report in data: data itself, or the report
// embedded in an HTML or OSCAL rendering.
func ExtractJSON(data []byte) []byte {
	if b, ok := fromOSCAL(data); ok {
		return b
	}
	start := bytes.Index(data, []byte(htmlReportStart))
	if start < 0 {
		return data
	}
	rest := data[start+len(htmlReportStart):]
	end := bytes.Index(rest, []byte("</pre>"))
	if end < 0 {
		return data
	}
	b, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(rest[:end])))
	if err != nil {
		return data
	}
	return b
}

// Verify checks a JSON report offline, holding only the log's verifier key
// vkey ("" uses the report's own, and says so): the report's signature,
// the checkpoint's signature, every inclusion proof, that each cited entry
// is what its claim says (the evaluation entry: the finding's status and
// the digest of its observed data), that no check claims pass without
// data, that each control's status follows from its findings, and that
// each item of the verification checklist follows from its finding, and
// that the timeline follows from the daily snapshot entries it cites.
func Verify(data []byte, vkey string) (VerifyResult, error) {
	var keys []string
	if strings.TrimSpace(vkey) != "" {
		keys = []string{vkey}
	}
	return VerifyKeys(data, keys)
}

// VerifyKeys is Verify with the verifier keys of the log's key chain
// (oldest first; none: the report's own key): a report signed before an
// audit key rotation names, and is signed by, the key of its time, which
// must be one of keys; its checkpoint may be signed by any of them (a
// hand-over in between).
func VerifyKeys(data []byte, keys []string) (VerifyResult, error) {
	var res VerifyResult
	var vkey string
	bad := func(format string, args ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, args...)) }
	var generic map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return res, fmt.Errorf("read report: not JSON: %w", err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return res, fmt.Errorf("read report: %w", err)
	}
	if r.Format != FormatVersion && r.Format != formatV1 {
		return res, fmt.Errorf("read report: format %q, want %q (or %q)", r.Format, FormatVersion, formatV1)
	}
	res.Format = r.Format
	for i := range keys {
		keys[i] = strings.TrimSpace(keys[i])
	}
	switch {
	case len(keys) == 0:
		vkey, res.KeyFromReport = r.AuditPublicKey, true
		keys = []string{vkey}
	case slices.Contains(keys, strings.TrimSpace(r.AuditPublicKey)):
		vkey = strings.TrimSpace(r.AuditPublicKey)
	default:
		vkey = keys[len(keys)-1]
		if len(keys) == 1 {
			bad("audit_public_key: the report names another key than the one given")
		} else {
			bad("audit_public_key: the report names a key that is none of the %d given (the log's key chain)", len(keys))
		}
	}

	// The signature covers every field but itself, as written.
	sig, _ := generic["signature"].(string)
	delete(generic, "signature")
	body, err := json.Marshal(generic)
	if err != nil {
		return res, fmt.Errorf("encode report: %w", err)
	}
	if sig == "" {
		bad("signature: missing")
	} else if signed, err := audit.OpenReportSignature([]byte(sig), vkey); err != nil {
		bad("signature: %v", err)
	} else if sha := sha256Sum(body); signed != sha {
		bad("signature: the report was modified after signing (sha256 %x, signed %x)", sha, signed)
	}

	cp, err := audit.OpenCheckpointKeys([]byte(r.Checkpoint), keys)
	if err != nil {
		bad("checkpoint: %v", err)
		return res, nil
	}
	res.TreeSize = cp.Size
	checkRef := func(where string, ref Ref) (gatehouse.Event, bool) {
		res.Proofs++
		leaf := rfc6962.DefaultHasher.HashLeaf(ref.Entry)
		if !bytes.Equal(leaf, ref.LeafHash) {
			bad("%s: leaf_hash is not the hash of the entry", where)
			return gatehouse.Event{}, false
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, ref.Index, cp.Size, leaf, ref.Proof, cp.Root); err != nil {
			bad("%s: inclusion proof of entry %d does not verify against the checkpoint: %v", where, ref.Index, err)
			return gatehouse.Event{}, false
		}
		var e gatehouse.Event
		if err := json.Unmarshal(ref.Entry, &e); err != nil {
			bad("%s: entry %d is not an event: %v", where, ref.Index, err)
			return e, false
		}
		if e.ID != ref.Claim.ID || e.Type != ref.Claim.Type {
			bad("%s: entry %d is %s %s, the claim says %s %s", where, ref.Index, e.Type, e.ID, ref.Claim.Type, ref.Claim.ID)
			return e, false
		}
		return e, true
	}
	for _, c := range r.Controls {
		res.Controls++
		for _, f := range c.Findings {
			res.Findings++
			where := fmt.Sprintf("controls[%s].findings[%s]", c.ID, f.Check)
			if !f.Status.Valid() {
				bad("%s: status %q is not pass, fail, manual or not_applicable", where, f.Status)
			}
			if f.Status == StatusPass && len(f.Observed) == 0 {
				bad("%s: claims pass with no observed data", where)
			}
			evaluated := false
			for i, ref := range f.Evidence {
				e, ok := checkRef(fmt.Sprintf("%s.evidence[%d]", where, i), ref)
				if !ok || ref.Claim.Check == "" {
					continue
				}
				evaluated = true
				if ref.Claim.Check != f.Check || ref.Claim.Status != f.Status {
					bad("%s.evidence[%d]: claims %s %s, the finding says %s %s", where, i, ref.Claim.Check, ref.Claim.Status, f.Check, f.Status)
				}
				checks, _ := e.Details["checks"].(map[string]any)
				rec, _ := checks[f.Check].(map[string]any)
				if rec == nil {
					bad("%s.evidence[%d]: the evaluation entry has no result for %s", where, i, f.Check)
					continue
				}
				if st, _ := rec["status"].(string); Status(st) != f.Status {
					bad("%s: status %s, the audit log recorded %s", where, f.Status, st)
				}
				if d, _ := rec["observed_sha256"].(string); d != digest(f.Observed) {
					bad("%s: observed data differs from what the audit log recorded", where)
				}
			}
			if !evaluated {
				bad("%s: cites no evaluation entry", where)
			}
		}
		if st, _ := controlStatus(c.Findings); st != c.Status {
			bad("controls[%s]: status %s does not follow from its findings (%s)", c.ID, c.Status, st)
		}
	}
	if res.Controls == 0 {
		bad("controls: none")
	}
	if r.Format != formatV1 {
		res.Problems = append(res.Problems, verifyChecklist(&r)...)
		res.Problems = append(res.Problems, verifyTimeline(&r, checkRef)...)
	}
	return res, nil
}

// ErrNotVerified is returned by callers that want an error for a report
// with problems.
var ErrNotVerified = errors.New("evidence report does not verify")

// fromOSCAL returns the signed report an OSCAL rendering carries in its
// back-matter.
func fromOSCAL(data []byte) ([]byte, bool) {
	if !bytes.Contains(data, []byte(`"assessment-results"`)) {
		return nil, false
	}
	var doc oscalDoc
	if json.Unmarshal(data, &doc) != nil {
		return nil, false
	}
	for _, r := range doc.AR.BackMatter.Resources {
		if r.Base64.MediaType == "application/json" {
			if b, err := base64.StdEncoding.DecodeString(r.Base64.Value); err == nil {
				return b, true
			}
		}
	}
	return nil, false
}
