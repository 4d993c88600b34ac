package audit

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

// appendEvent appends the JSON encoding of e to dst. The bytes are exactly
// what encoding/json produces for gatehouse.Event (a fuzz test holds it to
// that), written without reflection or intermediate allocations because it
// runs for every request.
func appendEvent(dst []byte, e *gatehouse.Event) ([]byte, error) {
	var err error
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, e.ID)
	dst = append(dst, `,"time":`...)
	if dst, err = appendTime(dst, e.Time); err != nil {
		return nil, err
	}
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, e.Type)
	dst = append(dst, `,"actor":{"kind":`...)
	dst = appendString(dst, e.Actor.Kind)
	if e.Actor.ID != "" {
		dst = append(dst, `,"id":`...)
		dst = appendString(dst, e.Actor.ID)
	}
	dst = append(dst, `},"action":`...)
	dst = appendString(dst, e.Action)
	if e.Resource != "" {
		dst = append(dst, `,"resource":`...)
		dst = appendString(dst, e.Resource)
	}
	dst = append(dst, `,"outcome":`...)
	dst = appendString(dst, e.Outcome)
	if e.Reason != "" {
		dst = append(dst, `,"reason":`...)
		dst = appendString(dst, e.Reason)
	}
	if r := e.Request; r != nil {
		dst = append(dst, `,"request":{`...)
		first := true
		field := func(name string) {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, '"')
			dst = append(dst, name...)
			dst = append(dst, '"', ':')
		}
		if r.Method != "" {
			field("method")
			dst = appendString(dst, r.Method)
		}
		if r.Path != "" {
			field("path")
			dst = appendString(dst, r.Path)
		}
		if r.Status != 0 {
			field("status")
			dst = strconv.AppendInt(dst, int64(r.Status), 10)
		}
		if r.DurationMS != 0 {
			field("duration_ms")
			if dst, err = appendFloat(dst, r.DurationMS); err != nil {
				return nil, err
			}
		}
		if r.SourceIP != "" {
			field("source_ip")
			dst = appendString(dst, r.SourceIP)
		}
		if r.RequestID != "" {
			field("request_id")
			dst = appendString(dst, r.RequestID)
		}
		dst = append(dst, '}')
	}
	if e.TraceID != "" {
		dst = append(dst, `,"trace_id":`...)
		dst = appendString(dst, e.TraceID)
	}
	if len(e.Details) > 0 {
		dst = append(dst, `,"details":`...)
		if dst, err = appendDetails(dst, e.Details, 0); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

// maxSortedDetails is the most keys appendDetails sorts on the stack, and
// maxDetailsDepth the deepest map it writes itself; a larger or deeper map
// goes through encoding/json whole (which also refuses a map that holds
// itself).
const (
	maxSortedDetails = 16
	maxDetailsDepth  = 4
)

// appendDetails appends m as encoding/json writes a map[string]any: keys
// in sorted order, each value as encoding/json writes it. The values the
// request path and the admin API put there (strings, bools, numbers,
// string lists, nested maps) are written by hand; anything else through
// json.Marshal, one value at a time.
func appendDetails(dst []byte, m map[string]any, depth int) ([]byte, error) {
	if len(m) > maxSortedDetails || depth >= maxDetailsDepth {
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		return append(dst, b...), nil
	}
	var arr [maxSortedDetails]string
	keys := arr[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	var err error
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		if dst, err = appendValue(dst, m[k], depth); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

// appendValue appends v, a value of a map at depth, as encoding/json
// writes it.
func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendString(dst, v), nil
	case bool:
		return strconv.AppendBool(dst, v), nil
	case int:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case uint64:
		return strconv.AppendUint(dst, v, 10), nil
	case float64:
		return appendFloat(dst, v)
	case []string:
		if v == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i, s := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, s)
		}
		return append(dst, ']'), nil
	case map[string]any:
		if v == nil {
			return append(dst, "null"...), nil
		}
		return appendDetails(dst, v, depth+1)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

func appendTime(dst []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y >= 10000 {
		return nil, errors.New("event time year outside of range [0,9999]")
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), nil
}

// appendFloat formats like encoding/json.
func appendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, errors.New("unsupported float value " + strconv.FormatFloat(f, 'g', -1, 64))
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping like encoding/json
// (including HTML-sensitive characters, U+2028/U+2029 and invalid UTF-8).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			// Each invalid byte becomes U+FFFD, written as UTF-8 as
			// encoding/json writes it since Go 1.27 (it wrote the
			// escape \ufffd before).
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
