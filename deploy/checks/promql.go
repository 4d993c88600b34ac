package main

import (
	"strings"
	"unicode"
)

// selector is one series selector found in a PromQL expression: the
// metric name and the label names its matchers use.
type selector struct {
	name   string
	labels []string
}

// promqlKeywords are the identifiers of PromQL that are neither metric
// names nor functions (functions are told apart by the '(' after them).
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "offset": true, "bool": true,
	"inf": true, "nan": true, "atan2": true,
	// Aggregations, which may be followed by `by (…)` rather than '('.
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

// groupingKeywords take a parenthesised list of label names.
var groupingKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// selectors returns the series selectors of a PromQL expression. It is a
// lexer, not a parser: enough to find which metrics and labels an
// expression reads (strings, durations, ranges, grouping lists and
// Grafana's $variables are skipped), so that rules and dashboards can be
// checked against what Gatehouse exports. promtool checks the syntax.
func selectors(expr string) []selector {
	var out []selector
	s := []rune(expr)
	i := 0
	skipSpace := func() {
		for i < len(s) && unicode.IsSpace(s[i]) {
			i++
		}
	}
	// skipTo moves past the rune that closes the bracket at s[i].
	skipTo := func(closer rune) {
		for i++; i < len(s) && s[i] != closer; i++ {
			if s[i] == '"' || s[i] == '\'' || s[i] == '`' {
				skipString(s, &i)
			}
		}
		i++
	}
	for i < len(s) {
		c := s[i]
		switch {
		case c == '#': // a comment, to the end of the line
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			skipString(s, &i)
			i++
		case c == '$': // a Grafana variable: $name or ${name}
			i++
			if i < len(s) && s[i] == '{' {
				skipTo('}')
			} else {
				for i < len(s) && isIdent(s[i]) {
					i++
				}
			}
		case c == '[': // a range or subquery: durations only
			skipTo(']')
		case c == '{': // matchers of a selector without a name
			sel := selector{}
			i = matchers(s, i, &sel)
			for _, l := range sel.labels {
				if l == "__name__" {
					sel.name = "(by __name__)"
				}
			}
			out = append(out, sel)
		case unicode.IsDigit(c) || (c == '.' && i+1 < len(s) && unicode.IsDigit(s[i+1])):
			for i < len(s) && (isIdent(s[i]) || s[i] == '.') {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(s) && isIdent(s[i]) {
				i++
			}
			word := string(s[start:i])
			skipSpace()
			switch {
			case groupingKeywords[strings.ToLower(word)]:
				if i < len(s) && s[i] == '(' {
					skipTo(')')
				}
			case promqlKeywords[strings.ToLower(word)]:
			case i < len(s) && s[i] == '(': // a function or an aggregation
			default:
				sel := selector{name: word}
				if i < len(s) && s[i] == '{' {
					i = matchers(s, i, &sel)
				}
				out = append(out, sel)
			}
		default:
			i++
		}
	}
	return out
}

// matchers reads the label matchers of the selector whose '{' is at
// s[i] into sel and returns the index after the '}'.
func matchers(s []rune, i int, sel *selector) int {
	for i++; i < len(s) && s[i] != '}'; {
		switch c := s[i]; {
		case c == '"' || c == '\'' || c == '`':
			skipString(s, &i)
			i++
		case isIdentStart(c):
			start := i
			for i < len(s) && isIdent(s[i]) {
				i++
			}
			sel.labels = append(sel.labels, string(s[start:i]))
		default:
			i++
		}
	}
	return i + 1
}

// skipString moves i to the closing quote of the string that starts at
// s[i] (escapes honoured, except in raw `strings`).
func skipString(s []rune, i *int) {
	q := s[*i]
	for *i++; *i < len(s) && s[*i] != q; *i++ {
		if s[*i] == '\\' && q != '`' {
			*i++
		}
	}
}

func isIdentStart(c rune) bool { return c == '_' || c == ':' || unicode.IsLetter(c) }
func isIdent(c rune) bool      { return isIdentStart(c) || unicode.IsDigit(c) }
