// Package certs builds Gatehouse's TLS configurations — the public and
// admin listeners (TLS 1.2+, AEAD suites only, optional client
// certificates) and mTLS to upstreams — and reloads a listener's
// certificate when its files change, without dropping connections.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// AEADSuites are the only TLS 1.2 cipher suites offered (TLS 1.3 suites
// are all AEAD and not configurable).
var aeadSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// MinVersion parses "1.2" or "1.3" ("" means 1.2).
func MinVersion(s string) (uint16, error) {
	switch s {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("min_version must be \"1.2\" or \"1.3\", not %q", s)
}

// ServerConfig describes a listener's TLS.
type ServerConfig struct {
	CertFile, KeyFile string
	MinVersion        string
	// ClientCAFile, when set, makes the listener ask for client
	// certificates and verify any that are presented against these CAs.
	// A client without a certificate still connects (it may authenticate
	// otherwise); one with a certificate from another CA fails the
	// handshake.
	ClientCAFile string
}

// Reloader serves a certificate pair and reloads it when either file's
// modification time or size changes (checked at most once a second, on a
// handshake). A reload that fails keeps the old certificate and is logged.
type Reloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
}

// NewReloader loads the pair once; an unreadable or invalid pair is an
// error.
func NewReloader(certFile, keyFile string, log *slog.Logger) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Reloader) fileStamp() (string, error) {
	var s string
	for _, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		s += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return s, nil
}

func (r *Reloader) load() error {
	stamp, err := r.fileStamp()
	if err != nil {
		return fmt.Errorf("stat certificate: %w", err)
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load certificate %s: %w", r.certFile, err)
	}
	r.cert, r.stamp = &c, stamp
	return nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= time.Second {
		r.checked = now
		if stamp, err := r.fileStamp(); err == nil && stamp != r.stamp {
			if err := r.load(); err != nil {
				r.log.Error("certificate reload failed; keeping the previous certificate", "cert_file", r.certFile, "err", err)
			} else {
				r.log.Info("certificate reloaded", "cert_file", r.certFile)
			}
		}
	}
	return r.cert, nil
}

// NewServerConfig returns the tls.Config of a listener.
func NewServerConfig(c ServerConfig, log *slog.Logger) (*tls.Config, error) {
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, errors.New("cert_file and key_file are both required")
	}
	min, err := MinVersion(c.MinVersion)
	if err != nil {
		return nil, err
	}
	rl, err := NewReloader(c.CertFile, c.KeyFile, log)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     min,
		CipherSuites:   aeadSuites,
		GetCertificate: rl.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
	if c.ClientCAFile != "" {
		pool, err := loadPool(c.ClientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// UpstreamConfig describes TLS to one upstream.
type UpstreamConfig struct {
	CAFile     string `yaml:"ca_file"`   // trust these CAs (default: system roots)
	CertFile   string `yaml:"cert_file"` // client certificate for mTLS
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"` // expected name, if not the URL's host
}

// NewUpstreamConfig returns the client tls.Config for an upstream. The
// upstream's certificate is always verified; there is no way to turn that
// off.
func NewUpstreamConfig(c UpstreamConfig) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pool, err := loadPool(c.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("cert_file and key_file go together")
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate %s: %w", c.CertFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}
