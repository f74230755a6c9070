package layers

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aelp/aelp/internal/proctest"
)

// maxFuncLines is the most lines a function may take, from its func
// keyword to its closing brace (its doc comment not counted): a screen.
const maxFuncLines = 80

// longFuncExceptions are directories (relative to the module root) whose
// functions may exceed maxFuncLines for now, and why. Once none of a
// directory's functions does, TestFunctionLength fails until its entry is
// removed, so an exception cannot outlive its reason.
var longFuncExceptions = map[string]string{}

// longFunc is a function over maxFuncLines.
type longFunc struct {
	file, name string
	lines      int
}

// longFuncs returns the module's non-test functions over max lines, by
// file, with the directory (relative) of each.
func longFuncs(t *testing.T, root string, max int) []longFunc {
	t.Helper()
	fset := token.NewFileSet()
	var out []longFunc
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (n == "testdata" || n == "vendor" || strings.HasPrefix(n, ".")) {
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
		relPath, _ := filepath.Rel(root, path)
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
			if n > max {
				out = append(out, longFunc{file: filepath.ToSlash(relPath), name: funcName(fd), lines: n})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].file+out[i].name < out[j].file+out[j].name })
	return out
}

// funcName is "Recv.Name" for a method, "Name" for a function.
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	t := fd.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if ix, ok := t.(*ast.IndexExpr); ok {
		t = ix.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}

// TestFunctionLength fails for every non-test function of the module over
// maxFuncLines lines outside longFuncExceptions.
func TestFunctionLength(t *testing.T) {
	root := proctest.ModuleRoot(t)
	excused := map[string]int{}
	for _, f := range longFuncs(t, root, maxFuncLines) {
		dir := filepath.ToSlash(filepath.Dir(f.file))
		if _, ok := longFuncExceptions[dir]; ok {
			excused[dir]++
			continue
		}
		t.Errorf("%s: %s is %d lines, more than %d: split it into steps that each do one thing", f.file, f.name, f.lines, maxFuncLines)
	}
	for dir, why := range longFuncExceptions {
		if excused[dir] == 0 {
			t.Errorf("no function of %s exceeds %d lines any more (%s): remove it from longFuncExceptions", dir, maxFuncLines, why)
		}
	}
}

// TestLongFuncsCounts checks the measure itself: a threshold of 10 lines
// finds lifecycle.Run, by name, and nothing in a file without functions.
func TestLongFuncsCounts(t *testing.T) {
	root := proctest.ModuleRoot(t)
	var found bool
	for _, f := range longFuncs(t, root, 10) {
		if f.file == "internal/layers/doc.go" {
			t.Errorf("doc.go has no functions, found %s", f.name)
		}
		found = found || strings.HasPrefix(f.file, "internal/lifecycle/") && f.name == "Run"
	}
	if !found {
		t.Error("lifecycle.Run (over 10 lines) not found")
	}
}
