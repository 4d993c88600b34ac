package admin

import (
	"context"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpjson"
	"github.com/gatehouse/gatehouse/internal/store"
)

// CSRFHeader carries the CSRF token on cookie-authenticated changes.
const CSRFHeader = "X-CSRF-Token"

func (s *Server) people() {
	if s.cfg.Users == nil {
		return
	}
	s.route("/v1/session", http.HandlerFunc(s.session), http.MethodDelete, http.MethodPost)
	s.handle("/v1/users", areaUsers, methods{http.MethodGet: s.listUsers, http.MethodPost: s.createUser})
	s.handle("/v1/users/{name}", areaUsers, methods{http.MethodGet: s.getUser, http.MethodDelete: noBody(s.deleteUser)})
	s.handle("/v1/users/{name}/disable", areaUsers, methods{http.MethodPost: noBody(s.disableUser)})
	s.handle("/v1/users/{name}/enable", areaUsers, methods{http.MethodPost: noBody(s.enableUser)})
	s.handle("/v1/users/{name}/role", areaUsers, methods{http.MethodPut: s.setUserRole})
	s.handle("/v1/users/{name}/password", areaUsers, methods{http.MethodPost: s.resetPassword})
	s.handle("/v1/users/{name}/unlock", areaUsers, methods{http.MethodPost: noBody(s.unlockUser)})
	s.handle("/v1/users/{name}/totp/reset", areaUsers, methods{http.MethodPost: noBody(s.resetTOTP)})
	s.handle("/v1/me", areaSelf, methods{http.MethodGet: s.me})
	s.handle("/v1/me/password", areaSelf, methods{http.MethodPost: s.changePassword})
	s.handle("/v1/me/totp", areaSelf, methods{http.MethodPost: s.enrollTOTP, http.MethodDelete: s.removeTOTP})
	s.handle("/v1/me/totp/verify", areaSelf, methods{http.MethodPost: s.confirmTOTP})
	s.handle("/v1/tokens", areaSelf, methods{http.MethodGet: s.listTokens, http.MethodPost: s.createToken})
	s.handle("/v1/tokens/{id}/revoke", areaSelf, methods{http.MethodPost: noBody(s.revokeToken)})
	s.handle("/v1/settings/authentication", areaSettings, methods{http.MethodGet: s.getAuthSettings, http.MethodPut: s.putAuthSettings})
}

// sessionPrincipal authenticates a session cookie. Changes made with a
// cookie need the session's CSRF token in X-CSRF-Token.
func (s *Server) sessionPrincipal(r *http.Request) (*gatehouse.Principal, error) {
	c, err := r.Cookie(authn.SessionCookie)
	if err != nil || c.Value == "" {
		return nil, errAdminAuth
	}
	p, restricted, err := s.cfg.Users.Session(r.Context(), c.Value)
	if err != nil {
		return nil, err
	}
	if info := infoFrom(r.Context()); info != nil {
		info.actor, info.restricted = p, restricted
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(s.cfg.Users.CSRFToken(c.Value))) != 1 {
			return nil, gatehouse.Errorf(gatehouse.EFORBIDDEN, "missing or wrong %s header (the token returned at sign-in)", CSRFHeader)
		}
	}
	if restricted == authn.RestrictedTOTPEnrollment && !slices.Contains([]string{"/v1/me/totp", "/v1/me/totp/verify", "/v1/session", "/v1/me"}, r.URL.Path) {
		return nil, gatehouse.Errorf(gatehouse.EFORBIDDEN, "your role requires a second factor: enrol one at POST /v1/me/totp first")
	}
	return p, nil
}

// basicPrincipal authenticates HTTP Basic (when settings allow it). Basic
// carries no second factor, so accounts with one must use a session or a
// token.
func (s *Server) basicPrincipal(r *http.Request, user, pass string) (*gatehouse.Principal, error) {
	if !s.cfg.Users.Settings().BasicAuth {
		return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "HTTP Basic is switched off (Settings → Authentication); sign in at POST /v1/session")
	}
	if err := s.limitSignIn(r, user); err != nil {
		return nil, err
	}
	res, err := s.cfg.Users.Authenticate(r.Context(), authn.Login{Username: user, Password: pass})
	s.recordLogin(r, user, "basic", res, err)
	if err != nil {
		if info := infoFrom(r.Context()); info != nil {
			info.recorded = true // as admin.login.failure
		}
		return nil, err
	}
	if res.User.TOTPEnabled || res.Restricted != "" {
		return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "this account needs a second factor: sign in at POST /v1/session or use a personal access token")
	}
	return authn.UserPrincipal(res.User), nil
}

