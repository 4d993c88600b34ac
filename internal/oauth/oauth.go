// Package oauth serves Gatehouse's authorization-server endpoints on the
// public listener: the OAuth 2.0 client-credentials token endpoint
// (RFC 6749 §4.4), the JSON Web Key Set and the OpenID discovery document.
package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/httpjson"
)

// Paths served.
const (
	TokenPath     = "/oauth/token" // #nosec G101 -- an endpoint path, not a credential
	JWKSPath      = "/.well-known/jwks.json"
	DiscoveryPath = "/.well-known/openid-configuration"
)

// Config configures the endpoints.
type Config struct {
	Clients *authn.Clients
	Tokens  *authn.Tokens
	Auditor gatehouse.Auditor // optional
	Logger  *slog.Logger
	Clock   gatehouse.Clock
}

// Server serves the endpoints. It is safe for concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger
}

// New returns the endpoint handlers.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = gatehouse.SystemClock{}
	}
	return &Server{cfg: cfg, log: cfg.Logger.WithGroup("oauth")}
}

// Endpoints maps each path to its handler, for the gateway.
func (s *Server) Endpoints() map[string]http.Handler {
	return map[string]http.Handler{
		TokenPath:     http.HandlerFunc(s.token),
		JWKSPath:      http.HandlerFunc(s.jwks),
		DiscoveryPath: http.HandlerFunc(s.discovery),
	}
}

// TokenResponse is a successful token response (RFC 6749 §5.1).
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

// ErrorResponse is a token error (RFC 6749 §5.2).
type ErrorResponse struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

type oauthError struct {
	status     int
	code       string
	desc       string
	retryAfter time.Duration
}

func invalidRequest(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_request", desc: desc}
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	// A token request is short (one store read, one signature) and runs to
	// its end whatever the client does: one that hangs up meanwhile must
	// neither fail a store read into a logged ERROR and a 500 nor lose the
	// request's audit event (recorded with the true outcome).
	r = r.WithContext(context.WithoutCancel(r.Context()))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	resp, clientID, e := s.issue(r)
	if e != nil {
		if e.code == "invalid_client" {
			w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse", charset="UTF-8"`)
		}
		if e.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "POST")
		}
		if e.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(e.retryAfter.Seconds())))
		}
		s.audit(r.Context(), clientID, gatehouse.OutcomeFailure, e.code+": "+e.desc, nil)
		writeJSON(w, e.status, ErrorResponse{Error: e.code, Description: e.desc})
		return
	}
	s.audit(r.Context(), clientID, gatehouse.OutcomeSuccess, "", map[string]any{"scope": resp.Scope, "expires_in": resp.ExpiresIn})
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) issue(r *http.Request) (*TokenResponse, string, *oauthError) {
	if r.Method != http.MethodPost {
		return nil, "", &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request", desc: "use POST"}
	}
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(ct) != "application/x-www-form-urlencoded" {
		return nil, "", invalidRequest("Content-Type must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return nil, "", invalidRequest("malformed form body")
	}
	form := r.PostForm
	for k, v := range form {
		if len(v) > 1 {
			return nil, "", invalidRequest("parameter " + k + " is repeated")
		}
	}
	grant := form.Get("grant_type")
	if grant == "" {
		return nil, "", invalidRequest("grant_type is required")
	}
	if grant != "client_credentials" {
		return nil, "", &oauthError{status: http.StatusBadRequest, code: "unsupported_grant_type", desc: "only client_credentials is supported"}
	}
	id, secret, e := clientCredentials(r, form)
	if e != nil {
		return nil, id, e
	}
	// Failures lock the client only from the caller's address (and the
	// address, after many): the client id is not secret.
	p, err := s.cfg.Clients.AuthenticateFrom(r.Context(), id, secret, gateway.SourceIPFromContext(r.Context()))
	if errors.Is(err, authn.ErrClientLocked) {
		var locked interface{ RetryAfter() time.Duration }
		errors.As(err, &locked) // the lockout's own duration, not a copy of it
		return nil, id, &oauthError{status: http.StatusTooManyRequests, code: "invalid_client", desc: gatehouse.ErrorMessage(err), retryAfter: locked.RetryAfter()}
	}
	if err != nil {
		if gatehouse.ErrorCode(err) != gatehouse.EUNAUTHORIZED {
			s.log.ErrorContext(r.Context(), "client authentication failed", "client_id", id, "err", err)
			return nil, id, &oauthError{status: http.StatusInternalServerError, code: "server_error", desc: "try again later"}
		}
		gateway.CountAuthFailure(r.Context())
		return nil, id, &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: "client authentication failed"}
	}
	scopes := p.Scopes
	if req := form.Get("scope"); req != "" {
		scopes = strings.Fields(req)
		for _, sc := range scopes {
			if !slices.Contains(p.Scopes, sc) {
				return nil, id, &oauthError{status: http.StatusBadRequest, code: "invalid_scope", desc: "scope " + sc + " is not granted to this client"}
			}
		}
	}
	// A token ends no later than its client (a client created by an
	// expiring credential expires with it).
	cl, err := s.cfg.Clients.Get(r.Context(), id)
	if err != nil {
		s.log.ErrorContext(r.Context(), "client lookup failed", "client_id", id, "err", err)
		return nil, id, &oauthError{status: http.StatusInternalServerError, code: "server_error", desc: "try again later"}
	}
	tok, _, err := s.cfg.Tokens.IssueUntil(p, scopes, cl.ExpiresAt)
	if err != nil {
		s.log.ErrorContext(r.Context(), "token issuance failed", "client_id", id, "err", err)
		return nil, id, &oauthError{status: http.StatusInternalServerError, code: "server_error", desc: "try again later"}
	}
	expiresIn := int(s.cfg.Tokens.TTL().Seconds())
	if left := cl.ExpiresAt.Sub(s.cfg.Clock.Now()); !cl.ExpiresAt.IsZero() && left < s.cfg.Tokens.TTL() {
		expiresIn = int(left.Seconds())
	}
	return &TokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: expiresIn, Scope: strings.Join(scopes, " ")}, id, nil
}

