package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Kinds of Invalidation.
const (
	InvalidateKey      = "key"      // ID: an API key id
	InvalidateClient   = "client"   // ID: a client id (revoked or secret rotated)
	InvalidatePAT      = "pat"      // ID: a personal access token id
	InvalidateUser     = "user"     // ID: a username (disabled)
	InvalidateSettings = "settings" // Settings → Authentication changed
)

// Revalidation bounds: how long a cached verification is trusted before the
// store is read again. Changes made through this process invalidate at
// once, and changes made through another replica arrive as invalidations;
// the bound matters only for changes the channel failed to deliver.
const (
	// RevalidateConnected applies while invalidations arrive (or in a
	// single process, where there is no one else to hear from).
	RevalidateConnected = 30 * time.Second
	// RevalidateDisconnected applies while the channel that carries
	// invalidations between replicas is down.
	RevalidateDisconnected = 5 * time.Second
)

// Invalidation announces that a credential's cached verification, or the
// authentication settings, may no longer hold.
type Invalidation struct {
	Kind string `json:"kind"`
	ID   string `json:"id,omitempty"`
}

// Invalidator carries invalidations to the other replicas sharing the
// store. Publish is called after the change is stored; it must not deliver
// the invalidation back to this process. It must be safe for concurrent use.
type Invalidator interface {
	Publish(ctx context.Context, inv Invalidation) error
}

// NopInvalidator publishes nothing: a single process invalidates its own
// caches as it makes changes.
type NopInvalidator struct{}

var _ Invalidator = NopInvalidator{}

// Publish does nothing.
func (NopInvalidator) Publish(context.Context, Invalidation) error { return nil }

// publish sends inv through inv, logging (not returning) a failure: the
// change is already stored, and the other replicas still see it within
// their revalidation bound.
func publish(ctx context.Context, p Invalidator, log *slog.Logger, inv Invalidation) {
	if p == nil {
		return
	}
	if err := p.Publish(ctx, inv); err != nil {
		log.ErrorContext(ctx, "publish invalidation: other replicas see the change only after their cache bound",
			"kind", inv.Kind, "id", inv.ID, "err", err)
	}
}

// Invalidations applies invalidations published by other replicas to this
// process's services. Any field may be nil. It is safe for concurrent use.
type Invalidations struct {
	Keys    *Keys
	Clients *Clients
	PATs    *PATs
	Users   *Users
}

// Apply drops what inv names from the caches: a key's, client secret's or
// token's cached verification, every token of a disabled user, a revoked
// client's tokens (by re-reading the client), or the settings (re-read).
func (v *Invalidations) Apply(ctx context.Context, inv Invalidation) error {
	switch inv.Kind {
	case InvalidateKey:
		if v.Keys != nil {
			v.Keys.Invalidate(inv.ID)
		}
	case InvalidateClient:
		if v.Clients != nil {
			return v.Clients.refresh(ctx, inv.ID)
		}
	case InvalidatePAT:
		if v.PATs != nil {
			v.PATs.cache.invalidate(strings.TrimPrefix(inv.ID, PATIDPrefix))
		}
	case InvalidateUser:
		if v.PATs != nil {
			return v.PATs.InvalidateUser(ctx, inv.ID)
		}
	case InvalidateSettings:
		if v.Users != nil {
			return v.Users.reloadSettings(ctx)
		}
	default:
		return gatehouse.Errorf(gatehouse.EINVALID, "unknown invalidation kind %q", inv.Kind)
	}
	return nil
}

// Disconnected shortens the revalidation bound of every cache to
// RevalidateDisconnected: invalidations from other replicas may be lost.
func (v *Invalidations) Disconnected() {
	v.setTTL(RevalidateDisconnected)
}

// Connected restores the revalidation bound to RevalidateConnected and,
// since invalidations may have been missed while disconnected, drops every
// cached verification and re-reads the settings and the revoked clients.
func (v *Invalidations) Connected(ctx context.Context) error {
	v.flush()
	v.setTTL(RevalidateConnected)
	var errs []error
	if v.Clients != nil {
		errs = append(errs, v.Clients.loadRevoked(ctx))
	}
	if v.Users != nil {
		errs = append(errs, v.Users.reloadSettings(ctx))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("resync after reconnect: %w", err)
	}
	return nil
}

// Revalidate returns the revalidation bound now in force.
func (v *Invalidations) Revalidate() time.Duration {
	for _, c := range v.caches() {
		return time.Duration(c.ttl.Load())
	}
	return RevalidateConnected
}

func (v *Invalidations) caches() []*credCache {
	var out []*credCache
	if v.Keys != nil {
		out = append(out, v.Keys.cache)
	}
	if v.Clients != nil {
		out = append(out, v.Clients.cache)
	}
	if v.PATs != nil {
		out = append(out, v.PATs.cache)
	}
	return out
}

func (v *Invalidations) setTTL(d time.Duration) {
	for _, c := range v.caches() {
		c.setTTL(d)
	}
}

func (v *Invalidations) flush() {
	for _, c := range v.caches() {
		c.flush()
	}
}
