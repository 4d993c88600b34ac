package ui

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/compliance"
)

// reviewItemsPerPage is how many items a page of a review shows.
const reviewItemsPerPage = 50

type reviewRow struct {
	compliance.ReviewSummary
	Open bool
}

type reviewsData struct {
	Reviews       []reviewRow
	Open          *reviewRow // the review in progress, if any
	Due           time.Time  // when the next review must be completed by
	DueIn         string
	Overdue       bool
	NeverDone     bool
	Every         string
	Message, Done string
}

type reviewItemRow struct {
	compliance.ReviewItem
	Scopes   string
	LastUsed string
}

type reviewData struct {
	Review        admin.ReviewPage
	Open          bool
	Items         []reviewItemRow
	Undecided     int
	Filter        string // "" every item, "undecided"
	Total         int    // items shown by the filter, on every page
	First, Next   string
	Message, Done string
}

// reviewsPage is GET /ui/reviews (the list, GET /v1/reviews) or
// /ui/reviews?id=ID (one review, GET /v1/reviews/{id}).
func reviewsPage(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	if id := r.URL.Query().Get("id"); id != "" {
		return u.renderReview(w, r, s, http.StatusOK, id, "")
	}
	return u.renderReviews(w, r, s, http.StatusOK, "")
}

func (u *UI) renderReviews(w http.ResponseWriter, r *http.Request, s *session, status int, message string) error {
	d := &reviewsData{Message: message}
	if r.URL.Query().Get("done") == "completed" {
		d.Done = "Review completed: its sign-off is in the audit log."
	}
	every := compliance.DefaultThresholds().ReviewEvery
	d.Every = strconv.Itoa(int(every.Hours()/24)) + " days"
	var list struct {
		Reviews []compliance.ReviewSummary `json:"reviews"`
	}
	if err := u.call(r.Context(), r, http.MethodGet, "/v1/reviews", nil, &list); err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.EINTERNAL {
			return err
		}
		if d.Message == "" {
			d.Message = u.errMessage(r, err)
		}
		u.render(w, r, s, max(status, errStatus(err)), "reviews.html", "Access reviews", d)
		return nil
	}
	now := u.cfg.Clock.Now()
	var last time.Time
	for i := len(list.Reviews) - 1; i >= 0; i-- { // newest first
		rv := list.Reviews[i]
		row := reviewRow{ReviewSummary: rv, Open: rv.CompletedAt.IsZero()}
		if row.Open && d.Open == nil {
			d.Open = &row
		}
		if !row.Open && rv.CompletedAt.After(last) {
			last = rv.CompletedAt
		}
		d.Reviews = append(d.Reviews, row)
	}
	if last.IsZero() {
		d.NeverDone, d.Overdue = true, true
	} else {
		d.Due = last.Add(every)
		d.Overdue = now.After(d.Due)
		d.DueIn = formatAge(now, d.Due)
	}
	u.render(w, r, s, status, "reviews.html", "Access reviews", d)
	return nil
}

func (u *UI) renderReview(w http.ResponseWriter, r *http.Request, s *session, status int, id, message string) error {
	q := r.URL.Query()
	d := &reviewData{Message: message, Filter: q.Get("show")}
	if d.Filter != "undecided" {
		d.Filter = ""
	}
	// One page of items from the API, not the whole review.
	api := url.Values{"limit": {strconv.Itoa(reviewItemsPerPage)}}
	if c := q.Get("cursor"); c != "" {
		api.Set("cursor", c)
	}
	if d.Filter == "undecided" {
		api.Set("undecided", "true")
	}
	if err := u.call(r.Context(), r, http.MethodGet, "/v1/reviews/"+url.PathEscape(id)+"?"+api.Encode(), nil, &d.Review); err != nil {
		return err
	}
	rv := d.Review
	d.Open = rv.CompletedAt.IsZero()
	switch q.Get("done") {
	case "decided":
		d.Done = "Decision recorded."
	case "started":
		d.Done = "Review started: decide every item, then complete it."
	}
	now := u.cfg.Clock.Now()
	d.Undecided = rv.ItemCount - rv.Decided
	d.Total = rv.ItemCount
	if d.Filter == "undecided" {
		d.Total = d.Undecided
	}
	for _, it := range rv.Items {
		d.Items = append(d.Items, reviewItemRow{ReviewItem: it, Scopes: strings.Join(it.Scopes, ", "), LastUsed: formatAge(now, it.LastUsedAt)})
	}
	link := func(cursor string) string {
		v := url.Values{"id": {rv.ID}}
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		if d.Filter != "" {
			v.Set("show", d.Filter)
		}
		return "/ui/reviews?" + v.Encode()
	}
	if q.Get("cursor") != "" {
		d.First = link("")
	}
	if rv.Next != "" {
		d.Next = link(rv.Next)
	}
	u.render(w, r, s, status, "review.html", "Access review "+rv.ID, d)
	return nil
}

