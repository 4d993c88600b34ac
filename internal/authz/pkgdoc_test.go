package authz_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDocs checks that the packages of this feature open with a
// "// Package x" comment.
func TestPackageDocs(t *testing.T) {
	for dir, name := range map[string]string{".": "authz", "../../policy": "policy"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, e.Name()), nil, parser.ParseComments|parser.PackageClauseOnly)
			if err != nil {
				t.Fatal(err)
			}
			if f.Doc != nil && strings.HasPrefix(f.Doc.Text(), "Package "+name+" ") {
				found = true
			}
		}
		if !found {
			t.Errorf("package %s has no doc comment starting %q", name, "Package "+name)
		}
	}
}
