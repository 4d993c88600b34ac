package ui

import (
	"net/http"
	"net/url"
	"strconv"
)

// listPerPage is how many entries a page of the keys, clients, users
// and tokens lists shows.
const listPerPage = 50

// pager is the links of one page of a list ("" when none): to its first
// page, when this is a later one, and to the next.
type pager struct {
	First, Next string
}

// listPage is one page of an API list for the page r shows: GET apiPath
// with api (the filters as the API names them), listPerPage entries from
// r's ?cursor=, decoded into an L; next reads the API's next cursor. The
// links lead to base with filters (the page's own, the empty ones left
// out), so a page costs the same with ten entries or a million.
func listPage[L any](u *UI, r *http.Request, apiPath string, api url.Values, base string, filters url.Values, next func(*L) string) (*L, pager, error) {
	var p pager
	kept := url.Values{}
	for k, vs := range filters {
		if len(vs) > 0 && vs[0] != "" {
			kept.Set(k, vs[0])
		}
	}
	link := func(v url.Values) string {
		if len(v) == 0 {
			return base
		}
		return base + "?" + v.Encode()
	}
	api.Set("limit", strconv.Itoa(listPerPage))
	if c := r.URL.Query().Get("cursor"); c != "" {
		api.Set("cursor", c)
		p.First = link(kept)
	}
	var list L
	err := u.call(r.Context(), r, http.MethodGet, apiPath+"?"+api.Encode(), nil, &list)
	if c := next(&list); err == nil && c != "" {
		n := url.Values{"cursor": {c}}
		for k, v := range kept {
			n[k] = v
		}
		p.Next = link(n)
	}
	return &list, p, err
}

// listFailed notes err on a list page that still renders (its forms
// stay usable): the API's message, unless the page shows one already,
// and its status, unless the page's status is an error already.
func (u *UI) listFailed(r *http.Request, err error, message *string, status *int) {
	if *message == "" {
		*message = u.errMessage(r, err)
	}
	if *status < 400 {
		*status = errStatus(err)
	}
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
