package redact

import (
	"bytes"
	"encoding/base64"
	"hash/crc32"
)

// The matchers below each look at d, which starts at a trigger byte, and
// answer stNo, stMatch or stNeed. They never look further than their kind's
// length limit, and answer stNeed only when they ran off the end of d and
// eof is false, so a stream can always decide once it holds MaxLookbehind
// bytes past the candidate.

// Byte classes.
var (
	isAlnum  = class(func(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' })
	isB64URL = class(func(c byte) bool { return isAlnum[c] || c == '-' || c == '_' })
	isB32Low = class(func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '2' && c <= '7' })
	isUpNum  = class(func(c byte) bool { return c >= 'A' && c <= 'Z' || isDigit(c) })
	isAWSSec = class(func(c byte) bool { return isAlnum[c] || c == '/' || c == '+' || c == '=' })
	isSlack  = class(func(c byte) bool { return isAlnum[c] || c == '-' })
	isHook   = class(func(c byte) bool { return isAlnum[c] || c == '/' || c == '_' || c == '-' })
	isGHPAT  = class(func(c byte) bool { return isAlnum[c] || c == '_' })
	isPEMHdr = class(func(c byte) bool { return c >= 'A' && c <= 'Z' || isDigit(c) || c == ' ' })
	isPEMRun = class(func(c byte) bool {
		return isAlnum[c] || c == '+' || c == '/' || c == '=' || c == '\r' || c == '\n' || c == '\\'
	})
	isJSONWS = class(func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' })

	isToken68 = class(func(c byte) bool {
		return isAlnum[c] || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '='
	})
	isB64Std = class(func(c byte) bool { return isAlnum[c] || c == '+' || c == '/' || c == '=' })

	isParamStart = class(func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' })
	isParamName  = class(func(c byte) bool { return isAlnum[c] || c == '_' || c == '-' || c == '.' })
	isParamVal   = class(func(c byte) bool {
		return c > 0x20 && c != 0x7f && !bytes.ContainsRune([]byte("&#\"'<>\\,;"), rune(c))
	})

	jsonNamePrev = class(func(c byte) bool { return c == '{' || c == ',' || c == 0 || isJSONWS[c] })
)

func class(f func(byte) bool) *[256]bool {
	var t [256]bool
	for i := range t {
		t[i] = f(byte(i))
	}
	return &t
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// lit reports whether d starts with s: 1 yes, 0 no, -1 d is a proper
// prefix of s.
func lit(d []byte, s string) int {
	n := min(len(d), len(s))
	if string(d[:n]) != s[:n] {
		return 0
	}
	if n < len(s) {
		return -1
	}
	return 1
}

// litResult turns a lit answer of -1 or 0 into a result.
func litResult(v int, eof bool) result {
	if v < 0 {
		return needOrNo(eof)
	}
	return no
}

// run returns the end of the run of t-bytes in d starting at k, scanning at
// most up to limit, and whether it stopped because d ended.
func run(d []byte, k, limit int, t *[256]bool) (end int, short bool) {
	lim := min(len(d), limit)
	for k < lim && t[d[k]] {
		k++
	}
	return k, k == len(d) && k < limit
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// matchGatehouse: g[a-z]{1,4}_ [a-z2-7]{16} _ [base62]{32} [base62]{6},
// checksum verified.
func matchGatehouse(d []byte, eof bool) result {
	k := 1
	for k < len(d) && k <= 5 && d[k] >= 'a' && d[k] <= 'z' {
		k++
	}
	if k == len(d) {
		return needOrNo(eof)
	}
	if k == 1 || k == 6 || d[k] != '_' {
		return no
	}
	k++
	start := k
	total := start + 16 + 1 + 32 + 6
	for ; k < total; k++ {
		if k == len(d) {
			return needOrNo(eof)
		}
		c := d[k]
		switch off := k - start; {
		case off < 16:
			if !isB32Low[c] {
				return no
			}
		case off == 16:
			if c != '_' {
				return no
			}
		default:
			if !isAlnum[c] {
				return no
			}
		}
	}
	sum := crc32.ChecksumIEEE(d[:total-6])
	for i := total - 1; i >= total-6; i-- {
		if d[i] != base62[sum%62] {
			return no
		}
		sum /= 62
	}
	return result{st: stMatch, k: kGatehouse, re: total}
}

// matchGitHub: gh[pousr]_ + 30+ alnum, or github_pat_ + 22+ [alnum_].
func matchGitHub(d []byte, eof bool) result {
	if len(d) < 4 {
		if lit(d, "gh") != 0 || lit(d, "github_pat_") != 0 {
			return needOrNo(eof)
		}
		return no
	}
	if d[1] == 'h' && d[3] == '_' && (d[2] == 'p' || d[2] == 'o' || d[2] == 'u' || d[2] == 's' || d[2] == 'r') {
		end, short := run(d, 4, 4+maxTokenRun, isAlnum)
		if short && !eof {
			return need
		}
		if end-4 < 30 {
			return no
		}
		return result{st: stMatch, k: kGitHub, re: end}
	}
	if v := lit(d, "github_pat_"); v != 1 {
		return litResult(v, eof)
	}
	end, short := run(d, 11, 11+maxTokenRun, isGHPAT)
	if short && !eof {
		return need
	}
	if end-11 < 22 {
		return no
	}
	return result{st: stMatch, k: kGitHub, re: end}
}

// matchJWT: eyJ header "." payload ["." segment]... with a header that
// decodes to a JSON object naming "alg".
func matchJWT(d []byte, eof bool) result {
	if v := lit(d, "eyJ"); v != 1 {
		return litResult(v, eof)
	}
	const maxHeader = 1024
	h, short := run(d, 3, maxHeader+1, isB64URL)
	if short {
		return needOrNo(eof)
	}
	if h > maxHeader || h == len(d) || d[h] != '.' {
		return no
	}
	var buf [maxHeader * 3 / 4]byte
	n, err := base64.RawURLEncoding.Decode(buf[:], d[:h])
	if err != nil || !bytes.Contains(buf[:n], []byte(`"alg"`)) {
		return no
	}
	// Payload, signature and, for JWE, two more segments.
	k := h + 1
	segs := 1
	for segs < 5 {
		end, short := run(d, k, maxJWT, isB64URL)
		if short && !eof {
			return need
		}
		if segs == 1 && end == k {
			return no // empty payload
		}
		segs++
		k = end
		if k >= maxJWT {
			// Longer than any real JWT: hide what is in reach.
			return result{st: stMatch, k: kJWT, re: k}
		}
		if k == len(d) || d[k] != '.' {
			break
		}
		if k+1 == len(d) && !eof {
			return need
		}
		if k+1 < len(d) && isB64URL[d[k+1]] {
			k++
			continue
		}
		if segs == 2 { // "header.payload." : empty signature
			k++
			segs++
		}
		break
	}
	if segs < 3 {
		return no
	}
	return result{st: stMatch, k: kJWT, re: k}
}

// matchAWSKey: (AKIA|ASIA)[A-Z0-9]{16} as a whole word.
func matchAWSKey(d []byte, eof bool) result {
	v := lit(d, "AKIA")
	if v == 0 {
		v = lit(d, "ASIA")
	}
	if v != 1 {
		return litResult(v, eof)
	}
	end, short := run(d, 4, 21, isUpNum)
	if short && !eof {
		return need
	}
	if end != 20 {
		return no
	}
	if len(d) > 20 && isAlnum[d[20]] {
		return no
	}
	return result{st: stMatch, k: kAWSKey, re: 20}
}

// matchAWSSecret: aws[_-]?secret[_-]?access[_-]?key ["']? \s* [=:] \s* ["']?
// then 40 [A-Za-z0-9/+=].
func matchAWSSecret(d []byte, eof bool) result {
	k := 0
	for i, w := range [...]string{"aws", "secret", "access", "key"} {
		if i > 0 && k < len(d) && (d[k] == '_' || d[k] == '-') {
			k++
		}
		for j := 0; j < len(w); j, k = j+1, k+1 {
			if k == len(d) {
				return needOrNo(eof)
			}
			if d[k]|0x20 != w[j] {
				return no
			}
		}
	}
	if k == len(d) {
		return needOrNo(eof)
	}
	if d[k] == '"' || d[k] == '\'' {
		k++
	}
	k = skipSpace(d, k, 8)
	if k == len(d) {
		return needOrNo(eof)
	}
	if d[k] != '=' && d[k] != ':' {
		return no
	}
	k = skipSpace(d, k+1, 8)
	if k == len(d) {
		return needOrNo(eof)
	}
	if d[k] == '"' || d[k] == '\'' {
		k++
	}
	vs := k
	end, short := run(d, vs, vs+41, isAWSSec)
	if short && !eof {
		return need
	}
	if end-vs != 40 {
		return no
	}
	return result{st: stMatch, k: kAWSSecret, rs: vs, re: end}
}

func skipSpace(d []byte, k, max int) int {
	lim := min(len(d), k+max)
	for k < lim && (d[k] == ' ' || d[k] == '\t') {
		k++
	}
	return k
}

// matchSlackToken: xox[baprs]- + 10+ [A-Za-z0-9-].
func matchSlackToken(d []byte, eof bool) result {
	if v := lit(d, "xox"); v != 1 {
		return litResult(v, eof)
	}
	if len(d) < 5 {
		return needOrNo(eof)
	}
	switch d[3] {
	case 'b', 'p', 'a', 'r', 's':
	default:
		return no
	}
	if d[4] != '-' {
		return no
	}
	end, short := run(d, 5, 5+maxTokenRun, isSlack)
	if short && !eof {
		return need
	}
	if end-5 < 10 {
		return no
	}
	return result{st: stMatch, k: kSlack, re: end}
}

// matchSlackHook: hooks.slack.com/services/ + 10+ [A-Za-z0-9/_-].
func matchSlackHook(d []byte, eof bool) result {
	const p = "hooks.slack.com/services/"
	if v := lit(d, p); v != 1 {
		return litResult(v, eof)
	}
	end, short := run(d, len(p), len(p)+maxTokenRun, isHook)
	if short && !eof {
		return need
	}
	if end-len(p) < 10 {
		return no
	}
	return result{st: stMatch, k: kSlack, re: end}
}

// matchPEM: -----BEGIN <label containing PRIVATE KEY>----- through the next
// -----END ...----- within maxPEM bytes. Without an END line it fails
// closed: it redacts the BEGIN line and the base64 body after it.
func matchPEM(d []byte, eof bool) result {
	const begin = "-----BEGIN "
	if v := lit(d, begin); v != 1 {
		return litResult(v, eof)
	}
	k, short := run(d, len(begin), len(begin)+80, isPEMHdr)
	if short {
		return needOrNo(eof)
	}
	if v := lit(d[k:], "-----"); v != 1 {
		return litResult(v, eof)
	}
	if !bytes.Contains(d[len(begin):k], []byte("PRIVATE KEY")) {
		return no
	}
	k += 5
	lim := min(len(d), maxPEM)
	more := lim == len(d) && lim < maxPEM && !eof // more input could matter
	// Look for the END line, but not past the next BEGIN line: a block
	// without END ends there, which keeps a run of BEGIN lines linear.
	for p := k; ; p += 5 {
		i := bytes.Index(d[p:lim], []byte("-----"))
		if i < 0 {
			if more {
				return need
			}
			break
		}
		p += i
		if v := lit(d[p:lim], "-----BEGIN "); v == 1 {
			break
		} else if v < 0 && more {
			return need
		}
		v := lit(d[p:lim], "-----END ")
		if v < 0 && more {
			return need
		}
		if v != 1 {
			p -= 4 // the next "-----" may overlap this one
			continue
		}
		e := p + len("-----END ")
		hdr, short := run(d, e, e+80, isPEMHdr)
		if short && !eof {
			return need
		}
		v = lit(d[hdr:], "-----")
		if v < 0 && !eof {
			return need
		}
		// A real END label is non-empty and has no outer blanks; anything
		// else may be swallowing the dashes of the next line.
		if v == 1 && hdr > e && d[e] != ' ' && d[hdr-1] != ' ' {
			return result{st: stMatch, k: kPEM, re: hdr + 5}
		}
		p -= 4
	}
	// No END line in reach: redact the body that follows.
	end, short := run(d, k, maxPEM, isPEMRun)
	if short && !eof {
		return need
	}
	return result{st: stMatch, k: kPEM, re: end}
}

// matchJSON: "name" : "value" where name is a secret-like member name;
// replaces the characters of value.
func (r *Redactor) matchJSON(d []byte, eof bool) result {
	k := 1
	lim := min(len(d), maxJSONKey+2)
	for k < lim && d[k] != '"' {
		if d[k] == '\\' || d[k] < 0x20 {
			return no
		}
		k++
	}
	if k == len(d) && k < maxJSONKey+2 {
		return needOrNo(eof)
	}
	if k == lim {
		return no
	}
	name := d[1:k]
	k = skipJSONSpace(d, k+1)
	if k == len(d) {
		return needOrNo(eof)
	}
	if d[k] != ':' || !r.secretName(name) {
		return no
	}
	k = skipJSONSpace(d, k+1)
	if k == len(d) {
		return needOrNo(eof)
	}
	if d[k] != '"' {
		return no
	}
	vs := k + 1
	lim = min(len(d), vs+maxJSONValue)
	esc := false
	for k = vs; k < lim; k++ {
		switch c := d[k]; {
		case esc:
			esc = false
		case c == '\\':
			esc = true
		case c == '"':
			if k == vs {
				return no // empty value: nothing to hide
			}
			return result{st: stMatch, k: kJSON, rs: vs, re: k}
		}
	}
	if k == len(d) && k < vs+maxJSONValue && !eof {
		return need
	}
	// Value longer than the limit, or input ended inside it: redact what
	// we have, keeping any escape sequence whole.
	if esc {
		k--
	}
	if k == vs {
		return no
	}
	return result{st: stMatch, k: kJSON, rs: vs, re: k}
}

// matchEscapedJSON is matchJSON one level down: \"name\" : \"value\"
// inside a JSON string. It replaces the characters of value, which ends at
// a \" that is not escaped in the inner document.
func (r *Redactor) matchEscapedJSON(d []byte, eof bool) result {
	if v := lit(d, `\"`); v != 1 {
		return litResult(v, eof)
	}
	k := 2
	lim := min(len(d), maxJSONKey+2)
	for k < lim && d[k] != '\\' {
		if d[k] == '"' || d[k] < 0x20 {
			return no
		}
		k++
	}
	if k == len(d) && k < maxJSONKey+2 {
		return needOrNo(eof)
	}
	if k == lim {
		return no
	}
	name := d[2:k]
	if v := lit(d[k:], `\"`); v != 1 {
		return litResult(v, eof)
	}
	k = skipJSONSpace(d, k+2)
	if k == len(d) {
		return needOrNo(eof)
	}
	if d[k] != ':' || !r.secretName(name) {
		return no
	}
	k = skipJSONSpace(d, k+1)
	if v := lit(d[k:], `\"`); v != 1 {
		return litResult(v, eof)
	}
	vs := k + 2
	lim = min(len(d), vs+maxJSONValue)
	innerEsc := false // the inner document's last character was an escaping '\'
	for k = vs; k < lim; k++ {
		c := d[k]
		if c == '"' {
			return no // ends the outer string: not what we took it for
		}
		if c != '\\' {
			innerEsc = false
			continue
		}
		// An outer escape pair: \\ is an inner '\', \" an inner '"'.
		if k+1 == lim {
			break
		}
		k++
		switch {
		case d[k] == '\\':
			innerEsc = !innerEsc
		case d[k] == '"' && !innerEsc:
			if k-1 == vs {
				return no // empty value
			}
			return result{st: stMatch, k: kJSON, rs: vs, re: k - 1}
		default:
			innerEsc = false
		}
	}
	if k >= len(d)-1 && lim == len(d) && len(d) < vs+maxJSONValue && !eof {
		return need
	}
	// Too long, or the input ended: hide what we have, ending on a whole
	// outer escape pair.
	end := vs
	for j := vs; j < k && j < lim; j++ {
		if d[j] == '\\' {
			if j+1 >= k || j+1 >= lim {
				break
			}
			j++
		}
		end = j + 1
	}
	if end == vs {
		return no
	}
	return result{st: stMatch, k: kJSON, rs: vs, re: end}
}

func skipJSONSpace(d []byte, k int) int {
	lim := min(len(d), k+32)
	for k < lim && isJSONWS[d[k]] {
		k++
	}
	return k
}

// secretName reports whether a JSON member name (raw, unescaped) names a
// secret.
func (r *Redactor) secretName(name []byte) bool {
	// Quick reject on the last two name bytes, separators skipped.
	var tail uint16
	for i, got := len(name)-1, 0; i >= 0 && got < 2; i-- {
		c := name[i]
		if c == '_' || c == '-' || c == '.' {
			continue
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		tail |= uint16(c) << (8 * got)
		got++
	}
	if r.jsonTail[tail>>6]&(1<<(tail&63)) == 0 {
		return false
	}
	if len(name) > maxJSONKey {
		name = name[len(name)-maxJSONKey:] // only the suffix matters
	}
	var buf [maxJSONKey]byte
	n := 0
	for _, c := range name {
		switch {
		case c == '_' || c == '-' || c == '.':
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	s := buf[:n]
	for _, x := range jsonKeyExempt {
		if bytes.HasSuffix(s, []byte(x)) {
			return false
		}
	}
	for _, x := range r.jsonKeys {
		if bytes.HasSuffix(s, []byte(x)) {
			return true
		}
	}
	return false
}

// matchCard: 13–19 digits (first 2–6), contiguous or grouped by one
// consistent separator (first group 4, others 3–6), Luhn-valid, not inside
// a longer digit/letter run or a decimal number. Grouped runs followed by
// more groups (an expiry date, say) are tried at each group boundary,
// longest first.
func matchCard(d []byte, eof bool) result {
	var digits [19]byte
	var ends, counts [19]int
	nb := 0
	n, k, sep := 0, 0, byte(0)
	for gi := 0; ; gi++ {
		g := 0
		over := false
		for k < len(d) && isDigit(d[k]) {
			if n == len(digits) {
				over = true
				break
			}
			digits[n] = d[k] - '0'
			n++
			g++
			k++
		}
		if over {
			if gi == 0 {
				return no // longer digit run
			}
			break
		}
		if k == len(d) && !eof {
			return need
		}
		if gi > 0 && (g < 3 || g > 6) {
			break
		}
		ends[nb], counts[nb] = k, n
		nb++
		if k == len(d) || d[k] != ' ' && d[k] != '-' {
			break
		}
		if gi == 0 && g != 4 || gi > 0 && d[k] != sep {
			break
		}
		if k+1 == len(d) {
			if !eof {
				return need
			}
			break
		}
		if !isDigit(d[k+1]) {
			break
		}
		sep = d[k]
		k++
	}
	for b := nb - 1; b >= 0; b-- {
		end, cnt := ends[b], counts[b]
		if cnt < 13 || cnt > 19 {
			continue
		}
		if end < len(d) {
			c := d[end]
			if isAlnum[c] {
				continue
			}
			if c == '.' {
				if end+1 == len(d) && !eof {
					return need
				}
				if end+1 < len(d) && isDigit(d[end+1]) {
					continue
				}
			}
		}
		if luhn(digits[:cnt]) {
			return result{st: stMatch, k: kCard, re: end}
		}
	}
	return no
}

func luhn(digits []byte) bool {
	sum := 0
	for i := range digits {
		v := int(digits[len(digits)-1-i])
		if i%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

// Limits for credentials after an HTTP auth scheme.
const (
	maxBearer = 4096
	maxBasic  = 1024
)

// matchAuthScheme: "Bearer <token>" and "Basic <base64 of user:password>",
// scheme in any case, as in an Authorization header echoed into a body or
// a log. Only the credential is replaced. A bearer token that is itself a
// known kind (JWT, Gatehouse key, …) is reported as that kind; any other
// must be at least 16 characters with both letters and digits, so prose
// ("Bearer authentication") is left alone. Basic credentials must decode
// to text containing ':'.
func (r *Redactor) matchAuthScheme(d []byte, eof bool) result {
	const bearer, basic = "bearer", "basic"
	scheme := bearer
	if len(d) > 1 && d[1]|0x20 == 'a' {
		scheme = basic
	}
	if !r.enabled[kindOf(scheme)] {
		return no
	}
	k := 0
	for ; k < len(scheme); k++ {
		if k == len(d) {
			return needOrNo(eof)
		}
		if d[k]|0x20 != scheme[k] {
			return no
		}
	}
	ts := k
	for ts < len(d) && ts < k+4 && d[ts] == ' ' {
		ts++
	}
	if ts == len(d) {
		return needOrNo(eof)
	}
	if ts == k || d[ts] == ' ' {
		return no
	}
	if scheme == basic {
		end, short := run(d, ts, ts+maxBasic+1, isB64Std)
		if short && !eof {
			return need
		}
		n := end - ts
		if n < 8 || n > maxBasic {
			return no
		}
		var buf [maxBasic * 3 / 4]byte
		m, err := base64.StdEncoding.Decode(buf[:], d[ts:end])
		if err != nil || bytes.IndexByte(buf[:m], ':') < 1 {
			return no
		}
		return result{st: stMatch, k: kBasic, rs: ts, re: end}
	}
	// A token of a known kind keeps its own name.
	if inner := r.matchToken(d[ts:], eof); inner.st != stNo {
		if inner.st == stMatch {
			inner.rs += ts
			inner.re += ts
		}
		return inner
	}
	end, short := run(d, ts, ts+maxBearer, isToken68)
	if short && !eof {
		return need
	}
	if end-ts >= maxBearer {
		return result{st: stMatch, k: kBearer, rs: ts, re: end} // fail closed
	}
	if end-ts < 16 {
		return no
	}
	var letter, digit bool
	for _, c := range d[ts:end] {
		letter = letter || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		digit = digit || isDigit(c)
	}
	if !letter || !digit {
		return no
	}
	return result{st: stMatch, k: kBearer, rs: ts, re: end}
}

func kindOf(scheme string) kind {
	if scheme == "basic" {
		return kBasic
	}
	return kBearer
}

// matchToken tries the credential kinds that can follow "Bearer " and
// replaces the whole of what they match.
func (r *Redactor) matchToken(d []byte, eof bool) result {
	var res result
	switch d[0] {
	case 'e':
		if r.enabled[kJWT] {
			res = matchJWT(d, eof)
		}
	case 'g':
		if r.enabled[kGatehouse] {
			if res = matchGatehouse(d, eof); res.st != stNo {
				return res
			}
		}
		if r.enabled[kGitHub] {
			res = matchGitHub(d, eof)
		}
	case 'x':
		if r.enabled[kSlack] {
			res = matchSlackToken(d, eof)
		}
	}
	if res.st == stMatch && res.rs != 0 {
		return no
	}
	return res
}

// maxParamValue limits a query or form parameter value.
const maxParamValue = 1024

// matchParam: name=value in a query string, fragment or form body, or an
// environment-style line, the name starting at d[ns] (after '?', '&', '#',
// ';' or a newline, or at the start of the input) and naming a secret
// under the json_secret rules (access_token, client_secret, DB_PASSWORD,
// …). Only the value is replaced.
func (r *Redactor) matchParam(d []byte, ns int, eof bool) result {
	k, short := run(d, ns, ns+maxJSONKey+1, isParamName)
	if short {
		return needOrNo(eof)
	}
	if k == ns || k-ns > maxJSONKey || k == len(d) || d[k] != '=' {
		return no
	}
	if !r.secretName(d[ns:k]) {
		return no
	}
	if r.enabled[kAWSSecret] {
		// AWS_SECRET_ACCESS_KEY=… has a kind of its own.
		if res := matchAWSSecret(d[ns:], eof); res.st != stNo {
			if res.st == stMatch {
				res.rs += ns
				res.re += ns
			}
			return res
		}
	}
	vs := k + 1
	// A value of a known kind keeps its own name.
	if vs < len(d) {
		if inner := r.matchToken(d[vs:], eof); inner.st != stNo {
			if inner.st == stMatch {
				inner.rs += vs
				inner.re += vs
			}
			return inner
		}
	} else if !eof {
		return need
	}
	end, short := run(d, vs, vs+maxParamValue, isParamVal)
	if short && !eof {
		return need
	}
	if end == vs {
		return no
	}
	return result{st: stMatch, k: kQuery, rs: vs, re: end}
}
