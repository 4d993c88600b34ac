package admin

import (
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/httpjson"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Client is the JSON form of a service client. ClientSecret is set only
// in the response that creates it or rotates its secret.
type Client struct {
	ClientID        string     `json:"client_id"`
	ClientSecret    string     `json:"client_secret,omitempty"`
	Name            string     `json:"name"`
	Scopes          []string   `json:"scopes"`
	Tier            string     `json:"tier,omitempty"`
	Status          string     `json:"status"`
	CreatedAt       time.Time  `json:"created_at"`
	SecretRotatedAt *time.Time `json:"secret_rotated_at,omitempty"`
	RevokedAt       *time.Time `json:"revoked_at,omitempty"`
	ExpiresAt       *time.Time `json:"expires_at,omitempty"`
	CreatedBy       string     `json:"created_by,omitempty"`
	CreatedByRoot   string     `json:"created_by_root,omitempty"`
	LastUsedAt      *time.Time `json:"last_used_at,omitempty"`
	// LockedUntil is set while repeated failed authentications lock the
	// client out from some address, as this replica counts them (POST
	// /v1/clients/ID/unlock ends it).
	LockedUntil *time.Time `json:"locked_until,omitempty"`
}

func clientJSON(c *store.Client) *Client {
	out := &Client{ClientID: c.ID, Name: c.Name, Scopes: c.Scopes, Tier: c.Tier, CreatedAt: c.CreatedAt, Status: "active",
		CreatedBy: c.CreatedBy, CreatedByRoot: c.CreatedByRoot, LastUsedAt: timePtr(c.LastUsedAt)}
	if !c.ExpiresAt.IsZero() {
		t := c.ExpiresAt
		out.ExpiresAt = &t
	}
	if out.Scopes == nil {
		out.Scopes = []string{}
	}
	if !c.SecretRotatedAt.IsZero() {
		t := c.SecretRotatedAt
		out.SecretRotatedAt = &t
	}
	if !c.RevokedAt.IsZero() {
		t := c.RevokedAt
		out.RevokedAt, out.Status = &t, "revoked"
	}
	return out
}

// clientOut is clientJSON with the status "expired" once the client's
// expiry has passed, and its lockout from locked (Clients.LockedUntil).
func (s *Server) clientOut(c *store.Client, locked map[string]time.Time) *Client {
	out := clientJSON(c)
	if out.Status == "active" && !c.ExpiresAt.IsZero() && !s.cfg.Clock.Now().Before(c.ExpiresAt) {
		out.Status = "expired"
	}
	if t, ok := locked[c.ID]; ok {
		out.LockedUntil = &t
	}
	return out
}

// CreateClientRequest is the body of POST /v1/clients.
type CreateClientRequest struct {
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	Tier      string     `json:"tier"`
	ExpiresIn string     `json:"expires_in"` // "90d", "36h"; default never
	ExpiresAt *time.Time `json:"expires_at"`
}

func (s *Server) createClient(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var req CreateClientRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	by, err := s.creator(r.Context(), p)
	if err != nil {
		return err
	}
	now := s.cfg.Clock.Now().UTC()
	n := authn.NewClient{Name: req.Name, Scopes: req.Scopes, Tier: req.Tier, Lineage: by.Lineage}
	if n.ExpiresAt, err = requestedExpiry(req.ExpiresIn, req.ExpiresAt, now, by); err != nil {
		return err
	}
	nk := authn.NewKey{Name: n.Name, Scopes: n.Scopes, Tier: n.Tier, ExpiresAt: n.ExpiresAt}
	if err := nk.Validate(now); err != nil {
		return err
	}
	if err := by.Check(authn.Grant{Scopes: n.Scopes, Tier: n.Tier, HasTier: true, ExpiresAt: n.ExpiresAt, HasLifetime: true}, s.tiers()); err != nil {
		return err
	}
	c, secret, err := s.cfg.Clients.Create(r.Context(), n)
	if err != nil {
		return err
	}
	if err := s.liveLineage(r.Context(), p, authn.Ref(gatehouse.KindClient, c.ID), c.Lineage, func() error {
		_, err := s.cfg.Clients.Revoke(r.Context(), c.ID)
		return err
	}); err != nil {
		return err
	}
	s.record(r.Context(), p, "client.create", "client:"+c.ID, lineageDetails(map[string]any{"name": c.Name, "scopes": c.Scopes, "tier": c.Tier, "expires_at": c.ExpiresAt}, c.Lineage))
	out := clientJSON(c)
	out.ClientSecret = secret
	httpjson.Write(w, http.StatusCreated, out)
	return nil
}

// listClients is GET /v1/clients?status=&name=&limit=&cursor=: one page
// of service clients, oldest first, filtered in the store (see
// listFilter; locked is a client this replica has locked out), and next
// when there may be more.
func (s *Server) listClients(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	f, err := parseListFilter(r, clientStatuses, false)
	if err != nil {
		return err
	}
	after, limit, err := pageQuery(r.URL.Query())
	if err != nil {
		return err
	}
	locked := s.cfg.Clients.LockedUntil()
	q := store.ClientQuery{After: after, Limit: limit, Name: f.name, Now: s.cfg.Clock.Now()}
	if f.status == "locked" {
		// The lockouts are this replica's memory, bounded by its
		// failure table: the store reads just those clients.
		q.IDs = make([]string, 0, len(locked))
		for id := range locked {
			q.IDs = append(q.IDs, id)
		}
	} else {
		q.Status = store.KeyStatus(f.status)
	}
	page, err := s.cfg.Clients.Page(r.Context(), q)
	if err != nil {
		return err
	}
	res := ClientList{Clients: make([]*Client, 0, len(page))}
	for _, c := range page {
		c.LastUsedAt = s.lastUsed(c.ID, c.LastUsedAt)
		res.Clients = append(res.Clients, s.clientOut(c, locked))
	}
	if len(page) == limit {
		last := page[len(page)-1]
		res.Next = encodeCursor(store.PageCursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	httpjson.Write(w, http.StatusOK, res)
	return nil
}

// ClientList is one page of GET /v1/clients.
type ClientList struct {
	Clients []*Client `json:"clients"`
	Next    string    `json:"next,omitempty"` // the cursor of the next page
}

func (s *Server) getClient(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	c, err := s.cfg.Clients.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	c.LastUsedAt = s.lastUsed(c.ID, c.LastUsedAt)
	httpjson.Write(w, http.StatusOK, s.clientOut(c, s.cfg.Clients.LockedUntil()))
	return nil
}

func (s *Server) revokeClient(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	c, err := s.cfg.Clients.Revoke(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	s.record(r.Context(), p, "client.revoke", "client:"+c.ID, nil)
	httpjson.Write(w, http.StatusOK, clientJSON(c))
	return nil
}

func (s *Server) rotateClient(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	// Whoever receives the new secret holds the client: the caller must be
	// able to create it.
	by, err := s.creator(r.Context(), p)
	if err != nil {
		return err
	}
	cur, err := s.cfg.Clients.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := by.Check(authn.Grant{Scopes: cur.Scopes, Tier: cur.Tier, HasTier: true, ExpiresAt: cur.ExpiresAt, HasLifetime: true}, s.tiers()); err != nil {
		return err
	}
	c, secret, err := s.cfg.Clients.RotateSecret(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	s.record(r.Context(), p, "client.rotate_secret", "client:"+c.ID, nil)
	out := clientJSON(c)
	out.ClientSecret = secret
	httpjson.Write(w, http.StatusOK, out)
	return nil
}

// unlockClient lifts the client's lockouts (from every address) after
// repeated failed authentications.
func (s *Server) unlockClient(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	c, n, err := s.cfg.Clients.Unlock(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	s.record(r.Context(), p, "client.unlock", "client:"+c.ID, map[string]any{"lockouts_lifted": n})
	httpjson.Write(w, http.StatusOK, clientJSON(c))
	return nil
}

func (s *Server) listSigningKeys(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	httpjson.Write(w, http.StatusOK, map[string]any{"keys": s.cfg.Tokens.SigningKeys()})
	return nil
}

func (s *Server) rotateSigningKey(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := s.cfg.Tokens.Rotate(r.Context(), "on demand by "+p.ID); err != nil {
		return err
	}
	keys := s.cfg.Tokens.SigningKeys()
	s.record(r.Context(), p, "signing_key.rotate", "signing_key:"+keys[len(keys)-1].KID, nil)
	httpjson.Write(w, http.StatusOK, map[string]any{"keys": keys})
	return nil
}
