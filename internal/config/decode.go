package config

import (
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/agnivade/levenshtein"
	"gopkg.in/yaml.v3"

	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

// decoder walks a config file's YAML tree against the Config type before
// it is decoded, so that every problem of form — an unknown key, a value of
// the wrong kind, a duplicate key — is found at once, with its line and the
// field's path, and said in the config's terms (never a Go type name).
// Each value it refuses is replaced by null (the field keeps its default)
// and each unknown or duplicate key removed, so that the tree then decodes
// and the rest of the file is validated too. It records the line of every
// field it passes, for the problems found later.
type decoder struct {
	problems problems
	lines    map[string]int
}

// limitShape is how a ratelimit.Limit is written.
type limitShape struct {
	Requests int           `yaml:"requests"`
	Per      time.Duration `yaml:"per"`
}

// shapes are types decoded by their own UnmarshalYAML from a mapping,
// walked as the plain struct they read.
var shapes = map[reflect.Type]reflect.Type{
	reflect.TypeFor[ratelimit.Limit](): reflect.TypeFor[limitShape](),
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// value checks n against t at path and reports whether it decodes.
func (d *decoder) value(n *yaml.Node, t reflect.Type, path string) bool {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = n.Line
	}
	if n.ShortTag() == "!!null" {
		return true
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s, ok := shapes[t]; ok {
		t = s
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return d.scalar(n, t, path)
	}
	switch t.Kind() {
	case reflect.Struct:
		fs := fields(t)
		want := "must be a mapping of settings (key: value)"
		if t == reflect.TypeFor[limitShape]() {
			want = "must be a limit such as {requests: 60, per: 1m}"
		}
		return d.mapping(n, path, want, func(key *yaml.Node) (reflect.Type, bool, []string) {
			f, ok := fs[key.Value]
			if !ok {
				return nil, false, fieldNames(t)
			}
			return f, true, nil
		})
	case reflect.Map:
		return d.mapping(n, path, "must be a mapping such as {name: value}", func(*yaml.Node) (reflect.Type, bool, []string) {
			return t.Elem(), true, nil
		})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.add(n, path, "must be a list such as [a, b], not %s", shown(n))
			return false
		}
		for i, e := range n.Content {
			if !d.value(e, t.Elem(), item(path, i)) {
				setNull(e)
			}
		}
		return true
	}
	return d.scalar(n, t, path)
}

// mapping checks a mapping node's keys and values; elem gives the type of
// a key's value, or false and the known keys for an unknown one.
func (d *decoder) mapping(n *yaml.Node, path, want string, elem func(key *yaml.Node) (reflect.Type, bool, []string)) bool {
	if n.Kind != yaml.MappingNode {
		if path == "" {
			want = "the file " + want
		}
		d.add(n, path, "%s, not %s", want, shown(n))
		return false
	}
	seen := map[string]int{}
	kept := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			// <<: *defaults merges another mapping of the same settings.
			if d.merge(v, path, want, elem) {
				kept = append(kept, k, v)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.add(k, path, "keys must be plain names, not %s", shown(k))
			continue
		}
		at := field(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			d.add(k, at, "is set twice (first on line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		t, ok, known := elem(k)
		if !ok {
			d.lines[at] = k.Line
			d.add(k, at, "unknown key%s", suggest(k.Value, known))
			continue
		}
		d.lines[at] = k.Line
		if !d.value(v, t, at) {
			setNull(v)
		}
		kept = append(kept, k, v)
	}
	n.Content = kept
	return true
}

// merge checks the value of a merge key: a mapping, or a list of them.
func (d *decoder) merge(v *yaml.Node, path, want string, elem func(*yaml.Node) (reflect.Type, bool, []string)) bool {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind == yaml.SequenceNode {
		for _, e := range v.Content {
			if !d.merge(e, path, want, elem) {
				return false
			}
		}
		return true
	}
	if v.Kind != yaml.MappingNode {
		d.add(v, path, "<< merges a mapping, not %s", shown(v))
		return false
	}
	return d.mapping(v, path, want, elem)
}

// scalar checks a value that YAML decodes from one scalar.
func (d *decoder) scalar(n *yaml.Node, t reflect.Type, path string) bool {
	want := expected(t)
	if n.Kind != yaml.ScalarNode {
		d.add(n, path, "%s, not %s", want, shown(n))
		return false
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		d.add(n, path, "%s, not %s", want, shown(n))
		return false
	}
	return true
}

func (d *decoder) add(n *yaml.Node, path, format string, args ...any) {
	d.problems.add(path, format, args...)
	d.problems[len(d.problems)-1].Line = n.Line
}

// expected says what a scalar of type t must be.
func expected(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[time.Duration]():
		return "must be a duration such as 30s"
	case reflect.TypeFor[Duration]():
		return "must be a duration such as 30s, 36h or 90d"
	case reflect.TypeFor[ByteSize]():
		return "must be a size such as 1MiB, 64KiB or 65536"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "must be true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "must be a whole number"
	case reflect.Float32, reflect.Float64:
		return "must be a number"
	case reflect.String:
		return "must be a string"
	}
	return "has the wrong form"
}

// shown describes a node in a message: a scalar as written, quoted when
// it is a string.
func shown(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if r := []rune(v); len(r) > 40 {
		v = string(r[:40]) + "…"
	}
	// Shown as written only when YAML resolved it to a number, a boolean
	// or null; anything else is quoted: a string, and a value under any
	// other tag ("!x", "!!0"), which may say anything, across lines too.
	switch n.ShortTag() {
	case "!!int", "!!float", "!!bool", "!!null":
		if !strings.ContainsFunc(v, unicode.IsControl) {
			return v
		}
	}
	return strconv.Quote(v)
}

func setNull(n *yaml.Node) {
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

// fields maps the YAML keys of struct type t to their types, with the
// fields of inlined structs.
func fields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for _, f := range reflect.VisibleFields(t) {
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case strings.Contains(opts, "inline"):
			for k, v := range fields(f.Type) {
				m[k] = v
			}
		case len(f.Index) > 1:
			// Reached through an inlined struct: listed above.
		case name != "":
			m[name] = f.Type
		default:
			m[strings.ToLower(f.Name)] = f.Type
		}
	}
	return m
}

// fieldNames lists t's YAML keys in declaration order.
func fieldNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case strings.Contains(opts, "inline"):
			names = append(names, fieldNames(f.Type)...)
		case name != "":
			names = append(names, name)
		default:
			names = append(names, strings.ToLower(f.Name))
		}
	}
	return names
}

// suggest is " (did you mean "x"?)" for the known key nearest to key,
// if one is near enough to be a typo, else the list of known keys.
func suggest(key string, known []string) string {
	best, bestD := "", 0
	for _, k := range known {
		d := levenshtein.ComputeDistance(strings.ToLower(key), k)
		if best == "" || d < bestD {
			best, bestD = k, d
		}
	}
	prefix := len(key) >= 3 && (strings.HasPrefix(key, best) || strings.HasPrefix(best, key))
	if best != "" && (bestD <= len(key)/3+1 || prefix) {
		return " (did you mean " + strconv.Quote(best) + "?)"
	}
	return "; known keys here: " + strings.Join(known, ", ")
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxProblem places a YAML syntax error ("yaml: line 3: did not find
// expected key") at its line.
func syntaxProblem(name string, err error) Problem {
	msg := err.Error()
	p := Problem{File: name}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	p.Message = "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")
	return p
}
