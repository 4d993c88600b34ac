// Package vault reads and writes Gatehouse's secrets in HashiCorp Vault
// (or OpenBao, which speaks the same API) through the official client,
// github.com/hashicorp/vault/api: KV version 2 at Mount/data/Path/<name>,
// logged in with a token, AppRole (the secret-id, optionally
// response-wrapped, read from its file at every login) or Kubernetes
// auth, in a namespace when one is set. The token is renewed by the
// client's LifetimeWatcher and, when renewal ends or Vault answers 403, a
// new login is made. The token never reaches a log or an error.
package vault

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"

	"github.com/gatehouse/gatehouse/internal/secrets"
)

// Config configures Open. Address and an auth method are required.
type Config struct {
	Address   string
	Namespace string
	Mount     string // KV v2 mount, default "secret"
	Path      string // prefix of Gatehouse's secrets, default "gatehouse"
	// Auth is token, approle or kubernetes.
	Auth string
	// Token, or TokenFile re-read at every login (a Vault Agent sink),
	// for token auth; else VAULT_TOKEN through Getenv.
	Token     string
	TokenFile string
	// RoleID and SecretIDFile for AppRole; SecretIDWrapped when the file
	// holds a response-wrapping token for the secret-id.
	RoleID          string
	SecretIDFile    string
	SecretIDWrapped bool
	// Role and KubernetesTokenFile for Kubernetes auth.
	Role                string
	KubernetesTokenFile string
	// AuthMount is where the auth method is mounted (default approle or
	// kubernetes).
	AuthMount string
	CAFile    string
	// HTTPClient, if set, carries the requests (tests).
	HTTPClient *http.Client
	Getenv     func(string) string
	Logger     *slog.Logger
}

// Provider is a secrets.Writer on Vault KV v2. It is safe for concurrent
// use; Close stops the token's renewal.
type Provider struct {
	cfg    Config
	log    *slog.Logger
	client *api.Client
	kv     *api.KVv2

	mu      sync.Mutex // serializes logins
	login   *api.Secret
	loginAt time.Time
	stop    context.CancelFunc
	done    chan struct{}
	// relogged tells the renewal loop that Relogin replaced the token:
	// it stops watching the old one and watches the new.
	relogged chan struct{}
}

var (
	_ secrets.Writer    = (*Provider)(nil)
	_ secrets.Versioner = (*Provider)(nil)
)

// ErrDenied is returned when Vault refuses a request (403) even after a
// new login: the token's policy does not allow it.
var ErrDenied = errors.New("vault denied the request (403 permission denied): the token's policy does not allow it, or the login is no longer valid")

