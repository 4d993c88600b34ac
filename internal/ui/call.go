package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/authn"
)

// maxAnswer bounds an API answer the console reads.
const maxAnswer = 8 << 20

// apiAnswer is an admin API response as the console received it.
type apiAnswer struct {
	status  int
	header  http.Header
	body    bytes.Buffer
	trimmed bool
}

func (a *apiAnswer) Header() http.Header { return a.header }
func (a *apiAnswer) WriteHeader(code int) {
	if a.status == 0 {
		a.status = code
	}
}
func (a *apiAnswer) Write(p []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	if room := maxAnswer - a.body.Len(); len(p) > room {
		a.body.Write(p[:max(room, 0)])
		a.trimmed = true
		return len(p), nil
	}
	return a.body.Write(p)
}

// call makes one admin API call on behalf of the browser request r: the
// same handler, role checks and audit events as a call from outside, with
// r's session cookie (and nothing else of r's credentials), r's client
// address and TLS state, and the session's CSRF token on changes. body,
// if not nil, is sent as JSON; a 2xx answer is decoded into out (if not
// nil). A refusal is the API's *gatehouse.Error, message unchanged.
func (u *UI) call(ctx context.Context, r *http.Request, method, path string, body, out any) error {
	a, err := u.do(ctx, r, method, path, body)
	if err != nil {
		return err
	}
	return a.decode(out)
}

// do is call without the decoding: the raw answer (for its cookies).
func (u *UI) do(ctx context.Context, r *http.Request, method, path string, body any) (*apiAnswer, error) {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd) // #nosec G704 -- served in-process by u.cfg.API.ServeHTTP, never sent over a network
	if err != nil {
		return nil, fmt.Errorf("build %s %s: %w", method, path, err)
	}
	req.RemoteAddr, req.TLS, req.Host = r.RemoteAddr, r.TLS, r.Host
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if id := sessionID(r); id != "" {
		req.AddCookie(&http.Cookie{Name: authn.SessionCookie, Value: id}) // #nosec G124 -- a request cookie for the in-process API call; Secure, HttpOnly and SameSite are attributes of Set-Cookie
		if method != http.MethodGet && method != http.MethodHead && u.cfg.CSRFToken != nil {
			req.Header.Set(admin.CSRFHeader, u.cfg.CSRFToken(id))
		}
	}
	if rid := r.Header.Get("X-Request-Id"); rid != "" {
		req.Header.Set("X-Request-Id", rid)
	}
	a := &apiAnswer{header: http.Header{}}
	u.cfg.API.ServeHTTP(a, req)
	if a.status == 0 {
		a.status = http.StatusOK
	}
	return a, nil
}

// decode turns the answer into out, or into the API's error.
func (a *apiAnswer) decode(out any) error {
	if a.status >= 400 {
		var e struct {
			Error struct {
				Code    string   `json:"code"`
				Message string   `json:"message"`
				Reasons []string `json:"reasons"`
			} `json:"error"`
		}
		if err := json.Unmarshal(a.body.Bytes(), &e); err != nil || e.Error.Code == "" {
			return &gatehouse.Error{Code: gatehouse.EINTERNAL, Message: fmt.Sprintf("the admin API answered HTTP %d", a.status)}
		}
		return &gatehouse.Error{Code: e.Error.Code, Message: e.Error.Message, Reasons: e.Error.Reasons}
	}
	if a.trimmed {
		return fmt.Errorf("admin API answer over %d bytes", maxAnswer)
	}
	if out == nil || a.body.Len() == 0 {
		return nil
	}
	if err := json.Unmarshal(a.body.Bytes(), out); err != nil {
		return fmt.Errorf("decode admin API answer: %w", err)
	}
	return nil
}

// errStatus is the HTTP status the console answers an API error with:
// the API's own (its one mapping of codes to statuses).
func errStatus(err error) int { return gatehouse.HTTPStatus(gatehouse.ErrorCode(err)) }

// errMessage is what the page shows of err: the API's message, or
// "internal error" for anything not the API's answer (logged).
func (u *UI) errMessage(r *http.Request, err error) string {
	var ge *gatehouse.Error
	if e, ok := err.(*gatehouse.Error); ok {
		ge = e
	}
	if ge == nil || ge.Code == gatehouse.EINTERNAL {
		u.log.ErrorContext(r.Context(), "console request failed", "path", r.URL.Path, "err", err)
		return "Internal error; the server log has the details."
	}
	return ge.Message
}
