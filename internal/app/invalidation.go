package app

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/store/postgres/notify"
)

// busInvalidator publishes authn's invalidations on the PostgreSQL bus.
type busInvalidator struct{ bus *notify.Bus }

var _ authn.Invalidator = busInvalidator{}

func (b busInvalidator) Publish(ctx context.Context, inv authn.Invalidation) error {
	return b.bus.Publish(ctx, notify.Message{Kind: inv.Kind, ID: inv.ID})
}

// openBus opens the invalidation bus on the store's database. Messages
// from other replicas are applied to a.inv (filled in once the services
// exist; the bus delivers nothing before Start).
func (a *App) openBus(ctx context.Context, dsn string) (*notify.Bus, error) {
	log := a.log.WithGroup("invalidation")
	return notify.Open(ctx, notify.Config{
		DSN:      dsn,
		Password: a.secrets.storePassword(),
		Logger:   a.log,
		Receive: func(ctx context.Context, m notify.Message) {
			if m.Kind == invalidateLockdown {
				a.reloadLockdown(ctx, "announced by another replica")
				return
			}
			if err := a.inv.Apply(ctx, authn.Invalidation{Kind: m.Kind, ID: m.ID}); err != nil {
				log.Error("apply invalidation", "kind", m.Kind, "id", m.ID, "err", err)
				return
			}
			a.metrics.Revocation(m.Sent)
		},
		Connected: func(ctx context.Context) {
			if err := a.inv.Connected(ctx); err != nil {
				log.Error("resync caches after reconnect", "err", err)
			}
			a.reloadLockdown(ctx, "invalidation bus reconnected")
		},
		Disconnected: a.inv.Disconnected,
	})
}

// invalidationReady reports whether changes made through other replicas
// reach this one at once. It is not critical: while the bus is down caches
// re-validate within authn.RevalidateDisconnected.
func (a *App) invalidationReady(ctx context.Context) error {
	if a.bus == nil {
		return nil
	}
	return a.bus.Healthy()
}

// InvalidationState reports whether the invalidation bus is listening and
// the cache revalidation bound in force (for tests and diagnostics).
func (a *App) InvalidationState() (listening bool, revalidate time.Duration) {
	return a.bus == nil || a.bus.Healthy() == nil, a.inv.Revalidate()
}

// InvalidationListenerPID is the PostgreSQL backend pid of the listening
// connection, or 0 (for tests).
func (a *App) InvalidationListenerPID() uint32 {
	if a.bus == nil {
		return 0
	}
	return a.bus.ListenerPID()
}