// clientCredentials reads the client's id and secret from HTTP Basic
// (form-urlencoded inside, RFC 6749 §2.3.1) or from the form. Using both
// is an error.
func clientCredentials(r *http.Request, form url.Values) (string, string, *oauthError) {
	formID, formSecret := form.Get("client_id"), form.Get("client_secret")
	auth := r.Header.Get("Authorization")
	if auth == "" {
		if formID == "" || formSecret == "" {
			return formID, "", &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: "client authentication required: HTTP Basic or client_id and client_secret"}
		}
		return formID, formSecret, nil
	}
	if formSecret != "" {
		return formID, "", invalidRequest("use one client authentication method, not both")
	}
	scheme, payload, _ := strings.Cut(auth, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: "unsupported authentication scheme: use Basic"}
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(payload))
	if err != nil {
		return "", "", &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: "malformed Basic credentials"}
	}
	u, p, ok := strings.Cut(string(raw), ":")
	id, err1 := url.QueryUnescape(u)
	secret, err2 := url.QueryUnescape(p)
	if !ok || err1 != nil || err2 != nil {
		return "", "", &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: "malformed Basic credentials"}
	}
	if formID != "" && formID != id {
		return id, "", invalidRequest("client_id in the form differs from the Basic credentials")
	}
	return id, secret, nil
}

func (s *Server) audit(ctx context.Context, clientID, outcome, reason string, details map[string]any) {
	if s.cfg.Auditor == nil {
		return
	}
	e := gatehouse.Event{
		Time: s.cfg.Clock.Now().UTC(), Type: "oauth.token", Action: "issue",
		Actor:    gatehouse.Actor{Kind: string(gatehouse.KindClient), ID: clientID},
		Resource: "token", Outcome: outcome, Reason: reason, Details: details,
		Request: &gatehouse.RequestInfo{RequestID: httpjson.RequestIDFromContext(ctx)},
	}
	if err := s.cfg.Auditor.Record(ctx, e); err != nil {
		s.log.ErrorContext(ctx, "audit record failed", "err", err)
	}
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpjson.WriteError(w, r, s.log, gatehouse.Errorf(gatehouse.EMETHOD, "use GET"))
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Write(s.cfg.Tokens.JWKS())
}

// Discovery is the OpenID Provider metadata Gatehouse publishes.
type Discovery struct {
	Issuer                   string   `json:"issuer"`
	JWKSURI                  string   `json:"jwks_uri"`
	TokenEndpoint            string   `json:"token_endpoint"`
	GrantTypes               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	ResponseTypes            []string `json:"response_types_supported"`
	SubjectTypes             []string `json:"subject_types_supported"`
	IDTokenSigningAlgs       []string `json:"id_token_signing_alg_values_supported"`
	AccessTokenSigningAlgs   []string `json:"access_token_signing_alg_values_supported"`
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpjson.WriteError(w, r, s.log, gatehouse.Errorf(gatehouse.EMETHOD, "use GET"))
		return
	}
	iss := strings.TrimSuffix(s.cfg.Tokens.Issuer(), "/")
	algs := []string{s.cfg.Tokens.Alg()}
	w.Header().Set("Cache-Control", "public, max-age=300")
	httpjson.Write(w, http.StatusOK, Discovery{
		Issuer: s.cfg.Tokens.Issuer(), JWKSURI: iss + JWKSPath, TokenEndpoint: iss + TokenPath,
		GrantTypes:               []string{"client_credentials"},
		TokenEndpointAuthMethods: []string{"client_secret_basic", "client_secret_post"},
		ResponseTypes:            []string{"token"},
		SubjectTypes:             []string{"public"},
		IDTokenSigningAlgs:       algs,
		AccessTokenSigningAlgs:   algs,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}
