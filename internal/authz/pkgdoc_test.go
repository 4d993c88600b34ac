package authz_test

import (
	"go/parser"
	"go/token"
	"strings"
	"testing"
)

// TestPackageDocs checks that the packages of this feature open with a
// "// Package x" comment.
func TestPackageDocs(t *testing.T) {
	for dir, name := range map[string]string{".": "authz", "../../policy": "policy"} {
		pkgs, err := parser.ParseDir(token.NewFileSet(), dir, nil, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		p, ok := pkgs[name]
		if !ok {
			t.Fatalf("package %s not found in %s", name, dir)
		}
		found := false
		for _, f := range p.Files {
			if f.Doc != nil && strings.HasPrefix(f.Doc.Text(), "Package "+name+" ") {
				found = true
			}
		}
		if !found {
			t.Errorf("package %s has no doc comment starting %q", name, "Package "+name)
		}
	}
}
