package admin

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/httpjson"
)

// queryAudit is GET /v1/audit?type=&actor=&since=&until=&cursor=&limit=.
func (s *Server) queryAudit(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	q := r.URL.Query()
	f := audit.Filter{Type: q.Get("type"), Actor: q.Get("actor")}
	// A misspelt type would match nothing and look like an empty log.
	if err := audit.CheckTypeFilter(f.Type); err != nil {
		return gatehouse.Errorf(gatehouse.EINVALID, "type: %v", err)
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return gatehouse.Errorf(gatehouse.EINVALID, "%s: must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z", name)
			}
			*dst = t
		}
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return gatehouse.Errorf(gatehouse.EINVALID, "limit: must be 1 to 1000")
		}
		limit = n
	}
	page, err := s.cfg.Audit.Query(r.Context(), f, q.Get("cursor"), limit)
	if err != nil {
		return err
	}
	if page.Entries == nil {
		page.Entries = []audit.Entry{}
	}
	httpjson.Write(w, http.StatusOK, page)
	return nil
}

// auditCheckpoint is GET /v1/audit/checkpoint: the latest signed
// checkpoint, as a signed note (text/plain).
func (s *Server) auditCheckpoint(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	cp, err := s.cfg.Audit.Sync(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(cp)
	return nil
}

// AuditKeys is the answer of GET /v1/audit/keys.
type AuditKeys struct {
	Keys []audit.KeyEpoch `json:"keys"`
}

// auditKeys is GET /v1/audit/keys: the log's checkpoint verifier keys,
// oldest first, each with the tree size of the hand-over checkpoint that
// introduced it (what `gatehouse audit verify` follows).
func (s *Server) auditKeys(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	chain, err := s.cfg.Audit.KeyChain(r.Context())
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, AuditKeys{Keys: chain})
	return nil
}

// auditProof is GET /v1/audit/proof?index=N: an inclusion proof of entry N
// against the latest checkpoint.
func (s *Server) auditProof(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	n, err := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	if err != nil {
		return gatehouse.Errorf(gatehouse.EINVALID, "index: must be a non-negative integer")
	}
	proof, err := s.cfg.Audit.Proof(r.Context(), n)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, proof)
	return nil
}
