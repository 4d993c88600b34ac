package audit_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/audit"
)

// emittedTypes reads the module's source (tests left out) and returns
// every audit event type it can record: the Type of each gatehouse.Event
// built, followed through the constants, variables, struct fields and
// function parameters it comes from, to the string literals at the end.
// Where a Type cannot be followed to literals it fails, naming the spot:
// an event type must be knowable from the code.
func emittedTypes(t *testing.T, root string) map[string][]string {
	t.Helper()
	s := &scanner{fset: token.NewFileSet(), consts: map[string]string{}, seen: map[string]bool{}}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (n == "testdata" || strings.HasPrefix(n, ".") || n == "bench") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(s.fset, path, nil, 0)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		if s.pkgs == nil {
			s.pkgs = map[string][]*ast.File{}
		}
		s.pkgs[dir] = append(s.pkgs[dir], f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir, files := range s.pkgs {
		for _, f := range files {
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, sp := range g.Specs {
					vs := sp.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							if v, ok := stringLit(vs.Values[i]); ok {
								s.consts[dir+"."+n.Name] = v
								s.consts[f.Name.Name+"."+n.Name] = v
							}
						}
					}
				}
			}
		}
	}
	found := map[string][]string{}
	var problems []string
	for dir, files := range s.pkgs {
		for _, f := range files {
			for _, d := range f.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				c := scope{dir: dir, file: f, fn: fn}
				eventFunc := mentionsEvent(fn)
				ast.Inspect(fn.Body, func(n ast.Node) bool {
					var exprs []ast.Expr
					switch n := n.(type) {
					case *ast.CompositeLit:
						if isEvent(n.Type, f) {
							for _, el := range n.Elts {
								if kv, ok := el.(*ast.KeyValueExpr); ok && isIdent(kv.Key, "Type") {
									exprs = append(exprs, kv.Value)
								}
							}
						}
					case *ast.AssignStmt:
						if !eventFunc || len(n.Lhs) != len(n.Rhs) {
							break
						}
						for i, l := range n.Lhs {
							if sel, ok := l.(*ast.SelectorExpr); ok && sel.Sel.Name == "Type" {
								exprs = append(exprs, n.Rhs[i])
							}
						}
					}
					for _, e := range exprs {
						vals, err := s.eval(e, c)
						if err != nil {
							problems = append(problems, fmt.Sprintf("%s: %v", s.fset.Position(e.Pos()), err))
						}
						for _, v := range vals {
							rel, _ := filepath.Rel(root, s.fset.Position(e.Pos()).Filename)
							found[v] = append(found[v], rel)
						}
					}
					return true
				})
			}
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Errorf("cannot tell the audit event type at %s", p)
	}
	return found
}

type scanner struct {
	fset   *token.FileSet
	pkgs   map[string][]*ast.File // by directory
	consts map[string]string      // "dir.Name" and "pkgname.Name"
	seen   map[string]bool        // parameters and fields being followed
}

// scope is where an expression is evaluated.
type scope struct {
	dir  string
	file *ast.File
	fn   *ast.FuncDecl
}

// eval returns every string value e can have.
func (s *scanner) eval(e ast.Expr, c scope) ([]string, error) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if v, ok := stringLit(e); ok {
			return []string{v}, nil
		}
	case *ast.ParenExpr:
		return s.eval(e.X, c)
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			break
		}
		xs, err := s.eval(e.X, c)
		if err != nil {
			return nil, err
		}
		ys, err := s.eval(e.Y, c)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, x := range xs {
			for _, y := range ys {
				out = append(out, x+y)
			}
		}
		return out, nil
	case *ast.Ident:
		if v, ok := s.consts[c.dir+"."+e.Name]; ok {
			return []string{v}, nil
		}
		if i := paramIndex(c.fn, e.Name); i >= 0 {
			return s.callers(c, i)
		}
		return s.locals(e.Name, c)
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && imports(c.file, x.Name) {
			if v, ok := s.consts[x.Name+"."+e.Sel.Name]; ok {
				return []string{v}, nil
			}
			break
		}
		if typ, ok := structFields[c.fn.Name.Name+" "+s.text(e)]; ok {
			return s.literals(typ, e.Sel.Name)
		}
		return s.field(e.Sel.Name, c)
	}
	return nil, fmt.Errorf("%s is not a string the code spells out", s.text(e))
}

// structFields names the struct type of a field an event type is read
// from, where the field is set in another package: function and
// expression → type. Its values are those of the composite literals of
// that type.
var structFields = map[string]string{
	// Offline changes of the bootstrap admin token, queued by the CLI.
	"auditAdminTokenEvents e.Action": "AdminTokenEvent",
}

