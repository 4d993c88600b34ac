package authn

import (
	"context"
	"crypto/sha256"
	"time"
)

// SessionExpiry is when session id ends if left idle: the earlier of its
// absolute end and the idle timeout from its last use. It does not count
// as activity (the admin console shows it in its header).
func (u *Users) SessionExpiry(ctx context.Context, id string) (time.Time, error) {
	h := sha256.Sum256([]byte(id))
	se, err := u.store.GetSession(ctx, h[:])
	if err != nil {
		return time.Time{}, err
	}
	end := se.ExpiresAt
	if idle := se.LastSeenAt.Add(time.Duration(u.Settings().Session.IdleTimeout)); idle.Before(end) {
		end = idle
	}
	return end, nil
}
