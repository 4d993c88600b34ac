package gateway

import (
	"strings"

	"github.com/gatehouse/gatehouse"
)

// CheckPath refuses any request path that could be read two ways: dot
// segments, empty segments, backslashes, control characters, and
// percent-encodings of '/', '\', '.', '%' (double encoding) or control
// characters. Whatever passes names exactly one path, so the route, the
// scope check and the upstream all see the same thing. raw is the path as
// sent (escaped form).
func CheckPath(raw string) error {
	if raw == "" || raw[0] != '/' {
		return errPath("must start with /")
	}
	segStart := 1
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return errPath("control character in path")
		case c == '\\':
			return errPath("backslash in path")
		case c == '%':
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return errPath("malformed percent-encoding")
			}
			d := unhex(raw[i+1])<<4 | unhex(raw[i+2])
			switch {
			case d == '/' || d == '\\':
				return errPath("encoded slash or backslash in path")
			case d == '.':
				return errPath("encoded dot in path")
			case d == '%':
				return errPath("double percent-encoding in path")
			case d < 0x20 || d == 0x7f:
				return errPath("encoded control character in path")
			}
			i += 2
		case c == '/' && i > 0:
			if err := checkSegment(raw[segStart:i]); err != nil {
				return err
			}
			if i == segStart {
				return errPath("empty path segment (//)")
			}
			segStart = i + 1
		}
	}
	if segStart <= len(raw) {
		return checkSegment(raw[segStart:])
	}
	return nil
}

func checkSegment(seg string) error {
	if i := strings.IndexByte(seg, ';'); i >= 0 {
		seg = seg[:i]
	}
	if seg == "." || seg == ".." {
		return errPath("dot segment in path")
	}
	return nil
}

func errPath(msg string) error {
	return gatehouse.Errorf(gatehouse.EINVALID, "invalid request path: %s", msg)
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
