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

// maxFilterName is the longest ?name= a listing takes (as GET /v1/keys).
const maxFilterName = 200

// listFilter is a listing's query filters: ?status= (one of the listing's
// statuses), ?name= (a case-insensitive substring of the name, or the
// exact id; kept trimmed and in lower case, as ids are) and, for users,
// ?role=. Each left out matches everything; the store applies them
// (store.ClientQuery, PATQuery, UserQuery).
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
	if len(f.name) > maxFilterName {
		return f, gatehouse.Errorf(gatehouse.EINVALID, "name: at most %d characters", maxFilterName)
	}
	if f.role != "" && (!roles || !authn.ValidRole(f.role)) {
		if !roles {
			return f, gatehouse.Errorf(gatehouse.EINVALID, "role: this listing has no role filter")
		}
		return f, gatehouse.Errorf(gatehouse.EINVALID, "role: must be one of %s", strings.Join(authn.Roles(), ", "))
	}
	return f, nil
}
