package authn

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/store"
)

// PAT lifetimes.
const (
	DefaultPATLifetime = 90 * 24 * time.Hour
	MaxPATLifetime     = 365 * 24 * time.Hour
)

// PATIDPrefix starts every token id ("pat_" + the token's id part).
const PATIDPrefix = "pat_"

// PATs issues and verifies personal access tokens: a person's delegated
// credential, with at most the person's scopes and role. It is safe for
// concurrent use.
type PATs struct {
	store  store.Store
	pepper *Pepper
	clock  gatehouse.Clock
	log    *slog.Logger
	cache  *credCache
	inv    Invalidator
	usage  *Usage
}

// NewPATs returns the token service.
func NewPATs(cfg KeysConfig) *PATs {
	if cfg.Clock == nil {
		cfg.Clock = gatehouse.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	pepper := cfg.Peppers
	if pepper == nil {
		pepper = versionOne(cfg.Pepper)
	}
	return &PATs{store: cfg.Store, pepper: pepper, clock: cfg.Clock, log: cfg.Logger.WithGroup("pats"), cache: newCredCache(RevalidateConnected), inv: cfg.Invalidator, usage: cfg.Usage}
}

// NewPAT describes a token to create for Owner.
type NewPAT struct {
	Name     string
	Scopes   []string
	Role     string        // "" or a role no higher than the owner's
	Lifetime time.Duration // 0: DefaultPATLifetime
	// NotAfter, when set, caps the token's expiry (the expiry of the
	// token creating it): a Lifetime reaching beyond it is refused, and
	// the default lifetime is shortened to it.
	NotAfter time.Time
	// Lineage records who creates it.
	Lineage store.Lineage
}

// Create issues a token for owner. Its scopes must be a subset of the
// owner's and its role no higher. The token is returned once.
func (t *PATs) Create(ctx context.Context, owner *store.User, n NewPAT) (*store.PAT, string, error) {
	if !owner.DisabledAt.IsZero() {
		return nil, "", gatehouse.Errorf(gatehouse.EFORBIDDEN, "user %s is disabled", owner.Username)
	}
	if strings.TrimSpace(n.Name) == "" || len(n.Name) > 200 {
		return nil, "", gatehouse.Errorf(gatehouse.EINVALID, "name: is required (at most 200 characters)")
	}
	for _, s := range n.Scopes {
		if err := ValidateScope(s); err != nil {
			return nil, "", err
		}
		if !slices.Contains(owner.Scopes, s) {
			return nil, "", gatehouse.Errorf(gatehouse.EFORBIDDEN, "scopes: %s is not one of your scopes (%s)", s, strings.Join(owner.Scopes, ", "))
		}
	}
	if n.Role != "" && !ValidRole(n.Role) {
		return nil, "", gatehouse.Errorf(gatehouse.EINVALID, "role: %q is not one of %s", n.Role, strings.Join(Roles(), ", "))
	}
	if !RoleAtMost(n.Role, owner.Role) {
		return nil, "", gatehouse.Errorf(gatehouse.EFORBIDDEN, "role: %s is above your role %s", n.Role, owner.Role)
	}
	if len(n.Scopes) == 0 && n.Role == "" {
		return nil, "", gatehouse.Errorf(gatehouse.EINVALID, "scopes or role: a token needs at least one")
	}
	defaulted := n.Lifetime == 0
	if defaulted {
		n.Lifetime = DefaultPATLifetime
	}
	if n.Lifetime < time.Minute || n.Lifetime > MaxPATLifetime {
		return nil, "", gatehouse.Errorf(gatehouse.EINVALID, "expires_in: must be between 1m and 365d")
	}
	now := t.clock.Now().UTC()
	expires := now.Add(n.Lifetime)
	if !n.NotAfter.IsZero() && expires.After(n.NotAfter) {
		if !defaulted {
			return nil, "", gatehouse.Errorf(gatehouse.EFORBIDDEN, "expires_in: must end no later than %s, when the token creating it expires", n.NotAfter.UTC().Format(time.RFC3339))
		}
		expires = n.NotAfter.UTC()
	}
	token, part, err := NewToken(PrefixPAT)
	if err != nil {
		return nil, "", err
	}
	p := &store.PAT{
		ID: PATIDPrefix + part, Username: owner.Username, Name: n.Name, Hash: t.pepper.Hash(token),
		Scopes: n.Scopes, Role: n.Role, CreatedAt: now, ExpiresAt: expires, Lineage: n.Lineage,
	}
	if err := t.store.CreatePAT(ctx, p); err != nil {
		return nil, "", fmt.Errorf("create token: %w", err)
	}
	t.log.InfoContext(ctx, "personal access token created", "token_id", p.ID, "user", owner.Username)
	return p, token, nil
}

// List returns the tokens of username ("" for everyone's).
func (t *PATs) List(ctx context.Context, username string) ([]*store.PAT, error) {
	return t.store.ListPATs(ctx, username)
}

// Page returns one page of tokens (store.Store.ListPATsPage).
func (t *PATs) Page(ctx context.Context, q store.PATQuery) ([]*store.PAT, error) {
	return t.store.ListPATsPage(ctx, q)
}

// Get returns a token.
func (t *PATs) Get(ctx context.Context, id string) (*store.PAT, error) {
	return t.store.GetPAT(ctx, id)
}

// Revoke revokes a token; its next use fails.
func (t *PATs) Revoke(ctx context.Context, id string) (*store.PAT, error) {
	p, err := t.store.RevokePAT(ctx, id, t.clock.Now().UTC())
	t.cache.invalidate(strings.TrimPrefix(id, PATIDPrefix))
	if err != nil {
		return nil, err
	}
	publish(ctx, t.inv, t.log, Invalidation{Kind: InvalidatePAT, ID: id})
	return p, nil
}

// InvalidateUser drops every cached verification of username's tokens, so
// that disabling the user takes effect on the next request.
func (t *PATs) InvalidateUser(ctx context.Context, username string) error {
	all, err := t.store.ListPATs(ctx, username)
	if err != nil {
		return err
	}
	for _, p := range all {
		t.cache.invalidate(strings.TrimPrefix(p.ID, PATIDPrefix))
	}
	return nil
}

// Authenticate verifies a token and returns its principal: kind pat, id
// the owner's username, the token's scopes and role.
func (t *PATs) Authenticate(ctx context.Context, token string) (*gatehouse.Principal, error) {
	part, ok := ParseToken(PrefixPAT, token)
	if !ok {
		return nil, ErrMalformed
	}
	now := t.clock.Now()
	if p, hit, err := t.cache.lookup(part, token, now); hit {
		if err == nil {
			t.usage.Touch(store.CredentialPAT, p.Name, now)
		}
		return p, err
	}
	gen := t.cache.generation()
	pat, err := t.store.GetPAT(ctx, PATIDPrefix+part)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return nil, ErrUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("verify token: %w", err)
	}
	if err := t.pepper.Verify(ctx, token, pat.Hash); err != nil {
		logHashError(ctx, t.log, err, "token_id", pat.ID)
		return nil, ErrUnknown
	}
	if !pat.RevokedAt.IsZero() {
		return nil, ErrRevoked
	}
	if !now.Before(pat.ExpiresAt) {
		return nil, ErrExpired
	}
	u, err := t.store.GetUser(ctx, pat.Username)
	if err != nil {
		return nil, fmt.Errorf("verify token owner: %w", err)
	}
	if !u.DisabledAt.IsZero() {
		return nil, ErrUserDisabled
	}
	p := gatehouse.NewPrincipal(u.Username, gatehouse.KindPAT, pat.ID, pat.Scopes, "")
	p.Role = pat.Role
	t.cache.store(part, token, p, pat.ExpiresAt, now, gen)
	t.usage.Touch(store.CredentialPAT, pat.ID, now)
	return p, nil
}

// ErrUserDisabled refuses the credentials of a disabled user.
var ErrUserDisabled = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "user disabled")
