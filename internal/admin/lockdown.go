package admin

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/compliance"
	"github.com/gatehouse/gatehouse/internal/httpjson"
	"github.com/gatehouse/gatehouse/internal/lockdown"
)

// Lockdown is incident lockdown mode: Set and Lift change it for every
// replica (lockdown.Lockdown plus the announcement to the others);
// Current is the lockdown in force, if any.
type Lockdown interface {
	Set(ctx context.Context, s lockdown.State) (lockdown.State, error)
	Lift(ctx context.Context, incident string) (lockdown.State, error)
	Current() lockdown.State
}

// Containment actions of lockdown.
const (
	actionLockdown = "lockdown"
	actionLift     = "lift_lockdown"
)

// lockdown puts the gateway in lockdown for incident id (an open one),
// admitting only allow: roles, and principals that exist. It is audited as
// incident.contain with action lockdown.
func (s *Server) lockdown(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal, rec *compliance.Records, id string, allow []string) error {
	if s.cfg.Lockdown == nil {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "lockdown is not available on this server")
	}
	if len(allow) == 0 {
		return gatehouse.Errorf(gatehouse.EINVALID, "allow: name at least one role or principal that may pass during the lockdown (e.g. admin, or api_key:key_…)")
	}
	if len(allow) > lockdown.MaxAllow {
		return gatehouse.Errorf(gatehouse.EINVALID, "allow: at most %d entries", lockdown.MaxAllow)
	}
	for _, e := range allow {
		if err := s.checkAllowed(r.Context(), e); err != nil {
			return err
		}
	}
	st, err := s.cfg.Lockdown.Set(r.Context(), lockdown.State{Incident: id, Allow: allow, By: who(p), Since: s.cfg.Clock.Now().UTC()})
	if err != nil {
		return err
	}
	c := compliance.Containment{By: who(p), Action: actionLockdown, Target: strings.Join(st.Allow, " "), Allow: st.Allow}
	in, serr := rec.AddContainment(r.Context(), id, c)
	s.record(r.Context(), p, "incident.contain", "incident:"+id, map[string]any{"action": c.Action, "allow": st.Allow, "revoked": []string{}})
	if serr != nil {
		return serr
	}
	httpjson.Write(w, http.StatusOK, in)
	return nil
}

// checkAllowed refuses an allow entry that is neither a role nor a
// principal that exists (400 naming it): a typo would lock out the
// people meant to work through the lockdown.
func (s *Server) checkAllowed(ctx context.Context, e string) error {
	kind, id, err := lockdown.ParseEntry(e)
	if err != nil {
		return err
	}
	var found error
	switch gatehouse.PrincipalKind(kind) {
	case "role":
		return nil
	case gatehouse.KindAPIKey:
		_, found = s.cfg.Keys.Get(ctx, id)
	case gatehouse.KindClient:
		if s.cfg.Clients == nil {
			return gatehouse.Errorf(gatehouse.EINVALID, "allow %q: service clients are not available on this server", e)
		}
		_, found = s.cfg.Clients.Get(ctx, id)
	case gatehouse.KindPAT:
		if s.cfg.PATs == nil {
			return gatehouse.Errorf(gatehouse.EINVALID, "allow %q: tokens are not available on this server", e)
		}
		_, found = s.cfg.PATs.Get(ctx, id)
	case gatehouse.KindUser:
		if s.cfg.Users == nil {
			return gatehouse.Errorf(gatehouse.EINVALID, "allow %q: users are not available on this server", e)
		}
		_, found = s.cfg.Users.Get(ctx, id)
	}
	if gatehouse.ErrorCode(found) == gatehouse.ENOTFOUND {
		return gatehouse.Errorf(gatehouse.EINVALID, "allow %q: no such %s", e, strings.ReplaceAll(kind, "_", " "))
	}
	return found
}

// liftLockdown is POST /v1/incidents/{id}/lift: the lockdown the incident
// holds ends on every replica. It works on a closed incident too (so a
// lockdown can never outlive the means to lift it), and is audited as
// incident.lift with how long the lockdown lasted.
func (s *Server) liftLockdown(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	rec, err := s.records()
	if err != nil {
		return err
	}
	if s.cfg.Lockdown == nil {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "lockdown is not available on this server")
	}
	id := r.PathValue("id")
	if _, err := rec.Incident(r.Context(), id); err != nil {
		return err
	}
	st, err := s.cfg.Lockdown.Lift(r.Context(), id)
	if err != nil {
		return err
	}
	lasted := s.cfg.Clock.Now().Sub(st.Since)
	in, serr := rec.AddContainment(r.Context(), id, compliance.Containment{By: who(p), Action: actionLift, Target: strings.Join(st.Allow, " "), Allow: st.Allow})
	s.record(r.Context(), p, "incident.lift", "incident:"+id, map[string]any{"allow": st.Allow, "since": st.Since.Format(time.RFC3339),
		"set_by": st.By, "duration_s": int64(lasted.Seconds())})
	if serr != nil {
		return serr
	}
	httpjson.Write(w, http.StatusOK, in)
	return nil
}
