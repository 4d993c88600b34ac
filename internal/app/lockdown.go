package app

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/lockdown"
	"github.com/gatehouse/gatehouse/internal/store/postgres/notify"
)

// invalidateLockdown is the bus message kind that announces a lockdown set
// or lifted elsewhere; receivers re-read the state from the store.
const invalidateLockdown = "lockdown"

// openLockdown reads the lockdown state kept in the store: a lockdown set
// before a restart (or by another replica) is in force from the first
// request.
func (a *App) openLockdown(ctx context.Context) error {
	a.lockdown = lockdown.New(a.store)
	if err := a.lockdown.Reload(ctx); err != nil {
		return err
	}
	if st := a.lockdown.Current(); st.Active() {
		a.log.Warn("the gateway is in lockdown: only the principals and roles allowed pass", "incident", st.Incident, "allow", st.Allow, "since", st.Since)
	}
	return nil
}

// reloadLockdown re-reads the lockdown state after another replica's
// announcement, a reconnect of the bus, or a poll.
func (a *App) reloadLockdown(ctx context.Context, why string) {
	before := a.lockdown.Current()
	if err := a.lockdown.Reload(ctx); err != nil {
		a.log.Error("reload lockdown state; the state in force is kept", "why", why, "err", err)
		return
	}
	if after := a.lockdown.Current(); after.Incident != before.Incident || len(after.Allow) != len(before.Allow) {
		a.log.Info("lockdown state changed", "why", why, "incident", after.Incident, "allow", after.Allow)
	}
}

// runLockdownPoll re-reads the lockdown state every revalidation bound
// (30 s while the bus is up, 5 s while it is down), in case an
// announcement was lost. Only with the bus: a single process changes its
// state itself.
func (a *App) runLockdownPoll(ctx context.Context) {
	if a.bus == nil {
		return
	}
	a.busWG.Add(1) // waited for before the bus and the store close
	go func() {
		defer a.busWG.Done()
		t := time.NewTimer(a.inv.Revalidate())
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				a.reloadLockdown(ctx, "poll")
				t.Reset(a.inv.Revalidate())
			}
		}
	}()
}

// lockdownAPI is the admin API's lockdown: the change, then its
// announcement to the other replicas.
type lockdownAPI struct{ a *App }

var _ admin.Lockdown = lockdownAPI{}

func (l lockdownAPI) Set(ctx context.Context, s lockdown.State) (lockdown.State, error) {
	st, err := l.a.lockdown.Set(ctx, s)
	if err == nil {
		l.announce(ctx)
	}
	return st, err
}

func (l lockdownAPI) Lift(ctx context.Context, incident string) (lockdown.State, error) {
	st, err := l.a.lockdown.Lift(ctx, incident)
	if err == nil {
		l.announce(ctx)
	}
	return st, err
}

func (l lockdownAPI) Current() lockdown.State { return l.a.lockdown.Current() }

// announce tells the other replicas to re-read the state; a failure is
// logged: they still see the change within their poll.
func (l lockdownAPI) announce(ctx context.Context) {
	if l.a.bus == nil {
		return
	}
	if err := l.a.bus.Publish(context.WithoutCancel(ctx), notify.Message{Kind: invalidateLockdown}); err != nil {
		l.a.log.ErrorContext(ctx, "announce lockdown change: other replicas see it only at their next poll", "err", err)
	}
}
