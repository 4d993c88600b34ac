package admin

import (
	"context"
	"io"
	"mime"
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/backup"
	"github.com/gatehouse/gatehouse/internal/httpjson"
)

// areaBackups is backups: the administrator's alone (a backup holds every
// secret of the deployment).
const areaBackups area = "backups"

// Backups is what the admin API needs of the backup service.
type Backups interface {
	Create(ctx context.Context, by backup.By) (backup.Info, error)
	List(ctx context.Context) ([]backup.Info, error)
	Verify(ctx context.Context, by backup.By, id string) (backup.VerifyResult, error)
	VerifyFile(ctx context.Context, by backup.By, r io.Reader) (backup.VerifyResult, error)
	Prune(ctx context.Context, by backup.By) ([]backup.Info, error)
}

var errNoBackups = gatehouse.Errorf(gatehouse.ECONFLICT, "backups are not configured on this server: set backup.dir or backup.url (docs/recovery.md)")

// backupRoutes serves /v1/backups: list (GET), create (POST), verify a
// stored backup (POST /v1/backups/{id}/verify) or an uploaded one (POST
// /v1/backups/verify, application/octet-stream) and prune (POST
// /v1/backups/prune). Each operation records its own audit event.
func (s *Server) backupRoutes() {
	s.handle("/v1/backups", areaBackups, methods{http.MethodGet: s.listBackups, http.MethodPost: noBody(s.createBackup)})
	s.handle("/v1/backups/{id}/verify", areaBackups, methods{http.MethodPost: noBody(s.verifyBackup)})
	s.handle("/v1/backups/verify", areaBackups, methods{http.MethodPost: s.verifyUpload})
	s.handle("/v1/backups/prune", areaBackups, methods{http.MethodPost: noBody(s.pruneBackups)})
}

func (s *Server) listBackups(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if s.cfg.Backups == nil {
		return errNoBackups
	}
	list, err := s.cfg.Backups.List(r.Context())
	if err != nil {
		return err
	}
	writeList(w, "backups", list, func(i backup.Info) backup.Info { return i })
	return nil
}

// Long operations go on when the client hangs up: they end recorded,
// whatever the client does.

func (s *Server) createBackup(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if s.cfg.Backups == nil {
		return errNoBackups
	}
	info, err := s.cfg.Backups.Create(context.WithoutCancel(r.Context()), s.by(r.Context(), p))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusCreated, info)
	return nil
}

func (s *Server) verifyBackup(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if s.cfg.Backups == nil {
		return errNoBackups
	}
	res, err := s.cfg.Backups.Verify(context.WithoutCancel(r.Context()), s.by(r.Context(), p), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, res)
	return nil
}

func (s *Server) verifyUpload(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if s.cfg.Backups == nil {
		return errNoBackups
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/octet-stream" {
		return gatehouse.Errorf(gatehouse.EUNSUPPORTED, "send the backup file as Content-Type: application/octet-stream")
	}
	res, err := s.cfg.Backups.VerifyFile(r.Context(), s.by(r.Context(), p), r.Body)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, res)
	return nil
}

func (s *Server) pruneBackups(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if s.cfg.Backups == nil {
		return errNoBackups
	}
	deleted, err := s.cfg.Backups.Prune(context.WithoutCancel(r.Context()), s.by(r.Context(), p))
	if err != nil {
		return err
	}
	writeList(w, "deleted", deleted, func(i backup.Info) backup.Info { return i })
	return nil
}

// by is who asks, for the backup service's audit events.
func (s *Server) by(ctx context.Context, p *gatehouse.Principal) backup.By {
	return backup.By{Actor: gatehouse.Actor{Kind: string(p.Kind), ID: p.ID}, Request: s.requestInfo(ctx)}
}
