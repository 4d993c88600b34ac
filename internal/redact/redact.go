// Package redact finds secrets in text streams and replaces them with
// "[REDACTED:kind]". The proxy applies it to response bodies of routes
// with `redact: true` and the log and audit stream writers apply it to
// everything they write (SOC 2 C1.1).
//
// # What is detected
//
//   - gatehouse_key: Gatehouse credentials, "g" + 1–4 lowercase letters +
//     "_" + 16 [a-z2-7] + "_" + 32 base62 + 6 base62 checksum (CRC-32 IEEE
//     of everything before it). This covers API keys (gk_), admin tokens
//     (gadm_), PATs (gpat_) and client secrets (gcs_). The checksum must
//     verify, so random look-alikes are left alone.
//   - jwt: "eyJ…" header.payload[.signature[.…]] in base64url, whose header
//     decodes to a JSON object with an "alg" member (JWS and JWE).
//   - aws_access_key: AKIA or ASIA + 16 [A-Z0-9], as a whole word.
//   - aws_secret_key: a 40-character [A-Za-z0-9/+=] value after a label
//     aws_secret_access_key (any case, "_", "-" or nothing between the
//     words), then optional quote, "=" or ":", optional quote. Only the
//     value is replaced.
//   - github_token: ghp_, gho_, ghu_, ghs_, ghr_ + at least 30 [A-Za-z0-9];
//     github_pat_ + at least 22 [A-Za-z0-9_].
//   - slack_token: xoxb-, xoxp-, xoxa-, xoxr-, xoxs- + at least 10
//     [A-Za-z0-9-]; webhook URLs hooks.slack.com/services/… (the scheme
//     is kept).
//   - private_key: PEM blocks "-----BEGIN … PRIVATE KEY…-----" through the
//     matching "-----END …-----" line (RSA, EC, OPENSSH, ENCRYPTED, PGP …).
//   - json_secret: the string value of a JSON member whose name, lowercased
//     and without "_", "-" and ".", ends with password, passwd, passphrase,
//     secret, token, apikey, authorization, privatekey, secretkey,
//     accesskey or credentials (page/next/continuation/sync tokens are
//     exempt). Only the characters between the quotes are replaced, so the
//     document stays valid JSON. Non-string values are left alone. The same
//     applies one level down, to JSON escaped inside a JSON string
//     ({\"password\":\"x\"}), as found in logged bodies.
//   - bearer_token: the credential after "Bearer " (any case), as in an
//     echoed Authorization header; at least 16 token characters mixing
//     letters and digits. A JWT, Gatehouse, GitHub or Slack token there is
//     reported under its own kind.
//   - basic_auth: the credential after "Basic " when it is base64 of text
//     containing ':' (user:password).
//   - query_secret: the value of name=value where the name is secret-like
//     (same rules as json_secret: access_token, client_secret, password,
//     DB_PASSWORD …) in a query string, fragment or form body (after '?',
//     '&', '#' or ';') or at the start of a line (environment dumps). A
//     value of a known kind keeps its own kind.
//   - card_number: 13–19 digits starting with 2–6, either contiguous or in
//     groups (first group of 4, then groups of 3–6) separated by one space
//     or one dash used consistently, passing the Luhn check, and not part of
//     a longer run of digits, letters or a decimal number. A card number
//     that is the bare numeric value of a JSON member ("pan": 4111…) is
//     replaced by the quoted marker, so the document stays valid JSON.
//
// Every kind is also found when written with JSON escapes, as an upstream
// or a log writer may spell it: "\uXXXX" for any of its characters
// ("gk_\u0061bc…", "\u0067\u006b\u005f…", "eyJ\u0068…",
// "\u002d\u002d\u002d\u002d\u002dBEGIN"), in a JSON member name or a label
// ("pass\u0077ord", "\u0070assword", "\u0042earer"), "\/" for "/"
// ("hooks.slack.com\/services\/…"), and the same one level down, in JSON
// inside a JSON string ("\\u0061", "\\/"). Detection sees the decoded
// text; the replacement covers the original bytes of the whole secret,
// escapes included, and never cuts an escape, so a JSON document stays
// valid. Only escapes of the ASCII characters the detectors look for are
// decoded (tab, newline, carriage return and printable ASCII other than
// '"' and '\'): escapes of non-ASCII look-alikes ("\uff47", a full-width
// 'g') are left alone, as is a run of three or more backslashes. Input
// without a backslash takes the usual path at no extra cost.
//
// # Streaming guarantee
//
// A [Writer] or [Reader] produces exactly the same output as
// [Redactor.Bytes] on the whole input, however the input is split into
// writes or reads. To do so it holds back the unfinished tail that could
// still be the start of a secret and nothing else; the tail never exceeds
// [MaxLookbehind] (65 KiB) plus the size of one write. The longest secret
// handled per kind is: private_key 64 KiB, jwt and json_secret values
// 16 KiB, bearer_token 4 KiB, basic_auth and query_secret values 1 KiB,
// GitHub and Slack tokens 255 characters after the prefix, the
// fixed-length kinds their length. These limits count decoded characters;
// a secret written with escapes is in addition cut after MaxLookbehind
// less 64 original bytes, so the bound on the tail is the same with
// or without escapes. A PEM block, JWT, JSON value, bearer token, query
// value, GitHub or Slack token longer than its limit is still redacted up
// to the limit (fail closed), but the part beyond it is passed through.
//
// Streams ([Redactor.Writer], [Redactor.Reader], [RedactResponse]) suit
// response bodies; [Redactor.String] and [Redactor.Bytes] suit single log
// lines; [Redactor.Handler] wraps an slog.Handler.
package redact

