// Package ui is the server-rendered admin console on the admin listener
// (under /ui/): html/template pages with embedded assets and no script
// needed. Every action it offers is the admin API's own call, made
// in-process with the browser's session cookie and the session's CSRF
// token, so the API's role checks, validation messages and audit events
// are the console's too.
package ui

import (
	"context"
	"crypto/subtle"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/httpjson"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Prefix is where the console is mounted on the admin listener.
const Prefix = "/ui/"

// CSPReportPath receives the browsers' Content-Security-Policy reports.
const CSPReportPath = "/ui/csp-report"

// CSP is the Content-Security-Policy of every /ui/ response: nothing but
// the console's own script, style and images, no inline code, no framing.
// Violations are reported with report-uri only: Chromium ignores
// report-uri when report-to is present and queues report-to's Reporting
// API reports for later delivery (in headless Chromium none arrived within
// 70 s, --short-reporting-delay or not), while report-uri's are sent at
// once, by Chromium, Firefox and Safari alike. The endpoint still takes
// the Reporting API's application/reports+json.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; report-uri " + CSPReportPath

// csrfField is the hidden form field carrying the session's CSRF token.
const csrfField = "csrf_token"

// Config is what the console needs.
type Config struct {
	// API is the admin API (admin.Server): every page and action is a
	// call to it.
	API http.Handler
	// CSRFToken is the CSRF token of a session id (authn.Users.CSRFToken).
	CSRFToken func(sessionID string) string
	// Session checks a session id as the admin API checks its cookie
	// (authn.Users.CheckSession): timeouts, a disabled account, activity.
	// A page view that passes needs no GET /v1/me (an audited read of
	// its own, on top of the page's audited calls); one that fails asks
	// the API anyway, so that the refusal is the API's, audited as
	// before. It also says when the session ends if left idle (the
	// header shows it). Nil: every page view asks GET /v1/me.
	Session func(ctx context.Context, sessionID string) (authn.SessionState, error)
	// CSPReport is called once per CSP report received (a metric).
	CSPReport func()
	Logger    *slog.Logger
	Clock     gatehouse.Clock
}

// UI is the admin console, an http.Handler for /ui/.
type UI struct {
	cfg     Config
	log     *slog.Logger
	pages   []Page
	tmpl    map[string]*template.Template
	handler http.Handler
	reports atomic.Int64
	// reportLog limits CSP report log lines (the endpoint needs no
	// credential): reportsLogged in the current minute reportMinute.
	reportMinute, reportsLogged atomic.Int64
	// accepted is how many reports were accepted in minute acceptMinute
	// (cspReportsPerMinute).
	acceptMinute, accepted atomic.Int64
	// evReports keeps each session's last report of a period for the
	// evidence page (evidence.go).
	evReports *ttlCache[evidenceReport]
}

// New builds the console.
func New(cfg Config) (*UI, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = gatehouse.SystemClock{}
	}
	u := &UI{cfg: cfg, log: cfg.Logger.WithGroup("ui"),
		evReports: newTTLCache[evidenceReport](reportTTL, reportCacheSize)}
	u.pages = u.registry()
	if err := u.parse(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", staticHandler(http.FileServerFS(static))))
	mux.HandleFunc("GET /ui/login", u.loginPage)
	mux.HandleFunc("POST /ui/login", u.login)
	mux.HandleFunc("POST /ui/login/password", u.loginNewPassword)
	mux.HandleFunc("POST /ui/logout", u.logout)
	for _, p := range u.pages {
		mux.Handle("GET "+p.Path, u.page(p))
		for pattern, view := range p.Views {
			sub := p
			sub.Serve = view
			mux.Handle("GET "+pattern, u.page(sub))
		}
		for pattern, act := range p.Actions {
			mux.Handle("POST "+pattern, u.action(p, act))
		}
	}
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		u.renderError(w, r, nil, http.StatusNotFound, "No page "+r.URL.Path+" in the console.")
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.renderError(w, r, nil, http.StatusForbidden, "Cross-origin request refused: forms of the console may be sent from the console only.")
	}))
	protected := cop.Handler(mux)
	u.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		httpjson.SetSecurityHeaders(h)
		h.Set("Content-Security-Policy", CSP)
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Referrer-Policy", "same-origin")
		if r.URL.Path == CSPReportPath {
			u.cspReport(w, r) // browsers send reports without a form token
			return
		}
		protected.ServeHTTP(w, r)
	})
	return u, nil
}

// ServeHTTP serves /ui/.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) { u.handler.ServeHTTP(w, r) }

// CSPReports is how many CSP reports the console received.
func (u *UI) CSPReports() int64 { return u.reports.Load() }

func staticHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// session is the signed-in browser as the console sees it.
type session struct {
	id      string
	csrf    string
	user    apiUser
	expires time.Time
	// restricted is what the session may only do ("" for a full session,
	// and when the check was the API's GET /v1/me).
	restricted string
}

type apiUser struct {
	Username    string `json:"username"`
	Role        string `json:"role"`
	TOTPEnabled bool   `json:"totp_enabled"`
}

// sessionID is the session cookie's value, "" if none.
func sessionID(r *http.Request) string {
	c, err := r.Cookie(authn.SessionCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// checkCSRF compares a form's token with its session's, in constant time.
func (u *UI) checkCSRF(r *http.Request, s *session) bool {
	got := r.PostFormValue(csrfField)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}

// signedIn checks the session of a page view: with Config.Session, in
// process (every view reads the session and the account from the store,
// so a disabled account or an ended session is refused at the very next
// view); otherwise, or when that check refuses it, by asking the API
// (GET /v1/me). A nil session and the API's error otherwise.
func (u *UI) signedIn(r *http.Request) (*session, error) {
	id := sessionID(r)
	if id == "" {
		return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "sign in first")
	}
	s := &session{id: id}
	if u.cfg.CSRFToken != nil {
		s.csrf = u.cfg.CSRFToken(id)
	}
	if u.cfg.Session != nil {
		if st, err := u.cfg.Session(r.Context(), id); err == nil {
			s.user = apiUser{Username: st.User.Username, Role: st.User.Role, TOTPEnabled: st.User.TOTPEnabled}
			s.expires, s.restricted = st.Ends, st.Restricted
			return s, nil
		}
	}
	if err := u.call(r.Context(), r, http.MethodGet, "/v1/me", nil, &s.user); err != nil {
		return nil, err
	}
	return s, nil
}

// redirectLogin sends the browser to the sign-in page.
func redirectLogin(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// noStore marks a response as never to be cached.
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
}

// splitList reads a form's space- or comma-separated list.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}