// Open logs in and starts renewing the token in the background.
func Open(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.Mount == "" {
		cfg.Mount = "secret"
	}
	if cfg.Path == "" {
		cfg.Path = "gatehouse"
	}
	if cfg.Getenv == nil {
		cfg.Getenv = func(string) string { return "" }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	vc := api.DefaultConfig()
	if vc.Error != nil {
		return nil, fmt.Errorf("vault client: %w", vc.Error)
	}
	vc.Address = cfg.Address
	vc.MaxRetries = 2
	if cfg.HTTPClient != nil {
		vc.HttpClient = cfg.HTTPClient
	}
	if cfg.CAFile != "" {
		if err := vc.ConfigureTLS(&api.TLSConfig{CACert: cfg.CAFile}); err != nil {
			return nil, fmt.Errorf("vault ca_file: %w", err)
		}
	}
	client, err := api.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	// The client reads VAULT_TOKEN and VAULT_NAMESPACE from the process
	// environment on its own; only what the config says counts.
	client.ClearToken()
	client.ClearNamespace()
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	p := &Provider{cfg: cfg, log: cfg.Logger.WithGroup("vault"), client: client, kv: client.KVv2(cfg.Mount), done: make(chan struct{}), relogged: make(chan struct{}, 1)}
	if err := p.relogin(ctx, ""); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	go p.renew(rctx)
	return p, nil
}

// Close stops renewing the token.
func (p *Provider) Close() {
	if p.stop != nil {
		p.stop()
		<-p.done
		p.stop = nil
	}
}

// Name implements secrets.Provider.
func (*Provider) Name() string { return "vault" }

func (p *Provider) authMethod() (api.AuthMethod, error) {
	switch p.cfg.Auth {
	case "approle":
		var opts []approle.LoginOption
		if p.cfg.AuthMount != "" {
			opts = append(opts, approle.WithMountPath(p.cfg.AuthMount))
		}
		if p.cfg.SecretIDWrapped {
			opts = append(opts, approle.WithWrappingToken())
		}
		// Read from the file at every login: an orchestrator may replace
		// it (a wrapped secret-id is single-use).
		return approle.NewAppRoleAuth(p.cfg.RoleID, &approle.SecretID{FromFile: p.cfg.SecretIDFile}, opts...)
	case "kubernetes":
		opts := []kubernetes.LoginOption{kubernetes.WithServiceAccountTokenPath(p.cfg.KubernetesTokenFile)}
		if p.cfg.AuthMount != "" {
			opts = append(opts, kubernetes.WithMountPath(p.cfg.AuthMount))
		}
		// Made anew for each login, so a rotated (projected) service
		// account token is read again.
		return kubernetes.NewKubernetesAuth(p.cfg.Role, opts...)
	}
	return nil, nil
}

// relogin logs in again unless another goroutine already did since
// failedToken was in use ("" to log in regardless).
func (p *Provider) relogin(ctx context.Context, failedToken string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if failedToken != "" && p.client.Token() != failedToken {
		return nil
	}
	if p.cfg.Auth == "token" || p.cfg.Auth == "" {
		tok := p.cfg.Token
		if p.cfg.TokenFile != "" {
			b, err := os.ReadFile(p.cfg.TokenFile)
			if err != nil {
				return fmt.Errorf("vault token_file: %w", err)
			}
			tok = strings.TrimSpace(string(b))
		}
		if tok == "" {
			tok = p.cfg.Getenv("VAULT_TOKEN")
		}
		if tok == "" {
			return errors.New("vault token auth: no token (set secrets.vault.token_file or VAULT_TOKEN)")
		}
		p.client.SetToken(tok)
		s, err := p.client.Auth().Token().LookupSelfWithContext(ctx)
		if err != nil {
			return fmt.Errorf("vault token lookup-self: %w", scrub(err))
		}
		ttl, _ := s.TokenTTL()
		renewable, _ := s.TokenIsRenewable()
		p.login = &api.Secret{Auth: &api.SecretAuth{ClientToken: tok, Renewable: renewable, LeaseDuration: int(ttl.Seconds())}}
		p.loginAt = time.Now()
		return nil
	}
	m, err := p.authMethod()
	if err != nil {
		return fmt.Errorf("vault %s login: %w", p.cfg.Auth, err)
	}
	// The unwrap of a wrapped secret-id goes with the wrapping token, not
	// with the expired one.
	p.client.ClearToken()
	s, err := p.client.Auth().Login(ctx, m)
	if err != nil {
		return fmt.Errorf("vault %s login: %w", p.cfg.Auth, scrub(err))
	}
	if s == nil || s.Auth == nil {
		return fmt.Errorf("vault %s login: no token in the answer", p.cfg.Auth)
	}
	p.login, p.loginAt = s, time.Now()
	p.log.InfoContext(ctx, "logged in to vault", "auth", p.cfg.Auth, "ttl_seconds", s.Auth.LeaseDuration, "renewable", s.Auth.Renewable)
	return nil
}

// renew keeps the token alive with a LifetimeWatcher, and logs in again
// when the watcher ends (the token reached its max TTL or was revoked).
func (p *Provider) renew(ctx context.Context) {
	defer close(p.done)
renewal:
	for {
		p.mu.Lock()
		login := p.login
		p.mu.Unlock()
		if login.Auth == nil || !login.Auth.Renewable {
			select {
			case <-ctx.Done():
				return
			case <-p.relogged:
				continue renewal
			}
		}
		w, err := p.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: login})
		if err != nil {
			p.log.Error("vault token renewal not started", "err", scrub(err))
			<-ctx.Done()
			return
		}
		go w.Start()
	watch:
		for {
			select {
			case <-ctx.Done():
				w.Stop()
				return
			case r := <-w.RenewCh():
				p.log.Debug("vault token renewed", "ttl_seconds", r.Secret.Auth.LeaseDuration)
			case err := <-w.DoneCh():
				if err != nil {
					p.log.Warn("vault token renewal ended", "err", scrub(err))
				}
				break watch
			case <-p.relogged:
				// Relogin made a new token: watch that one.
				w.Stop()
				continue renewal
			}
		}
		w.Stop()
		for {
			err := p.relogin(ctx, "")
			if err == nil {
				break
			}
			p.log.Error("vault re-login failed; retrying in 10s", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Second):
			}
		}
	}
}

// Relogin logs in anew (token auth: reads the token file again), so that
// the next requests use a new token, and returns it described. The token
// before keeps its own TTL; it is no longer renewed.
func (p *Provider) Relogin(ctx context.Context) (TokenInfo, error) {
	if err := p.relogin(ctx, ""); err != nil {
		return TokenInfo{}, err
	}
	select {
	case p.relogged <- struct{}{}:
	default:
	}
	return p.Token(ctx)
}

// TokenInfo describes the current login without the token: when it was
// made, its TTL left and whether it renews.
type TokenInfo struct {
	Auth      string
	LoginAt   time.Time
	Created   time.Time
	TTL       time.Duration
	Renewable bool
}

// Token looks the current token up (token/lookup-self).
func (p *Provider) Token(ctx context.Context) (TokenInfo, error) {
	var info TokenInfo
	err := p.do(ctx, func() error {
		s, err := p.client.Auth().Token().LookupSelfWithContext(ctx)
		if err != nil {
			return err
		}
		info.TTL, _ = s.TokenTTL()
		info.Renewable, _ = s.TokenIsRenewable()
		if n, ok := s.Data["creation_time"].(interface{ Int64() (int64, error) }); ok {
			if v, err := n.Int64(); err == nil {
				info.Created = time.Unix(v, 0).UTC()
			}
		}
		return nil
	})
	p.mu.Lock()
	info.Auth, info.LoginAt = p.cfg.Auth, p.loginAt
	p.mu.Unlock()
	return info, err
}

