// Package apirule holds the test of README's "Architecture" rule: no
// exported identifier of a package outside internal/ names a type of an
// internal/ package.
package apirule

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoInternalTypesInPublicAPI parses every non-test file of every
// package outside internal/ and cmd/ and reports each exported function,
// method, type, field, interface method, var or const whose declaration
// names a type from an internal/ package.
func TestNoInternalTypesInPublicAPI(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == "internal" || rel == "cmd" || rel == "tools" || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		checked++
		for _, v := range exposures(f) {
			t.Errorf("%s: %s", fset.Position(v.pos), v.what)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked only %d files under %s", checked, root)
	}
}

type exposure struct {
	pos  token.Pos
	what string
}

// exposures lists the exported declarations of f that name an internal
// package's identifier.
func exposures(f *ast.File) []exposure {
	internal := map[string]string{} // local import name -> path
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		if !strings.Contains(p, "/internal/") {
			continue
		}
		name := p[strings.LastIndex(p, "/")+1:]
		if im.Name != nil {
			name = im.Name.Name
		}
		internal[name] = p
	}
	if len(internal) == 0 {
		return nil
	}
	var out []exposure
	check := func(n ast.Node, what string) {
		if n == nil {
			return
		}
		ast.Inspect(n, func(n ast.Node) bool {
			if _, ok := n.(*ast.FuncLit); ok {
				return false
			}
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && internal[x.Name] != "" {
				out = append(out, exposure{sel.Pos(), what + " names " + internal[x.Name] + "." + sel.Sel.Name})
			}
			return true
		})
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() || (d.Recv != nil && !exportedRecv(d.Recv)) {
				continue
			}
			check(d.Type, "func "+d.Name.Name)
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() {
						checkType(s.Type, "type "+s.Name.Name, check)
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() {
							check(s.Type, "var "+n.Name)
						}
					}
				}
			}
		}
	}
	return out
}

// checkType checks a type declaration's exported parts: all of it except
// unexported struct fields and interface methods.
func checkType(e ast.Expr, what string, check func(ast.Node, string)) {
	var fields *ast.FieldList
	switch e := e.(type) {
	case *ast.StructType:
		fields = e.Fields
	case *ast.InterfaceType:
		fields = e.Methods
	default:
		check(e, what)
		return
	}
	for _, fl := range fields.List {
		if len(fl.Names) == 0 { // embedded
			check(fl.Type, what+" (embedded)")
			continue
		}
		for _, n := range fl.Names {
			if n.IsExported() {
				check(fl.Type, what+"."+n.Name)
			}
		}
	}
}

func exportedRecv(r *ast.FieldList) bool {
	if len(r.List) == 0 {
		return false
	}
	t := r.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if ix, ok := t.(*ast.IndexExpr); ok {
		t = ix.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}
