package httpjson

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/oklog/ulid/v2"

	"github.com/gatehouse/gatehouse"
)

// NewListener wraps ln so that the errors net/http answers by itself,
// before any handler runs (431 for a request head over MaxHeaderBytes, 400
// for a malformed request line or header, 501 for an unknown
// Transfer-Encoding), go out in the same shape as every other Gatehouse
// error: a JSON body, the security headers and a request id. net/http
// writes those answers straight to the connection in one write, with its
// headers in an order no handler response has (Content-Type before
// Connection, and no Date), which is how they are recognised.
//
// It sees plaintext only: on a TLS listener, wrap below the handshake is
// not possible, and net/http's own answer goes out unchanged.
func NewListener(ln net.Listener, maxHeaderBytes int) net.Listener {
	return &errorListener{Listener: ln, max: maxHeaderBytes}
}

type errorListener struct {
	net.Listener
	max int
}

func (l *errorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &errorConn{Conn: c, max: l.max}, nil
}

type errorConn struct {
	net.Conn
	max int
}

// netHTTPErrorHeaders follows the status line of net/http's own answers.
const netHTTPErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

func (c *errorConn) Write(b []byte) (int, error) {
	if status, text, ok := parseNetHTTPError(b); ok {
		if _, err := c.Conn.Write(errorResponse(status, text, c.max)); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// parseNetHTTPError recognises "HTTP/1.1 NNN Reason<headers>text".
func parseNetHTTPError(b []byte) (status int, text string, ok bool) {
	const proto = "HTTP/1.1 "
	// Every response starts so: a status below 400 (the proxied ones,
	// mostly) is passed on without searching the rest.
	if len(b) < len(proto)+3 || string(b[:len(proto)]) != proto || (b[len(proto)] != '4' && b[len(proto)] != '5') {
		return 0, "", false
	}
	i := bytes.Index(b, []byte(netHTTPErrorHeaders))
	if i < 0 || bytes.IndexByte(b[:i], '\n') >= 0 {
		return 0, "", false
	}
	status, err := strconv.Atoi(string(b[len(proto) : len(proto)+3]))
	if err != nil || status < 400 || status > 599 {
		return 0, "", false
	}
	return status, string(b[i+len(netHTTPErrorHeaders):]), true
}

// errorResponse is a whole HTTP/1.1 response carrying the JSON error for a
// request net/http refused.
func errorResponse(status int, text string, maxHeaderBytes int) []byte {
	code, msg := gatehouse.EINVALID, "malformed request"
	switch status {
	case 431:
		code, msg = gatehouse.EHEADERSTOOLARGE, "request headers too large"
		if maxHeaderBytes > 0 {
			msg = "request headers larger than " + strconv.Itoa(maxHeaderBytes) + " bytes"
		}
	case 501:
		code, msg = "not_implemented", "unsupported Transfer-Encoding; send the body with Content-Length or chunked"
	default:
		// net/http's own texts, e.g. "400 Bad Request: missing required
		// Host header": they name the problem and echo nothing the client
		// sent.
		if _, detail, found := strings.Cut(text, ": "); found {
			msg = "malformed request: " + detail
		}
	}
	rid := ulid.Make().String()
	body, _ := json.Marshal(ErrorBody{Error: ErrorDetail{Code: code, Message: msg, RequestID: rid}})
	body = append(body, '\n')

	var b bytes.Buffer
	b.WriteString("HTTP/1.1 ")
	b.WriteString(strconv.Itoa(status))
	b.WriteByte(' ')
	b.WriteString(http.StatusText(status))
	b.WriteString("\r\n")
	for i := range securityHeaders {
		b.WriteString(securityHeaders[i].name)
		b.WriteString(": ")
		b.WriteString(securityHeaders[i].value[0])
		b.WriteString("\r\n")
	}
	b.WriteString("Cache-Control: no-store\r\nConnection: close\r\nContent-Type: application/json\r\n")
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	b.WriteString("X-Request-Id: " + rid + "\r\n\r\n")
	b.Write(body)
	return b.Bytes()
}
