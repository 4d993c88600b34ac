package gateway

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/gatehouse/gatehouse"
)

// CheckPath refuses any request path that some common upstream could read
// as another path than Gatehouse does. raw is the path as sent (escaped
// form). It refuses:
//
//   - dot segments, also hidden behind path parameters ("..;x", Tomcat's
//     "/.;/"), and empty segments ("//", "/;x/" which Tomcat reads as "//");
//   - backslashes, control characters, spaces, '#', '?' and their
//     percent-encodings, and percent-encodings of '/', '.', '?' and '%'
//     (double encoding); malformed escapes, IIS's "%u002e" among them;
//   - a segment ending in '.', ' ' or '+' (Windows and IIS drop trailing
//     dots and spaces; some decoders read '+' as a space);
//   - after percent-decoding: invalid UTF-8 (overlong forms of '/' and '.'
//     included), text that Unicode NFKC normalisation would change
//     (fullwidth letters, dots and slashes), characters whose upper or lower
//     case is ASCII (the Kelvin sign, 'ſ', 'ı', 'İ'), format characters
//     (soft hyphen, zero-width and bidi marks) and look-alikes of '/', '\'
//     and '.' that code-page "best fit" conversions map to them.
//
// Path parameters (';', encoded or not) pass CheckPath; the route decides
// whether it takes them (see router.ambiguous). Whatever passes names
// exactly one path, so the route, the scope check and the upstream all see
// the same thing.
func CheckPath(raw string) error {
	if raw == "" || raw[0] != '/' {
		return errPath("must start with /")
	}
	nonASCII := false
	segStart, param := 1, -1 // param: the segment's first ';' or "%3B"
	for i := 1; i < len(raw); i++ {
		c := raw[i]
		if c > ' ' && c < 0x7f && c != '%' && c != '/' && c != ';' && c != '\\' && c != '#' && c != '?' {
			continue // the common case: a plain path byte
		}
		switch {
		case c >= 0x80:
			nonASCII = true
		case c < 0x20 || c == 0x7f:
			return errPath("control character in path")
		case c == ' ':
			return errPath("space in path")
		case c == '\\':
			return errPath("backslash in path")
		case c == '#' || c == '?':
			return errPath("'#' or '?' in path")
		case c == ';':
			if param < 0 {
				param = i
			}
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
			case d == '?' || d == '#':
				return errPath("encoded '?' or '#' in path")
			case d < 0x20 || d == 0x7f:
				return errPath("encoded control character in path")
			case d >= 0x80:
				nonASCII = true
			case d == ';' && param < 0:
				param = i
			}
			i += 2
		default: // '/'
			if i == segStart {
				return errPath("empty path segment (//)")
			}
			if err := checkSegment(raw, segStart, i, param); err != nil {
				return err
			}
			segStart, param = i+1, -1
		}
	}
	if segStart < len(raw) {
		if err := checkSegment(raw, segStart, len(raw), param); err != nil {
			return err
		}
	}
	if nonASCII {
		return checkUnicode(raw)
	}
	return nil
}

// checkSegment checks the non-empty raw segment raw[start:end], whose
// first path parameter starts at param (-1: none).
func checkSegment(raw string, start, end, param int) error {
	if param >= 0 {
		if param == start {
			return errPath("path parameter without a segment name (;)")
		}
		end = param
	}
	seg := raw[start:end]
	if seg == "." || seg == ".." {
		return errPath("dot segment in path")
	}
	switch last := seg[len(seg)-1]; {
	case last == '.' || last == '+':
		return errPath("path segment ends with '.' or '+'")
	case len(seg) >= 3 && seg[len(seg)-3] == '%':
		if d := unhex(seg[len(seg)-2])<<4 | unhex(seg[len(seg)-1]); d == ' ' || d == '+' {
			return errPath("path segment ends with a space or '+'")
		}
	}
	return nil
}

// checkUnicode checks the decoded form of a path that has non-ASCII bytes.
func checkUnicode(raw string) error {
	dec, err := url.PathUnescape(raw)
	if err != nil {
		return errPath("malformed percent-encoding")
	}
	if !utf8.ValidString(dec) {
		return errPath("invalid or overlong UTF-8")
	}
	for _, r := range dec {
		if r < utf8.RuneSelf {
			continue
		}
		if unicode.Is(unicode.Cf, r) {
			return errPath("invisible format character in path")
		}
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < utf8.RuneSelf {
				return errPath("character that case-folds to ASCII in path")
			}
		}
		if u, l := unicode.ToUpper(r), unicode.ToLower(r); u < utf8.RuneSelf || l < utf8.RuneSelf {
			return errPath("character that case-folds to ASCII in path")
		}
		if strings.ContainsRune(separatorLookalikes, r) {
			return errPath("look-alike of '/', '\\' or '.' in path")
		}
	}
	if !norm.NFKC.IsNormalString(dec) {
		return errPath("path is not in Unicode NFKC form (fullwidth or compatibility characters)")
	}
	return nil
}

// separatorLookalikes are characters NFKC leaves alone but that IDNA
// mapping or Windows "best fit" code-page conversion turn into '/', '\' or
// '.': division and fraction slashes, big solidi, set minus, the yen and won
// signs (the backslash of Japanese and Korean code pages) and the
// ideographic full stop.
const separatorLookalikes = "\u2215\u2044\u29F8\u29F5\u29F9\u2216\u00A5\u20A9\u3002"

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
