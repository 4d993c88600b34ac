package admin

import (
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpjson"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Key is the JSON form of an API key. Key (the secret) is set only in the
// response that creates or rotates it.
type Key struct {
	ID          string     `json:"id"`
	Key         string     `json:"key,omitempty"`
	Name        string     `json:"name"`
	Scopes      []string   `json:"scopes"`
	Tier        string     `json:"tier,omitempty"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	RotatedTo   string     `json:"rotated_to,omitempty"`
	RotatedFrom string     `json:"rotated_from,omitempty"`
	// CreatedBy is the credential that created this one ("kind:id"), and
	// CreatedByRoot the person or bootstrap token behind it.
	CreatedBy     string     `json:"created_by,omitempty"`
	CreatedByRoot string     `json:"created_by_root,omitempty"`
	LastUsedAt    *time.Time `json:"last_used_at,omitempty"`
	Previous      *Key       `json:"previous,omitempty"`
}

func keyJSON(k *store.Key, now time.Time) *Key {
	out := &Key{
		ID: k.ID, Name: k.Name, Scopes: k.Scopes, Tier: k.Tier,
		CreatedAt: k.CreatedAt, RotatedTo: k.RotatedTo, RotatedFrom: k.RotatedFrom,
		CreatedBy: k.CreatedBy, CreatedByRoot: k.CreatedByRoot, LastUsedAt: timePtr(k.LastUsedAt),
		Status: "active",
	}
	if out.Scopes == nil {
		out.Scopes = []string{}
	}
	if !k.ExpiresAt.IsZero() {
		t := k.ExpiresAt
		out.ExpiresAt = &t
		if !now.Before(t) {
			out.Status = "expired"
		} else if k.RotatedTo != "" {
			out.Status = "rotating"
		}
	}
	if !k.RevokedAt.IsZero() {
		t := k.RevokedAt
		out.RevokedAt, out.Status = &t, "revoked"
	}
	return out
}

// CreateKeyRequest is the body of POST /v1/keys.
type CreateKeyRequest struct {
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	Tier      string     `json:"tier"`
	ExpiresIn string     `json:"expires_in"` // "90d", "36h"
	ExpiresAt *time.Time `json:"expires_at"`
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var req CreateKeyRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	now := s.cfg.Clock.Now().UTC()
	by, err := s.creator(r.Context(), p)
	if err != nil {
		return err
	}
	n := authn.NewKey{Name: req.Name, Scopes: req.Scopes, Tier: req.Tier, Lineage: by.Lineage}
	if n.ExpiresAt, err = requestedExpiry(req.ExpiresIn, req.ExpiresAt, now, by); err != nil {
		return err
	}
	if err := n.Validate(now); err != nil {
		return err
	}
	if err := by.Check(authn.Grant{Scopes: n.Scopes, Tier: n.Tier, HasTier: true, ExpiresAt: n.ExpiresAt, HasLifetime: true}, s.tiers()); err != nil {
		return err
	}
	k, token, err := s.cfg.Keys.Create(r.Context(), n)
	if err != nil {
		return err
	}
	if err := s.liveLineage(r.Context(), p, authn.Ref(gatehouse.KindAPIKey, k.ID), k.Lineage, func() error {
		_, err := s.cfg.Keys.Revoke(r.Context(), k.ID)
		return err
	}); err != nil {
		return err
	}
	s.record(r.Context(), p, "key.create", "key:"+k.ID, lineageDetails(map[string]any{"name": k.Name, "scopes": k.Scopes, "tier": k.Tier, "expires_at": k.ExpiresAt}, k.Lineage))
	out := keyJSON(k, now)
	out.Key = token
	httpjson.Write(w, http.StatusCreated, out)
	return nil
}

// listKeys is GET /v1/keys?status=&name=&limit=&cursor=: one page of
// keys, oldest first, and next when there may be more.
func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	q := r.URL.Query()
	after, limit, err := pageQuery(q)
	if err != nil {
		return err
	}
	now := s.cfg.Clock.Now()
	kq := store.KeyQuery{After: after, Limit: limit, Name: q.Get("name"), Now: now}
	switch st := store.KeyStatus(q.Get("status")); st {
	case "", store.KeyActive, store.KeyExpired, store.KeyRevoked:
		kq.Status = st
	default:
		return gatehouse.Errorf(gatehouse.EINVALID, "status: must be active, expired or revoked")
	}
	if len(kq.Name) > 200 {
		return gatehouse.Errorf(gatehouse.EINVALID, "name: at most 200 characters")
	}
	keys, err := s.cfg.Keys.Page(r.Context(), kq)
	if err != nil {
		return err
	}
	out := make([]*Key, 0, len(keys))
	for _, k := range keys {
		k.LastUsedAt = s.lastUsed(k.ID, k.LastUsedAt)
		out = append(out, keyJSON(k, now))
	}
	res := KeyList{Keys: out}
	if len(keys) == limit {
		last := keys[len(keys)-1]
		res.Next = encodeCursor(store.PageCursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	httpjson.Write(w, http.StatusOK, res)
	return nil
}

// KeyList is one page of GET /v1/keys.
type KeyList struct {
	Keys []*Key `json:"keys"`
	Next string `json:"next,omitempty"` // the cursor of the next page
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	k, err := s.cfg.Keys.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	k.LastUsedAt = s.lastUsed(k.ID, k.LastUsedAt)
	httpjson.Write(w, http.StatusOK, keyJSON(k, s.cfg.Clock.Now()))
	return nil
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	k, err := s.cfg.Keys.Revoke(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	s.record(r.Context(), p, "key.revoke", "key:"+k.ID, nil)
	if err := s.revokeDescendants(r.Context(), p, authn.Ref(gatehouse.KindAPIKey, k.ID)); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, keyJSON(k, s.cfg.Clock.Now()))
	return nil
}

// RotateKeyRequest is the optional body of POST /v1/keys/{id}/rotate.
type RotateKeyRequest struct {
	Grace string `json:"grace"` // default 24h
}

func (s *Server) rotateKey(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var req RotateKeyRequest
	if err := decodeOptional(r, &req); err != nil {
		return err
	}
	grace := authn.DefaultRotationGrace
	if req.Grace != "" {
		d, err := config.ParseDuration(req.Grace)
		if err != nil || d < 0 {
			return gatehouse.Errorf(gatehouse.EINVALID, "grace: %q is not a duration (examples: 24h, 7d, 0s)", req.Grace)
		}
		grace = d
	}
	by, err := s.creator(r.Context(), p)
	if err != nil {
		return err
	}
	old, next, token, err := s.cfg.Keys.RotateBy(r.Context(), r.PathValue("id"), grace, by, s.tiers())
	if err != nil {
		return err
	}
	if err := s.liveLineage(r.Context(), p, authn.Ref(gatehouse.KindAPIKey, next.ID), next.Lineage, func() error {
		_, err := s.cfg.Keys.Revoke(r.Context(), next.ID)
		return err
	}); err != nil {
		return err
	}
	s.record(r.Context(), p, "key.rotate", "key:"+old.ID, lineageDetails(map[string]any{"new_key_id": next.ID, "grace": grace.String()}, next.Lineage))
	now := s.cfg.Clock.Now()
	out := keyJSON(next, now)
	out.Key = token
	out.Previous = keyJSON(old, now)
	httpjson.Write(w, http.StatusCreated, out)
	return nil
}

// requestedExpiry reads a create request's expiry: expires_in (a duration
// such as 90d) or expires_at, not both; neither means never, or when the
// creator's own credential expires. The ceiling check comes later.
func requestedExpiry(in string, at *time.Time, now time.Time, by *authn.Creator) (time.Time, error) {
	switch {
	case in != "" && at != nil:
		return time.Time{}, gatehouse.Errorf(gatehouse.EINVALID, "expires_in and expires_at: give one, not both")
	case in != "":
		d, err := config.ParseDuration(in)
		if err != nil || d <= 0 {
			return time.Time{}, gatehouse.Errorf(gatehouse.EINVALID, "expires_in: %q is not a positive duration (examples: 90d, 36h)", in)
		}
		return now.Add(d), nil
	case at != nil:
		return at.UTC(), nil
	}
	return by.CapExpiry(time.Time{}), nil
}
