package authn

import (
	"context"
	"fmt"

	"github.com/gatehouse/gatehouse"
)

// Lineage follows the created_by links between credentials. When a
// personal access token or a key is revoked, everything it created — keys,
// clients and tokens, and what those created in turn — is revoked with
// it: a child never outlives its parent's revocation (its expiry is
// already capped by the parent's at creation, see Creator). Credentials a
// person created from a session are not children of a token and stay.
type Lineage struct {
	Keys    *Keys
	Clients *Clients
	PATs    *PATs
}

// Revocation is one credential RevokeDescendants revoked: Ref, because
// Root (one of the refs it was given) was revoked.
type Revocation struct {
	Ref, Root string
}

// RevokeDescendants revokes every active credential descending from each
// of refs ("kind:id", as store.Lineage records it) and returns what it
// revoked, root by root in the order given, parents before children. It
// reads each list of credentials once, however many roots. The roots are
// walked one after another as separate calls would walk them: a
// credential below two of them (one root below another) is revoked for
// the first walked that reaches it while it is active.
func (l *Lineage) RevokeDescendants(ctx context.Context, refs ...string) ([]Revocation, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	type child struct {
		ref    string
		active bool
		revoke func() error
	}
	children := map[string][]*child{}
	if l.Keys != nil {
		keys, err := l.Keys.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		for _, k := range keys {
			if k.CreatedBy != "" {
				id := k.ID
				children[k.CreatedBy] = append(children[k.CreatedBy], &child{Ref(gatehouse.KindAPIKey, id), k.RevokedAt.IsZero(), func() error {
					_, err := l.Keys.Revoke(ctx, id)
					return err
				}})
			}
		}
	}
	if l.Clients != nil {
		all, err := l.Clients.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("list clients: %w", err)
		}
		for _, c := range all {
			if c.CreatedBy != "" {
				id := c.ID
				children[c.CreatedBy] = append(children[c.CreatedBy], &child{Ref(gatehouse.KindClient, id), c.RevokedAt.IsZero(), func() error {
					_, err := l.Clients.Revoke(ctx, id)
					return err
				}})
			}
		}
	}
	if l.PATs != nil {
		all, err := l.PATs.List(ctx, "")
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		for _, p := range all {
			if p.CreatedBy != "" {
				id := p.ID
				children[p.CreatedBy] = append(children[p.CreatedBy], &child{Ref(gatehouse.KindPAT, id), p.RevokedAt.IsZero(), func() error {
					_, err := l.PATs.Revoke(ctx, id)
					return err
				}})
			}
		}
	}
	var revoked []Revocation
	for _, ref := range refs {
		seen := map[string]bool{ref: true}
		queue := []string{ref}
		for len(queue) > 0 {
			parent := queue[0]
			queue = queue[1:]
			for _, c := range children[parent] {
				if seen[c.ref] {
					continue
				}
				seen[c.ref] = true
				queue = append(queue, c.ref) // a revoked child's children go too
				if !c.active {
					continue
				}
				if err := c.revoke(); err != nil {
					return revoked, fmt.Errorf("revoke %s (created by %s): %w", c.ref, parent, err)
				}
				c.active = false // as a later root's walk would list it
				revoked = append(revoked, Revocation{Ref: c.ref, Root: ref})
			}
		}
	}
	return revoked, nil
}

// UserTokenRefs returns the refs of every token of username, for revoking
// their descendants when the user is disabled.
func (l *Lineage) UserTokenRefs(ctx context.Context, username string) ([]string, error) {
	all, err := l.PATs.List(ctx, username)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(all))
	for _, p := range all {
		out = append(out, Ref(gatehouse.KindPAT, p.ID))
	}
	return out, nil
}
