package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/store"
)

// ClientIDPrefix starts every client id ("cl_" + the id part of its secret).
const ClientIDPrefix = "cl_"

// Client lockout. A client id is not secret, so failures lock a client
// only for the source address they came from: clientMaxFailures failed
// authentications of one client from one address within the window lock
// that pair, and sourceMaxFailures failures of any clients from one address
// lock the address, each for the lockout period. Someone who knows a
// client's id cannot lock the client out from elsewhere.
const (
	clientMaxFailures   = 5
	sourceMaxFailures   = 20
	clientFailureWindow = 15 * time.Minute
	clientLockout       = 15 * time.Minute
	// maxFailureEntries bounds the lockout state (pairs and addresses).
	maxFailureEntries = 100_000
)

// ErrClientLocked refuses a client after repeated failed authentications
// from the caller's address. It is ERATELIMITED (429) and carries a
// RetryAfter.
var ErrClientLocked error = lockedError{}

type lockedError struct{}

var errClientLocked = gatehouse.Errorf(gatehouse.ERATELIMITED, "too many failed client authentications from this address; try again later")

func (lockedError) Error() string { return errClientLocked.Error() }
func (lockedError) Unwrap() error { return errClientLocked }

// RetryAfter is the lockout period (an upper bound of what is left).
func (lockedError) RetryAfter() time.Duration { return clientLockout }

// Clients manages OAuth service clients and authenticates them. It is safe
// for concurrent use.
type Clients struct {
	store  store.Store
	pepper *Pepper
	clock  gatehouse.Clock
	log    *slog.Logger
	cache  *credCache
	inv    Invalidator
	usage  *Usage

	mu      sync.RWMutex
	revoked map[string]bool // client ids revoked; their tokens fail at once
	// failures holds lockout state by pairKey (client and address) and
	// sourceKey (address), at most maxFailureEntries entries. The address
	// is its limit key (ratelimit.SourceKey: an IPv6 one by its first
	// v6bits bits), so one /64 cannot spread its failures over addresses.
	failures map[string]*clientFailures
	v6bits   int
}

func pairKey(id, source string) string { return id + "\x00" + source }
func sourceKey(source string) string   { return "\x00" + source }

type clientFailures struct {
	times       []time.Time
	lockedUntil time.Time
}

