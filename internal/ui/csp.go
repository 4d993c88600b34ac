package ui

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxCSPReport bounds a CSP report body.
const maxCSPReport = 16 << 10

// cspReportsLogged is how many reports a minute are logged one by one
// (the endpoint needs no credential; all accepted are counted).
const cspReportsLogged = 30

// cspReportsPerMinute bounds the reports accepted a minute (DESIGN.md §7:
// an attacker's cost is bounded): past it the endpoint answers 429, counts
// nothing and logs that it started refusing, once a minute.
const cspReportsPerMinute = 600

// cspReport receives a CSP violation report (report-uri's
// application/csp-report or the Reporting API's application/reports+json),
// logs and counts it, and answers 204. What is logged of a report is the
// page and blocked resource without query, fragment or user info (a
// query may carry a secret), and the directive: never the sample, the
// referrer or a header of the request.
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
	if !u.acceptReports(len(vs)) {
		w.Header().Set("Retry-After", "60")
		http.Error(w, "too many CSP reports this minute", http.StatusTooManyRequests)
		return
	}
	for _, v := range vs {
		u.reports.Add(1)
		if u.cfg.CSPReport != nil {
			u.cfg.CSPReport()
		}
		if u.logReport() {
			u.log.WarnContext(r.Context(), "content security policy violation", "document", scrubURL(v.document), "directive", trim(v.directive), "blocked", scrubURL(v.blocked))
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

// acceptReports reports whether n more reports fit this minute's
// budget (cspReportsPerMinute), logging once a minute when one does not.
func (u *UI) acceptReports(n int) bool {
	m := u.cfg.Clock.Now().Unix() / 60
	if old := u.acceptMinute.Load(); old != m && u.acceptMinute.CompareAndSwap(old, m) {
		u.accepted.Store(0)
	}
	total := u.accepted.Add(int64(n))
	if total <= cspReportsPerMinute {
		return true
	}
	if total-int64(n) <= cspReportsPerMinute { // the first refusal this minute
		u.log.Warn("content security policy reports refused for the rest of the minute", "limit_per_minute", cspReportsPerMinute)
	}
	return false
}

// scrubURL is what is logged of a report's URL: scheme, host and path of
// a URL (no user info, query or fragment, which may carry secrets), the
// scheme of a data:, blob: or other opaque URL, a CSP keyword ("inline",
// "eval") as it is, and "(other)" for anything else.
func scrubURL(s string) string {
	if s == "" {
		return ""
	}
	if isKeyword(s) {
		return s
	}
	p, err := url.Parse(s)
	if err != nil || p.Scheme == "" {
		return "(other)"
	}
	if p.Opaque != "" || p.Host == "" {
		return trim(p.Scheme + ":")
	}
	return trim((&url.URL{Scheme: p.Scheme, Host: p.Host, Path: p.Path}).String())
}

func isKeyword(s string) bool {
	if len(s) > 32 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '-' {
			return false
		}
	}
	return true
}

// trim cuts s to 200 bytes at most, on a rune boundary.
func trim(s string) string {
	if len(s) <= 200 {
		return s
	}
	s = s[:200]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return strings.ToValidUTF8(s, "")
}