// recordLogin audits a sign-in attempt: success, failure or lockout.
func (s *Server) recordLogin(r *http.Request, user, method string, res authn.LoginResult, err error) {
	actor := &gatehouse.Principal{ID: user, Kind: gatehouse.KindUser}
	switch {
	case err == nil:
		s.record(r.Context(), actor, "login.success", "user:"+user, map[string]any{"method": method})
	case res.Locked:
		s.record(r.Context(), actor, "login.failure", "user:"+user, map[string]any{"method": method, "reason": gatehouse.ErrorMessage(err)})
		s.record(r.Context(), actor, "login.lockout", "user:"+user, map[string]any{"method": method})
	default:
		s.record(r.Context(), actor, "login.failure", "user:"+user, map[string]any{"method": method, "reason": gatehouse.ErrorMessage(err)})
	}
}

// LoginRequest is the body of POST /v1/session.
type LoginRequest struct {
	Username    string `json:"username"`
	Password    string `json:"password"`
	TOTPCode    string `json:"totp_code,omitempty"`
	NewPassword string `json:"new_password,omitempty"`
}

// SessionResponse answers a sign-in.
type SessionResponse struct {
	User       *User     `json:"user"`
	CSRFToken  string    `json:"csrf_token"`
	ExpiresAt  time.Time `json:"expires_at"`
	Restricted string    `json:"restricted,omitempty"`
}

// session signs in (POST) and out (DELETE).
func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	var err error
	switch r.Method {
	case http.MethodPost:
		err = s.login(w, r)
	case http.MethodDelete:
		var p *gatehouse.Principal
		if p, err = s.sessionPrincipal(r); err == nil {
			c, _ := r.Cookie(authn.SessionCookie)
			err = s.cfg.Users.EndSession(r.Context(), c.Value)
			s.record(r.Context(), p, "logout", "user:"+p.ID, nil)
			http.SetCookie(w, &http.Cookie{Name: authn.SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil}) // #nosec G124 -- the clearing cookie, same attributes as the session one
			if err == nil {
				w.WriteHeader(http.StatusNoContent)
			}
		}
	default:
		w.Header().Set("Allow", "POST, DELETE")
		err = gatehouse.Errorf(gatehouse.EMETHOD, "use POST to sign in, DELETE to sign out")
	}
	if err != nil {
		httpjson.WriteError(w, r, s.log, err)
	}
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var req LoginRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" {
		return gatehouse.Errorf(gatehouse.EINVALID, "username and password: both are required")
	}
	if err := s.limitSignIn(r, req.Username); err != nil {
		s.recordRefusal(r, infoFrom(r.Context()), err)
		return err
	}
	res, err := s.cfg.Users.Authenticate(r.Context(), authn.Login{Username: req.Username, Password: req.Password, TOTPCode: req.TOTPCode, NewPassword: req.NewPassword})
	s.recordLogin(r, req.Username, "session", res, err)
	if err != nil {
		return err
	}
	id, csrf, expires, err := s.cfg.Users.NewSession(r.Context(), res)
	if err != nil {
		return err
	}
	s.setSessionCookie(w, r, id, expires)
	httpjson.Write(w, http.StatusOK, SessionResponse{User: userJSON(res.User), CSRFToken: csrf, ExpiresAt: expires, Restricted: res.Restricted})
	return nil
}

