package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/internal/httpjson"
)

const defaultAddr = "http://127.0.0.1:8081"

// apiClient talks to a running gateway's admin API.
type apiClient struct {
	addr, token string
	csrf        string // for cookie sessions
	http        *http.Client
}

// conn is how a command reaches the admin API: --addr, --ca-cert and
// --tls-server-name, each falling back to its environment variable.
type conn struct {
	env                      Env
	addr, caCert, serverName string
}

// connFlags adds the connection flags to cmd (persistent: its subcommands
// inherit them); connOf reads them.
func connFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.String("addr", "", "admin API address (default $GATEHOUSE_ADDR or "+defaultAddr+")")
	f.String("ca-cert", "", "PEM file of the CA that signed the admin listener's certificate (default $GATEHOUSE_CACERT; else the system roots)")
	f.String("tls-server-name", "", "name to verify the admin listener's certificate against, when it is not the host of --addr (default $GATEHOUSE_TLS_SERVER_NAME)")
}

// connOf reads the connection flags from flags (a group's persistent
// flags, or a parsed command's flags, which include them).
func connOf(flags *pflag.FlagSet, env Env) *conn {
	get := func(name string) string {
		if f := flags.Lookup(name); f != nil {
			return f.Value.String()
		}
		return ""
	}
	return &conn{env: env, addr: get("addr"), caCert: get("ca-cert"), serverName: get("tls-server-name")}
}

// address is the admin API's base URL: --addr, $GATEHOUSE_ADDR, else
// stored (a `gatehouse login` address, "" for none), else the default.
func (c *conn) address(stored string) string {
	addr := c.addr
	if addr == "" {
		addr = c.env.Getenv("GATEHOUSE_ADDR")
	}
	if addr == "" {
		addr = stored
	}
	if addr == "" {
		addr = defaultAddr
	}
	if !strings.HasPrefix(addr, "http://") && !strings.HasPrefix(addr, "https://") {
		addr = "http://" + addr
	}
	return strings.TrimSuffix(addr, "/")
}

// client returns a client of addr with the TLS settings (a cookie jar when
// jar, for a sign-in).
func (c *conn) client(addr, token string, jar bool) (*apiClient, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: or(c.serverName, c.env.Getenv("GATEHOUSE_TLS_SERVER_NAME"))}
	if file := or(c.caCert, c.env.Getenv("GATEHOUSE_CACERT")); file != "" {
		pem, err := os.ReadFile(file)
		if err != nil {
			return nil, usageError{fmt.Errorf("--ca-cert: %w", err)}
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, usageError{fmt.Errorf("--ca-cert: %s holds no PEM certificate", file)}
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	hc := &http.Client{Timeout: 30 * time.Second, Transport: tr}
	if jar {
		hc.Jar, _ = cookiejar.New(nil)
	}
	return &apiClient{addr: addr, token: token, http: hc}, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// clientFlags adds --addr, --token and the TLS flags to cmd and returns a
// constructor of its client (see clientOf).
func clientFlags(cmd *cobra.Command, env Env) func() (*apiClient, error) {
	connFlags(cmd)
	cmd.PersistentFlags().String("token", "", "admin token (default $GATEHOUSE_TOKEN)")
	return func() (*apiClient, error) { return clientOf(cmd.PersistentFlags(), env) }
}

// clientOf returns the admin API client the flags name, falling back to
// GATEHOUSE_ADDR, GATEHOUSE_TOKEN, then what `gatehouse login` stored.
func clientOf(flags *pflag.FlagSet, env Env) (*apiClient, error) {
	c := connOf(flags, env)
	token, _ := flags.GetString("token")
	stored := ""
	if token == "" {
		token = env.Getenv("GATEHOUSE_TOKEN")
	}
	if token == "" {
		// The token `gatehouse login` stored, with its address and TLS
		// settings.
		if cr, err := loadCredentials(env); err == nil {
			token, stored = cr.Token, cr.Addr
			c.caCert = or(or(c.caCert, env.Getenv("GATEHOUSE_CACERT")), cr.CACert)
			c.serverName = or(or(c.serverName, env.Getenv("GATEHOUSE_TLS_SERVER_NAME")), cr.TLSServerName)
		}
	}
	if token == "" {
		return nil, usageError{errors.New("no admin token: run `gatehouse login`, set GATEHOUSE_TOKEN (printed by `gatehouse serve` on first start) or pass --token")}
	}
	return c.client(c.address(stored), token, false)
}

// do sends a JSON request and decodes a JSON answer into out. API errors
// come back as *apiError, failures to get an answer as *localError.
func (c *apiClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	contentType := "application/json"
	switch in := in.(type) {
	case nil:
	case io.Reader: // a file, sent as it is
		body, contentType = in, "application/octet-stream"
	default:
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.addr+path, body)
	if err != nil {
		return usageError{fmt.Errorf("bad admin address %q: %w", c.addr, err)}
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	if in != nil {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return c.connError(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return &localError{codeUnreachable, fmt.Errorf("read admin API answer: %w", err)}
	}
	if res.StatusCode >= 300 {
		if res.StatusCode == http.StatusBadRequest && bytes.Contains(data, []byte("Client sent an HTTP request to an HTTPS server")) {
			return &localError{codeUnreachable, fmt.Errorf("the admin API at %s speaks TLS: use %s (with --ca-cert FILE or GATEHOUSE_CACERT if a private CA signed its certificate)",
				c.addr, "https://"+strings.TrimPrefix(c.addr, "http://"))}
		}
		ae := &apiError{Status: res.StatusCode, Code: "http_error", Message: fmt.Sprintf("admin API answered HTTP %d", res.StatusCode)}
		var e httpjson.ErrorBody
		if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
			ae.Code, ae.Message, ae.RequestID = e.Error.Code, e.Error.Message, e.Error.RequestID
		}
		return ae
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode admin API answer: %w", err)
		}
	}
	return nil
}

// connError explains a request that got no answer, saying what to do for
// the usual causes.
func (c *apiClient) connError(err error) error {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		recordHdr tls.RecordHeaderError
	)
	msg := fmt.Sprintf("admin API at %s: %v", c.addr, err)
	switch {
	case isConnRefused(err):
		msg = fmt.Sprintf("cannot reach the admin API at %s: is `gatehouse serve` running? (set GATEHOUSE_ADDR to point elsewhere)", c.addr)
	case errors.As(err, &unknownCA):
		msg = fmt.Sprintf("the admin API at %s presents a certificate signed by an unknown authority: pass the CA's PEM file with --ca-cert or GATEHOUSE_CACERT", c.addr)
	case errors.As(err, &hostname):
		msg = fmt.Sprintf("the admin API's certificate is not valid for %s (%v): use an address it names, or --tls-server-name NAME", hostname.Host, err)
	case errors.As(err, &recordHdr), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		msg = fmt.Sprintf("the admin API at %s speaks plain HTTP, not TLS: use %s", c.addr, "http://"+strings.TrimPrefix(c.addr, "https://"))
	}
	return &localError{codeUnreachable, errors.New(msg)}
}

func isConnRefused(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial")
}
