package admin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/store"
)

// creator describes the caller as the creator of a credential: what it
// records as lineage and what its own credential is capped by (see
// authn.Creator). A personal access token is capped by its own scopes,
// role and expiry; a key by its expiry.
func (s *Server) creator(ctx context.Context, p *gatehouse.Principal) (*authn.Creator, error) {
	c := &authn.Creator{Principal: p}
	switch p.Kind {
	case gatehouse.KindAdmin, gatehouse.KindUser:
		ref := authn.Ref(p.Kind, p.ID)
		c.Lineage = store.Lineage{CreatedBy: ref, CreatedByRoot: ref}
	case gatehouse.KindPAT:
		// A token's principal is its owner (ID) and the token (Name).
		t, err := s.cfg.PATs.Get(ctx, p.Name)
		if err != nil {
			return nil, err
		}
		c.Lineage = store.Lineage{CreatedBy: authn.Ref(gatehouse.KindPAT, t.ID), CreatedByRoot: authn.Ref(gatehouse.KindUser, t.Username)}
		c.ExpiresAt = t.ExpiresAt
	case gatehouse.KindAPIKey:
		k, err := s.cfg.Keys.Get(ctx, p.ID)
		if err != nil {
			return nil, err
		}
		ref := authn.Ref(gatehouse.KindAPIKey, k.ID)
		c.Lineage = store.Lineage{CreatedBy: ref, CreatedByRoot: k.CreatedByRoot}
		if c.Lineage.CreatedByRoot == "" { // created before lineage was recorded
			c.Lineage.CreatedByRoot = ref
		}
		c.ExpiresAt = k.ExpiresAt
	default:
		return nil, gatehouse.Errorf(gatehouse.EFORBIDDEN, "a %s credential cannot create credentials", p.Kind)
	}
	return c, nil
}

// lineageDetails is the audit detail of who created a credential.
func lineageDetails(d map[string]any, l store.Lineage) map[string]any {
	d["created_by"], d["created_by_root"] = l.CreatedBy, l.CreatedByRoot
	return d
}

// revokeDescendants revokes what the revoked credentials refs created (and
// so on down), auditing each revocation as caused by the one of refs it
// descends from.
func (s *Server) revokeDescendants(ctx context.Context, p *gatehouse.Principal, refs ...string) error {
	l := authn.Lineage{Keys: s.cfg.Keys, Clients: s.cfg.Clients, PATs: s.cfg.PATs}
	revoked, err := l.RevokeDescendants(ctx, refs...)
	for _, r := range revoked {
		s.record(ctx, p, "credential.revoke_descendant", resourceOf(r.Ref), map[string]any{"because_revoked": r.Root})
	}
	return err
}

// lastUsed is the later of the stored last use and one noted in memory
// but not yet written.
func (s *Server) lastUsed(id string, stored time.Time) time.Time {
	if m := s.cfg.Usage.Last(id); m.After(stored) {
		return m
	}
	return stored
}

// timePtr is nil for the zero time (omitted from JSON).
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// tiers rates tiers for the ceiling (nil when the admin API was built
// without a rate-limit config: only the caller's own tier is granted).
func (s *Server) tiers() authn.TierRate { return s.cfg.Tiers }

// revokeUserDescendants revokes what the tokens of a disabled user created
// (the tokens themselves stop working with the user).
func (s *Server) revokeUserDescendants(ctx context.Context, p *gatehouse.Principal, username string) error {
	if s.cfg.PATs == nil {
		return nil
	}
	l := authn.Lineage{PATs: s.cfg.PATs}
	refs, err := l.UserTokenRefs(ctx, username)
	if err != nil {
		return err
	}
	return s.revokeDescendants(ctx, p, refs...)
}

// resourceOf turns a lineage ref ("api_key:key_…") into the resource name
// the other admin events use ("key:key_…", "token:pat_…", "client:cl_…").
func resourceOf(ref string) string {
	kind, id, _ := strings.Cut(ref, ":")
	switch gatehouse.PrincipalKind(kind) {
	case gatehouse.KindAPIKey:
		return "key:" + id
	case gatehouse.KindPAT:
		return "token:" + id
	}
	return ref
}

