package ui

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/compliance"
)

type evidenceFinding struct {
	compliance.Finding
	ObservedJSON string
}

type evidenceControl struct {
	compliance.ControlResult
	Anchor   string
	Findings []evidenceFinding
	Cited    int
}

type evidenceDownload struct {
	Label, Href string
}

type evidenceData struct {
	Report    *compliance.Report
	Controls  []evidenceControl
	Counts    []statusCount
	Downloads []evidenceDownload
	Period    string
	Message   string
}

// evidenceFormats are the downloads of /ui/evidence?format=: the API's
// signed JSON as it came, and the HTML page and OSCAL assessment results
// that `gatehouse evidence --format` renders from it.
var evidenceFormats = []struct{ Format, Label string }{
	{"html", "HTML (printable page)"},
	{"json", "JSON (signed)"},
	{"oscal", "OSCAL assessment results"},
}

// evidencePage is GET /ui/evidence: a new evidence report (GET
// /v1/evidence, for ?period= if given) with each control's findings and
// cited audit entries under its anchor (#control-ID), or, with
// ?format=html|json|oscal, that report as a download.
func evidencePage(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	period := strings.TrimSpace(q.Get("period"))
	format := q.Get("format")
	for k := range q {
		if k != "period" && k != "format" {
			return gatehouse.Errorf(gatehouse.EINVALID, "%s: unknown parameter (only period and format)", k)
		}
	}
	if format != "" && format != "html" && format != "json" && format != "oscal" {
		return gatehouse.Errorf(gatehouse.EINVALID, "format: must be html, json or oscal")
	}
	path := "/v1/evidence"
	if period != "" {
		path += "?period=" + url.QueryEscape(period)
	}
	d := &evidenceData{Period: period}
	a, err := u.do(r.Context(), r, http.MethodGet, path, nil)
	var rep compliance.Report
	if err == nil {
		err = a.decode(&rep)
	}
	if err != nil {
		if format != "" {
			return err
		}
		d.Message = u.errMessage(r, err)
		u.render(w, r, s, errStatus(err), "evidence.html", "Evidence", d)
		return nil
	}
	if period == "" {
		u.noteEvidence(s, &rep)
	}
	if format != "" {
		return u.evidenceDownload(w, r, &rep, a.body.Bytes(), format)
	}
	d.Report = &rep
	for _, l := range statusLabels {
		l.Count = rep.Summary[compliance.Status(l.Status)]
		d.Counts = append(d.Counts, l)
	}
	for _, f := range evidenceFormats {
		v := url.Values{"format": {f.Format}}
		if period != "" {
			v.Set("period", period)
		}
		d.Downloads = append(d.Downloads, evidenceDownload{Label: f.Label, Href: "/ui/evidence?" + v.Encode()})
	}
	for _, c := range rep.Controls {
		ec := evidenceControl{ControlResult: c, Anchor: "control-" + anchorID(c.ID)}
		for _, f := range c.Findings {
			ef := evidenceFinding{Finding: f}
			if len(f.Observed) > 0 {
				if b, err := json.MarshalIndent(f.Observed, "", "  "); err == nil {
					ef.ObservedJSON = string(b)
				}
			}
			ec.Cited += len(f.Evidence)
			ec.Findings = append(ec.Findings, ef)
		}
		d.Controls = append(d.Controls, ec)
	}
	u.render(w, r, s, http.StatusOK, "evidence.html", "Evidence", d)
	return nil
}

// anchorID keeps letters, digits, '.', '-' and '_' of a control id.
func anchorID(id string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, id)
}

// evidenceDownload writes the report as a file to save: the signed JSON
// as the API sent it, or rendered from it as `gatehouse evidence
// --format html|oscal` does (both carry the signed JSON, so `gatehouse
// evidence verify` checks any of the three).
func (u *UI) evidenceDownload(w http.ResponseWriter, r *http.Request, rep *compliance.Report, signed []byte, format string) error {
	var buf bytes.Buffer
	name, ctype := "evidence-"+anchorID(rep.ID), "application/json"
	switch format {
	case "json":
		buf.Write(signed)
		name += ".json"
	case "html":
		if err := compliance.RenderHTML(&buf, rep, signed); err != nil {
			return err
		}
		name, ctype = name+".html", "text/html; charset=utf-8"
	case "oscal":
		if err := compliance.RenderOSCAL(&buf, rep, signed); err != nil {
			return err
		}
		name += ".oscal.json"
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
	return nil
}
