package ui

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// opsConfirmField is the field a confirmation page adds to the form it
// re-posts: an action that takes effect at once (a revocation, a
// lockdown, a prune) runs only with it, after the page said what it does.
const opsConfirmField = "confirm"

// opsConfirmData is the confirmation page of a destructive action.
type opsConfirmData struct {
	// What the action does, in words, and its button's label.
	What, Button string
	Action       string     // the form's POST path
	Fields       url.Values // the form as first sent (re-posted)
	Cancel       string     // where "Cancel" leads
}

// opsConfirmed reports whether the form carries the confirmation; if not,
// it renders the confirmation page (the same form, confirm=yes, and a
// way back) and the caller returns.
func (u *UI) opsConfirmed(w http.ResponseWriter, r *http.Request, s *session, title string, d opsConfirmData) bool {
	if r.PostFormValue(opsConfirmField) == "yes" {
		return true
	}
	d.Action = r.URL.Path
	d.Fields = url.Values{}
	for k, v := range r.PostForm {
		if k != csrfField && k != opsConfirmField {
			d.Fields[k] = v
		}
	}
	u.render(w, r, s, http.StatusOK, "opsconfirm.html", title, d)
	return false
}

// opsSize is a byte count in words.
func opsSize(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// opsDuration is a duration in seconds, in words.
func opsDuration(seconds int64) string {
	return (time.Duration(seconds) * time.Second).String()
}
