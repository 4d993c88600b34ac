package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// accessEntry is what the access line of a request says. It never holds a
// query string (it may carry secrets) or any credential.
type accessEntry struct {
	requestID, method, path string
	status                  int
	bytes                   int64
	durationMS              float64
	traceID                 string
	route, principal        string // "" when none: left out
}

// appendAttrs appends the entry as slog attributes, in the line's order
// (nine at most).
func (e *accessEntry) appendAttrs(attrs []slog.Attr) []slog.Attr {
	attrs = append(attrs,
		slog.String("request_id", e.requestID),
		slog.String("method", e.method),
		slog.String("path", e.path),
		slog.Int("status", e.status),
		slog.Int64("bytes", e.bytes),
		slog.Float64("duration_ms", e.durationMS),
		slog.String("trace_id", e.traceID),
	)
	if e.route != "" {
		attrs = append(attrs, slog.String("route", e.route))
	}
	if e.principal != "" {
		attrs = append(attrs, slog.String("principal", e.principal))
	}
	return attrs
}

// logAccess writes the one access line of a request, at INFO (WARN for a
// 5xx) when the logger takes that level: straight to
// Config.AccessLogWriter when it is set, through the logger otherwise.
func (g *Gateway) logAccess(ctx context.Context, r *http.Request, ex *exchange, w *recorder) {
	level := slog.LevelInfo
	if w.status >= 500 {
		level = slog.LevelWarn
	}
	if !g.log.Enabled(ctx, level) {
		return
	}
	e := accessEntry{
		requestID:  ex.requestID,
		method:     r.Method,
		path:       r.URL.Path,
		status:     w.status,
		bytes:      w.bytes,
		durationMS: float64(g.clock.Now().Sub(ex.start).Microseconds()) / 1000,
		traceID:    ex.trace.traceID(),
	}
	if ex.route != nil {
		e.route = ex.route.Name
	}
	if ex.principal != nil {
		e.principal = ex.principal.ID
	}
	out := g.cfg.AccessLogWriter
	if out == nil {
		var attrs [9]slog.Attr
		g.log.LogAttrs(ctx, level, "request", e.appendAttrs(attrs[:0])...)
		return
	}
	bp := g.lines.Get().(*[]byte)
	// The time slog would give the record: the wall clock, now.
	b := appendAccessLine((*bp)[:0], time.Now(), level, &e)
	out.Write(b) // whole line; a log that cannot be written is not the request's failure
	if cap(b) <= 4<<10 {
		*bp = b
		g.lines.Put(bp)
	}
}

// appendAccessLine appends the line slog.NewJSONHandler(w, nil) writes for
// the record (t, level, "request", e.appendAttrs(nil)) under the group "gateway",
// byte for byte, newline included, without slog's per-record work (the
// attribute slice, the JSON encoder it calls for every float).
func appendAccessLine(b []byte, t time.Time, level slog.Level, e *accessEntry) []byte {
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":`...)
	b = appendJSONString(b, level.String())
	b = append(b, `,"msg":"request","gateway":{"request_id":`...)
	b = appendJSONString(b, e.requestID)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, e.method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, e.path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = appendJSONFloat(b, e.durationMS)
	b = append(b, `,"trace_id":`...)
	b = appendJSONString(b, e.traceID)
	if e.route != "" {
		b = append(b, `,"route":`...)
		b = appendJSONString(b, e.route)
	}
	if e.principal != "" {
		b = append(b, `,"principal":`...)
		b = appendJSONString(b, e.principal)
	}
	return append(b, "}}\n"...)
}

// appendJSONFloat appends f as encoding/json writes it (which is what slog
// calls): the shortest decimal form, exponents only outside [1e-6, 1e21),
// where json itself is asked.
func appendJSONFloat(b []byte, f float64) []byte {
	if abs := math.Abs(f); abs == 0 || (abs >= 1e-6 && abs < 1e21) {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	j, err := json.Marshal(f)
	if err != nil { // NaN or ±Inf: no JSON for it; slog writes its error text
		return appendJSONString(b, "!ERROR:"+err.Error())
	}
	return append(b, j...)
}

// appendJSONString appends s as a JSON string the way slog's JSON handler
// escapes it: '"', '\\' and control characters escaped (\n, \r and \t by
// name), each invalid UTF-8 byte as U+FFFD (as slog writes it since Go
// 1.27; an escaped \ufffd before), U+2028 and U+2029 escaped, HTML
// characters left alone.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := rune(c), 1
		if c >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
			if (r != utf8.RuneError || size != 1) && r != '\u2028' && r != '\u2029' {
				i += size
				continue
			}
		}
		b = append(b, s[start:i]...)
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '\r':
			b = append(b, `\r`...)
		case c == '\t':
			b = append(b, `\t`...)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		case size == 1: // invalid UTF-8
			b = append(b, "\ufffd"...)
		default: // U+2028 or U+2029
			b = append(b, `\u202`...)
			b = append(b, hex[r&0xF])
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
