package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/store"
)

// KeyIDPrefix starts every API key id ("key_" + the id part of the token).
const KeyIDPrefix = "key_"

// DefaultRotationGrace is how long a rotated key keeps working.
const DefaultRotationGrace = 24 * time.Hour

// KeysConfig configures a Keys service.
type KeysConfig struct {
	Store store.Store
	// Peppers are the pepper's versions that stored hashes are made and
	// checked under; nil: Pepper as version 1 alone.
	Peppers *Pepper
	Pepper  []byte // HMAC key for stored hashes when Peppers is nil; at least 32 bytes
	Clock   gatehouse.Clock
	Logger  *slog.Logger
	// Invalidator tells other replicas of revocations and rotations; nil
	// publishes nothing.
	Invalidator Invalidator
	// Usage records when each credential was last used; nil records
	// nothing.
	Usage *Usage
	// IPv6Prefix is how many leading bits of an IPv6 address the client
	// lockouts per source key on (ratelimit.SourcePrefix); 0: 64.
	IPv6Prefix int
}

// peppers is the Pepper of cfg: Peppers, or Pepper as version 1.
func (cfg KeysConfig) peppers() (*Pepper, error) {
	if cfg.Peppers != nil {
		return cfg.Peppers, nil
	}
	if len(cfg.Pepper) < 32 {
		return nil, errors.New("authn: pepper must be at least 32 bytes")
	}
	return NewPepper(PepperKey{Version: 1, Key: cfg.Pepper})
}

// logHashError logs a stored hash that could not be checked (malformed,
// or under a pepper version not held); a plain mismatch is not logged.
// Neither the hash nor the credential is logged.
func logHashError(ctx context.Context, log *slog.Logger, err error, args ...any) {
	if errors.Is(err, errHashMismatch) {
		return
	}
	log.WarnContext(ctx, "stored credential hash cannot be checked", append(args, "err", err)...)
}

// Keys issues, verifies, revokes and rotates API keys. Verified keys are
// cached in memory; revoke and rotate invalidate the cache at once. It is
// safe for concurrent use.
type Keys struct {
	store  store.Store
	pepper *Pepper
	clock  gatehouse.Clock
	log    *slog.Logger
	cache  *credCache
	inv    Invalidator
	usage  *Usage
}

// NewKeys returns a Keys service.
func NewKeys(cfg KeysConfig) (*Keys, error) {
	if cfg.Store == nil {
		return nil, errors.New("authn: keys need a store")
	}
	pepper, err := cfg.peppers()
	if err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = gatehouse.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Keys{store: cfg.Store, pepper: pepper, clock: cfg.Clock, log: cfg.Logger.WithGroup("keys"), cache: newCredCache(RevalidateConnected), inv: cfg.Invalidator, usage: cfg.Usage}, nil
}

// NewKey describes a key to create.
type NewKey struct {
	Name      string
	Scopes    []string
	Tier      string
	ExpiresAt time.Time // zero: never
	// Lineage records who creates it.
	Lineage store.Lineage
}

// Validate checks a NewKey, naming the failing field.
func (n *NewKey) Validate(now time.Time) error {
	if strings.TrimSpace(n.Name) == "" {
		return gatehouse.Errorf(gatehouse.EINVALID, "name: is required")
	}
	if len(n.Name) > 200 {
		return gatehouse.Errorf(gatehouse.EINVALID, "name: at most 200 characters")
	}
	if len(n.Scopes) == 0 {
		return gatehouse.Errorf(gatehouse.EINVALID, "scopes: at least one scope is required")
	}
	for _, s := range n.Scopes {
		if err := ValidateScope(s); err != nil {
			return err
		}
	}
	if n.Tier != "" && !isToken(n.Tier) {
		return gatehouse.Errorf(gatehouse.EINVALID, "tier: %q must be letters, digits, '-', '_' or '.'", n.Tier)
	}
	if !n.ExpiresAt.IsZero() && !n.ExpiresAt.After(now) {
		return gatehouse.Errorf(gatehouse.EINVALID, "expires: must be in the future")
	}
	return nil
}

