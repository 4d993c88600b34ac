package admin

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
)

// Statuses a listing may be filtered by (?status=): "locked" is an entry
// under a lockout, whatever its other status.
var (
	clientStatuses = []string{"active", "expired", "revoked", "locked"}
	userStatuses   = []string{"active", "disabled", "locked"}
	tokenStatuses  = []string{"active", "expired", "revoked"}
)

// listFilter is a listing's query filters: ?status= (one of the listing's
// statuses), ?name= (a case-insensitive substring of the name, or the
// exact id) and, for users, ?role=. Each left out matches everything.
type listFilter struct {
	status, name, role string
}

// parseListFilter reads r's filters, refusing an unknown status or role
// (EINVALID naming the parameter and what it may be).
func parseListFilter(r *http.Request, statuses []string, roles bool) (listFilter, error) {
	q := r.URL.Query()
	f := listFilter{status: q.Get("status"), name: strings.ToLower(strings.TrimSpace(q.Get("name"))), role: q.Get("role")}
	if f.status != "" && !slices.Contains(statuses, f.status) {
		return f, gatehouse.Errorf(gatehouse.EINVALID, "status: must be one of %s", strings.Join(statuses, ", "))
	}
	if f.role != "" && (!roles || !authn.ValidRole(f.role)) {
		if !roles {
			return f, gatehouse.Errorf(gatehouse.EINVALID, "role: this listing has no role filter")
		}
		return f, gatehouse.Errorf(gatehouse.EINVALID, "role: must be one of %s", strings.Join(authn.Roles(), ", "))
	}
	return f, nil
}

// match reports whether an entry (its status, lockout, name, id and role)
// passes the filter.
func (f listFilter) match(status string, locked bool, name, id, role string) bool {
	switch {
	case f.status == "locked" && !locked, f.status != "" && f.status != "locked" && f.status != status:
		return false
	case f.role != "" && f.role != role:
		return false
	case f.name != "" && !strings.Contains(strings.ToLower(name), f.name) && id != strings.TrimSpace(f.name):
		return false
	}
	return true
}
