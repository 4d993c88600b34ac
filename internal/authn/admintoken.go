package authn

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Settings that hold the bootstrap admin token's state.
const (
	// adminTokenSetting is the HMAC of the token, or adminTokenDisabled.
	adminTokenSetting = "admin_token_hmac"
	// adminTokenPendingSetting is "1" while a generated token has not yet
	// been shown by a process that got as far as serving: a first start
	// that fails later does not burn it, the next start makes a new one.
	adminTokenPendingSetting = "admin_token_pending"
	// adminTokenEventsSetting holds offline changes (the CLI's rotate and
	// disable) for the next start to audit.
	adminTokenEventsSetting = "admin_token_events"
)

// adminTokenDisabled is stored instead of an HMAC once the token is
// disabled; no token's HMAC equals it.
var adminTokenDisabled = []byte("disabled")

// AdminToken verifies the bootstrap admin token. Only its HMAC is stored,
// and it is read from the store at each use, so that a rotation or a
// disable takes effect at once on every replica.
type AdminToken struct {
	store  store.Store
	pepper *Pepper
	// show is the generated token this process prints once serving ("" if
	// none).
	show string
}

// BootstrapAdminToken makes sure a bootstrap admin token exists. On first
// start it stores the HMAC of fromEnv (GATEHOUSE_ADMIN_TOKEN) or of a newly
// generated token; generated reports the new token, which the caller prints
// once it is serving and then confirms with Shown. A generated token that
// was never shown (a start that failed before serving) is replaced by a new
// one at the next start, or by fromEnv if set. On later starts fromEnv is
// ignored and envIgnored says so.
func BootstrapAdminToken(ctx context.Context, st store.Store, pepper *Pepper, fromEnv string) (a *AdminToken, generated string, envIgnored bool, err error) {
	if fromEnv != "" && len(fromEnv) < 16 {
		return nil, "", false, fmt.Errorf("GATEHOUSE_ADMIN_TOKEN must be at least 16 characters")
	}
	a = &AdminToken{store: st, pepper: pepper}
	cur, err := st.GetSetting(ctx, adminTokenSetting)
	switch {
	case gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND:
		cur = nil
	case err != nil:
		return nil, "", false, fmt.Errorf("load admin token: %w", err)
	}
	pending, err := a.pending(ctx)
	if err != nil {
		return nil, "", false, err
	}
	switch {
	case cur == nil && fromEnv != "":
		if _, err := st.PutSettingIfAbsent(ctx, adminTokenSetting, pepper.Hash(fromEnv)); err != nil {
			return nil, "", false, fmt.Errorf("store admin token: %w", err)
		}
		return a, "", false, nil
	case cur == nil:
		// Pending first, so that a crash between the two writes leaves a
		// token that the next start replaces rather than one never shown.
		if err := st.PutSetting(ctx, adminTokenPendingSetting, []byte("1")); err != nil {
			return nil, "", false, fmt.Errorf("store admin token: %w", err)
		}
		token, _, err := NewToken(PrefixAdminToken)
		if err != nil {
			return nil, "", false, err
		}
		stored, err := st.PutSettingIfAbsent(ctx, adminTokenSetting, pepper.Hash(token))
		if err != nil {
			return nil, "", false, fmt.Errorf("store admin token: %w", err)
		}
		if stored { // else another replica made it at the same moment and shows it
			a.show = token
		}
		return a, a.show, false, nil
	case pending && fromEnv != "":
		if err := a.set(ctx, pepper.Hash(fromEnv), false); err != nil {
			return nil, "", false, err
		}
		return a, "", false, nil
	case pending:
		token, _, err := NewToken(PrefixAdminToken)
		if err != nil {
			return nil, "", false, err
		}
		if err := a.set(ctx, pepper.Hash(token), true); err != nil {
			return nil, "", false, err
		}
		a.show = token
		return a, token, false, nil
	}
	return a, "", fromEnv != "" && pepper.Verify(ctx, fromEnv, cur) != nil, nil
}

func (a *AdminToken) pending(ctx context.Context) (bool, error) {
	p, err := a.store.GetSetting(ctx, adminTokenPendingSetting)
	if err != nil && gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
		return false, fmt.Errorf("load admin token state: %w", err)
	}
	return string(p) == "1", nil
}

// set stores the token's HMAC (or adminTokenDisabled) and whether it is
// still to be shown.
func (a *AdminToken) set(ctx context.Context, h []byte, pending bool) error {
	flag := []byte("0")
	if pending {
		flag = []byte("1")
	}
	if err := a.store.PutSetting(ctx, adminTokenPendingSetting, flag); err != nil {
		return fmt.Errorf("store admin token: %w", err)
	}
	if err := a.store.PutSetting(ctx, adminTokenSetting, h); err != nil {
		return fmt.Errorf("store admin token: %w", err)
	}
	return nil
}

// Shown records that the generated token was printed by a serving process.
func (a *AdminToken) Shown(ctx context.Context) error {
	if a.show == "" {
		return nil
	}
	a.show = ""
	if err := a.store.PutSetting(ctx, adminTokenPendingSetting, []byte("0")); err != nil {
		return fmt.Errorf("store admin token state: %w", err)
	}
	return nil
}