// ValidateScope checks one scope name.
func ValidateScope(s string) error {
	if s == "" || len(s) > 128 {
		return gatehouse.Errorf(gatehouse.EINVALID, "scopes: %q must be 1 to 128 characters", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == ',' || c == '"' || c == '\\' || c >= 0x7f {
			return gatehouse.Errorf(gatehouse.EINVALID, "scopes: %q must be printable ASCII without spaces, commas, quotes or backslashes", s)
		}
	}
	return nil
}

func isToken(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isBase62(c) || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Create issues a new key and returns it with its secret token, which is
// never stored and cannot be shown again.
func (k *Keys) Create(ctx context.Context, n NewKey) (*store.Key, string, error) {
	now := k.clock.Now().UTC()
	if err := n.Validate(now); err != nil {
		return nil, "", err
	}
	key, token, err := k.newKey(n.Name, n.Scopes, n.Tier, n.ExpiresAt, now)
	if err != nil {
		return nil, "", err
	}
	key.Lineage = n.Lineage
	if err := k.store.CreateKey(ctx, key); err != nil {
		return nil, "", fmt.Errorf("create key: %w", err)
	}
	k.log.InfoContext(ctx, "key created", "key_id", key.ID, "name", key.Name)
	return key, token, nil
}

func (k *Keys) newKey(name string, scopes []string, tier string, expires, now time.Time) (*store.Key, string, error) {
	token, id, err := NewToken(PrefixAPIKey)
	if err != nil {
		return nil, "", err
	}
	return &store.Key{
		ID:        KeyIDPrefix + id,
		Name:      name,
		Hash:      k.pepper.Hash(token),
		Scopes:    scopes,
		Tier:      tier,
		CreatedAt: now,
		ExpiresAt: expires,
	}, token, nil
}

// Get returns the key with the given id.
func (k *Keys) Get(ctx context.Context, id string) (*store.Key, error) {
	return k.store.GetKey(ctx, id)
}

// List returns every key.
func (k *Keys) List(ctx context.Context) ([]*store.Key, error) {
	return k.store.ListKeys(ctx)
}

// Page returns one page of keys (store.Store.ListKeysPage).
func (k *Keys) Page(ctx context.Context, q store.KeyQuery) ([]*store.Key, error) {
	return k.store.ListKeysPage(ctx, q)
}

// Revoke revokes the key; the next request that presents it fails.
func (k *Keys) Revoke(ctx context.Context, id string) (*store.Key, error) {
	key, err := k.store.RevokeKey(ctx, id, k.clock.Now().UTC())
	k.Invalidate(id)
	if err != nil {
		return nil, err
	}
	publish(ctx, k.inv, k.log, Invalidation{Kind: InvalidateKey, ID: id})
	k.log.InfoContext(ctx, "key revoked", "key_id", id)
	return key, nil
}

// Rotate issues a new key with the same name, scopes and tier as the key
// id, and lets the old key work for grace more (never longer than it would
// have anyway). It returns the old key as updated, the new key and its token.
func (k *Keys) Rotate(ctx context.Context, id string, grace time.Duration) (*store.Key, *store.Key, string, error) {
	return k.RotateBy(ctx, id, grace, nil)
}

// RotateBy is Rotate on behalf of a creator: the new key records its
// lineage and must pass its ceiling (the old key's scopes and tier, an
// expiry no later than the creator's own). tiers rates tiers for the
// ceiling. A nil creator is Rotate.
func (k *Keys) RotateBy(ctx context.Context, id string, grace time.Duration, by *Creator, tiers ...TierRate) (*store.Key, *store.Key, string, error) {
	if grace < 0 {
		return nil, nil, "", gatehouse.Errorf(gatehouse.EINVALID, "grace: must not be negative")
	}
	old, err := k.store.GetKey(ctx, id)
	if err != nil {
		return nil, nil, "", err
	}
	now := k.clock.Now().UTC()
	switch {
	case !old.RevokedAt.IsZero():
		return nil, nil, "", gatehouse.Errorf(gatehouse.ECONFLICT, "key %s is revoked; create a new key instead", id)
	case old.RotatedTo != "":
		return nil, nil, "", gatehouse.Errorf(gatehouse.ECONFLICT, "key %s was already rotated to %s; rotate that one", id, old.RotatedTo)
	case !old.ExpiresAt.IsZero() && !old.ExpiresAt.After(now):
		return nil, nil, "", gatehouse.Errorf(gatehouse.ECONFLICT, "key %s has expired; create a new key instead", id)
	}
	expires := old.ExpiresAt
	if by != nil {
		expires = by.CapExpiry(expires)
		var rate TierRate
		if len(tiers) > 0 {
			rate = tiers[0]
		}
		if err := by.Check(Grant{Scopes: old.Scopes, Tier: old.Tier, HasTier: true, ExpiresAt: expires, HasLifetime: true}, rate); err != nil {
			return nil, nil, "", err
		}
	}
	next, token, err := k.newKey(old.Name, old.Scopes, old.Tier, expires, now)
	if err != nil {
		return nil, nil, "", err
	}
	if by != nil {
		next.Lineage = by.Lineage
	}
	next.RotatedFrom = old.ID
	oldExpires := now.Add(grace)
	if !old.ExpiresAt.IsZero() && old.ExpiresAt.Before(oldExpires) {
		oldExpires = old.ExpiresAt
	}
	err = k.store.RotateKey(ctx, old.ID, oldExpires, next)
	k.Invalidate(old.ID)
	if err != nil {
		return nil, nil, "", err
	}
	publish(ctx, k.inv, k.log, Invalidation{Kind: InvalidateKey, ID: old.ID})
	old.RotatedTo, old.ExpiresAt = next.ID, oldExpires
	k.log.InfoContext(ctx, "key rotated", "key_id", old.ID, "new_key_id", next.ID, "old_expires_at", oldExpires)
	return old, next, token, nil
}

// Invalidate drops any cached verification of the key id.
func (k *Keys) Invalidate(id string) {
	k.cache.invalidate(strings.TrimPrefix(id, KeyIDPrefix))
}

// Authenticate verifies an API key token and returns its principal. A token
// that is not well formed fails without touching the store. On a cache hit
// it costs one SHA-256 and does not allocate.
func (k *Keys) Authenticate(ctx context.Context, token string) (*gatehouse.Principal, error) {
	part, ok := ParseToken(PrefixAPIKey, token)
	if !ok {
		return nil, ErrMalformed
	}
	now := k.clock.Now()
	if p, hit, err := k.cache.lookup(part, token, now); hit {
		if err == nil {
			k.usage.Touch(store.CredentialKey, p.ID, now)
		}
		return p, err
	}
	p, err := k.verifySlow(ctx, token, part, now)
	if err == nil {
		k.usage.Touch(store.CredentialKey, p.ID, now)
	}
	return p, err
}

func (k *Keys) verifySlow(ctx context.Context, token, part string, now time.Time) (*gatehouse.Principal, error) {
	gen := k.cache.generation()
	key, err := k.store.GetKey(ctx, KeyIDPrefix+part)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return nil, ErrUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("verify key: %w", err)
	}
	if err := k.pepper.Verify(ctx, token, key.Hash); err != nil {
		logHashError(ctx, k.log, err, "key_id", key.ID)
		return nil, ErrUnknown
	}
	if !key.RevokedAt.IsZero() {
		return nil, ErrRevoked
	}
	if !key.ExpiresAt.IsZero() && !now.Before(key.ExpiresAt) {
		return nil, ErrExpired
	}
	p := gatehouse.NewPrincipal(key.ID, gatehouse.KindAPIKey, key.Name, key.Scopes, key.Tier)
	k.cache.store(part, token, p, key.ExpiresAt, now, gen)
	return p, nil
}
