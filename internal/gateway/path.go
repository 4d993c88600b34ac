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
//   - backslashes, control characters, spaces, '#' and their
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
	segStart := 1
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return errPath("control character in path")
		case c == ' ':
			return errPath("space in path")
		case c == '\\':
			return errPath("backslash in path")
		case c == '#':
			return errPath("'#' in path")
		case c >= 0x80:
			nonASCII = true
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
			}
			i += 2
		case c == '/' && i > 0:
			if i == segStart {
				return errPath("empty path segment (//)")
			}
			if err := checkSegment(raw[segStart:i]); err != nil {
				return err
			}
			segStart = i + 1
		}
	}
	if segStart < len(raw) {
		if err := checkSegment(raw[segStart:]); err != nil {
			return err
		}
	}
	if nonASCII {
		return checkUnicode(raw)
	}
	return nil
}

// checkSegment checks one non-empty raw segment.
func checkSegment(seg string) error {
	if i := paramStart(seg); i >= 0 {
		if i == 0 {
			return errPath("path parameter without a segment name (;)")
		}
		seg = seg[:i]
	}
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

// paramStart is the index of the first ';' or "%3B" in a raw segment, or -1.
func paramStart(seg string) int {
	for i := 0; i < len(seg); i++ {
		switch seg[i] {
		case ';':
			return i
		case '%':
			if i+2 < len(seg) && seg[i+1] == '3' && (seg[i+2] == 'b' || seg[i+2] == 'B') {
				return i
			}
			i += 2
		}
	}
	return -1
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
