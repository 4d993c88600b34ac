package ui

import (
	"net/http"
	"net/url"
	"strconv"
)

// listPerPage is how many entries a page of the clients, users and
// tokens lists shows.
const listPerPage = 50

// pager is one page of a list: which, how many in all, and links to the
// pages either side ("" when none).
type pager struct {
	Page, Total int
	Prev, Next  string
}

// paginate cuts items to the page r asks for (?page=, from 1); the
// links keep filters (the non-empty ones) and lead to base.
func paginate[T any](r *http.Request, items []T, base string, filters url.Values) ([]T, pager) {
	p := pager{Total: len(items)}
	p.Page, _ = strconv.Atoi(r.URL.Query().Get("page"))
	p.Page = max(p.Page, 1)
	from := min((p.Page-1)*listPerPage, len(items))
	to := min(from+listPerPage, len(items))
	link := func(page int) string {
		v := url.Values{}
		for k, vs := range filters {
			if len(vs) > 0 && vs[0] != "" {
				v.Set(k, vs[0])
			}
		}
		v.Set("page", strconv.Itoa(page))
		return base + "?" + v.Encode()
	}
	if p.Page > 1 {
		p.Prev = link(p.Page - 1)
	}
	if to < len(items) {
		p.Next = link(p.Page + 1)
	}
	return items[from:to], p
}

// onceSecret is the page showing a new secret, once: onceSecret.html.
type onceSecret struct {
	What       string // "Client", "Token"
	ID, Name   string
	Action     string // "created", "rotated"
	IDLabel    string // what the id is called ("Client id")
	Secret     string
	SecretName string // the secret's label ("Client secret")
	Back, To   string // link back: text and href
}

// withQuery is r with its query replaced by q (to render a list after a
// form posted to it, with the filters q gives).
func withQuery(r *http.Request, q url.Values) *http.Request {
	r2 := r.Clone(r.Context())
	r2.URL.RawQuery = q.Encode()
	return r2
}
