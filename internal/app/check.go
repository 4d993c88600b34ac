package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/certs"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pgauth"
)

// Check validates what cfg names outside itself, as far as it can be known
// without serving: the policy (a directory or bundle file is read and
// compiled, and its tests are run), the TLS certificates and keys (loaded,
// each key matching its certificate), CA files (parsed), the routes' JSON
// Schemas (compiled), and the places the data and the audit stream go.
// It returns every problem found, each placed at the field that names the
// file, in line order; nil when all is well.
//
// Check has no side effects: it creates, writes and binds nothing, so it
// runs before New touches the data dir, and as `gatehouse config check`. A
// bundle URL is not fetched (serve starts not ready until it can fetch it).
func Check(ctx context.Context, cfg *config.Config) config.Problems {
	c := checker{cfg: cfg}
	c.policy(ctx)
	c.tls()
	for i, r := range cfg.Routes {
		c.route(fmt.Sprintf("routes[%d]", i), r)
	}
	c.clientTLS("tracing.tls", cfg.Tracing.TLS)
	c.dirs()
	c.backup(ctx)
	c.metrics()
	c.problems.Sort()
	return c.problems
}

// Warnings lists what in cfg works but is discouraged, each placed at its
// field: a password written inline in store.dsn or ratelimit.redis_url
// (in the config in clear, and rotating it needs a restart) rather than
// named by store.password_secret or ratelimit.redis_password_secret.
// `gatehouse config check` prints them and serve logs them; neither
// refuses the config. Call it on the config as loaded, before New
// resolves the references.
func Warnings(cfg *config.Config) config.Problems {
	var out config.Problems
	if cfg.Store.Driver == "postgres" && cfg.Store.PasswordSecret == "" && pgauth.HasPassword(cfg.Store.DSN) {
		out = append(out, cfg.Problem("store.dsn", "%s", inlinePasswordWarning("store.dsn", "store.password_secret")))
	}
	if cfg.RateLimit.Backend == "redis" && cfg.RateLimit.RedisPasswordSecret == "" && redisURLHasPassword(cfg.RateLimit.RedisURL) {
		out = append(out, cfg.Problem("ratelimit.redis_url", "%s", inlinePasswordWarning("ratelimit.redis_url", "ratelimit.redis_password_secret")))
	}
	return out
}

// checker collects the problems of one Check.
type checker struct {
	cfg      *config.Config
	problems config.Problems
}

func (c *checker) add(path, format string, args ...any) {
	c.problems = append(c.problems, c.cfg.Problem(path, format, args...))
}

