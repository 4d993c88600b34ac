package authn

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/store"
)

// ClientIDPrefix starts every client id ("cl_" + the id part of its secret).
const ClientIDPrefix = "cl_"

// Client lockout: this many failed authentications of one client within
// the window lock it for the lockout period.
const (
	clientMaxFailures   = 5
	clientFailureWindow = 15 * time.Minute
	clientLockout       = 15 * time.Minute
)

// ErrClientLocked refuses a client after repeated failed authentications.
var ErrClientLocked = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "client locked after repeated failed authentications; try again later")

// Clients manages OAuth service clients and authenticates them. It is safe
// for concurrent use.
type Clients struct {
	store  store.Store
	pepper []byte
	clock  gatehouse.Clock
	log    *slog.Logger
	cache  *credCache
	inv    Invalidator

	mu       sync.RWMutex
	revoked  map[string]bool // client ids revoked; their tokens fail at once
	failures map[string]*clientFailures
}

type clientFailures struct {
	times       []time.Time
	lockedUntil time.Time
}

// NewClients returns the client service, loading the set of revoked
// clients so their tokens are refused from the first request.
func NewClients(ctx context.Context, cfg KeysConfig) (*Clients, error) {
	if cfg.Store == nil || len(cfg.Pepper) < 32 {
		return nil, errors.New("authn: clients need a store and a 32-byte pepper")
	}
	if cfg.Clock == nil {
		cfg.Clock = gatehouse.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Clients{
		store: cfg.Store, pepper: cfg.Pepper, clock: cfg.Clock, log: cfg.Logger.WithGroup("clients"),
		cache: newCredCache(RevalidateConnected), inv: cfg.Invalidator, revoked: map[string]bool{}, failures: map[string]*clientFailures{},
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

// refresh drops the cached verification of the client's secret and
// re-reads the client, adding it to the revoked set if it is revoked.
func (c *Clients) refresh(ctx context.Context, id string) error {
	c.cache.invalidate(strings.TrimPrefix(id, ClientIDPrefix))
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
	Name   string
	Scopes []string
	Tier   string
}

// Create registers a client and returns it with its secret, which is never
// stored and cannot be shown again.
func (c *Clients) Create(ctx context.Context, n NewClient) (*store.Client, string, error) {
	now := c.clock.Now().UTC()
	nk := NewKey{Name: n.Name, Scopes: n.Scopes, Tier: n.Tier}
	if err := nk.Validate(now); err != nil {
		return nil, "", err
	}
	secret, part, err := NewToken(PrefixClient)
	if err != nil {
		return nil, "", err
	}
	cl := &store.Client{
		ID: ClientIDPrefix + part, Name: n.Name, SecretHash: hmacSHA256(c.pepper, secret),
		Scopes: n.Scopes, Tier: n.Tier, CreatedAt: now,
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
	err = c.store.SetClientSecret(ctx, id, hmacSHA256(c.pepper, secret), now)
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

// Revoked reports whether the client has been revoked (tokens it holds
// must fail).
func (c *Clients) Revoked(id string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.revoked[id]
}

// Authenticate checks a client id and secret and returns the client's
// principal (kind client, the client's full scopes). Failures count toward
// the client's lockout.
func (c *Clients) Authenticate(ctx context.Context, id, secret string) (*gatehouse.Principal, error) {
	part, ok := ParseToken(PrefixClient, secret)
	if !ok || ClientIDPrefix+part != id {
		c.fail(id)
		return nil, ErrUnknown
	}
	now := c.clock.Now()
	if c.locked(id, now) {
		return nil, ErrClientLocked
	}
	if p, hit, err := c.cache.lookup(part, secret, now); hit {
		if err != nil {
			c.fail(id)
		}
		return p, err
	}
	gen := c.cache.generation()
	cl, err := c.store.GetClient(ctx, id)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return nil, ErrUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate client: %w", err)
	}
	if !hmac.Equal(hmacSHA256(c.pepper, secret), cl.SecretHash) {
		c.fail(id)
		return nil, ErrUnknown
	}
	if !cl.RevokedAt.IsZero() {
		return nil, ErrRevoked
	}
	p := gatehouse.NewPrincipal(cl.ID, gatehouse.KindClient, cl.Name, cl.Scopes, cl.Tier)
	c.cache.store(part, secret, p, time.Time{}, now, gen)
	return p, nil
}

func (c *Clients) locked(id string, now time.Time) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	f := c.failures[id]
	return f != nil && now.Before(f.lockedUntil)
}

// fail records a failed authentication of a known-format client id.
func (c *Clients) fail(id string) {
	if !strings.HasPrefix(id, ClientIDPrefix) || len(id) != len(ClientIDPrefix)+idLen {
		return
	}
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.failures[id]
	if f == nil {
		if len(c.failures) > 100_000 { // bound memory under a flood of ids
			clear(c.failures)
		}
		f = &clientFailures{}
		c.failures[id] = f
	}
	keep := f.times[:0]
	for _, t := range f.times {
		if now.Sub(t) < clientFailureWindow {
			keep = append(keep, t)
		}
	}
	f.times = append(keep, now)
	if len(f.times) >= clientMaxFailures {
		f.lockedUntil = now.Add(clientLockout)
		f.times = f.times[:0]
		c.log.Warn("client locked after repeated failed authentications", "client_id", id, "until", f.lockedUntil)
	}
}