// setSessionCookie hands the browser a session id until expires.
func (s *Server) setSessionCookie(w http.ResponseWriter, r *http.Request, id string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{ // #nosec G124 -- Secure whenever served over TLS; plain HTTP admin is loopback or dev only
		Name: authn.SessionCookie, Value: id, Path: "/", MaxAge: int(expires.Sub(s.cfg.Clock.Now()).Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// User is the JSON form of an account (never its password or secrets).
type User struct {
	Username          string     `json:"username"`
	Role              string     `json:"role"`
	Scopes            []string   `json:"scopes"`
	Status            string     `json:"status"`
	TOTPEnabled       bool       `json:"totp_enabled"`
	PasswordChangedAt time.Time  `json:"password_changed_at"`
	PasswordExpired   bool       `json:"password_expired,omitempty"`
	CreatedAt         time.Time  `json:"created_at"`
	DisabledAt        *time.Time `json:"disabled_at,omitempty"`
	CreatedBy         string     `json:"created_by,omitempty"`
	CreatedByRoot     string     `json:"created_by_root,omitempty"`
	// LastSignInAt is the latest complete sign-in (password, and the
	// second factor where enrolled or required: a session restricted to
	// enrolling one does not count until it is confirmed); absent: never.
	LastSignInAt *time.Time `json:"last_sign_in_at,omitempty"`
	// LockedUntil is set while repeated failed sign-ins lock the account
	// (in listings and GET /v1/users/NAME; POST /v1/users/NAME/unlock
	// ends it).
	LockedUntil *time.Time `json:"locked_until,omitempty"`
}

func userJSON(u *store.User) *User {
	out := &User{Username: u.Username, Role: u.Role, Scopes: u.Scopes, Status: "active", TOTPEnabled: u.TOTPEnabled,
		PasswordChangedAt: u.PasswordChangedAt, PasswordExpired: u.PasswordExpired, CreatedAt: u.CreatedAt,
		CreatedBy: u.CreatedBy, CreatedByRoot: u.CreatedByRoot, LastSignInAt: timePtr(u.LastSignInAt)}
	if out.Scopes == nil {
		out.Scopes = []string{}
	}
	if !u.DisabledAt.IsZero() {
		t := u.DisabledAt
		out.DisabledAt, out.Status = &t, "disabled"
	}
	return out
}

// CreateUserRequest is the body of POST /v1/users.
type CreateUserRequest struct {
	Username string   `json:"username"`
	Role     string   `json:"role"`
	Scopes   []string `json:"scopes"`
	Password string   `json:"password"`
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := interactive(p, "creating a user"); err != nil {
		return err
	}
	var req CreateUserRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	by, err := s.creator(r.Context(), p)
	if err != nil {
		return err
	}
	if err := by.Check(authn.Grant{Scopes: req.Scopes, Role: req.Role}, s.tiers()); err != nil {
		return err
	}
	u, err := s.cfg.Users.Create(r.Context(), authn.NewUser{Username: req.Username, Role: req.Role, Scopes: req.Scopes, Password: req.Password, Lineage: by.Lineage})
	if err != nil {
		return err
	}
	s.record(r.Context(), p, "user.create", "user:"+u.Username, lineageDetails(map[string]any{"role": u.Role, "scopes": u.Scopes}, u.Lineage))
	httpjson.Write(w, http.StatusCreated, userJSON(u))
	return nil
}

// listUsers is GET /v1/users?status=&role=&name=&limit=&cursor=: one page
// of accounts in username order, filtered in the store (see listFilter),
// and next when there may be more.
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	f, err := parseListFilter(r, userStatuses, true)
	if err != nil {
		return err
	}
	after, limit, err := pageQuery(r.URL.Query())
	if err != nil {
		return err
	}
	page, err := s.cfg.Users.Page(r.Context(), store.UserQuery{After: after.ID, Limit: limit, Status: store.UserStatus(f.status),
		Role: f.role, Name: f.name, Now: s.cfg.Clock.Now()})
	if err != nil {
		return err
	}
	res := UserList{Users: make([]*User, 0, len(page))}
	for _, u := range page {
		j, err := s.userOut(r.Context(), u)
		if err != nil {
			return err
		}
		res.Users = append(res.Users, j)
	}
	if len(page) == limit {
		res.Next = encodeCursor(store.PageCursor{ID: page[len(page)-1].Username})
	}
	httpjson.Write(w, http.StatusOK, res)
	return nil
}

// UserList is one page of GET /v1/users.
type UserList struct {
	Users []*User `json:"users"`
	Next  string  `json:"next,omitempty"` // the cursor of the next page
}

// userOut is userJSON with the account's sign-in lockout, if one is in
// force.
func (s *Server) userOut(ctx context.Context, u *store.User) (*User, error) {
	out := userJSON(u)
	lo, err := s.cfg.Users.Lockout(ctx, u.Username)
	if err != nil {
		return nil, err
	}
	if lo.Locked(s.cfg.Clock.Now()) {
		t := lo.LockedUntil
		out.LockedUntil = &t
	}
	return out, nil
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	u, err := s.cfg.Users.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	out, err := s.userOut(r.Context(), u)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, out)
	return nil
}

func (s *Server) disableUser(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	u, err := s.cfg.Users.Disable(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	s.record(r.Context(), p, "user.disable", "user:"+u.Username, nil)
	// The user's tokens, and what they created, go with the user.
	if err := s.revokeUserTokens(r.Context(), p, u.Username, "user.disable"); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, userJSON(u))
	return nil
}

// enableUser re-enables a disabled account. Giving access back is a
// grant: it needs a person's sign-in (see interactive) whose ceiling
// covers the account's role and scopes.
func (s *Server) enableUser(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := interactive(p, "enabling a user"); err != nil {
		return err
	}
	u, err := s.cfg.Users.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if err := s.checkGrant(r.Context(), p, authn.Grant{Role: u.Role, Scopes: u.Scopes}); err != nil {
		return err
	}
	if u, err = s.cfg.Users.Enable(r.Context(), u.Username); err != nil {
		return err
	}
	s.record(r.Context(), p, "user.enable", "user:"+u.Username, map[string]any{"role": u.Role, "scopes": u.Scopes})
	httpjson.Write(w, http.StatusOK, userJSON(u))
	return nil
}

// RoleRequest is the body of PUT /v1/users/NAME/role.
type RoleRequest struct {
	Role string `json:"role"`
}

// setUserRole changes an account's role: a grant when it raises it
// (ceiling-checked like creating the user), and never leaving no enabled
// admin. A demotion also revokes the account's tokens (they carry the old
// role) and what they created.
func (s *Server) setUserRole(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := interactive(p, "changing a role"); err != nil {
		return err
	}
	var req RoleRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if !authn.ValidRole(req.Role) {
		return gatehouse.Errorf(gatehouse.EINVALID, "role: must be one of %s", strings.Join(authn.Roles(), ", "))
	}
	s.peopleMu.Lock()
	defer s.peopleMu.Unlock()
	u, err := s.cfg.Users.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if err := s.checkGrant(r.Context(), p, authn.Grant{Role: req.Role, Scopes: u.Scopes}); err != nil {
		return err
	}
	if req.Role != authn.RoleAdmin {
		if err := s.keepAnAdmin(r.Context(), u, "demoted"); err != nil {
			return err
		}
	}
	old, u, err := s.cfg.Users.SetRole(r.Context(), u.Username, req.Role)
	if err != nil {
		return err
	}
	if old != u.Role {
		s.record(r.Context(), p, "user.role_change", "user:"+u.Username, map[string]any{"old": old, "new": u.Role})
		if !authn.RoleAtMost(old, u.Role) {
			if err := s.revokeUserTokens(r.Context(), p, u.Username, "user.role_change"); err != nil {
				return err
			}
		}
	}
	httpjson.Write(w, http.StatusOK, userJSON(u))
	return nil
}

// deleteUser removes an account: disabled first (sessions, tokens and
// what the tokens created go at once, as for disable), then removed with
// its tokens. Nobody deletes their own account, and the last enabled admin
// stays.
func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := interactive(p, "deleting a user"); err != nil {
		return err
	}
	s.peopleMu.Lock()
	defer s.peopleMu.Unlock()
	u, err := s.cfg.Users.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if p.Kind == gatehouse.KindUser && p.ID == u.Username {
		return gatehouse.Errorf(gatehouse.EFORBIDDEN, "you cannot delete your own account: another admin can")
	}
	if err := s.keepAnAdmin(r.Context(), u, "deleted"); err != nil {
		return err
	}
	if err := s.revokeUserTokens(r.Context(), p, u.Username, "user.delete"); err != nil {
		return err
	}
	if err := s.cfg.Users.Delete(r.Context(), u.Username); err != nil {
		return err
	}
	s.record(r.Context(), p, "user.delete", "user:"+u.Username, map[string]any{"role": u.Role})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkGrant checks that the caller's ceiling covers g (see authn.Creator).
func (s *Server) checkGrant(ctx context.Context, p *gatehouse.Principal, g authn.Grant) error {
	by, err := s.creator(ctx, p)
	if err != nil {
		return err
	}
	return by.Check(g, s.tiers())
}

// keepAnAdmin refuses (ECONFLICT) to remove u's admin role — by demotion
// or deletion — when u is the last enabled admin: the admin API would be
// left to the bootstrap token, which may be disabled. It is the early
// refusal, saying how; the store refuses the write itself atomically
// (store.LastAdmin), which is what holds across replicas and for
// disabling.
func (s *Server) keepAnAdmin(ctx context.Context, u *store.User, how string) error {
	if u.Role != authn.RoleAdmin || !u.DisabledAt.IsZero() {
		return nil
	}
	all, err := s.cfg.Users.List(ctx)
	if err != nil {
		return err
	}
	for _, o := range all {
		if o.Username != u.Username && o.Role == authn.RoleAdmin && o.DisabledAt.IsZero() {
			return nil
		}
	}
	return gatehouse.Errorf(gatehouse.ECONFLICT, "%s is the last enabled admin and cannot be %s: make another user admin first", u.Username, how)
}

// PasswordRequest sets (admin reset) or changes (own) a password.
type PasswordRequest struct {
	CurrentPassword string `json:"current_password,omitempty"`
	NewPassword     string `json:"new_password"`
	// RevokeTokens also revokes every personal access token of one's own
	// (a change after a suspected compromise); other sessions end anyway.
	RevokeTokens bool `json:"revoke_tokens,omitempty"`
}

// TOTPRequest enrols (current password) or removes (current password and
// a code) one's own second factor.
type TOTPRequest struct {
	CurrentPassword string `json:"current_password"`
	Code            string `json:"code,omitempty"`
}

func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := interactive(p, "resetting a password"); err != nil {
		return err
	}
	var req PasswordRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	u, err := s.cfg.Users.ResetPassword(r.Context(), r.PathValue("name"), req.NewPassword)
	if err != nil {
		return err
	}
	s.record(r.Context(), p, "user.password_reset", "user:"+u.Username, nil)
	if err := s.revokeUserTokens(r.Context(), p, u.Username, "user.password_reset"); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, userJSON(u))
	return nil
}