// do runs f, and once more after a new login when Vault answers 403
// (the token expired or was revoked).
func (p *Provider) do(ctx context.Context, f func() error) error {
	tok := p.client.Token()
	err := f()
	if !isStatus(err, http.StatusForbidden) {
		return scrub(err)
	}
	if lerr := p.relogin(ctx, tok); lerr != nil {
		return fmt.Errorf("%w; a new login failed: %v", ErrDenied, lerr)
	}
	if err = f(); isStatus(err, http.StatusForbidden) {
		return ErrDenied
	}
	return scrub(err)
}

func isStatus(err error, code int) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == code
}

// scrub keeps what an error says but never a token: the client's errors
// carry the URL and Vault's messages, not headers; this is the guard.
func scrub(err error) error {
	if err == nil {
		return nil
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		return fmt.Errorf("vault %s %s: %d %s", re.HTTPMethod, re.URL, re.StatusCode, strings.Join(re.Errors, "; "))
	}
	return err
}

func (p *Provider) path(name string) string { return p.cfg.Path + "/" + name }

func (p *Provider) where(name string) string {
	w := "vault " + p.cfg.Mount + "/" + p.path(name)
	if p.cfg.Namespace != "" {
		w += " (namespace " + p.cfg.Namespace + ")"
	}
	return w
}

// Get implements secrets.Provider: the current version of
// Mount/Path/name, field "value" (base64 when field "encoding" says so).
// A soft-deleted current version is ErrNotFound.
func (p *Provider) Get(ctx context.Context, name string) (secrets.Secret, error) {
	if err := secrets.CheckName(name); err != nil {
		return secrets.Secret{}, err
	}
	var kvs *api.KVSecret
	err := p.do(ctx, func() error {
		var err error
		kvs, err = p.kv.Get(ctx, p.path(name))
		return err
	})
	if errors.Is(err, api.ErrSecretNotFound) || (err == nil && (kvs == nil || kvs.Data == nil)) {
		return secrets.Secret{}, fmt.Errorf("secret %s (%s): %w", name, p.where(name), secrets.ErrNotFound)
	}
	if err != nil {
		return secrets.Secret{}, fmt.Errorf("read secret %s from %s: %w", name, p.where(name), err)
	}
	raw, ok := kvs.Data["value"].(string)
	if !ok {
		return secrets.Secret{}, fmt.Errorf("secret %s at %s has no string field \"value\"", name, p.where(name))
	}
	value := []byte(raw)
	if enc, _ := kvs.Data["encoding"].(string); enc == "base64" {
		if value, err = base64.StdEncoding.DecodeString(raw); err != nil {
			return secrets.Secret{}, fmt.Errorf("secret %s at %s: field \"value\" is not base64 as \"encoding\" says", name, p.where(name))
		}
	}
	s := secrets.Secret{Value: value, Where: p.where(name)}
	if kvs.VersionMetadata != nil {
		s.Version, s.Created = kvs.VersionMetadata.Version, kvs.VersionMetadata.CreatedTime.UTC()
	}
	return s, nil
}

// Put implements secrets.Writer with KV v2 check-and-set (cas 0: only if
// the path holds no version).
func (p *Provider) Put(ctx context.Context, name string, value []byte, cas int) (secrets.Secret, error) {
	if err := secrets.CheckName(name); err != nil {
		return secrets.Secret{}, err
	}
	data := map[string]any{"value": string(value)}
	if !utf8.Valid(value) {
		data = map[string]any{"value": base64.StdEncoding.EncodeToString(value), "encoding": "base64"}
	}
	var kvs *api.KVSecret
	err := p.do(ctx, func() error {
		var err error
		kvs, err = p.kv.Put(ctx, p.path(name), data, api.WithCheckAndSet(cas))
		return err
	})
	if err != nil {
		if strings.Contains(err.Error(), "check-and-set parameter did not match") {
			return secrets.Secret{}, fmt.Errorf("secret %s at %s (version %d): %w", name, p.where(name), cas, secrets.ErrConflict)
		}
		return secrets.Secret{}, fmt.Errorf("write secret %s to %s: %w", name, p.where(name), err)
	}
	s := secrets.Secret{Value: value, Where: p.where(name)}
	if kvs != nil && kvs.VersionMetadata != nil {
		s.Version, s.Created = kvs.VersionMetadata.Version, kvs.VersionMetadata.CreatedTime.UTC()
	}
	return s, nil
}

// CurrentVersion reads the KV metadata of name: its current_version (0
// when there is none), for polling rotations without reading values.
func (p *Provider) CurrentVersion(ctx context.Context, name string) (int, error) {
	var md *api.KVMetadata
	err := p.do(ctx, func() error {
		var err error
		md, err = p.kv.GetMetadata(ctx, p.path(name))
		return err
	})
	if errors.Is(err, api.ErrSecretNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read metadata of secret %s at %s: %w", name, p.where(name), err)
	}
	return md.CurrentVersion, nil
}