// literals is every value given to field in a composite literal of the
// type named typ, anywhere.
func (s *scanner) literals(typ, field string) ([]string, error) {
	var out []string
	var err error
	for dir, files := range s.pkgs {
		for _, f := range files {
			for _, d := range f.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				in := scope{dir: dir, file: f, fn: fn}
				ast.Inspect(fn.Body, func(node ast.Node) bool {
					cl, ok := node.(*ast.CompositeLit)
					if !ok || err != nil {
						return err == nil
					}
					name := ""
					switch t := cl.Type.(type) {
					case *ast.Ident:
						name = t.Name
					case *ast.SelectorExpr:
						name = t.Sel.Name
					}
					if name != typ {
						return true
					}
					for _, el := range cl.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok && isIdent(kv.Key, field) {
							var vals []string
							vals, err = s.eval(kv.Value, in)
							out = append(out, vals...)
						}
					}
					return true
				})
			}
		}
	}
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("no %s literal sets %s", typ, field)
	}
	return out, err
}

// locals is every value assigned to the variable name in c's function.
func (s *scanner) locals(name string, c scope) ([]string, error) {
	var out []string
	var err error
	n := 0
	ast.Inspect(c.fn.Body, func(node ast.Node) bool {
		var lhs, rhs []ast.Expr
		switch node := node.(type) {
		case *ast.AssignStmt:
			lhs, rhs = node.Lhs, node.Rhs
		case *ast.ValueSpec:
			for _, id := range node.Names {
				lhs = append(lhs, id)
			}
			rhs = node.Values
		default:
			return true
		}
		for i, l := range lhs {
			if !isIdent(l, name) {
				continue
			}
			n++
			if len(lhs) != len(rhs) {
				err = fmt.Errorf("%s is assigned from a call", name)
				return false
			}
			vals, e := s.eval(rhs[i], c)
			if e != nil {
				err = e
				return false
			}
			out = append(out, vals...)
		}
		return true
	})
	if err == nil && n == 0 {
		err = fmt.Errorf("%s is neither a constant, a parameter nor a variable of %s", name, c.fn.Name.Name)
	}
	return out, err
}

// field is every value assigned to a struct field of this name in c's
// package (x.name = …, or name: … in a composite literal).
func (s *scanner) field(name string, c scope) ([]string, error) {
	key := c.dir + " field " + name
	if s.seen[key] {
		return nil, nil
	}
	s.seen[key] = true
	defer delete(s.seen, key)
	var out []string
	var err error
	for _, f := range s.pkgs[c.dir] {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			in := scope{dir: c.dir, file: f, fn: fn}
			ast.Inspect(fn.Body, func(node ast.Node) bool {
				if err != nil {
					return false
				}
				if a, ok := node.(*ast.AssignStmt); ok && len(a.Lhs) == len(a.Rhs) {
					for i, l := range a.Lhs {
						if sel, ok := l.(*ast.SelectorExpr); ok && sel.Sel.Name == name {
							var vals []string
							vals, err = s.eval(a.Rhs[i], in)
							out = append(out, vals...)
						}
					}
				}
				return true
			})
		}
	}
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("nothing is assigned to the field %s", name)
	}
	return out, err
}

// callers is every value the callers of c's function pass as its
// parameter i. Unexported functions are called from their package;
// exported ones from anywhere.
func (s *scanner) callers(c scope, i int) ([]string, error) {
	name := c.fn.Name.Name
	key := fmt.Sprintf("%s %s %d", c.dir, name, i)
	if s.seen[key] {
		return nil, nil
	}
	s.seen[key] = true
	defer delete(s.seen, key)
	var out []string
	var err error
	calls := 0
	for dir, files := range s.pkgs {
		if dir != c.dir && !ast.IsExported(name) {
			continue
		}
		for _, f := range files {
			for _, d := range f.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				in := scope{dir: dir, file: f, fn: fn}
				ast.Inspect(fn.Body, func(node ast.Node) bool {
					if err != nil {
						return false
					}
					call, ok := node.(*ast.CallExpr)
					if !ok || !calls_(call.Fun, name, c.fn.Recv != nil) || i >= len(call.Args) {
						return true
					}
					calls++
					var vals []string
					vals, err = s.eval(call.Args[i], in)
					out = append(out, vals...)
					return true
				})
			}
		}
	}
	if err == nil && calls == 0 {
		err = fmt.Errorf("no call of %s found (passed as a value?)", name)
	}
	return out, err
}

// calls_ reports whether fun names the function name (a method when
// method is set).
func calls_(fun ast.Expr, name string, method bool) bool {
	switch f := fun.(type) {
	case *ast.Ident:
		return !method && f.Name == name
	case *ast.SelectorExpr:
		return f.Sel.Name == name
	}
	return false
}

func paramIndex(fn *ast.FuncDecl, name string) int {
	i := 0
	for _, field := range fn.Type.Params.List {
		for _, n := range field.Names {
			if n.Name == name {
				return i
			}
			i++
		}
		if len(field.Names) == 0 {
			i++
		}
	}
	return -1
}

func stringLit(e ast.Expr) (string, bool) {
	b, ok := e.(*ast.BasicLit)
	if !ok || b.Kind != token.STRING {
		return "", false
	}
	v, err := strconv.Unquote(b.Value)
	return v, err == nil
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// isEvent reports whether t is gatehouse.Event (or Event in the root
// package).
func isEvent(t ast.Expr, f *ast.File) bool {
	switch t := t.(type) {
	case *ast.SelectorExpr:
		return isIdent(t.X, "gatehouse") && t.Sel.Name == "Event"
	case *ast.Ident:
		return f.Name.Name == "gatehouse" && t.Name == "Event"
	}
	return false
}

// mentionsEvent reports whether fn builds, takes or returns a
// gatehouse.Event: there, x.Type = … sets an event's type.
func mentionsEvent(fn *ast.FuncDecl) bool {
	found := false
	ast.Inspect(fn, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok && isIdent(sel.X, "gatehouse") && sel.Sel.Name == "Event" {
			found = true
		}
		return !found
	})
	return found
}