// interactive requires a person's own sign-in — a session (password, and
// the second factor when enrolled) or HTTP Basic (refused to accounts with
// a second factor) — or the bootstrap admin token, for managing people:
// creating a user, resetting a password or second factor, unlocking. A
// personal access token or a key is refused: a user or a password carries
// no expiry and is in no revocation cascade, so a short-lived credential
// would leave behind an account that outlives it. Disabling a user is
// allowed to any admin credential (it only takes access away).
func interactive(p *gatehouse.Principal, what string) error {
	switch p.Kind {
	case gatehouse.KindUser, gatehouse.KindAdmin:
		return nil
	}
	cred := "key"
	if p.Kind == gatehouse.KindPAT {
		cred = "personal access token"
	}
	return gatehouse.Errorf(gatehouse.EFORBIDDEN, "%s needs a person's sign-in (a session or HTTP Basic) or the bootstrap admin token, not a %s: an account or password it set would outlive the %s", what, cred, cred)
}

// person requires the principal to be a person (not a machine credential).
func person(p *gatehouse.Principal) error {
	if p.Kind != gatehouse.KindUser && p.Kind != gatehouse.KindPAT {
		return gatehouse.Errorf(gatehouse.EFORBIDDEN, "sign in as a user for this (the %s credential belongs to no one)", p.Kind)
	}
	return nil
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := person(p); err != nil {
		return err
	}
	return s.getUserByName(w, r, p.ID)
}