// addErr adds err at path, on one line.
func (c *checker) addErr(path string, err error) {
	var lines []string
	for line := range strings.SplitSeq(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	c.add(path, "%s", strings.Join(lines, "; "))
}

// readable reports whether the file at path can be opened for reading,
// adding the problem at field when not.
func (c *checker) readable(field, path string) bool {
	f, err := os.Open(path)
	if err == nil {
		var st fs.FileInfo
		if st, err = f.Stat(); err == nil && st.IsDir() {
			err = errors.New("is a directory")
		}
		f.Close()
	}
	if err != nil {
		c.add(field, "cannot read %s: %s", path, reason(err))
		return false
	}
	return true
}

// reason is an *fs.PathError's reason alone ("no such file or
// directory"), or err's text.
func reason(err error) string {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// policy loads a policy directory or bundle file as serve would: read,
// compiled, its tests run.
func (c *checker) policy(ctx context.Context) {
	p := c.cfg.Policy.Config
	field, path := "policy.dir", p.Dir
	switch kind, _, _ := strings.Cut(p.Source(), ":"); kind {
	case "dir":
		st, err := os.Stat(path)
		if err == nil && !st.IsDir() {
			err = errors.New("is not a directory")
		}
		if err != nil {
			c.add(field, "cannot read %s: %s", path, reason(err))
			return
		}
	case "bundle":
		field, path = "policy.bundle", p.Bundle
		if !c.readable(field, path) {
			return
		}
	default:
		return // the embedded policy, or a bundle URL
	}
	_, err := authz.New(ctx, authz.Config{Dir: p.Dir, Bundle: p.Bundle}, authz.Options{Logger: discard})
	if errs, ok := errors.AsType[ast.Errors](err); ok {
		// One problem per Rego error ("authz.rego:4: rego_parse_error:
		// unexpected eof token"), without the source lines under it.
		for _, e := range errs {
			msg, _, _ := strings.Cut(e.Error(), "\n")
			c.add(field, "%s", msg)
		}
	} else if err != nil {
		c.addErr(field, errors.New(strings.TrimPrefix(err.Error(), "load policy from "+p.Source()+": ")))
	}
}

// tls loads the listeners' certificate and key, and the client CAs.
func (c *checker) tls() {
	t := c.cfg.TLS
	if t.CertFile != "" && t.KeyFile != "" {
		cert, key := c.readable("tls.cert_file", t.CertFile), c.readable("tls.key_file", t.KeyFile)
		if cert && key {
			if _, err := certs.NewServerConfig(certs.ServerConfig{CertFile: t.CertFile, KeyFile: t.KeyFile}, discard); err != nil {
				c.keyPair("tls", err)
			}
		}
	}
	if t.ClientCAFile != "" {
		c.caFile("tls.client_ca_file", t.ClientCAFile)
	}
}

// keyPair places a certificate/key pair that did not load: at the key
// when it does not match the certificate, else at the certificate.
func (c *checker) keyPair(at string, err error) {
	msg := err.Error()
	if _, m, ok := strings.Cut(msg, ": tls: "); ok {
		msg = m // "load certificate FILE: tls: …" names the file the field names
	}
	if strings.Contains(msg, "private key") {
		c.add(at+".key_file", "%s", msg)
		return
	}
	c.add(at+".cert_file", "%s", msg)
}

// caFile parses a file of CA certificates.
func (c *checker) caFile(field, path string) {
	if c.readable(field, path) {
		if _, err := certs.NewUpstreamConfig(certs.UpstreamConfig{CAFile: path}); err != nil {
			c.add(field, "%v", err)
		}
	}
}

// route checks a route's upstream TLS files and JSON Schema.
func (c *checker) route(at string, r config.RouteConfig) {
	c.clientTLS(at+".tls", r.TLS)
	if r.JSONSchema != "" && c.readable(at+".json_schema", r.JSONSchema) {
		if err := gateway.CheckSchema(r.JSONSchema); err != nil {
			c.addErr(at+".json_schema", err)
		}
	}
}

// clientTLS checks the files of client TLS at field at (a route's
// upstream, the trace collector): the CA parses, the key matches the
// certificate.
func (c *checker) clientTLS(at string, u *config.UpstreamTLSConfig) {
	if u == nil {
		return
	}
	if u.CAFile != "" {
		c.caFile(at+".ca_file", u.CAFile)
	}
	if u.CertFile != "" && u.KeyFile != "" {
		cert, key := c.readable(at+".cert_file", u.CertFile), c.readable(at+".key_file", u.KeyFile)
		if cert && key {
			if _, err := certs.NewUpstreamConfig(certs.UpstreamConfig{CertFile: u.CertFile, KeyFile: u.KeyFile}); err != nil {
				c.keyPair(at, err)
			}
		}
	}
}

// dirs checks that the data dir and audit dir, where they exist, are
// directories, and that the audit stream's file can be created.
func (c *checker) dirs() {
	for _, d := range []struct{ field, path string }{{"data_dir", c.cfg.DataDir}, {"audit.dir", c.cfg.Audit.Dir}} {
		if st, err := os.Stat(d.path); d.path != "" && err == nil && !st.IsDir() {
			c.add(d.field, "%s is not a directory", d.path)
		}
	}
	switch s := c.cfg.Audit.Stream; s {
	case "", "stdout", "stderr":
	default:
		if st, err := os.Stat(s); err == nil && st.IsDir() {
			c.add("audit.stream", "%s is a directory; name a file to append to", s)
		} else if st, err := os.Stat(filepath.Dir(s)); err != nil || !st.IsDir() {
			c.add("audit.stream", "cannot create %s: directory %s does not exist", s, filepath.Dir(s))
		}
	}
}

// metrics checks the scrape token file: readable, and holding a token
// long enough.
func (c *checker) metrics() {
	f := c.cfg.Metrics.TokenFile
	if f == "" || !c.readable("metrics.token_file", f) {
		return
	}
	if _, err := readScrapeToken(f); err != nil {
		c.add("metrics.token_file", "%v", err)
	}
}