// revokeUserTokens revokes every active token of username and what the
// tokens created (the cascade), auditing each as token.revoke caused by
// the administrator's action (reset or disable): the account may be
// compromised, and a token minted with a stolen session must not outlive
// the response to it.
func (s *Server) revokeUserTokens(ctx context.Context, p *gatehouse.Principal, username, because string) error {
	if s.cfg.PATs == nil {
		return nil
	}
	all, err := s.cfg.PATs.List(ctx, username)
	if err != nil {
		return fmt.Errorf("list tokens of %s: %w", username, err)
	}
	for _, t := range all {
		if t.RevokedAt.IsZero() {
			if _, err := s.cfg.PATs.Revoke(ctx, t.ID); err != nil {
				return fmt.Errorf("revoke token %s of %s: %w", t.ID, username, err)
			}
			s.record(ctx, p, "token.revoke", "token:"+t.ID, map[string]any{"owner": username, "because": because})
		}
		if err := s.revokeDescendants(ctx, p, authn.Ref(gatehouse.KindPAT, t.ID)); err != nil {
			return err
		}
	}
	return nil
}

// liveLineage closes the race between creating a credential and revoking
// its creator. Creation checks the creator when it authenticates, a
// revocation stores the revocation and then lists the descendants to
// revoke them; a child inserted between that list and the end of the
// creation would survive. So, after inserting the child, re-read every
// credential up its chain (created_by, then theirs, up to the person or
// bootstrap token): store reads and writes are linearisable, so either
// this re-read comes after a revocation's write and sees it — and the
// child is revoked here — or it comes before, the insert came earlier
// still, and the revocation's later listing finds the child and revokes
// it. ref names the new child; revoke revokes it. An error refuses the
// creation (EUNAUTHORIZED: the credential used is gone).
func (s *Server) liveLineage(ctx context.Context, p *gatehouse.Principal, ref string, l store.Lineage, revoke func() error) error {
	gone, err := s.revokedAncestor(ctx, l.CreatedBy)
	if err != nil || gone == "" {
		return err
	}
	if err := revoke(); err != nil {
		return fmt.Errorf("revoke %s (its creator %s was revoked meanwhile): %w", ref, gone, err)
	}
	s.record(ctx, p, "credential.revoke_descendant", resourceOf(ref), map[string]any{"because_revoked": gone})
	return gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "%s was revoked or disabled while this was being created: the new credential is revoked", gone)
}

// revokedAncestor walks the chain up from ref and returns the first
// credential on it that is revoked (or the user that is disabled), "" if
// all are active.
func (s *Server) revokedAncestor(ctx context.Context, ref string) (string, error) {
	for hops := 0; ref != "" && hops < 64; hops++ {
		kind, id, _ := strings.Cut(ref, ":")
		next := ""
		switch gatehouse.PrincipalKind(kind) {
		case gatehouse.KindPAT:
			t, err := s.cfg.PATs.Get(ctx, id)
			if err != nil {
				return "", fmt.Errorf("re-read %s: %w", ref, err)
			}
			if !t.RevokedAt.IsZero() {
				return ref, nil
			}
			if t.CreatedBy == "" || t.CreatedBy == ref {
				next = authn.Ref(gatehouse.KindUser, t.Username)
			} else {
				next = t.CreatedBy
			}
		case gatehouse.KindAPIKey:
			k, err := s.cfg.Keys.Get(ctx, id)
			if err != nil {
				return "", fmt.Errorf("re-read %s: %w", ref, err)
			}
			if !k.RevokedAt.IsZero() {
				return ref, nil
			}
			if k.CreatedBy != ref {
				next = k.CreatedBy
			}
		case gatehouse.KindUser:
			if s.cfg.Users == nil {
				return "", nil
			}
			u, err := s.cfg.Users.Get(ctx, id)
			if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
				return ref, nil // deleted: as gone as disabled
			}
			if err != nil {
				return "", fmt.Errorf("re-read %s: %w", ref, err)
			}
			if !u.DisabledAt.IsZero() {
				return ref, nil
			}
		}
		ref = next
	}
	return "", nil
}
