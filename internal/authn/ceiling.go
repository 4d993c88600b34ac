package authn

import (
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Privilege ceilings: no credential creates a credential more powerful
// than itself (DESIGN.md §7).
//
// A Creator is the caller of a create (or rotate) as the admin API
// authenticated it. What it grants — scopes, role, tier, lifetime — must
// be at most its own:
//
//   - scopes: each granted scope is one the creator holds; the admin scope
//     only the bootstrap token and role admin grant, even when another
//     creator holds it;
//   - role: no higher than the creator's (Roles() order); admin only from
//     the bootstrap token and role admin;
//   - tier: the creator's own tier, or one whose rate limit allows no more
//     requests per unit of time than the creator's tier (people and
//     personal access tokens have the default tier); an unknown tier name
//     is rated as the limiter rates it, at the default limit;
//   - lifetime: a creator whose own credential expires (a personal access
//     token, a key with an expiry) creates only credentials that expire no
//     later — this holds for role admin too, so a child never outlives its
//     parent.
//
// The bootstrap token and role admin are exempt from the scope, role and
// tier ceilings.

// TierRate returns the rate limit of a tier as requests per window (the
// limiter's own reading of the tier, the default limit for unknown names).
type TierRate func(tier string) (requests int, per time.Duration)

// Creator is who creates a credential.
type Creator struct {
	Principal *gatehouse.Principal
	// Lineage is what the new credential records: CreatedBy the creator's
	// own credential ("kind:id"), CreatedByRoot the person or bootstrap
	// token behind it.
	Lineage store.Lineage
	// ExpiresAt is when the creator's own credential expires (zero: never).
	ExpiresAt time.Time
}

// Ref names a credential as lineage records it: "kind:id".
func Ref(kind gatehouse.PrincipalKind, id string) string { return string(kind) + ":" + id }

// Exempt reports whether the creator is the bootstrap token or holds role
// admin: the scope, role and tier ceilings do not apply to it.
func (c *Creator) Exempt() bool {
	return c.Principal.Kind == gatehouse.KindAdmin || c.Principal.Role == RoleAdmin
}

// Grant is what a new credential would carry.
type Grant struct {
	Scopes []string
	Role   string
	// Tier is checked when HasTier (users and tokens carry none).
	Tier    string
	HasTier bool
	// ExpiresAt is when the credential would expire (zero: never); checked
	// when HasLifetime (users have no lifetime).
	ExpiresAt   time.Time
	HasLifetime bool
}

// Check refuses (EFORBIDDEN, naming the field) a grant above the creator's
// ceiling. With tiers nil, a tier other than the creator's own is refused.
func (c *Creator) Check(g Grant, tiers TierRate) error {
	p := c.Principal
	if !c.Exempt() {
		for _, s := range g.Scopes {
			if s == gatehouse.ScopeAdmin {
				return gatehouse.Errorf(gatehouse.EFORBIDDEN, "scopes: only the bootstrap token and role admin grant the admin scope")
			}
			if !slices.Contains(p.Scopes, s) {
				return gatehouse.Errorf(gatehouse.EFORBIDDEN, "scopes: %s is beyond your own scopes (%s)", s, scopeList(p.Scopes))
			}
		}
		if g.Role == RoleAdmin {
			return gatehouse.Errorf(gatehouse.EFORBIDDEN, "role: only the bootstrap token and role admin grant role admin")
		}
		if g.Role != "" && !RoleAtMost(g.Role, p.Role) {
			return gatehouse.Errorf(gatehouse.EFORBIDDEN, "role: %s is above your role %s", g.Role, roleName(p.Role))
		}
		if g.HasTier && g.Tier != p.Tier {
			if tiers == nil {
				return gatehouse.Errorf(gatehouse.EFORBIDDEN, "tier: only your own tier %s may be granted", tierName(p.Tier))
			}
			gr, gp := tiers(g.Tier)
			cr, cp := tiers(p.Tier)
			// gr/gp <= cr/cp, without division.
			if int64(gr)*int64(cp) > int64(cr)*int64(gp) {
				return gatehouse.Errorf(gatehouse.EFORBIDDEN, "tier: %s allows more requests (%d per %s) than your tier %s (%d per %s)",
					tierName(g.Tier), gr, gp, tierName(p.Tier), cr, cp)
			}
		}
	}
	if g.HasLifetime && !c.ExpiresAt.IsZero() {
		if g.ExpiresAt.IsZero() || g.ExpiresAt.After(c.ExpiresAt) {
			return gatehouse.Errorf(gatehouse.EFORBIDDEN, "expires_at: must be no later than %s, when the credential creating it expires",
				c.ExpiresAt.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// CapExpiry returns the expiry to give a credential whose creator asked
// for none (zero) or for the default: the creator's own expiry when that
// is sooner.
func (c *Creator) CapExpiry(want time.Time) time.Time {
	if c.ExpiresAt.IsZero() || (!want.IsZero() && !want.After(c.ExpiresAt)) {
		return want
	}
	return c.ExpiresAt
}

func scopeList(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func roleName(r string) string {
	if r == "" {
		return "(none)"
	}
	return r
}

func tierName(t string) string {
	if t == "" {
		return "default"
	}
	return t
}