func imports(f *ast.File, name string) bool {
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		if im.Name != nil && im.Name.Name == name || im.Name == nil && filepath.Base(p) == name {
			return true
		}
	}
	return false
}

func (s *scanner) text(e ast.Expr) string {
	var b strings.Builder
	p := s.fset.Position(e.Pos())
	src, err := os.ReadFile(p.Filename)
	if err != nil {
		return "expression"
	}
	end := s.fset.Position(e.End())
	b.Write(src[p.Offset:end.Offset])
	return b.String()
}

// TestEventTypesAreTheCodes holds audit.EventTypes to the source: every
// type the code can record is listed, and every listed type is one the
// code records.
func TestEventTypesAreTheCodes(t *testing.T) {
	found := emittedTypes(t, "../..")
	listed := map[string]bool{}
	prev := ""
	for _, et := range audit.EventTypes() {
		if et.Name <= prev {
			t.Errorf("EventTypes: %q after %q: not sorted or listed twice", et.Name, prev)
		}
		prev = et.Name
		listed[et.Name] = true
		if et.Doc == "" || !strings.HasSuffix(et.Doc, ".") {
			t.Errorf("EventTypes: %s: the doc must be a sentence, not %q", et.Name, et.Doc)
		}
		if found[et.Name] == nil {
			t.Errorf("EventTypes lists %s, which no code records", et.Name)
		}
	}
	for name, where := range found {
		if !listed[name] {
			t.Errorf("%s (recorded in %s) is missing from audit.EventTypes and docs/audit.md", name, strings.Join(where, ", "))
		}
	}
	if len(found) < 60 {
		t.Errorf("the scan found only %d event types; is it broken?", len(found))
	}
}

// legacyTypes are event types older versions recorded, which code that
// reads the log still recognises.
var legacyTypes = map[string]bool{
	"request": true, // http.request before it had its own name
}

// TestEventTypesReadAreReal checks the code that reads the log for types
// (compliance checks, evidence, incident timelines): every literal given
// to a "types ...string" parameter, and every literal compared with an
// event's Type, is a type the code records (or a legacy one), so a typo
// cannot make a check find nothing.
func TestEventTypesReadAreReal(t *testing.T) {
	found := emittedTypes(t, "../..")
	s := &scanner{fset: token.NewFileSet()}
	variadic := map[string]int{} // function name → index of its types ...string
	var files []*ast.File
	filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && slices.Contains([]string{"../../deploy", "../../bench", "../../scripts"}, path) {
			return filepath.SkipDir // programs that check files, not code that reads the log
		}
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.Contains(path, "/testdata/") {
			return err
		}
		f, err := parser.ParseFile(s.fset, path, nil, 0)
		if err != nil {
			return err
		}
		files = append(files, f)
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok {
				ps := fn.Type.Params.List
				if n := len(ps); n > 0 && len(ps[n-1].Names) == 1 && ps[n-1].Names[0].Name == "types" {
					if el, ok := ps[n-1].Type.(*ast.Ellipsis); ok && isIdent(el.Elt, "string") {
						variadic[fn.Name.Name] = paramIndex(fn, "types")
					}
				}
			}
		}
		return nil
	})
	if len(variadic) == 0 {
		t.Fatal("no function takes types ...string; is the scan broken?")
	}
	check := func(e ast.Expr) {
		if v, ok := stringLit(e); ok && v != "" && found[v] == nil && !legacyTypes[v] {
			t.Errorf("%s: %q is read as an event type, but no code records it", s.fset.Position(e.Pos()), v)
		}
	}
	n := 0
	for _, f := range files {
		ast.Inspect(f, func(node ast.Node) bool {
			switch node := node.(type) {
			case *ast.CallExpr:
				name := ""
				switch fun := node.Fun.(type) {
				case *ast.Ident:
					name = fun.Name
				case *ast.SelectorExpr:
					name = fun.Sel.Name
				}
				if i, ok := variadic[name]; ok {
					for _, a := range node.Args[min(i, len(node.Args)):] {
						n++
						check(a)
					}
				}
			case *ast.BinaryExpr:
				if node.Op != token.EQL && node.Op != token.NEQ {
					break
				}
				for _, pair := range [][2]ast.Expr{{node.X, node.Y}, {node.Y, node.X}} {
					if sel, ok := pair[0].(*ast.SelectorExpr); ok && sel.Sel.Name == "Type" {
						if _, ok := stringLit(pair[1]); ok {
							n++
							check(pair[1])
						}
					}
				}
			}
			return true
		})
	}
	if n < 10 {
		t.Errorf("only %d type reads found; is the scan broken?", n)
	}
}
