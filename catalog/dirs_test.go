package catalog_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"

	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/testpython"
	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// logLines collects what a Dirs logs.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newDirs(t *testing.T, c *catalog.Catalog, paths ...string) (*catalog.Dirs, *logLines) {
	t.Helper()
	lines := &logLines{}
	logger := funcr.New(func(prefix, args string) {
		lines.mu.Lock()
		defer lines.mu.Unlock()
		lines.buf.WriteString(args + "\n")
	}, funcr.Options{})
	return &catalog.Dirs{Paths: paths, Catalog: c, Interval: 20 * time.Millisecond, Logger: logger}, lines
}

// configMapVolume lays out dir as the kubelet lays out a ConfigMap volume: the files live in a
// timestamped directory, ..data points at it, and each file is a symlink through ..data. Each
// call writes a new timestamped directory and swaps ..data atomically.
func configMapVolume(t *testing.T, dir, version string, files map[string]string) {
	t.Helper()
	data := filepath.Join(dir, "..2026_12_01_"+version)
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(data, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(data), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

func TestDirsReloadAConfigMapVolumeWhenItsDataSwaps(t *testing.T) {
	dir := t.TempDir()
	text := func(greeting string) string {
		return "WORKFLOW_NAME = \"greet\"\ndef handler(inp, ctx):\n    return \"" + greeting + "\"\n"
	}
	configMapVolume(t, dir, "a", map[string]string{"greet.star": text("v1")})
	c := newCatalog(t, nil)
	d, lines := newDirs(t, c, dir)
	d.Load()
	e, ok := c.Lookup("any", "greet")
	if !ok || run(t, e.Workflow) != `"v1"` {
		t.Fatalf("greet after the first load: %v %+v", ok, e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = d.Start(ctx) }()

	configMapVolume(t, dir, "b", map[string]string{"greet.star": text("v2")})
	deadline := time.Now().Add(5 * time.Second)
	for {
		e, _ = c.Lookup("any", "greet")
		if run(t, e.Workflow) == `"v2"` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the swapped ConfigMap data was never reloaded")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := strings.Count(lines.String(), `"workflow_overrides_builtin"`); got != 0 {
		t.Errorf("a file that overrides nothing logged workflow_overrides_builtin:\n%s", lines)
	}
	if got := strings.Count(lines.String(), `"workflow_loaded"`); got != 2 {
		t.Errorf("workflow_loaded logged %d times over two revisions:\n%s", got, lines)
	}
}

func TestDirsLetALaterDirectoryOverrideAnEarlierOne(t *testing.T) {
	builtin, overlay := t.TempDir(), t.TempDir()
	src := "WORKFLOW_NAME = \"dup\"\ndef handler(inp, ctx):\n    return %q\n"
	write := func(dir, name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(builtin, "dup.star", strings.Replace(src, "%q", `"image"`, 1))
	write(overlay, "dup.star", strings.Replace(src, "%q", `"overlay"`, 1))
	write(overlay, "_helper.star", "this is not starlark (")
	c := newCatalog(t, nil)
	d, lines := newDirs(t, c, builtin, overlay, filepath.Join(builtin, "missing"))
	d.Load()
	e, _ := c.Lookup("any", "dup")
	if run(t, e.Workflow) != `"overlay"` {
		t.Error("the earlier directory's file won")
	}
	log := lines.String()
	if !strings.Contains(log, `"workflow_overrides_builtin" "workflow"="dup"`) || !strings.Contains(log, `"overrides"="`+filepath.Join(builtin, "dup.star")+`"`) {
		t.Errorf("no workflow_overrides_builtin naming the overridden file in the log:\n%s", log)
	}
	if strings.Contains(log, "_helper.star") {
		t.Errorf("a helper module was loaded as a workflow:\n%s", log)
	}
}

func TestDirsRefuseTwoFilesOfOneNameInOneDirectory(t *testing.T) {
	dir := t.TempDir()
	src := "WORKFLOW_NAME = \"dup\"\ndef handler(inp, ctx):\n    return %q\n"
	for _, name := range []string{"a_dup.star", "b_dup.star"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Replace(src, "%q", `"`+name+`"`, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := newCatalog(t, nil)
	d, lines := newDirs(t, c, dir)
	d.Load()
	e, _ := c.Lookup("any", "dup")
	if run(t, e.Workflow) != `"a_dup.star"` {
		t.Error("the second file in name order took the name")
	}
	if log := lines.String(); !strings.Contains(log, `"reason"="DuplicateWorkflowName"`) || !strings.Contains(log, "in the same directory") {
		t.Errorf("no DuplicateWorkflowName in the log:\n%s", log)
	}
}

func TestDirsSayThatPythonNeedsWorkers(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "report.py"), []byte("WORKFLOW_NAME = \"report\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"_util.py", "test_report.py", "report_test.py", "conftest.py"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x = 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := newCatalog(t, nil) // no Python loader
	d, lines := newDirs(t, c, dir)
	d.Load()
	log := lines.String()
	if !strings.Contains(log, `"workflow_load_failed" "file"="`+filepath.Join(dir, "report.py")+`"`) || !strings.Contains(log, "PythonUnavailable") {
		t.Errorf("a Python file was not reported:\n%s", log)
	}
	if strings.Count(log, "workflow_load_failed") != 1 {
		t.Errorf("helpers or tests were taken for workflow files:\n%s", log)
	}
}

func TestDirsSayWhenAFileOverridesAGoWorkflow(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.star"), []byte("WORKFLOW_NAME = \"hello\"\ndef handler(inp, ctx):\n    return 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCatalog(t, nil)
	d, lines := newDirs(t, c, dir)
	d.Load()
	if !strings.Contains(lines.String(), `"workflow_overrides_builtin" "workflow"="hello"`) {
		t.Errorf("no workflow_overrides_builtin for hello:\n%s", lines)
	}
	if e, _ := c.Lookup("any", "hello"); e.Source != catalog.SourceFile {
		t.Errorf("hello resolves to %s", e.Source)
	}
}

func TestDirsLoadPythonBesideStarlarkAndLetTheOverlayOverrideIt(t *testing.T) {
	pool, err := testpython.Pool(pyworker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	reg := engine.NewRegistry()
	c := catalog.New(reg, catalog.Options{OperatorNamespace: "centaur-system", Python: testpython.Loader(pool)})
	builtin, overlay := t.TempDir(), t.TempDir()
	write := func(dir, name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	python := func(result string) string {
		return "WORKFLOW_NAME = \"report\"\n\nasync def handler(inp, ctx):\n    return " + result + "\n"
	}
	write(builtin, "report.py", python(`"image python"`))
	write(builtin, "report.star", "WORKFLOW_NAME = \"report\"\ndef handler(inp, ctx):\n    return \"image starlark\"\n")
	d, lines := newDirs(t, c, builtin)
	d.Load()
	e, _ := c.Lookup("any", "report")
	if fw, ok := e.FileWorkflow(); !ok || fw.Language() != "python" || run(t, e.Workflow) != `"image python"` {
		t.Errorf("report resolves to %+v; want report.py, first by name in its directory", e)
	}
	if log := lines.String(); !strings.Contains(log, `"file"="`+filepath.Join(builtin, "report.star")+`"`) || !strings.Contains(log, "DuplicateWorkflowName") {
		t.Errorf("the .star file of the same name was not refused:\n%s", log)
	}

	write(overlay, "report.py", python(`"overlay"`))
	d, lines = newDirs(t, c, builtin, overlay)
	d.Load()
	e, _ = c.Lookup("any", "report")
	if run(t, e.Workflow) != `"overlay"` || !strings.Contains(lines.String(), `"language"="python"`) {
		t.Errorf("the overlay's report.py did not override the image's:\n%s", lines)
	}
}

func TestSplitDirsReadsWorkflowDirsAsTheManagerDoes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"/app/workflows", []string{"/app/workflows"}},
		{"/app/workflows:/app/overlay/org/workflows", []string{"/app/workflows", "/app/overlay/org/workflows"}},
		{" a :: b : ", []string{"a", "b"}},
	} {
		if got := catalog.SplitDirs(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("SplitDirs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLoadFilesFlagsDuplicatesAndOverrides(t *testing.T) {
	builtin, overlay := t.TempDir(), t.TempDir()
	missing := filepath.Join(t.TempDir(), "missing")
	src := func(name string) string {
		return "WORKFLOW_NAME = \"" + name + "\"\ndef handler(inp, ctx):\n    return 1\n"
	}
	for p, text := range map[string]string{
		filepath.Join(builtin, "a.star"):      src("greet"),
		filepath.Join(builtin, "b.star"):      src("greet"),
		filepath.Join(overlay, "c.star"):      src("greet"),
		filepath.Join(overlay, "py.py"):       "WORKFLOW_NAME = \"py\"\n",
		filepath.Join(overlay, "x_test.star"): "not loaded (\n",
	} {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, unreadable := catalog.LoadFiles([]string{builtin, missing, overlay}, nil, nil)
	if len(unreadable) != 1 || unreadable[0].Dir != missing {
		t.Errorf("unreadable = %+v, want %s alone", unreadable, missing)
	}
	got := map[string]string{}
	for _, f := range files {
		var le *workflowfile.LoadError
		switch {
		case errors.As(f.Err, &le):
			got[filepath.Base(f.Path)] = le.Reason
		case f.Overrides != "":
			got[filepath.Base(f.Path)] = "overrides " + f.Overrides
		default:
			got[filepath.Base(f.Path)] = "loaded"
		}
	}
	want := map[string]string{
		"a.star": "loaded",
		"b.star": "DuplicateWorkflowName",
		"c.star": "overrides " + filepath.Join(builtin, "a.star"),
		"py.py":  "PythonUnavailable",
	}
	if !maps.Equal(got, want) {
		t.Errorf("LoadFiles = %v, want %v", got, want)
	}
}
