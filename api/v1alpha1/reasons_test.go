package v1alpha1_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// mirroredPackages are the packages that know nothing of Kubernetes and so keep reasons of
// their own, which api/v1alpha1 mirrors under the same names (directories from this one).
var mirroredPackages = []string{
	"../../durable/internal/core",
	"../../durable/engine",
	"../../workflowfile",
	"../../pyworkflow",
	"../../pyworker",
	"../../agents",
}

// reasonConstants reads the Reason* constants of dir (see constants).
func reasonConstants(t *testing.T, dir string) map[string]string {
	t.Helper()
	return constants(t, dir, "Reason")
}

// constants reads the exported constants named prefix* declared in the non-test Go files of dir: the
// value of each that is a string literal, or the name of the constant it refers to
// (engine.ReasonX = core.ReasonX) as "=ReasonX".
func constants(t *testing.T, dir, prefix string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			t.Fatalf("parsing %s: %v", path, err)
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, prefix) || !name.IsExported() || i >= len(vs.Values) {
						continue
					}
					switch v := vs.Values[i].(type) {
					case *ast.BasicLit:
						s, err := strconv.Unquote(v.Value)
						if err != nil {
							t.Fatalf("%s: %s: %v", path, name.Name, err)
						}
						out[name.Name] = s
					case *ast.SelectorExpr:
						out[name.Name] = "=" + v.Sel.Name
					case *ast.Ident:
						out[name.Name] = "=" + v.Name
					}
				}
			}
		}
	}
	return out
}

// TestReasonsMirrorThePackagesWithoutKubernetes fails when the engine, workflowfile,
// pyworkflow or agents declares a reason that api/v1alpha1 lacks, or has with another value:
// every reason that reaches a status is defined here too, under the same name.
func TestReasonsMirrorThePackagesWithoutKubernetes(t *testing.T) {
	api := reasonConstants(t, ".")
	resolved := map[string]string{}
	pending := map[string]map[string]string{}
	for _, dir := range mirroredPackages {
		pending[dir] = reasonConstants(t, dir)
		for name, value := range pending[dir] {
			if !strings.HasPrefix(value, "=") {
				resolved[name] = value
			}
		}
	}
	if len(resolved) < 20 {
		t.Fatalf("found only %d reasons in %v: did a package move?", len(resolved), mirroredPackages)
	}
	for _, dir := range mirroredPackages {
		for name, value := range pending[dir] {
			if ref, ok := strings.CutPrefix(value, "="); ok {
				value, ok = resolved[ref]
				if !ok {
					t.Errorf("%s: %s refers to %s, which none of %v declares", dir, name, ref, mirroredPackages)
					continue
				}
			}
			mirror, ok := api[name]
			switch {
			case !ok:
				t.Errorf("%s declares %s = %q; api/v1alpha1 has no %s: add it to conditions.go with a doc comment", dir, name, value, name)
			case mirror != value:
				t.Errorf("%s declares %s = %q; api/v1alpha1's %s is %q", dir, name, value, name, mirror)
			}
		}
	}
}

// TestReasonsAreDefinedOnce fails when two of api/v1alpha1's reasons share a string: one
// reason, one constant.
func TestReasonsAreDefinedOnce(t *testing.T) {
	seen := map[string]string{}
	for name, value := range reasonConstants(t, ".") {
		if other, ok := seen[value]; ok {
			t.Errorf("reason %q is defined twice: %s and %s", value, other, name)
		}
		seen[value] = name
	}
}

// TestEntryKindsAndStatesMirrorTheEngine fails when the engine declares a journal kind or
// state that api/v1alpha1 lacks (KindX as EntryKindX, StateX as EntryStateX), or has with
// another value, so that runstore's conversion stays a plain rename.
func TestEntryKindsAndStatesMirrorTheEngine(t *testing.T) {
	api := constants(t, ".", "Entry")
	for _, prefix := range []string{"Kind", "State"} {
		engine := constants(t, "../../durable/internal/core", prefix)
		if len(engine) < 5 {
			t.Fatalf("found only %d %s constants in the engine: did it move?", len(engine), prefix)
		}
		for name, value := range engine {
			mirror, ok := api["Entry"+name]
			switch {
			case !ok:
				t.Errorf("the engine declares %s = %q; api/v1alpha1 has no Entry%s", name, value, name)
			case mirror != value:
				t.Errorf("the engine declares %s = %q; api/v1alpha1's Entry%s is %q", name, value, name, mirror)
			}
		}
	}
}
