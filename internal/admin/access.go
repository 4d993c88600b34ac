package admin

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
)

// area is a part of the admin API that roles are granted.
type area string

const (
	areaKeys        area = "keys"
	areaClients     area = "clients"
	areaSigningKeys area = "signing-keys"
	areaPolicies    area = "policies"
	areaUsers       area = "users"
	areaSettings    area = "settings"
	areaAudit       area = "audit"
	areaMetrics     area = "metrics"
	// areaSelf is a person's own tokens, password and second factor: any
	// signed-in person.
	areaSelf area = "self"
)

// access is what each role may read (GET) and change (anything else).
var access = map[string]struct{ read, write []area }{
	authn.RoleAdmin: {},
	authn.RoleSecurity: {
		read:  []area{areaKeys, areaClients, areaSigningKeys, areaSecrets, areaPolicies, areaAudit, areaSettings, areaMetrics, areaSelf, areaEvidence, areaReviews, areaIncidents},
		write: []area{areaKeys, areaClients, areaSigningKeys, areaSecrets, areaPolicies, areaSelf, areaReviews, areaIncidents},
	},
	authn.RoleAuditor: {
		read:  []area{areaAudit, areaSettings, areaMetrics, areaSecrets, areaSelf, areaEvidence, areaReviews, areaIncidents},
		write: []area{areaSelf},
	},
}

// authorize checks the principal's role against the area and method.
func (s *Server) authorize(p *gatehouse.Principal, a area, method string) error {
	if p.Role == "" {
		return gatehouse.Errorf(gatehouse.EFORBIDDEN, "this credential carries no admin-API role")
	}
	if p.Role == authn.RoleAdmin {
		return nil
	}
	grants, ok := access[p.Role]
	if !ok {
		return gatehouse.Errorf(gatehouse.EFORBIDDEN, "unknown role %q", p.Role)
	}
	list := grants.write
	if method == http.MethodGet || method == http.MethodHead {
		list = grants.read
	}
	for _, g := range list {
		if g == a {
			return nil
		}
	}
	verb := "change"
	if method == http.MethodGet {
		verb = "read"
	}
	return gatehouse.Errorf(gatehouse.EFORBIDDEN, "role %s may not %s %s", p.Role, verb, a)
}

// withRole returns a copy of p carrying role.
func withRole(p *gatehouse.Principal, role string) *gatehouse.Principal {
	c := *p
	c.Role = role
	return &c
}
