package ui

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
)

// view is what every template gets: the layout's parts and the page's
// own data.
type view struct {
	Title   string
	Nav     []navItem
	User    *apiUser
	Expires time.Time
	CSRF    string
	// Restricted: the session may only enrol a second factor (the page
	// says so and links to it).
	Restricted bool
	// Now is the console's clock at rendering, for {{age .Now t}}.
	Now  time.Time
	Data any
}

var funcs = template.FuncMap{
	"when": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		case *time.Time:
			if v == nil || v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		}
		return fmt.Sprint(t)
	},
	// age is how long before now t was, in words ("5 min ago"); "never"
	// for a zero time: {{age $.Now .CreatedAt}}.
	"age": func(now time.Time, t any) string {
		switch v := t.(type) {
		case time.Time:
			return formatAge(now, v)
		case *time.Time:
			if v == nil {
				return "never"
			}
			return formatAge(now, *v)
		}
		return fmt.Sprint(t)
	},
}

// formatAge says how long before now t was, rounded down to the largest
// unit: "just now" (under a minute), "5 min ago", "3 h ago", "2 d ago";
// "never" for a zero t and "in 5 min" for one after now.
func formatAge(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%d h", int(d/time.Hour))
	default:
		s = fmt.Sprintf("%d d", int(d/(24*time.Hour)))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// parse parses layout.html with each other template.
func (u *UI) parse() error {
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return err
	}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html")
	if err != nil {
		return fmt.Errorf("parse layout: %w", err)
	}
	u.tmpl = map[string]*template.Template{}
	for _, n := range names {
		name := path.Base(n)
		if name == "layout.html" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(assets, n)
		if err != nil {
			return fmt.Errorf("parse %s: %w", name, err)
		}
		u.tmpl[name] = t
	}
	return nil
}

// render writes template name in the layout, with s's header (s may be
// nil: signed out).
func (u *UI) render(w http.ResponseWriter, r *http.Request, s *session, status int, name, title string, data any) {
	t := u.tmpl[name]
	if t == nil {
		u.log.ErrorContext(r.Context(), "no template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	v := view{Title: title, Nav: u.nav(r.URL.Path), Now: u.cfg.Clock.Now(), Data: data}
	if s != nil {
		v.User, v.Expires, v.CSRF = &s.user, s.expires, s.csrf
		v.Restricted = s.restricted == authn.RestrictedTOTPEnrollment && r.URL.Path != secondFactorPath
	} else {
		v.Nav = nil
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		u.log.ErrorContext(r.Context(), "render", "name", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	noStore(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// renderError shows message on an error page.
func (u *UI) renderError(w http.ResponseWriter, r *http.Request, s *session, status int, message string) {
	u.render(w, r, s, status, "error.html", "Error", message)
}
