package ui

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
)

// maxCSPReport bounds a CSP report body.
const maxCSPReport = 16 << 10

// cspReportsLogged is how many reports a minute are logged one by one
// (the endpoint needs no credential; all are counted).
const cspReportsLogged = 30

// cspReport receives a CSP violation report (report-uri's
// application/csp-report or the Reporting API's application/reports+json),
// logs and counts it, and answers 204.
func (u *UI) cspReport(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/csp-report" && ct != "application/reports+json" && ct != "application/json" {
		http.Error(w, "Content-Type: want application/csp-report or application/reports+json", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCSPReport))
	if err != nil {
		http.Error(w, "report body over 16 KiB", http.StatusRequestEntityTooLarge)
		return
	}
	type violation struct{ document, directive, blocked string }
	var vs []violation
	var legacy struct {
		Report struct {
			Document  string `json:"document-uri"`
			Violated  string `json:"violated-directive"`
			Effective string `json:"effective-directive"`
			Blocked   string `json:"blocked-uri"`
		} `json:"csp-report"`
	}
	var modern []struct {
		Kind string `json:"type"` // a Reporting API report type, not an audit event type
		Body struct {
			Document  string `json:"documentURL"`
			Effective string `json:"effectiveDirective"`
			Blocked   string `json:"blockedURL"`
		} `json:"body"`
	}
	switch {
	case json.Unmarshal(body, &legacy) == nil && legacy.Report.Document != "":
		d := legacy.Report.Effective
		if d == "" {
			d = legacy.Report.Violated
		}
		vs = append(vs, violation{legacy.Report.Document, d, legacy.Report.Blocked})
	case json.Unmarshal(body, &modern) == nil:
		for _, m := range modern {
			if m.Kind == "csp-violation" {
				vs = append(vs, violation{m.Body.Document, m.Body.Effective, m.Body.Blocked})
			}
		}
	}
	if len(vs) == 0 {
		http.Error(w, "not a CSP report", http.StatusBadRequest)
		return
	}
	for _, v := range vs {
		u.reports.Add(1)
		if u.cfg.CSPReport != nil {
			u.cfg.CSPReport()
		}
		if u.logReport() {
			u.log.WarnContext(r.Context(), "content security policy violation", "document", trim(v.document), "directive", trim(v.directive), "blocked", trim(v.blocked))
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// logReport reports whether this report is logged (cspReportsLogged a
// minute).
func (u *UI) logReport() bool {
	m := u.cfg.Clock.Now().Unix() / 60
	if old := u.reportMinute.Load(); old != m && u.reportMinute.CompareAndSwap(old, m) {
		u.reportsLogged.Store(0)
	}
	return u.reportsLogged.Add(1) <= cspReportsLogged
}

func trim(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}