// NewClients returns the client service, loading the set of revoked
// clients so their tokens are refused from the first request.
func NewClients(ctx context.Context, cfg KeysConfig) (*Clients, error) {
	if cfg.Store == nil {
		return nil, errors.New("authn: clients need a store")
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
	c := &Clients{
		store: cfg.Store, pepper: pepper, clock: cfg.Clock, log: cfg.Logger.WithGroup("clients"),
		cache: newCredCache(RevalidateConnected), inv: cfg.Invalidator, usage: cfg.Usage, revoked: map[string]bool{}, failures: map[string]*clientFailures{},
		v6bits: cfg.IPv6Prefix,
	}
	if err := c.loadRevoked(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// loadRevoked adds every revoked client in the store to the revoked set.
func (c *Clients) loadRevoked(ctx context.Context) error {
	all, err := c.store.ListClients(ctx)
	if err != nil {
		return fmt.Errorf("load clients: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range all {
		if !cl.RevokedAt.IsZero() {
			c.revoked[cl.ID] = true
		}
	}
	return nil
}

// refresh drops the cached verification of the client's secret and its
// lockouts, and re-reads the client, adding it to the revoked set if it is revoked.
func (c *Clients) refresh(ctx context.Context, id string) error {
	c.cache.invalidate(strings.TrimPrefix(id, ClientIDPrefix))
	c.unlock(id) // an unlock (or a new secret) on another replica
	cl, err := c.store.GetClient(ctx, id)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return nil
	}
	if err != nil {
		return fmt.Errorf("refresh client %s: %w", id, err)
	}
	if !cl.RevokedAt.IsZero() {
		c.mu.Lock()
		c.revoked[id] = true
		c.mu.Unlock()
	}
	return nil
}

// NewClient describes a client to create.
type NewClient struct {
	Name      string
	Scopes    []string
	Tier      string
	ExpiresAt time.Time // zero: never
	// Lineage records who creates it.
	Lineage store.Lineage
}

// Create registers a client and returns it with its secret, which is never
// stored and cannot be shown again.
func (c *Clients) Create(ctx context.Context, n NewClient) (*store.Client, string, error) {
	now := c.clock.Now().UTC()
	nk := NewKey{Name: n.Name, Scopes: n.Scopes, Tier: n.Tier, ExpiresAt: n.ExpiresAt}
	if err := nk.Validate(now); err != nil {
		return nil, "", err
	}
	secret, part, err := NewToken(PrefixClient)
	if err != nil {
		return nil, "", err
	}
	cl := &store.Client{
		ID: ClientIDPrefix + part, Name: n.Name, SecretHash: c.pepper.Hash(secret),
		Scopes: n.Scopes, Tier: n.Tier, CreatedAt: now, ExpiresAt: n.ExpiresAt, Lineage: n.Lineage,
	}
	if err := c.store.CreateClient(ctx, cl); err != nil {
		return nil, "", fmt.Errorf("create client: %w", err)
	}
	c.log.InfoContext(ctx, "client created", "client_id", cl.ID, "name", cl.Name)
	return cl, secret, nil
}

// Get returns a client.
func (c *Clients) Get(ctx context.Context, id string) (*store.Client, error) {
	return c.store.GetClient(ctx, id)
}

// List returns every client.
func (c *Clients) List(ctx context.Context) ([]*store.Client, error) { return c.store.ListClients(ctx) }

// Page returns one page of clients (store.Store.ListClientsPage).
func (c *Clients) Page(ctx context.Context, q store.ClientQuery) ([]*store.Client, error) {
	return c.store.ListClientsPage(ctx, q)
}

// Revoke revokes a client: it can no longer get tokens, and the tokens it
// holds fail on their next use.
func (c *Clients) Revoke(ctx context.Context, id string) (*store.Client, error) {
	cl, err := c.store.RevokeClient(ctx, id, c.clock.Now().UTC())
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.revoked[id] = true
	c.mu.Unlock()
	c.cache.invalidate(strings.TrimPrefix(id, ClientIDPrefix))
	publish(ctx, c.inv, c.log, Invalidation{Kind: InvalidateClient, ID: id})
	c.log.InfoContext(ctx, "client revoked", "client_id", id)
	return cl, nil
}

// RotateSecret gives the client a new secret; the old one stops working at
// once. Tokens already issued stay valid until they expire.
func (c *Clients) RotateSecret(ctx context.Context, id string) (*store.Client, string, error) {
	part, ok := strings.CutPrefix(id, ClientIDPrefix)
	if !ok || len(part) != idLen {
		return nil, "", store.NotFound("client", id)
	}
	secret, err := newTokenWithID(PrefixClient, part)
	if err != nil {
		return nil, "", err
	}
	now := c.clock.Now().UTC()
	err = c.store.SetClientSecret(ctx, id, c.pepper.Hash(secret), now)
	c.cache.invalidate(part)
	if err != nil {
		return nil, "", err
	}
	publish(ctx, c.inv, c.log, Invalidation{Kind: InvalidateClient, ID: id})
	cl, err := c.store.GetClient(ctx, id)
	if err != nil {
		return nil, "", err
	}
	c.log.InfoContext(ctx, "client secret rotated", "client_id", id)
	return cl, secret, nil
}

// Used notes a use of the client (its access token at the gateway).
func (c *Clients) Used(id string, now time.Time) { c.usage.Touch(store.CredentialClient, id, now) }

// Revoked reports whether the client has been revoked (tokens it holds
// must fail).
func (c *Clients) Revoked(id string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.revoked[id]
}

// Authenticate checks a client id and secret and returns the client's
// principal (kind client, the client's full scopes). It is
// AuthenticateFrom with no source address.
func (c *Clients) Authenticate(ctx context.Context, id, secret string) (*gatehouse.Principal, error) {
	return c.AuthenticateFrom(ctx, id, secret, "")
}

// AuthenticateFrom checks a client id and secret presented from source (the
// client's address). Failures count toward the lockout of the client from
// that address and of the address; a locked pair or address fails with
// ErrClientLocked before the secret is checked.
func (c *Clients) AuthenticateFrom(ctx context.Context, id, secret, source string) (*gatehouse.Principal, error) {
	now := c.clock.Now()
	if c.locked(id, source, now) {
		return nil, ErrClientLocked
	}
	part, ok := ParseToken(PrefixClient, secret)
	if !ok || ClientIDPrefix+part != id {
		c.fail(id, source)
		return nil, ErrUnknown
	}
	if p, hit, err := c.cache.lookup(part, secret, now); hit {
		if err != nil {
			if err == ErrUnknown {
				c.fail(id, source)
			}
			return p, err
		}
		c.usage.Touch(store.CredentialClient, id, now)
		return p, nil
	}
	gen := c.cache.generation()
	cl, err := c.store.GetClient(ctx, id)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		c.fail(id, source)
		return nil, ErrUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate client: %w", err)
	}
	if err := c.pepper.Verify(ctx, secret, cl.SecretHash); err != nil {
		logHashError(ctx, c.log, err, "client_id", cl.ID)
		c.fail(id, source)
		return nil, ErrUnknown
	}
	if !cl.RevokedAt.IsZero() {
		return nil, ErrRevoked
	}
	if !cl.ExpiresAt.IsZero() && !now.Before(cl.ExpiresAt) {
		return nil, ErrExpired
	}
	p := gatehouse.NewPrincipal(cl.ID, gatehouse.KindClient, cl.Name, cl.Scopes, cl.Tier)
	c.cache.store(part, secret, p, cl.ExpiresAt, now, gen)
	c.usage.Touch(store.CredentialClient, id, now)
	return p, nil
}

func (c *Clients) locked(id, source string, now time.Time) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	src := ratelimit.SourceKey(source, c.v6bits)
	for _, k := range [2]string{pairKey(id, src), sourceKey(src)} {
		if f := c.failures[k]; f != nil && now.Before(f.lockedUntil) {
			return true
		}
	}
	return false
}

// Unlock lifts the lockouts of client id from every address and reports
// how many it lifted. Addresses locked for failing many clients stay
// locked.
func (c *Clients) Unlock(ctx context.Context, id string) (*store.Client, int, error) {
	cl, err := c.store.GetClient(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	n := c.unlock(id)
	publish(ctx, c.inv, c.log, Invalidation{Kind: InvalidateClient, ID: id})
	c.log.InfoContext(ctx, "client unlocked", "client_id", id, "lockouts", n)
	return cl, n, nil
}

// LockedUntil returns, for each client locked out from some address on
// this replica (lockouts are kept per process), when its last lockout
// ends. Addresses locked for failing many clients are not counted.
func (c *Clients) LockedUntil() map[string]time.Time {
	now := c.clock.Now()
	out := map[string]time.Time{}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for k, f := range c.failures {
		id, _, ok := strings.Cut(k, "\x00")
		if ok && id != "" && now.Before(f.lockedUntil) && f.lockedUntil.After(out[id]) {
			out[id] = f.lockedUntil
		}
	}
	return out
}

func (c *Clients) unlock(id string) int {
	now := c.clock.Now()
	prefix := pairKey(id, "")
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, f := range c.failures {
		if strings.HasPrefix(k, prefix) {
			if now.Before(f.lockedUntil) {
				n++
			}
			delete(c.failures, k)
		}
	}
	return n
}

// fail records a failed authentication of client id (counted only for a
// well-formed id) from source, and of source.
func (c *Clients) fail(id, source string) {
	now := c.clock.Now()
	src := ratelimit.SourceKey(source, c.v6bits)
	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.HasPrefix(id, ClientIDPrefix) && len(id) == len(ClientIDPrefix)+idLen {
		if c.count(pairKey(id, src), now, clientMaxFailures) {
			c.log.Warn("client locked after repeated failed authentications from one address", "client_id", id, "source_ip", source, "minutes", clientLockout.Minutes())
		}
	}
	if c.count(sourceKey(src), now, sourceMaxFailures) {
		c.log.Warn("address locked after repeated failed client authentications", "source_ip", source, "minutes", clientLockout.Minutes())
	}
}

// count adds a failure under key and reports whether it locked the key.
// c.mu is held.
func (c *Clients) count(key string, now time.Time, limit int) bool {
	f := c.failures[key]
	if f == nil {
		if len(c.failures) >= maxFailureEntries {
			c.evict(now)
		}
		f = &clientFailures{}
		c.failures[key] = f
	}
	keep := f.times[:0]
	for _, t := range f.times {
		if now.Sub(t) < clientFailureWindow {
			keep = append(keep, t)
		}
	}
	f.times = append(keep, now)
	if len(f.times) >= limit {
		f.lockedUntil = now.Add(clientLockout)
		f.times = f.times[:0]
		return true
	}
	return false
}

// evict makes room in a full failures map: entries with nothing left to
// remember go first, then unlocked ones, then any, until a tenth is free.
// c.mu is held.
func (c *Clients) evict(now time.Time) {
	target := maxFailureEntries - maxFailureEntries/10
	stale := func(f *clientFailures) bool {
		return !now.Before(f.lockedUntil) && (len(f.times) == 0 || now.Sub(f.times[len(f.times)-1]) >= clientFailureWindow)
	}
	for pass := 0; pass < 3 && len(c.failures) > target; pass++ {
		for k, f := range c.failures {
			if len(c.failures) <= target {
				break
			}
			if pass == 2 || (pass == 0 && stale(f)) || (pass == 1 && !now.Before(f.lockedUntil)) {
				delete(c.failures, k)
			}
		}
	}
}
