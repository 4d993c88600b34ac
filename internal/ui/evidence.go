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
	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/compliance"
)

type evidenceFinding struct {
	compliance.Finding
	// ObservedJSON is the observed data, indented, cut to
	// observedShown bytes (at a line end) when longer: ObservedCut is
	// then the whole size in KiB.
	ObservedJSON string
	ObservedCut  int
}

// observedShown bounds the observed data shown per finding: a check over
// 10,000 keys can observe hundreds of KiB, which the downloads carry
// whole; the page stays small and quick to render.
const observedShown = 16 << 10

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
	// Period is the page's period (?period=, empty: the API's default),
	// the value of the form that generates a report.
	Period  string
	Message string
	// Latest is the newest status summary (GET /v1/evidence/summary),
	// shown while the session has no report of the period; LatestErr
	// says why there is none (the API's message), NoLatest that no
	// report or snapshot exists yet.
	Latest       *compliance.StatusSummary
	LatestCounts []statusCount
	LatestErr    string
	NoLatest     bool
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
	// controls is the page's drill-down, built once when the report is
	// kept (a view only renders it).
	controls []evidenceControl
}

// A report reads the whole period's audit log (seconds with a million
// entries), so it is made only when asked for (the Generate report form,
// POST /ui/evidence) and the page keeps each session's last report of a
// period for reportTTL: the drill-down, the downloads and a reload show
// that one. At most reportCacheSize reports are kept (the oldest goes
// first). evidence.html says how long.
const (
	reportTTL       = time.Hour
	reportCacheSize = 8
)

// evidencePage is GET /ui/evidence: the session's last report of the
// period (?period=, the API's syntax; none: the API's default) with each
// control's findings and cited audit entries under its anchor
// (#control-ID), or, with ?format=html|json|oscal, that report as a
// download. A view never makes a report: without one the page shows the
// newest status summary (GET /v1/evidence/summary) and the form that
// generates one (generateEvidence).
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
	if _, err := admin.ParsePeriod(period, u.cfg.Clock.Now().UTC()); err != nil {
		return err // the API's own message
	}
	er, ok := u.evReports.get(reportKey(s, period), u.cfg.Clock.Now())
	if format != "" {
		if !ok {
			return gatehouse.Errorf(gatehouse.ENOTFOUND, "no report of this period in this session: generate one on the evidence page first")
		}
		rep := *er.rep
		return u.evidenceDownload(w, r, &rep, er.signed, format)
	}
	d := &evidenceData{Period: period}
	if !ok {
		u.evidenceLatest(r, d)
		u.render(w, r, s, http.StatusOK, "evidence.html", "Evidence", d)
		return nil
	}
	rep := *er.rep
	d.Report = &rep
	d.Counts = statusCounts(rep.Summary)
	for _, f := range evidenceFormats {
		v := url.Values{"format": {f.Format}}
		if period != "" {
			v.Set("period", period)
		}
		d.Downloads = append(d.Downloads, evidenceDownload{Label: f.Label, Href: "/ui/evidence?" + v.Encode()})
	}
	d.Controls = er.controls
	u.render(w, r, s, http.StatusOK, "evidence.html", "Evidence", d)
	return nil
}

// drillDown is the page's view of each control of rep: its anchor, its
// findings with their observed data (cut to observedShown) and how many
// audit entries they cite.
func drillDown(rep *compliance.Report) []evidenceControl {
	out := make([]evidenceControl, 0, len(rep.Controls))
	for _, c := range rep.Controls {
		ec := evidenceControl{ControlResult: c, Anchor: "control-" + anchorID(c.ID)}
		for _, f := range c.Findings {
			ef := evidenceFinding{Finding: f}
			if len(f.Observed) > 0 {
				if b, err := json.MarshalIndent(f.Observed, "", "  "); err == nil {
					ef.ObservedJSON = string(b)
					if len(b) > observedShown {
						cut := bytes.LastIndexByte(b[:observedShown], '\n')
						if cut < 0 {
							cut = observedShown
						}
						ef.ObservedJSON, ef.ObservedCut = string(b[:cut]), (len(b)+1023)/1024
					}
				}
			}
			ec.Cited += len(f.Evidence)
			ec.Findings = append(ec.Findings, ef)
		}
		out = append(out, ec)
	}
	return out
}

// generateEvidence is POST /ui/evidence (the Generate report form, field
// period): a new report from GET /v1/evidence, kept for the session, then
// back to the page of its period (a reload shows it and makes none). A
// refusal (a bad period, a role) is shown on the page with what was
// typed.
func generateEvidence(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	period := strings.TrimSpace(r.PostFormValue("period"))
	if err := u.sessionReport(r, s, period); err != nil {
		d := &evidenceData{Period: period, Message: u.errMessage(r, err)}
		u.evidenceLatest(r, d)
		u.render(w, r, s, errStatus(err), "evidence.html", "Evidence", d)
		return nil
	}
	http.Redirect(w, r, evidenceHref(period), http.StatusSeeOther)
	return nil
}

// evidenceLatest fills d's newest status summary (GET
// /v1/evidence/summary: one store read, no report made).
func (u *UI) evidenceLatest(r *http.Request, d *evidenceData) {
	var sum compliance.StatusSummary
	err := u.call(r.Context(), r, http.MethodGet, "/v1/evidence/summary", nil, &sum)
	switch {
	case gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND:
		d.NoLatest = true
	case err != nil:
		d.LatestErr = u.errMessage(r, err)
	default:
		d.Latest, d.LatestCounts = &sum, statusCounts(sum.Summary)
	}
}

// reportKey is the evReports key of a session's report of period: the
// session, its role and user (a role change is another key) and the
// period as typed.
func reportKey(s *session, period string) string {
	return s.id + "\x00" + s.user.Role + "\x00" + s.user.Username + "\x00" + period
}

// sessionReport makes a report of period (GET /v1/evidence: the API's
// role check and audit events) and keeps it as the session's report of
// that period, in place of the one kept before.
func (u *UI) sessionReport(r *http.Request, s *session, period string) error {
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
		return err
	}
	er := evidenceReport{rep: &rep, signed: bytes.Clone(a.body.Bytes()), controls: drillDown(&rep)}
	u.evReports.put(reportKey(s, period), er, u.cfg.Clock.Now())
	return nil
}

// evidenceHref is the page's address for period.
func evidenceHref(period string) string {
	if period == "" {
		return "/ui/evidence"
	}
	return "/ui/evidence?" + url.Values{"period": {period}}.Encode()
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