// Verify reports whether token is the admin token (never once disabled),
// comparing HMACs in constant time under the pepper version the stored
// hash names.
func (a *AdminToken) Verify(ctx context.Context, token string) bool {
	h, err := a.store.GetSetting(ctx, adminTokenSetting)
	return err == nil && a.pepper.Verify(ctx, token, h) == nil
}

// Hash is the admin token's stored hash (nil when it is disabled or
// there is none), for counting the hashes under each pepper version.
func (a *AdminToken) Hash(ctx context.Context) ([]byte, error) {
	h, err := a.store.GetSetting(ctx, adminTokenSetting)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND || (err == nil && hmac.Equal(h, adminTokenDisabled)) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load admin token: %w", err)
	}
	return h, nil
}

// Status is "enabled" or "disabled".
func (a *AdminToken) Status(ctx context.Context) (string, error) {
	h, err := a.store.GetSetting(ctx, adminTokenSetting)
	if err != nil {
		return "", fmt.Errorf("load admin token: %w", err)
	}
	if hmac.Equal(h, adminTokenDisabled) {
		return "disabled", nil
	}
	return "enabled", nil
}

// Disable switches the bootstrap admin token off for good (until an
// offline rotate makes a new one). It is refused unless an enabled user
// with role admin exists, so that the deployment is not left without one.
func (a *AdminToken) Disable(ctx context.Context) error {
	return DisableAdminToken(ctx, a.store, nil, time.Time{})
}

// AdminTokenEvent is an offline change of the bootstrap admin token, for
// the next start to audit.
type AdminTokenEvent struct {
	Action string    `json:"action"` // "admin_token.rotate" or "admin_token.disable"
	At     time.Time `json:"at"`
	Via    string    `json:"via"` // "cli"
}

// RotateAdminToken replaces the bootstrap admin token with a new one (also
// when disabled) and returns it; it is for the offline CLI, with access to
// the data dir: the change is queued for the next start to audit.
func RotateAdminToken(ctx context.Context, st store.Store, pepper *Pepper, now time.Time) (string, error) {
	token, _, err := NewToken(PrefixAdminToken)
	if err != nil {
		return "", err
	}
	a := &AdminToken{store: st, pepper: pepper}
	if err := a.set(ctx, pepper.Hash(token), false); err != nil {
		return "", err
	}
	if err := queueAdminTokenEvent(ctx, st, AdminTokenEvent{Action: "admin_token.rotate", At: now.UTC(), Via: "cli"}); err != nil {
		return "", err
	}
	return token, nil
}

// DisableAdminToken disables the bootstrap admin token (see
// AdminToken.Disable). With a non-nil pepper it is the offline CLI's: the
// change is queued for the next start to audit.
func DisableAdminToken(ctx context.Context, st store.Store, pepper *Pepper, now time.Time) error {
	users, err := st.ListUsers(ctx)
	if err != nil {
		return err
	}
	admins := 0
	for _, u := range users {
		if u.Role == RoleAdmin && u.DisabledAt.IsZero() {
			admins++
		}
	}
	if admins == 0 {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "no enabled user has role admin: create one (gatehouse users create NAME --role admin) before disabling the bootstrap admin token")
	}
	a := &AdminToken{store: st}
	if err := a.set(ctx, adminTokenDisabled, false); err != nil {
		return err
	}
	if pepper != nil {
		return queueAdminTokenEvent(ctx, st, AdminTokenEvent{Action: "admin_token.disable", At: now.UTC(), Via: "cli"})
	}
	return nil
}

func queueAdminTokenEvent(ctx context.Context, st store.Store, e AdminTokenEvent) error {
	events, err := loadAdminTokenEvents(ctx, st)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(append(events, e))
	if err := st.PutSetting(ctx, adminTokenEventsSetting, b); err != nil {
		return fmt.Errorf("queue admin token event: %w", err)
	}
	return nil
}

func loadAdminTokenEvents(ctx context.Context, st store.Store) ([]AdminTokenEvent, error) {
	raw, err := st.GetSetting(ctx, adminTokenEventsSetting)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load admin token events: %w", err)
	}
	var events []AdminTokenEvent
	if err := json.Unmarshal(raw, &events); err != nil {
		return nil, fmt.Errorf("decode admin token events: %w", err)
	}
	return events, nil
}

// TakeAdminTokenEvents returns the queued offline changes and clears the
// queue; the caller audits them.
func TakeAdminTokenEvents(ctx context.Context, st store.Store) ([]AdminTokenEvent, error) {
	events, err := loadAdminTokenEvents(ctx, st)
	if err != nil || len(events) == 0 {
		return nil, err
	}
	if err := st.PutSetting(ctx, adminTokenEventsSetting, []byte("[]")); err != nil {
		return nil, fmt.Errorf("clear admin token events: %w", err)
	}
	return events, nil
}

// AdminPrincipal returns the principal that the admin token authenticates as.
func AdminPrincipal() *gatehouse.Principal {
	return gatehouse.NewPrincipal("admin-token", gatehouse.KindAdmin, "bootstrap admin token", []string{gatehouse.ScopeAdmin}, "")
}
