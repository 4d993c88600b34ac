package authn

import "slices"

// Roles of people, most powerful first.
const (
	RoleAdmin    = "admin"    // everything
	RoleSecurity = "security" // keys, clients, signing keys, policies, incidents; reads audit and settings
	RoleAuditor  = "auditor"  // reads audit, evidence and settings
)

// Roles lists the roles, most powerful first.
func Roles() []string { return []string{RoleAdmin, RoleSecurity, RoleAuditor} }

// ValidRole reports whether r is a role.
func ValidRole(r string) bool { return slices.Contains(Roles(), r) }

// RoleAtMost reports whether role r grants no more than max ("" grants
// nothing, so it is at most anything).
func RoleAtMost(r, max string) bool {
	if r == "" {
		return true
	}
	ri, mi := slices.Index(Roles(), r), slices.Index(Roles(), max)
	return ri >= 0 && mi >= 0 && ri >= mi
}
