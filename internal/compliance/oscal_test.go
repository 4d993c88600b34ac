package compliance_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/defenseunicorns/go-oscal/src/pkg/validation"

	"github.com/gatehouse/gatehouse/internal/compliance"
)

// MustValidateOSCAL validates doc against the NIST OSCAL JSON schemas of
// its oscal-version and of the newest 1.1 release (the complete schemas
// go-oscal embeds, as NIST publishes them) and fails with every error a
// schema names.
func MustValidateOSCAL(tb testing.TB, doc []byte) {
	tb.Helper()
	for _, version := range []string{"", "1.1.3"} {
		var (
			v   validation.Validator
			err error
		)
		if version == "" {
			v, err = validation.NewValidator(doc)
		} else {
			v, err = validation.NewValidatorDesiredVersion(doc, version)
		}
		if err != nil {
			tb.Fatalf("oscal validator: %v", err)
		}
		if v.GetModelType() != "assessment-results" {
			tb.Fatalf("model %q, want assessment-results", v.GetModelType())
		}
		if err := v.Validate(); err != nil {
			res, _ := v.GetValidationResult()
			var msgs []string
			for _, e := range res.Errors {
				msgs = append(msgs, e.InstanceLocation+": "+e.Error)
			}
			tb.Fatalf("the OSCAL %s schema refuses the document: %v\n%s", v.GetSchemaVersion(), err, strings.Join(msgs, "\n"))
		}
	}
}

// renderOSCAL renders a report as OSCAL.
func renderOSCAL(tb testing.TB, r *compliance.Report, signed []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := compliance.RenderOSCAL(&buf, r, signed); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// TestOSCALValidatesAgainstNISTSchema renders real reports (every status,
// a manual finding with remarks, text with edge whitespace) as OSCAL
// assessment-results and validates each against the NIST schema; the
// signed report it carries still verifies.
func TestOSCALValidatesAgainstNISTSchema(t *testing.T) {
	_, b := buildReport(t)
	var r compliance.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	doc := renderOSCAL(t, &r, b)
	MustValidateOSCAL(t, doc)

	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	ar := m["assessment-results"].(map[string]any)
	if v := ar["metadata"].(map[string]any)["oscal-version"]; v != compliance.OSCALVersion || !strings.HasPrefix(compliance.OSCALVersion, "1.1.") {
		t.Fatalf("oscal-version %v", v)
	}
	res := ar["results"].([]any)[0].(map[string]any)
	obs := map[string]bool{}
	for _, o := range res["observations"].([]any) {
		obs[o.(map[string]any)["uuid"].(string)] = true
	}
	findings := res["findings"].([]any)
	if len(findings) != len(r.Controls) {
		t.Fatalf("%d findings for %d controls", len(findings), len(r.Controls))
	}
	for _, f := range findings {
		for _, ro := range f.(map[string]any)["related-observations"].([]any) {
			if u := ro.(map[string]any)["observation-uuid"].(string); !obs[u] {
				t.Fatalf("finding links to observation %s, which the result lacks", u)
			}
		}
	}
	vr, err := compliance.Verify(compliance.ExtractJSON(doc), r.AuditPublicKey)
	if err != nil || !vr.OK() {
		t.Fatalf("the signed report in back-matter: %v %v", err, vr.Problems)
	}

	// Text the schema's string pattern refuses unless the renderer
	// normalises it: leading and trailing space, empty reasons, line
	// breaks in titles.
	r.Controls[0].Reason = "  padded\n"
	r.Controls[0].Title = "two\nlines "
	r.Controls[0].Findings[0].Reason = ""
	r.Controls[0].Findings[0].Title = " "
	r.Controls[0].Findings[0].Remediation = "\tremedy "
	r.Controls[0].Findings[0].Provide = "a person's  word "
	MustValidateOSCAL(t, renderOSCAL(t, &r, b))
}

// TestOSCALSchemaRefuses: the validation the test above relies on fails
// on documents the schema forbids (so a pass means something).
func TestOSCALSchemaRefuses(t *testing.T) {
	_, b := buildReport(t)
	var r compliance.Report
	json.Unmarshal(b, &r)
	doc := renderOSCAL(t, &r, b)
	tests := []struct {
		name string
		edit func(ar map[string]any)
	}{
		{"no metadata title", func(ar map[string]any) { delete(ar["metadata"].(map[string]any), "title") }},
		{"bad uuid", func(ar map[string]any) { ar["uuid"] = "not-a-uuid" }},
		{"unknown field", func(ar map[string]any) { ar["gatehouse"] = true }},
		{"bad finding state", func(ar map[string]any) {
			f := ar["results"].([]any)[0].(map[string]any)["findings"].([]any)[0].(map[string]any)
			f["target"].(map[string]any)["status"].(map[string]any)["state"] = "pass"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			json.Unmarshal(doc, &m)
			tc.edit(m["assessment-results"].(map[string]any))
			out, _ := json.Marshal(m)
			v, err := validation.NewValidator(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Validate(); err == nil {
				t.Fatal("the schema accepted it")
			}
		})
	}
}
