package ui

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

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
	Fresh     string // the link that makes a new report
}

// evidenceFormats are the downloads of /ui/evidence?format=: the API's
// signed JSON as it came, and the HTML page and OSCAL assessment results
// that `gatehouse evidence --format` renders from it.
var evidenceFormats = []struct{ Format, Label string }{
	{"html", "HTML (printable page)"},
	{"json", "JSON (signed)"},
	{"oscal", "OSCAL assessment results"},
}

// evidenceReport is a report as the API sent it (signed JSON) and
// decoded.
type evidenceReport struct {
	rep    *compliance.Report
	signed []byte
}

// A report reads the whole period's audit log (seconds with a million
// entries), so the page keeps each session's last report of a period for
// reportTTL: the drill-down, the downloads and a reload show that one, and
// "Make a new report" (?fresh=1) asks the API again.
const (
	reportTTL       = 10 * time.Minute
	reportCacheSize = 8
)

// evidencePage is GET /ui/evidence: the session's evidence report (GET
// /v1/evidence, for ?period= if given; a new one with ?fresh=1 or when
// the session's last one of that period is older than reportTTL) with
// each control's findings and cited audit entries under its anchor
// (#control-ID), or, with ?format=html|json|oscal, that report as a
// download.
func evidencePage(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	period := strings.TrimSpace(q.Get("period"))
	format := q.Get("format")
	for k := range q {
		if k != "period" && k != "format" && k != "fresh" {
			return gatehouse.Errorf(gatehouse.EINVALID, "%s: unknown parameter (only period, format and fresh)", k)
		}
	}
	if format != "" && format != "html" && format != "json" && format != "oscal" {
		return gatehouse.Errorf(gatehouse.EINVALID, "format: must be html, json or oscal")
	}
	d := &evidenceData{Period: period}
	er, err := u.sessionReport(r, s, period, q.Get("fresh") != "")
	if err != nil {
		if format != "" {
			return err
		}
		d.Message = u.errMessage(r, err)
		u.render(w, r, s, errStatus(err), "evidence.html", "Evidence", d)
		return nil
	}
	if q.Get("fresh") != "" && format == "" {
		// Back to the plain address, so a reload shows this report
		// instead of making another.
		http.Redirect(w, r, evidenceHref(period, ""), http.StatusSeeOther)
		return nil
	}
	rep := *er.rep
	if format != "" {
		return u.evidenceDownload(w, r, &rep, er.signed, format)
	}
	d.Fresh = evidenceHref(period, "fresh")
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

// sessionReport is the session's report of period: the one kept from
// the last reportTTL unless fresh, or a new one from GET /v1/evidence,
// then kept (and, for the default period, its summary for the
// dashboard).
func (u *UI) sessionReport(r *http.Request, s *session, period string, fresh bool) (evidenceReport, error) {
	key := evidenceKey(s) + "\x00" + period
	now := u.cfg.Clock.Now()
	if er, ok := u.evReports.get(key, now); ok && !fresh {
		return er, nil
	}
	path := "/v1/evidence"
	if period != "" {
		path += "?period=" + url.QueryEscape(period)
	}
	a, err := u.do(r.Context(), r, http.MethodGet, path, nil)
	var rep compliance.Report
	if err == nil {
		err = a.decode(&rep)
	}
	if err != nil {
		u.evReports.drop(key)
		return evidenceReport{}, err
	}
	er := evidenceReport{rep: &rep, signed: bytes.Clone(a.body.Bytes())}
	u.evReports.put(key, er, now)
	if period == "" {
		u.noteEvidence(s, &rep)
	}
	return er, nil
}

// evidenceHref is the page's address for period, with flag ("fresh")
// set if given.
func evidenceHref(period, flag string) string {
	v := url.Values{}
	if period != "" {
		v.Set("period", period)
	}
	if flag != "" {
		v.Set(flag, "1")
	}
	if len(v) == 0 {
		return "/ui/evidence"
	}
	return "/ui/evidence?" + v.Encode()
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
