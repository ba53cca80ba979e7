package docscheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// codeSpan is a Markdown code span.
var codeSpan = regexp.MustCompile("`([^`\n]+)`")

// fileExt are the extensions of the files a page may name.
var fileExt = map[string]bool{".go": true, ".md": true, ".py": true, ".sh": true, ".yaml": true, ".json": true, ".txt": true, ".star": true}

// pathsIn returns the code spans of a Markdown page that name a file or a directory of the
// repository, from its root: a file with one of fileExt's extensions, or a directory (a path
// with a slash and no extension); placeholders (`<kind>`), commands and flags are not paths.
func pathsIn(page string) []string {
	var paths []string
	for _, m := range codeSpan.FindAllStringSubmatch(page, -1) {
		s := strings.TrimSuffix(m[1], "/")
		switch {
		case strings.ContainsAny(s, " <>*:=(){}\"'"), strings.HasPrefix(s, "-"), strings.HasPrefix(s, "."):
			continue
		case fileExt[filepath.Ext(s)], strings.Contains(s, "/") && filepath.Ext(s) == "":
			paths = append(paths, s)
		}
	}
	return paths
}

func TestArchitecturePageNamesOnlyPathsThatExist(t *testing.T) {
	root := filepath.Join("..", "..")
	page, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	paths := pathsIn(string(page))
	if len(paths) < 20 {
		t.Fatalf("found only %d paths in docs/architecture.md (%v): the check would prove little", len(paths), paths)
	}
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("docs/architecture.md names %s, which does not exist: %v", p, err)
		}
	}
}

func TestPathsInFindsPathsAndSkipsTheRest(t *testing.T) {
	page := "`runstore/writer.go` and `main.go`, `config/rbac/`, not `durable.Step`, `<kind>_types.go`, `--sharding` or `make test`"
	got := strings.Join(pathsIn(page), ",")
	if want := "runstore/writer.go,main.go,config/rbac"; got != want {
		t.Fatalf("pathsIn = %s, want %s", got, want)
	}
}
