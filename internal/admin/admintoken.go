package admin

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/httpjson"
)

func (s *Server) adminTokenRoutes() {
	if s.cfg.AdminToken == nil {
		return
	}
	s.handle("/v1/admin-token", areaSettings, methods{http.MethodGet: s.adminTokenStatus})
	s.handle("/v1/admin-token/disable", areaSettings, methods{http.MethodPost: noBody(s.disableAdminToken)})
}

// adminTokenStatus is GET /v1/admin-token: {"status": "enabled"|"disabled"}.
func (s *Server) adminTokenStatus(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	st, err := s.cfg.AdminToken.Status(r.Context())
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, map[string]string{"status": st})
	return nil
}

// disableAdminToken is POST /v1/admin-token/disable: the bootstrap admin
// token stops working on every replica at once. Refused (409) unless an
// enabled admin user exists; `gatehouse admin-token rotate` (offline, with
// the data dir) makes a new one.
func (s *Server) disableAdminToken(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := s.cfg.AdminToken.Disable(r.Context()); err != nil {
		return err
	}
	s.record(r.Context(), p, "admin_token.disable", "admin_token", nil)
	httpjson.Write(w, http.StatusOK, map[string]string{"status": "disabled"})
	return nil
}