// startReview is POST /v1/reviews: a snapshot of every principal to
// decide.
func startReview(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	var rv compliance.Review
	if err := u.call(r.Context(), r, http.MethodPost, "/v1/reviews", nil, &rv); err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.EINTERNAL {
			return err
		}
		r2 := r.Clone(r.Context())
		r2.URL.RawQuery = ""
		return u.renderReviews(w, r2, s, errStatus(err), u.errMessage(r, err))
	}
	http.Redirect(w, r, "/ui/reviews?"+url.Values{"id": {rv.ID}, "done": {"started"}}.Encode(), http.StatusSeeOther)
	return nil
}

// decideReviewItem is POST /v1/reviews/{id}/items/{item}; a revocation
// takes effect at once, so it is confirmed first.
func decideReviewItem(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	id, item := r.PathValue("id"), r.PathValue("item")
	req := admin.DecideRequest{Decision: r.PostFormValue("decision"), Reason: r.PostFormValue("reason")}
	back := "/ui/reviews?" + url.Values{"id": {id}}.Encode()
	if req.Decision == compliance.DecisionRevoke && strings.TrimSpace(req.Reason) != "" {
		var rv admin.ReviewPage
		if err := u.call(r.Context(), r, http.MethodGet, "/v1/reviews/"+url.PathEscape(id)+"?"+url.Values{"item": {item}}.Encode(), nil, &rv); err != nil {
			return err
		}
		principal := item
		for _, it := range rv.Items {
			if it.ID == item {
				principal = it.Principal
				if it.Name != "" && !strings.HasSuffix(it.Principal, ":"+it.Name) {
					principal += " (" + it.Name + ")"
				}
			}
		}
		if !u.opsConfirmed(w, r, s, "Confirm the revocation", opsConfirmData{
			What:   "Revoking " + principal + " takes effect at once: the credential stops working at the gateway (a user is disabled with their tokens), and what it created is revoked with it. Reason: " + req.Reason,
			Button: "Yes, revoke " + principal + " now", Cancel: back,
		}) {
			return nil
		}
	}
	if err := u.call(r.Context(), r, http.MethodPost, "/v1/reviews/"+url.PathEscape(id)+"/items/"+url.PathEscape(item), req, nil); err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.EINTERNAL || gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
			return err
		}
		r2 := r.Clone(r.Context())
		r2.URL.RawQuery = ""
		return u.renderReview(w, r2, s, errStatus(err), id, item+": "+u.errMessage(r, err))
	}
	http.Redirect(w, r, back+"&done=decided", http.StatusSeeOther)
	return nil
}

// completeReview is POST /v1/reviews/{id}/complete: the sign-off.
func completeReview(u *UI, w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	if err := u.call(r.Context(), r, http.MethodPost, "/v1/reviews/"+url.PathEscape(id)+"/complete", nil, nil); err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.EINTERNAL || gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
			return err
		}
		r2 := r.Clone(r.Context())
		r2.URL.RawQuery = ""
		return u.renderReview(w, r2, s, errStatus(err), id, u.errMessage(r, err))
	}
	http.Redirect(w, r, "/ui/reviews?done=completed", http.StatusSeeOther)
	return nil
}
