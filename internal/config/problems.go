package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration: where it is and what.
type Problem struct {
	// File is the config file, or the environment variable that set the
	// value (GATEHOUSE_LISTEN); "" for the built-in defaults.
	File string
	// Line is the line of the field in File (1-based), 0 when the field is
	// not in the file (a default, an environment variable).
	Line int
	// Path names the field, dotted, with [i] for list items:
	// routes[0].timeout. "" for the file as a whole.
	Path    string
	Message string
}

// String formats p as "FILE:LINE: path.to.field: message", leaving out
// what is not known.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteString(":" + strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is everything found wrong with one configuration, in the order
// of the file's lines. As an error it reads one problem per line.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// AsProblems returns the problems err carries, or nil.
func AsProblems(err error) Problems {
	ps, _ := errors.AsType[Problems](err)
	return ps
}

// With returns ps and those of more that are not about a field ps already
// has a problem with (or one inside or around it), sorted by line: a
// field reported once as unreadable is not reported again as missing.
func (ps Problems) With(more Problems) Problems {
	out := slices.Clone(ps)
	for _, p := range more {
		if !slices.ContainsFunc(ps, func(q Problem) bool { return related(p.Path, q.Path) }) {
			out = append(out, p)
		}
	}
	out.Sort()
	return out
}

// Sort orders ps by line, keeping the order of problems on one line.
func (ps Problems) Sort() {
	slices.SortStableFunc(ps, func(a, b Problem) int { return a.Line - b.Line })
}

// related reports whether one of two field paths is the other or inside
// it ("routes[0]" and "routes[0].timeout"). The file as a whole ("") is
// related to nothing.
func related(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	return a == b || strings.HasPrefix(b, a) && (b[len(a)] == '.' || b[len(a)] == '[')
}

// problems collects the problems of a validation, by field path; Config
// places them in the file.
type problems []Problem

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// field joins a path and an item: field("routes[0]", "name").
func field(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// item is path[i].
func item(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// Problem returns a problem with the field at path of c, placed at the
// line that set it, or at the environment variable that did.
func (c *Config) Problem(path, format string, args ...any) Problem {
	p := Problem{File: c.Source, Path: path, Message: fmt.Sprintf(format, args...)}
	for q := path; q != ""; q = parent(q) {
		if v, ok := c.env[q]; ok {
			p.File = v
			return p
		}
		if l, ok := c.lines[q]; ok {
			p.Line = l
			return p
		}
	}
	return p
}

// parent strips a path's last field or index: routes[0].tls → routes[0] → routes → "".
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// place gives each problem collected for c its file and line.
func (c *Config) place(ps problems) Problems {
	out := make(Problems, len(ps))
	for i, p := range ps {
		out[i] = c.Problem(p.Path, "%s", p.Message)
	}
	return out
}