import (
	"strings"
	"unsafe"
)

// Kind names a class of secret; it appears in the replacement text.
type Kind string

// The kinds of secret the Redactor detects.
const (
	KindGatehouseKey Kind = "gatehouse_key"
	KindJWT          Kind = "jwt"
	KindAWSAccessKey Kind = "aws_access_key"
	KindAWSSecretKey Kind = "aws_secret_key"
	KindGitHubToken  Kind = "github_token"
	KindSlackToken   Kind = "slack_token"
	KindPrivateKey   Kind = "private_key"
	KindJSONSecret   Kind = "json_secret"
	KindCardNumber   Kind = "card_number"
	KindBearerToken  Kind = "bearer_token"
	KindBasicAuth    Kind = "basic_auth"
	KindQuerySecret  Kind = "query_secret"
)

// kinds lists every kind, indexed by its internal id.
var kinds = [kindCount]Kind{
	KindJSONSecret, KindGatehouseKey, KindGitHubToken, KindJWT,
	KindAWSAccessKey, KindAWSSecretKey, KindSlackToken, KindPrivateKey,
	KindCardNumber, KindBearerToken, KindBasicAuth, KindQuerySecret,
}

// Kinds returns every kind the Redactor knows.
func Kinds() []Kind { return append([]Kind(nil), kinds[:]...) }

// Length limits. See the package documentation.
const (
	// MaxLookbehind is the most a stream holds back beyond one write: the
	// longest candidate (a PEM block) plus room for its END line.
	MaxLookbehind = maxPEM + 1024

	maxPEM       = 64 << 10
	maxJWT       = 16 << 10
	maxJSONValue = 16 << 10
	maxJSONKey   = 64
	maxTokenRun  = 255
)

// Default JSON member-name suffixes (normalised: lowercase, no "_-.").
var defaultJSONKeys = []string{
	"password", "passwd", "passphrase", "secret", "token", "apikey",
	"authorization", "privatekey", "secretkey", "accesskey", "credentials",
}

// Names ending in "token" that are not secrets (pagination cursors).
var jsonKeyExempt = []string{"pagetoken", "nexttoken", "continuationtoken", "synctoken"}

// Redactor finds and replaces secrets. It is immutable once built by New and
// safe for concurrent use; streams made from it ([Redactor.Writer],
// [Redactor.Reader]) are not shared between goroutines unless documented.
// The zero Redactor redacts nothing; build one with New.
type Redactor struct {
	enabled  [kindCount]bool
	trigger  [256]bool       // bytes a secret (or its JSON member name) may start with
	follow   [256]*[256]bool // per trigger byte, the bytes that may follow it
	pairs    [1024]uint64    // bitset over byte pairs: trigger followed by an allowed byte
	markers  [kindCount][]byte
	jsonKeys []string
	jsonTail *[1024]uint64 // bitset of the last two bytes of jsonKeys
}

