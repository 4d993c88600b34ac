package authn_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
)

// TestCreatorCeiling pins the ceiling rules case by case; the admin API
// matrix (internal/app TestEscalationMatrix) runs them end to end.
func TestCreatorCeiling(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tiers := func(tier string) (int, time.Duration) {
		switch tier {
		case "free":
			return 60, time.Minute
		case "slow-hour": // 600 an hour: 10 a minute, lower than free
			return 600, time.Hour
		case "gold":
			return 6000, time.Minute
		case "burst": // 20 a second: 1200 a minute, above default
			return 20, time.Second
		}
		return 600, time.Minute // default and unknown names, as the limiter reads them
	}
	person := func(role string, scopes ...string) *authn.Creator {
		p := gatehouse.NewPrincipal("alice", gatehouse.KindUser, "alice", scopes, "")
		p.Role = role
		return &authn.Creator{Principal: p}
	}
	token := func(role string, expires time.Time, scopes ...string) *authn.Creator {
		c := person(role, scopes...)
		c.Principal.Kind, c.ExpiresAt = gatehouse.KindPAT, expires
		return c
	}
	freeKey := &authn.Creator{Principal: gatehouse.NewPrincipal("key_1", gatehouse.KindAPIKey, "k", []string{"a"}, "free")}
	bootstrap := &authn.Creator{Principal: authn.AdminPrincipal()}
	tests := []struct {
		name    string
		by      *authn.Creator
		grant   authn.Grant
		refused string // "" allowed, else the field named first in the reason
	}{
		{"own scopes", person("security", "a", "b"), authn.Grant{Scopes: []string{"a"}}, ""},
		{"scope beyond own", person("security", "a"), authn.Grant{Scopes: []string{"a", "b"}}, "scopes"},
		{"admin scope held by non-admin", person("security", "admin"), authn.Grant{Scopes: []string{"admin"}}, "scopes"},
		{"admin scope by admin role", person("admin"), authn.Grant{Scopes: []string{"admin"}}, ""},
		{"any scope by bootstrap", bootstrap, authn.Grant{Scopes: []string{"anything", "admin"}}, ""},
		{"role equal", person("security"), authn.Grant{Role: "security"}, ""},
		{"role below", person("security"), authn.Grant{Role: "auditor"}, ""},
		{"role above", person("auditor"), authn.Grant{Role: "security"}, "role"},
		{"role admin by security", person("security"), authn.Grant{Role: "admin"}, "role"},
		{"role admin by admin", person("admin"), authn.Grant{Role: "admin"}, ""},
		{"role by roleless token", token("", now.Add(time.Hour)), authn.Grant{Role: "auditor"}, "role"},
		{"own tier", freeKey, authn.Grant{Scopes: []string{"a"}, Tier: "free", HasTier: true}, ""},
		{"lower tier (other window)", freeKey, authn.Grant{Scopes: []string{"a"}, Tier: "slow-hour", HasTier: true}, ""},
		{"default above free", freeKey, authn.Grant{Scopes: []string{"a"}, Tier: "", HasTier: true}, "tier"},
		{"unknown tier rates as default", freeKey, authn.Grant{Scopes: []string{"a"}, Tier: "made-up", HasTier: true}, "tier"},
		{"person grants free", person("security", "a"), authn.Grant{Scopes: []string{"a"}, Tier: "free", HasTier: true}, ""},
		{"person grants gold", person("security", "a"), authn.Grant{Scopes: []string{"a"}, Tier: "gold", HasTier: true}, "tier"},
		{"person grants burst (per second)", person("security", "a"), authn.Grant{Scopes: []string{"a"}, Tier: "burst", HasTier: true}, "tier"},
		{"admin grants gold", person("admin"), authn.Grant{Tier: "gold", HasTier: true}, ""},
		{"within token expiry", token("security", now.Add(time.Hour), "a"), authn.Grant{Scopes: []string{"a"}, ExpiresAt: now.Add(time.Minute), HasLifetime: true}, ""},
		{"at token expiry", token("security", now.Add(time.Hour), "a"), authn.Grant{Scopes: []string{"a"}, ExpiresAt: now.Add(time.Hour), HasLifetime: true}, ""},
		{"beyond token expiry", token("security", now.Add(time.Hour), "a"), authn.Grant{Scopes: []string{"a"}, ExpiresAt: now.Add(2 * time.Hour), HasLifetime: true}, "expires_at"},
		{"never-expiring from a token", token("security", now.Add(time.Hour), "a"), authn.Grant{Scopes: []string{"a"}, HasLifetime: true}, "expires_at"},
		{"admin token still capped", token("admin", now.Add(time.Hour)), authn.Grant{ExpiresAt: now.Add(2 * time.Hour), HasLifetime: true}, "expires_at"},
		{"user (no lifetime) from a token", token("admin", now.Add(time.Hour)), authn.Grant{Role: "admin"}, ""},
		{"session has no expiry", person("security", "a"), authn.Grant{Scopes: []string{"a"}, HasLifetime: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.by.Check(tt.grant, tiers)
			switch {
			case tt.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.refused != "" && err == nil:
				t.Fatalf("allowed, want refused naming %s", tt.refused)
			case tt.refused != "":
				if gatehouse.ErrorCode(err) != gatehouse.EFORBIDDEN || !strings.HasPrefix(gatehouse.ErrorMessage(err), tt.refused+":") {
					t.Fatalf("refusal %q (%s), want EFORBIDDEN starting %q", gatehouse.ErrorMessage(err), gatehouse.ErrorCode(err), tt.refused+":")
				}
			}
		})
	}
	// Without a tier table only the creator's own tier is granted.
	if err := freeKey.Check(authn.Grant{Tier: "free", HasTier: true, Scopes: []string{"a"}}, nil); err != nil {
		t.Errorf("own tier without a table: %v", err)
	}
	if err := freeKey.Check(authn.Grant{Tier: "x", HasTier: true, Scopes: []string{"a"}}, nil); err == nil {
		t.Error("other tier without a table: allowed")
	}
}

func TestCreatorCapExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &authn.Creator{Principal: gatehouse.NewPrincipal("a", gatehouse.KindPAT, "p", nil, ""), ExpiresAt: now.Add(time.Hour)}
	if got := c.CapExpiry(time.Time{}); !got.Equal(now.Add(time.Hour)) {
		t.Errorf("never → %v, want the creator's expiry", got)
	}
	if got := c.CapExpiry(now.Add(time.Minute)); !got.Equal(now.Add(time.Minute)) {
		t.Errorf("sooner → %v", got)
	}
	if got := (&authn.Creator{Principal: c.Principal}).CapExpiry(time.Time{}); !got.IsZero() {
		t.Errorf("no creator expiry: never → %v", got)
	}
}
