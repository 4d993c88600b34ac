package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/httpjson"
)

const defaultAddr = "http://127.0.0.1:8081"

// apiClient talks to a running gateway's admin API.
type apiClient struct {
	addr, token string
	csrf        string // for cookie sessions
	http        *http.Client
}

// clientFlags adds --addr and --token to cmd and returns a constructor
// reading them (falling back to GATEHOUSE_ADDR and GATEHOUSE_TOKEN).
func clientFlags(cmd *cobra.Command, env Env) func() (*apiClient, error) {
	var addr, token string
	cmd.PersistentFlags().StringVar(&addr, "addr", "", "admin API address (default $GATEHOUSE_ADDR or "+defaultAddr+")")
	cmd.PersistentFlags().StringVar(&token, "token", "", "admin token (default $GATEHOUSE_TOKEN)")
	return func() (*apiClient, error) {
		if addr == "" {
			addr = env.Getenv("GATEHOUSE_ADDR")
		}
		if addr == "" {
			addr = defaultAddr
		}
		if !strings.HasPrefix(addr, "http://") && !strings.HasPrefix(addr, "https://") {
			addr = "http://" + addr
		}
		if token == "" {
			token = env.Getenv("GATEHOUSE_TOKEN")
		}
		if token == "" {
			// The token `gatehouse login` stored, with its address.
			if cr, err := loadCredentials(env); err == nil {
				token = cr.Token
				if env.Getenv("GATEHOUSE_ADDR") == "" && !addrFlagSet(cmd) {
					addr = cr.Addr
				}
			}
		}
		if token == "" {
			return nil, usageError{errors.New("no admin token: run `gatehouse login`, set GATEHOUSE_TOKEN (printed by `gatehouse serve` on first start) or pass --token")}
		}
		return &apiClient{addr: strings.TrimSuffix(addr, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
	}
}

// do sends a JSON request and decodes a JSON answer into out. API errors
// come back as one readable line.
func (c *apiClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.addr+path, body)
	if err != nil {
		return fmt.Errorf("bad admin address %q: %w", c.addr, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		if isConnRefused(err) {
			return fmt.Errorf("cannot reach the admin API at %s: is `gatehouse serve` running? (set GATEHOUSE_ADDR to point elsewhere)", c.addr)
		}
		return fmt.Errorf("admin API at %s: %w", c.addr, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read admin API answer: %w", err)
	}
	if res.StatusCode >= 300 {
		var e httpjson.ErrorBody
		if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("%s (HTTP %d %s)", e.Error.Message, res.StatusCode, e.Error.Code)
		}
		return fmt.Errorf("admin API answered HTTP %d", res.StatusCode)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode admin API answer: %w", err)
		}
	}
	return nil
}

func isConnRefused(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial")
}

func addrFlagSet(cmd *cobra.Command) bool {
	f := cmd.PersistentFlags().Lookup("addr")
	return f != nil && f.Changed
}