// Option configures New.
type Option func(*options)

type options struct {
	without  []Kind
	jsonKeys []string
}

// WithoutKinds turns off detection of the given kinds.
func WithoutKinds(kinds ...Kind) Option {
	return func(o *options) { o.without = append(o.without, kinds...) }
}

// WithJSONKeys adds JSON member-name suffixes whose string values are
// redacted as json_secret. Names are matched like the defaults: lowercase,
// with "_", "-" and "." removed ("session_id" matches "sessionId").
func WithJSONKeys(names ...string) Option {
	return func(o *options) { o.jsonKeys = append(o.jsonKeys, names...) }
}

// New returns a Redactor detecting every kind in [Kinds] unless options say
// otherwise.
func New(opts ...Option) *Redactor {
	var o options
	for _, f := range opts {
		f(&o)
	}
	r := &Redactor{}
	for i := range r.enabled {
		r.enabled[i] = true
	}
	for _, k := range o.without {
		if id, ok := kindID(k); ok {
			r.enabled[id] = false
		}
	}
	for id, k := range kinds {
		r.markers[id] = []byte("[REDACTED:" + string(k) + "]")
	}
	r.jsonKeys = append(r.jsonKeys, defaultJSONKeys...)
	for _, n := range o.jsonKeys {
		if n = normaliseKey(n); n != "" {
			r.jsonKeys = append(r.jsonKeys, n)
		}
	}
	// set marks the bytes of first as triggers for kind id, which may be
	// followed by any byte of next (any byte if next is empty).
	set := func(id kind, first, next string) {
		if !r.enabled[id] {
			return
		}
		for i := 0; i < len(first); i++ {
			f := r.follow[first[i]]
			if f == nil {
				f = new([256]bool)
				r.follow[first[i]] = f
				r.trigger[first[i]] = true
			}
			for c := 0; c < 256; c++ {
				if next == "" || strings.IndexByte(next, byte(c)) >= 0 {
					f[c] = true
				}
			}
		}
	}
	const lower = "abcdefghijklmnopqrstuvwxyz"
	const paramStart = lower + "ABCDEFGHIJKLMNOPQRSTUVWXYZ_"
	set(kJSON, `"`, "")
	set(kJSON, `\`, `"`)
	set(kGatehouse, "g", lower)
	set(kGitHub, "g", "hi")
	set(kJWT, "e", "y")
	set(kAWSKey, "A", "KS")
	set(kAWSSecret, "aA", "wW")
	set(kSlack, "x", "o")
	set(kSlack, "h", "o")
	set(kPEM, "-", "-")
	set(kCard, "23456", "0123456789")
	set(kBearer, "Bb", "eE")
	set(kBasic, "Bb", "aA")
	set(kQuery, "?&#;\n", paramStart) // isParamStart; the line-start check in scan agrees
	for c1, f := range r.follow {
		if f == nil {
			continue
		}
		for c2, ok := range f {
			if ok {
				w := uint16(c1)<<8 | uint16(c2)
				r.pairs[w>>6] |= 1 << (w & 63)
			}
		}
	}
	r.jsonTail = new([1024]uint64)
	for _, k := range r.jsonKeys {
		for c := 0; c < 256; c++ {
			t := uint16(c)<<8 | uint16(k[len(k)-1])
			if len(k) > 1 {
				t = uint16(k[len(k)-2])<<8 | uint16(k[len(k)-1])
			}
			r.jsonTail[t>>6] |= 1 << (t & 63)
		}
	}
	return r
}

// Bytes returns src with every secret replaced. src is not modified; the
// result is a new slice even when nothing was found.
func (r *Redactor) Bytes(src []byte) []byte {
	out := make([]byte, 0, len(src))
	r.scan(&out, src, scanState{lineStart: true, eof: true})
	return out
}

// String returns s with every secret replaced. It returns s itself when
// nothing was found, without allocating unless s holds JSON escapes.
func (r *Redactor) String(s string) string {
	// Read-only view of s; scan never writes to its input.
	b := unsafe.Slice(unsafe.StringData(s), len(s)) // #nosec G103 -- read-only view of a string's bytes, not retained
	if !r.Contains(b) {
		return s
	}
	return string(r.Bytes(b))
}

// Contains reports whether src holds anything the Redactor would replace
// (as [Redactor.Bytes] would). It does not allocate unless src holds JSON
// escapes that it must decode.
func (r *Redactor) Contains(src []byte) bool {
	_, _, _, found := r.scan(nil, src, scanState{lineStart: true, eof: true})
	return found
}

type kind uint8

const (
	kJSON kind = iota
	kGatehouse
	kGitHub
	kJWT
	kAWSKey
	kAWSSecret
	kSlack
	kPEM
	kCard
	kBearer
	kBasic
	kQuery
	kindCount
)

func kindID(k Kind) (kind, bool) {
	for i, v := range kinds {
		if v == k {
			return kind(i), true
		}
	}
	return 0, false
}

func normaliseKey(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || c == '-' || c == '.':
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

type status uint8

const (
	stNo    status = iota // no secret starts here
	stMatch               // data[rs:re] is a secret of kind k
	stNeed                // cannot tell without more input
)

type result struct {
	st     status
	k      kind
	rs, re int // relative to the candidate position
}

var (
	no   = result{st: stNo}
	need = result{st: stNeed}
)

// needOrNo is the answer when a matcher runs off the end of the input.
func needOrNo(eof bool) result {
	if eof {
		return no
	}
	return need
}

// scanState is what a scan needs to know about the input before data.
type scanState struct {
	hist      []byte   // the decoded input just before data (up to histLen bytes)
	lineStart bool     // data starts a line (or the input): try name=value there
	eof       bool     // data ends the input
	sc        *scratch // memory for the escaped view, or nil
}

// scan appends the redacted form of src to out and returns how many bytes
// of src it consumed, the decoded form of what it consumed (whose tail is
// the next scan's hist), and whether src ends in a newline whose next line
// the following scan must check (see matchParam). Unless st.eof, it stops
// at the first position where a secret may start but cannot be decided
// yet, or at an escape src cuts short. With out nil it only looks for the
// first secret and reports whether it found one.
//
// The matchers see the decoded view of src (see decode); the output is
// made of src's own bytes, the replaced spans mapped back to it.
func (r *Redactor) scan(out *[]byte, src []byte, st scanState) (consumed int, dec []byte, endLine, found bool) {
	var prevIn byte
	if len(st.hist) > 0 {
		prevIn = st.hist[len(st.hist)-1]
	}
	v := decode(src, prevIn, st.eof, st.sc)
	data := v.d
	emitted, i := 0, 0
	eof := st.eof
	if st.lineStart && len(data) > 0 && r.enabled[kQuery] && isParamStart[data[0]] {
		// A form body, query string or env line starts without a separator.
		res := r.matchParam(data[:v.end(0)], 0, eof || v.end(0) < len(data))
		switch res.st {
		case stNeed:
			return 0, nil, false, false
		case stMatch:
			if out == nil {
				return 0, nil, false, true
			}
			*out = append(*out, src[:v.orig(res.rs)]...)
			*out = append(*out, r.markers[res.k]...)
			emitted, i = res.re, res.re
		}
	}
	pairs := &r.pairs
	for i < len(data) {
		// Fast path: skip byte pairs that start nothing.
		for i+1 < len(data) {
			w := uint16(data[i])<<8 | uint16(data[i+1])
			if pairs[w>>6]&(1<<(w&63)) != 0 {
				break
			}
			i++
		}
		if i == len(data) {
			break
		}
		c := data[i]
		if i == len(data)-1 && !r.trigger[c] {
			i++
			continue
		}
		var p byte
		if i > 0 {
			p = data[i-1]
		} else if len(st.hist) > 0 {
			p = st.hist[len(st.hist)-1]
		}
		if isDigit(c) && (isAlnum[p] || p == '.') {
			i++ // inside a number: not where a card number starts
			continue
		}
		if c == '\n' && i == len(data)-1 {
			endLine = true // the next line is checked by the next scan
		}
		e, meof := len(data), eof
		if len(v.toks) != 0 {
			// An escaped view: a matcher sees at most maxView input bytes.
			e = v.end(i)
			meof = eof || e < len(data)
		}
		res := r.match(data[i:e], p, meof)
		switch res.st {
		case stNo:
			i++
		case stNeed:
			if out != nil {
				*out = append(*out, src[v.orig(emitted):v.orig(i)]...)
			}
			return v.orig(i), data[:i], false, false
		case stMatch:
			if out == nil {
				return 0, nil, false, true
			}
			*out = append(*out, src[v.orig(emitted):v.orig(i+res.rs)]...)
			if res.k == kCard && (len(v.toks) == 0 || !v.escaped(i, i+res.re)) && jsonValueBefore(data[:i], st.hist) {
				// A bare number in JSON: keep the document valid. (Escaped
				// digits are inside a string.)
				*out = append(*out, '"')
				*out = append(*out, r.markers[res.k]...)
				*out = append(*out, '"')
			} else {
				*out = append(*out, r.markers[res.k]...)
			}
			emitted = i + res.re
			i = emitted
		}
	}
	if out != nil {
		*out = append(*out, src[v.orig(emitted):v.n]...)
	}
	return v.n, data, endLine, false
}

// histLen is how much input before a candidate a stream remembers.
const histLen = 16

// jsonValueBefore reports whether a candidate is the value of a JSON
// member: the bytes before it (in before, then hist, within histLen bytes)
// end with '"', ':' and optional blanks.
func jsonValueBefore(before, hist []byte) bool {
	want := byte(':')
	for n := 0; n < histLen; n++ {
		var c byte
		switch {
		case n < len(before):
			c = before[len(before)-1-n]
		case n-len(before) < len(hist):
			c = hist[len(hist)-1-(n-len(before))]
		default:
			return false
		}
		if isJSONWS[c] {
			continue
		}
		if c != want {
			return false
		}
		if want == '"' {
			return true
		}
		want = '"'
	}
	return false
}

// match tries every enabled matcher that can start with d[0]. The first
// answer other than stNo wins, so a candidate that cannot be decided yet
// blocks later, lower-priority ones.
func (r *Redactor) match(d []byte, prev byte, eof bool) result {
	var res result
	switch c := d[0]; c {
	case 'B', 'b':
		if !isAlnum[prev] {
			res = r.matchAuthScheme(d, eof)
		}
	case '?', '&', '#', ';', '\n':
		// After a final newline the next scan checks the next line.
		if r.enabled[kQuery] && (c != '\n' || len(d) > 1) {
			res = r.matchParam(d, 1, eof)
		}
	case '"':
		// A member name follows '{' or ',' and maybe white space.
		if r.enabled[kJSON] && jsonNamePrev[prev] {
			res = r.matchJSON(d, eof)
		}
	case '\\':
		// JSON inside a JSON string, as in a logged request body.
		if r.enabled[kJSON] && jsonNamePrev[prev] {
			res = r.matchEscapedJSON(d, eof)
		}
	case 'g':
		if r.enabled[kGatehouse] {
			if res = matchGatehouse(d, eof); res.st != stNo {
				return res
			}
		}
		if r.enabled[kGitHub] && !isAlnum[prev] {
			res = matchGitHub(d, eof)
		}
	case 'e':
		if r.enabled[kJWT] {
			res = matchJWT(d, eof)
		}
	case 'A', 'a':
		if isAlnum[prev] {
			return no
		}
		if c == 'A' && r.enabled[kAWSKey] {
			if res = matchAWSKey(d, eof); res.st != stNo {
				return res
			}
		}
		if r.enabled[kAWSSecret] {
			res = matchAWSSecret(d, eof)
		}
	case 'x':
		if r.enabled[kSlack] && !isAlnum[prev] {
			res = matchSlackToken(d, eof)
		}
	case 'h':
		if r.enabled[kSlack] && !isAlnum[prev] {
			res = matchSlackHook(d, eof)
		}
	case '-':
		if r.enabled[kPEM] {
			res = matchPEM(d, eof)
		}
	default:
		if r.enabled[kCard] && !isAlnum[prev] && prev != '.' {
			res = matchCard(d, eof)
		}
	}
	return res
}