func (s *Server) getUserByName(w http.ResponseWriter, r *http.Request, name string) error {
	u, err := s.cfg.Users.Get(r.Context(), name)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, userJSON(u))
	return nil
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := person(p); err != nil {
		return err
	}
	var req PasswordRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	keep := ""
	if r.Header.Get("Authorization") == "" {
		if c, err := r.Cookie(authn.SessionCookie); err == nil {
			keep = c.Value // the session this change is made with stays
		}
	}
	if err := s.cfg.Users.ChangePassword(r.Context(), p.ID, req.CurrentPassword, req.NewPassword, keep, req.RevokeTokens); err != nil {
		return err
	}
	s.record(r.Context(), p, "user.password_change", "user:"+p.ID, map[string]any{"other_sessions_ended": true, "tokens_revoked": req.RevokeTokens})
	if req.RevokeTokens {
		// What the revoked tokens created goes with them.
		if err := s.revokeUserDescendants(r.Context(), p, p.ID); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) enrollTOTP(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := person(p); err != nil {
		return err
	}
	var req TOTPRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	secret, uri, err := s.cfg.Users.EnrollTOTP(r.Context(), p.ID, req.CurrentPassword, s.cfg.Issuer)
	if err != nil {
		return err
	}
	s.record(r.Context(), p, "user.totp_enroll", "user:"+p.ID, nil)
	httpjson.Write(w, http.StatusOK, map[string]string{"secret": secret, "otpauth_uri": uri})
	return nil
}

