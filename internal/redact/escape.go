package redact

import (
	"bytes"
	"sort"
)

// JSON escapes.
//
// A secret an upstream or a log writer spells with JSON escapes
// ("gk_\u0061bc…", "\u002d\u002d\u002d\u002d\u002dBEGIN", "pass\u0077ord",
// "hooks.slack.com\/services\/…") is found by scanning a decoded view of
// the input: every escape token below becomes the one character it
// stands for, everything else is copied. The matchers run on the view;
// what they find is mapped back to the original bytes, which are what the
// output is made of, so an escape is either replaced whole or kept byte
// for byte and the document stays valid JSON.
//
// An escape token is a run of one or two backslashes (one level of JSON
// inside a JSON string: "\\u0061"), not preceded by another backslash,
// followed by "/" or by "u" and four hex digits naming an ASCII character
// a matcher looks for: tab, line feed, carriage return or a printable
// character other than '"' and '\'. Quotes and backslashes stay as they
// are, so the JSON structure the JSON matchers read is the original one;
// escapes of other characters (non-ASCII look-alikes such as "\uff47")
// are not decoded, because no matcher looks for them. Input without a
// backslash is its own view and costs one bytes.IndexByte per scan.

// maxEscRun is the longest backslash run that starts an escape token.
const maxEscRun = 2

// maxView bounds, in original bytes, what a matcher sees past a candidate
// in an escaped view, so that a decoded candidate is decided within the
// stream's hold-back bound however many escapes spell it. Without escapes
// every matcher decides well within it. The margin leaves room for an
// undecided escape at the end of the input.
const maxView = MaxLookbehind - 64

// escDecodes lists the characters an escape token may stand for.
var escDecodes = class(func(c byte) bool {
	return c == '\t' || c == '\n' || c == '\r' || c >= 0x20 && c < 0x7f && c != '"' && c != '\\'
})

var hexVal = func() *[256]int8 {
	var t [256]int8
	for i := range t {
		t[i] = -1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = int8(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = int8(c - 'a' + 10)
		t[c-'a'+'A'] = int8(c - 'a' + 10)
	}
	return &t
}()

// Answers of escapeAt.
const (
	escNone = iota // no escape token here
	escTok         // an escape token
	escMore        // cannot tell without more input
)

// escapeAt looks at d[s:], where d[s] is a backslash not preceded by
// another one, and returns the escape token there: its length and the
// character it stands for.
func escapeAt(d []byte, s int, eof bool) (n int, c byte, st int) {
	k := s
	for k < len(d) && d[k] == '\\' {
		k++
		if k-s > maxEscRun {
			return 0, 0, escNone
		}
	}
	if k == len(d) {
		return 0, 0, more(eof)
	}
	if d[k] == '/' {
		return k + 1 - s, '/', escTok
	}
	if d[k] != 'u' {
		return 0, 0, escNone
	}
	v := 0
	for h := k + 1; h <= k+4; h++ {
		if h == len(d) {
			return 0, 0, more(eof)
		}
		x := hexVal[d[h]]
		if x < 0 {
			return 0, 0, escNone
		}
		v = v<<4 | int(x)
	}
	if v >= 0x80 || !escDecodes[v] {
		return 0, 0, escNone
	}
	return k + 5 - s, byte(v), escTok
}

func more(eof bool) int {
	if eof {
		return escNone
	}
	return escMore
}

// escTok records one escape token in a view: the index of the character
// it became, and how many original bytes the view has dropped up to and
// including it.
type escToken struct {
	at, drop int32
}

// view is the decoded form of a scan's input.
type view struct {
	d    []byte     // what the matchers see
	toks []escToken // escape tokens in d, in order; none: d is the input
	n    int        // input bytes d stands for (less than the input when it ends in an undecided escape)
	cur  int        // orig's position in toks
	ecur int        // end's position in toks
}

// scratch is memory a stream lends its scans for views.
type scratch struct {
	d    []byte
	toks []escToken
}

// decode builds the view of src. prev is the input byte before src (0 at
// the start). Unless eof, an escape token that src cuts short is left out
// of the view, and n says where it starts.
func decode(src []byte, prev byte, eof bool, sc *scratch) view {
	// Find the first escape token; most input has none.
	s, from := -1, 0
	for from < len(src) {
		j := bytes.IndexByte(src[from:], '\\')
		if j < 0 {
			break
		}
		j += from
		if j > 0 && src[j-1] == '\\' || j == 0 && prev == '\\' {
			from = j + 1 // inside a run: not a token start
			continue
		}
		_, _, st := escapeAt(src, j, eof)
		if st == escMore {
			return view{d: src[:j], n: j}
		}
		if st == escTok {
			s = j
			break
		}
		from = j + 1
	}
	if s < 0 {
		return view{d: src, n: len(src)}
	}
	var d []byte
	var toks []escToken
	if sc != nil {
		d, toks = sc.d[:0], sc.toks[:0]
	}
	if cap(d) < len(src) {
		d = make([]byte, 0, len(src))
	}
	d = append(d, src[:s]...)
	drop := 0
	i := s
	for i < len(src) {
		j := bytes.IndexByte(src[i:], '\\')
		if j < 0 {
			d = append(d, src[i:]...)
			i = len(src)
			break
		}
		j += i
		d = append(d, src[i:j]...)
		i = j
		if j > 0 && src[j-1] == '\\' {
			d = append(d, '\\')
			i++
			continue
		}
		n, c, st := escapeAt(src, j, eof)
		switch st {
		case escMore:
			goto done
		case escNone:
			d = append(d, '\\')
			i++
		case escTok:
			drop += n - 1
			toks = append(toks, escToken{at: int32(len(d)), drop: int32(drop)})
			d = append(d, c)
			i += n
		}
	}
done:
	if sc != nil {
		sc.d, sc.toks = d, toks
	}
	return view{d: d, toks: toks, n: i}
}

// orig maps an index of the view to the input: the start of the input
// bytes view byte j stands for (j == len(v.d): v.n). Scans ask in
// increasing order, near the previous answer, so it walks from there.
func (v *view) orig(j int) int {
	if len(v.toks) == 0 {
		return j
	}
	k := v.cur // tokens before view byte j
	for k > 0 && int(v.toks[k-1].at) >= j {
		k--
	}
	for k < len(v.toks) && int(v.toks[k].at) < j {
		k++
	}
	v.cur = k
	if k == 0 {
		return j
	}
	return j + int(v.toks[k-1].drop)
}

// end returns the end of what a matcher at view index i may see: the
// largest index whose input offset lies within maxView bytes of i's.
// Calls come with i increasing.
func (v *view) end(i int) int {
	if len(v.toks) == 0 {
		return len(v.d)
	}
	target := v.orig(i) + maxView
	if v.n <= target {
		return len(v.d)
	}
	// Between tokens k-1 and k the view maps to the input at a fixed
	// distance; find the last such stretch starting within target.
	k := v.ecur
	for k < len(v.toks) && int(v.toks[k].at)+1+int(v.toks[k].drop) <= target {
		k++
	}
	v.ecur = k
	drop, stop := 0, len(v.d)
	if k > 0 {
		drop = int(v.toks[k-1].drop)
	}
	if k < len(v.toks) {
		stop = int(v.toks[k].at)
	}
	return min(stop, target-drop)
}

// escaped reports whether view bytes [i, j) hold an escape token.
func (v *view) escaped(i, j int) bool {
	if len(v.toks) == 0 {
		return false
	}
	k := sort.Search(len(v.toks), func(x int) bool { return int(v.toks[x].at) >= i })
	return k < len(v.toks) && int(v.toks[k].at) < j
}
