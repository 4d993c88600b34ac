package authn

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse"
)

// ExternalIssuer is an identity provider whose tokens the gateway trusts.
type ExternalIssuer struct {
	Issuer       string   `yaml:"issuer"`
	JWKSURL      string   `yaml:"jwks_url"`
	Audiences    []string `yaml:"audiences"`
	ScopeClaim   string   `yaml:"scope_claim"`   // default "scope"
	SubjectClaim string   `yaml:"subject_claim"` // default "sub"
}

// Validate checks an external issuer's config, naming the field.
func (e ExternalIssuer) Validate() error {
	if e.Issuer == "" {
		return fmt.Errorf("issuer: is required")
	}
	u, err := url.Parse(e.JWKSURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("jwks_url: must be an http(s) URL, not %q", e.JWKSURL)
	}
	if len(e.Audiences) == 0 {
		return fmt.Errorf("audiences: at least one audience is required")
	}
	return nil
}

// Key-set refresh timing: a periodic refresh, and an unknown kid triggers
// one at most this often. The request path never fetches.
const (
	jwksRefreshEvery   = 10 * time.Minute
	jwksUnknownKIDWait = 30 * time.Second
)

type externalIssuer struct {
	cfg     ExternalIssuer
	log     *slog.Logger
	clock   gatehouse.Clock
	client  *http.Client
	keys    atomic.Pointer[jose.JSONWebKeySet]
	kick    chan struct{}
	fetched atomic.Int64 // unix nanos of the last fetch attempt
}

func newExternalIssuer(cfg ExternalIssuer, log *slog.Logger, clock gatehouse.Clock) (*externalIssuer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("external issuer %s: %w", cfg.Issuer, err)
	}
	if cfg.ScopeClaim == "" {
		cfg.ScopeClaim = "scope"
	}
	if cfg.SubjectClaim == "" {
		cfg.SubjectClaim = "sub"
	}
	return &externalIssuer{cfg: cfg, log: log.With("issuer", cfg.Issuer), clock: clock,
		client: &http.Client{Timeout: 10 * time.Second}, kick: make(chan struct{}, 1)}, nil
}

// run keeps the key set fresh: at start (retrying with backoff until it
// succeeds), periodically, and when verification met an unknown kid.
func (x *externalIssuer) run(ctx context.Context) {
	backoff := time.Second
	for {
		wait := jwksRefreshEvery
		if err := x.fetch(ctx); err != nil {
			x.log.Warn("fetch external JWKS failed", "url", x.cfg.JWKSURL, "err", err)
			wait, backoff = backoff, min(backoff*2, time.Minute)
		} else {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-x.kick:
		}
	}
}

func (x *externalIssuer) fetch(ctx context.Context) error {
	x.fetched.Store(x.clock.Now().UnixNano())
	req, err := http.NewRequestWithContext(ctx, "GET", x.cfg.JWKSURL, nil)
	if err != nil {
		return err
	}
	res, err := x.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", res.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&set); err != nil {
		return fmt.Errorf("decode JWKS: %w", err)
	}
	x.keys.Store(&set)
	x.log.Info("external JWKS loaded", "keys", len(set.Keys))
	return nil
}

// refreshSoon asks for a refresh unless one was tried in the last 30 s.
func (x *externalIssuer) refreshSoon() {
	if x.clock.Now().UnixNano()-x.fetched.Load() < int64(jwksUnknownKIDWait) {
		return
	}
	select {
	case x.kick <- struct{}{}:
	default:
	}
}

func (x *externalIssuer) verify(tok *jwt.JSONWebToken, kid string, now time.Time) (*gatehouse.Principal, time.Time, error) {
	var key *jose.JSONWebKey
	if set := x.keys.Load(); set != nil {
		if ks := set.Key(kid); len(ks) > 0 {
			key = &ks[0]
		}
	}
	if key == nil {
		x.refreshSoon()
		return nil, time.Time{}, errUnknownKID
	}
	if key.Algorithm != "" && key.Algorithm != tok.Headers[0].Algorithm {
		return nil, time.Time{}, errBadToken
	}
	var std jwt.Claims
	var all map[string]any
	if err := tok.Claims(key.Key, &std, &all); err != nil {
		return nil, time.Time{}, errBadSignature
	}
	if err := validateClaims(std, jwt.Expected{Issuer: x.cfg.Issuer, AnyAudience: x.cfg.Audiences, Time: now}); err != nil {
		return nil, time.Time{}, err
	}
	sub, _ := all[x.cfg.SubjectClaim].(string)
	if sub == "" {
		return nil, time.Time{}, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid token: no %s claim", x.cfg.SubjectClaim)
	}
	var scopes []string
	switch v := all[x.cfg.ScopeClaim].(type) {
	case string:
		scopes = strings.Fields(v)
	case []any:
		for _, s := range v {
			if s, ok := s.(string); ok {
				scopes = append(scopes, s)
			}
		}
	}
	p := gatehouse.NewPrincipal(x.cfg.Issuer+"#"+sub, gatehouse.KindExternal, sub, scopes, "")
	return p, std.Expiry.Time(), nil
}