func (s *Server) removeTOTP(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := person(p); err != nil {
		return err
	}
	var req TOTPRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.cfg.Users.RemoveTOTP(r.Context(), p.ID, req.CurrentPassword, req.Code); err != nil {
		return err
	}
	s.record(r.Context(), p, "user.totp_remove", "user:"+p.ID, nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) unlockUser(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := interactive(p, "unlocking a user"); err != nil {
		return err
	}
	u, err := s.cfg.Users.Unlock(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	s.record(r.Context(), p, "user.unlock", "user:"+u.Username, nil)
	httpjson.Write(w, http.StatusOK, userJSON(u))
	return nil
}

func (s *Server) resetTOTP(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := interactive(p, "resetting a second factor"); err != nil {
		return err
	}
	u, err := s.cfg.Users.ResetTOTP(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	s.record(r.Context(), p, "user.totp_reset", "user:"+u.Username, map[string]any{"sessions_ended": true})
	if err := s.revokeUserTokens(r.Context(), p, u.Username, "user.totp_reset"); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, userJSON(u))
	return nil
}

func (s *Server) confirmTOTP(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := person(p); err != nil {
		return err
	}
	var req struct {
		Code string `json:"code"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.cfg.Users.ConfirmTOTP(r.Context(), p.ID, req.Code); err != nil {
		return err
	}
	if info := infoFrom(r.Context()); info == nil || info.restricted != authn.RestrictedTOTPEnrollment {
		s.record(r.Context(), p, "user.totp_confirm", "user:"+p.ID, nil)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	// The sign-in this session was restricted for is now complete: a new
	// session replaces it (and any other of the user's, all made without
	// the second factor), so the id used so far never carries more than
	// enrolment.
	c, _ := r.Cookie(authn.SessionCookie)
	u, id, csrf, expires, err := s.cfg.Users.CompleteSession(r.Context(), c.Value)
	s.record(r.Context(), p, "user.totp_confirm", "user:"+p.ID, map[string]any{"session_renewed": err == nil})
	if err != nil {
		return err
	}
	s.setSessionCookie(w, r, id, expires)
	httpjson.Write(w, http.StatusOK, SessionResponse{User: userJSON(u), CSRFToken: csrf, ExpiresAt: expires})
	return nil
}

// Token is the JSON form of a personal access token; Token (the secret)
// only at creation.
type Token struct {
	ID        string     `json:"id"`
	Token     string     `json:"token,omitempty"`
	Username  string     `json:"username"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	Role      string     `json:"role,omitempty"`
	Status    string     `json:"status"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// CreatedBy is user:<owner> for a token made from a session, or the
	// token that made it; CreatedByRoot the person behind it.
	CreatedBy     string     `json:"created_by,omitempty"`
	CreatedByRoot string     `json:"created_by_root,omitempty"`
	LastUsedAt    *time.Time `json:"last_used_at,omitempty"`
}

func tokenJSON(t *store.PAT, now time.Time) *Token {
	out := &Token{ID: t.ID, Username: t.Username, Name: t.Name, Scopes: t.Scopes, Role: t.Role, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, Status: "active",
		CreatedBy: t.CreatedBy, CreatedByRoot: t.CreatedByRoot, LastUsedAt: timePtr(t.LastUsedAt)}
	if out.Scopes == nil {
		out.Scopes = []string{}
	}
	if !now.Before(t.ExpiresAt) {
		out.Status = "expired"
	}
	if !t.RevokedAt.IsZero() {
		r := t.RevokedAt
		out.RevokedAt, out.Status = &r, "revoked"
	}
	return out
}

// CreateTokenRequest is the body of POST /v1/tokens.
type CreateTokenRequest struct {
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	Role      string   `json:"role"`
	ExpiresIn string   `json:"expires_in"` // default 90d, at most 365d
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := person(p); err != nil {
		return err
	}
	var req CreateTokenRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	by, err := s.creator(r.Context(), p)
	if err != nil {
		return err
	}
	// A token's own ceiling: its scopes, role and expiry (a session's is
	// the user's, which PATs.Create checks as well).
	if err := by.Check(authn.Grant{Scopes: req.Scopes, Role: req.Role}, s.tiers()); err != nil {
		return err
	}
	n := authn.NewPAT{Name: req.Name, Scopes: req.Scopes, Role: req.Role, NotAfter: by.ExpiresAt, Lineage: by.Lineage}
	if req.ExpiresIn != "" {
		d, err := config.ParseDuration(req.ExpiresIn)
		if err != nil {
			return gatehouse.Errorf(gatehouse.EINVALID, "expires_in: %v", err)
		}
		n.Lifetime = d
	}
	owner, err := s.cfg.Users.Get(r.Context(), p.ID)
	if err != nil {
		return err
	}
	t, secret, err := s.cfg.PATs.Create(r.Context(), owner, n)
	if err != nil {
		return err
	}
	if err := s.liveLineage(r.Context(), p, authn.Ref(gatehouse.KindPAT, t.ID), t.Lineage, func() error {
		_, err := s.cfg.PATs.Revoke(r.Context(), t.ID)
		return err
	}); err != nil {
		return err
	}
	s.record(r.Context(), p, "token.create", "token:"+t.ID, lineageDetails(map[string]any{"scopes": t.Scopes, "role": t.Role, "expires_at": t.ExpiresAt}, t.Lineage))
	out := tokenJSON(t, s.cfg.Clock.Now())
	out.Token = secret
	httpjson.Write(w, http.StatusCreated, out)
	return nil
}

// listTokens is GET /v1/tokens?status=&name=&limit=&cursor=: one page of
// the caller's tokens, or with ?all=true (admins only) everyone's, oldest
// first, filtered in the store (see listFilter), and next when there may
// be more.
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	f, err := parseListFilter(r, tokenStatuses, false)
	if err != nil {
		return err
	}
	owner := p.ID
	if r.URL.Query().Get("all") == "true" {
		if p.Role != authn.RoleAdmin {
			return gatehouse.Errorf(gatehouse.EFORBIDDEN, "only admins list everyone's tokens")
		}
		owner = ""
	} else if err := person(p); err != nil {
		return err
	}
	after, limit, err := pageQuery(r.URL.Query())
	if err != nil {
		return err
	}
	now := s.cfg.Clock.Now()
	page, err := s.cfg.PATs.Page(r.Context(), store.PATQuery{After: after, Limit: limit, Username: owner, Status: store.KeyStatus(f.status), Name: f.name, Now: now})
	if err != nil {
		return err
	}
	res := TokenList{Tokens: make([]*Token, 0, len(page))}
	for _, t := range page {
		t.LastUsedAt = s.lastUsed(t.ID, t.LastUsedAt)
		res.Tokens = append(res.Tokens, tokenJSON(t, now))
	}
	if len(page) == limit {
		last := page[len(page)-1]
		res.Next = encodeCursor(store.PageCursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	httpjson.Write(w, http.StatusOK, res)
	return nil
}

// TokenList is one page of GET /v1/tokens.
type TokenList struct {
	Tokens []*Token `json:"tokens"`
	Next   string   `json:"next,omitempty"` // the cursor of the next page
}

// revokeToken revokes one of the caller's tokens, or anyone's for admins.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	t, err := s.cfg.PATs.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if t.Username != p.ID && p.Role != authn.RoleAdmin {
		return store.NotFound("token", r.PathValue("id")) // do not reveal others' tokens
	}
	if t, err = s.cfg.PATs.Revoke(r.Context(), t.ID); err != nil {
		return err
	}
	s.record(r.Context(), p, "token.revoke", "token:"+t.ID, map[string]any{"owner": t.Username})
	if err := s.revokeDescendants(r.Context(), p, authn.Ref(gatehouse.KindPAT, t.ID)); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, tokenJSON(t, s.cfg.Clock.Now()))
	return nil
}

func (s *Server) getAuthSettings(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	httpjson.Write(w, http.StatusOK, s.cfg.Users.Settings())
	return nil
}

func (s *Server) putAuthSettings(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	// Fields the body omits keep their current values.
	next := s.cfg.Users.Settings()
	if err := decode(r, &next); err != nil {
		return err
	}
	old, err := s.cfg.Users.SetSettings(r.Context(), next)
	if err != nil {
		return err
	}
	s.record(r.Context(), p, "settings.change", "settings:authentication", map[string]any{"old": old, "new": s.cfg.Users.Settings()})
	httpjson.Write(w, http.StatusOK, s.cfg.Users.Settings())
	return nil
}
