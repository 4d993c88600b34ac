package admin

import (
	"context"
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/httpjson"
	"github.com/gatehouse/gatehouse/internal/secrets"
)

// areaSecrets is the server's own secrets: their status (read by the
// security and auditor roles) and their rotation (security and admin).
const areaSecrets area = "secrets"

// Secrets is what the admin API needs of the server's secrets.
type Secrets interface {
	// Status lists every secret with its age against its cadence, never
	// a value.
	Status(ctx context.Context) ([]secrets.Status, error)
	// Rotate rotates secret name: ENOTFOUND for a name not listed,
	// ECONFLICT for one its provider or kind does not let rotate here.
	Rotate(ctx context.Context, name string) (before, after secrets.Status, err error)
}

// RotateSecretResult is the answer of POST /v1/secrets/{name}/rotate.
type RotateSecretResult struct {
	Before secrets.Status `json:"before"`
	After  secrets.Status `json:"after"`
}

var errNoSecrets = gatehouse.Errorf(gatehouse.ECONFLICT, "this server does not report its secrets")

// secretRoutes serves GET /v1/secrets and POST /v1/secrets/{name}/rotate.
func (s *Server) secretRoutes() {
	s.handle("/v1/secrets", areaSecrets, methods{http.MethodGet: s.listSecrets})
	s.handle("/v1/secrets/{name}/rotate", areaSecrets, methods{http.MethodPost: noBody(s.rotateSecret)})
}

func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if s.cfg.Secrets == nil {
		return errNoSecrets
	}
	list, err := s.cfg.Secrets.Status(r.Context())
	if err != nil {
		return err
	}
	writeList(w, "secrets", list, func(st secrets.Status) secrets.Status { return st })
	return nil
}

// rotateSecret rotates one secret and records secret.rotate with its
// version and age before and after (never a value). It goes on when the
// client hangs up, so that a rotation made is always on record.
func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if s.cfg.Secrets == nil {
		return errNoSecrets
	}
	ctx := context.WithoutCancel(r.Context())
	name := r.PathValue("name")
	before, after, err := s.cfg.Secrets.Rotate(ctx, name)
	if err != nil {
		return err
	}
	details := map[string]any{
		"class": after.Class, "provider": after.Provider,
		"version_before": before.Version, "version_after": after.Version,
		"created_before": before.CreatedAt, "created_after": after.CreatedAt,
	}
	if after.KeyID != "" {
		// The master key: its id (a hash, never the key) and the rows
		// re-sealed from previous keys.
		details["key_id"] = after.KeyID
		details["previous_key_ids"] = after.PreviousKeyIDs
		if before.SealedUnderPrevious != nil && after.SealedUnderPrevious != nil {
			details["sealed_under_previous_before"] = *before.SealedUnderPrevious
			details["sealed_under_previous_after"] = *after.SealedUnderPrevious
		}
	}
	s.record(ctx, p, "secret.rotate", "secret:"+name, details)
	httpjson.Write(w, http.StatusOK, RotateSecretResult{Before: before, After: after})
	return nil
}
