package pyworkflow

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// Reasons a Python file does not load, besides those the worker reports (SyntaxError,
// ImportError, LoadFailed, MissingWorkflowName, MissingHandler, SyncHandler,
// InvalidInputDeclaration, InvalidWebhook, InvalidSchedule). api/v1alpha1 mirrors them under
// the same names (its reasons_test.go fails on a reason added here without its twin there).
const (
	// ReasonRevisionTooLarge: the file and its helpers do not fit the object that stores a
	// revision.
	ReasonRevisionTooLarge = "RevisionTooLarge"
	// ReasonPythonUnavailable: no usable Python interpreter.
	ReasonPythonUnavailable = "PythonUnavailable"
	// ReasonRevisionInvalid fails a run whose stored revision no longer loads (a module it
	// imports is gone from the worker's interpreter): as for a stored Starlark revision that
	// does not compile.
	ReasonRevisionInvalid = "RevisionInvalid"
)

// MaxBundleBytes bounds a revision's stored form (the file and its helpers as JSON), so that it
// fits one ControllerRevision with room to spare under the API server's 1.5 MiB request limit.
const MaxBundleBytes = 1 << 20

// DefaultMaxWorkerKills is how many workers a run's handler code may kill (or hold past the
// handler deadline) before the run fails with ExecutionLimitExceeded.
const DefaultMaxWorkerKills = 3

// Loader loads Python workflow files through a worker pool and runs them.
type Loader struct {
	// Pool runs the files' code.
	Pool *pyworker.Pool
	// CheckSchedule refuses a declared schedule the host cannot run; nil accepts all.
	CheckSchedule func(durable.ScheduleSpec) error
	// MaxWorkerKills is DefaultMaxWorkerKills when zero.
	MaxWorkerKills int
}

func (l *Loader) maxWorkerKills() int {
	if l.MaxWorkerKills > 0 {
		return l.MaxWorkerKills
	}
	return DefaultMaxWorkerKills
}

// IsWorkflowFile reports whether a directory entry named name is a Python workflow file: a .py
// file that is not a helper (_*.py), a test (test_*.py, *_test.py, conftest.py) or hidden.
func IsWorkflowFile(name string) bool {
	if !strings.HasSuffix(name, ".py") || strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".") {
		return false
	}
	return !strings.HasPrefix(name, "test_") && !strings.HasSuffix(name, "_test.py") && name != "conftest.py"
}

// DirFile is what became of one Python workflow file of a directory.
type DirFile struct {
	// Path is the file's path on disk.
	Path string
	// Workflow is the loaded workflow; nil when Err is set.
	Workflow *Workflow
	// Err says why the file does not load (a *workflowfile.LoadError).
	Err error
}

// LoadDir loads every Python workflow file at the top level of dir, in name order. Each
// file's revision holds the file and the directory's helpers. A file that does not load is
// reported in its DirFile and does not stop the others; the error is for a directory that
// cannot be read.
func (l *Loader) LoadDir(ctx context.Context, dir string) ([]DirFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read workflow directory %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if IsWorkflowFile(e.Name()) && isRegularFile(filepath.Join(dir, e.Name())) {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	helpers, err := readHelpers(dir)
	if err != nil {
		return nil, err
	}
	out := make([]DirFile, 0, len(names))
	for _, name := range names {
		f := DirFile{Path: filepath.Join(dir, name)}
		f.Workflow, f.Err = l.loadFile(ctx, dir, name, helpers)
		out = append(out, f)
	}
	return out, nil
}

// loadFile loads the workflow file name of dir with the directory's helpers.
func (l *Loader) loadFile(ctx context.Context, dir, name string, helpers map[string]string) (*Workflow, error) {
	text, err := readText(filepath.Join(dir, name), name)
	if err != nil {
		return nil, err
	}
	files := make(map[string]string, len(helpers)+1)
	for p, t := range helpers {
		files[p] = t
	}
	files[name] = text
	b := workflowfile.Bundle{Origin: workflowfile.OriginDir, Entry: name, Files: files}
	if raw, _ := json.Marshal(b); len(raw) > MaxBundleBytes {
		return nil, &workflowfile.LoadError{Reason: ReasonRevisionTooLarge, File: filepath.Join(dir, name), Message: fmt.Sprintf(
			"the file and the helpers of its directory (_*.py files and packages) take %d bytes as a stored revision, over the limit of %d: move data files out of the workflow directory and keep helpers small",
			len(raw), MaxBundleBytes)}
	}
	return l.load(ctx, b, dir, "")
}

// Stored returns the workflow of a revision stored earlier, to finish the runs that started on
// it. Its code is imported by a worker when a run needs it, after the worker checked that the
// bundle hashes to revision.
func (l *Loader) Stored(b workflowfile.Bundle, name, revision string) (*Workflow, error) {
	if b.Origin != workflowfile.OriginDir {
		return nil, fmt.Errorf("revision %s is Python code stored outside the operator's namespace: only WORKFLOW_DIRS files are Python", revision)
	}
	digest := pyworker.Digest(pyBundle(b))
	if want := workflowfile.RevisionName(name, digest); want != revision {
		return nil, fmt.Errorf("the stored revision %s of workflow %q hashes to %s: it was changed after it was stored", revision, name, want)
	}
	w := &Workflow{loader: l, bundle: b, digest: digest, revision: revision, dir: "[" + revision + "]"}
	w.Workflow = newDurable(name, w, nil)
	return w, nil
}

// load asks a worker to import b and builds the workflow from what the file declares.
func (l *Loader) load(ctx context.Context, b workflowfile.Bundle, dir, revision string) (*Workflow, error) {
	digest := pyworker.Digest(pyBundle(b))
	entryPath := filepath.Join(dir, b.Entry)
	meta, le, err := l.Pool.Load(ctx, pyworker.LoadRequest{Digest: digest, Revision: revision, Dir: dir, Bundle: pyBundle(b)})
	if err != nil {
		return nil, &workflowfile.LoadError{Reason: ReasonPythonUnavailable, File: entryPath, Message: err.Error()}
	}
	if le != nil {
		return nil, &workflowfile.LoadError{Reason: le.Reason, File: cmpOr(le.File, entryPath), Line: le.Line, Column: le.Column,
			Message: le.Message, Backtrace: le.Traceback}
	}
	w := &Workflow{loader: l, bundle: b, digest: digest, dir: dir, meta: meta}
	if err := w.declare(entryPath); err != nil {
		return nil, err
	}
	w.revision = workflowfile.RevisionName(meta.Name, digest)
	return w, nil
}

// pyBundle is b in the worker's terms.
func pyBundle(b workflowfile.Bundle) pyworker.Bundle {
	return pyworker.Bundle{Origin: string(b.Origin), Entry: b.Entry, Files: b.Files}
}

// readHelpers reads the helpers every workflow file of dir may import: the _*.py files at its
// top level, and every package (a subdirectory with __init__.py) with all the .py files below
// it.
func readHelpers(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read workflow directory %s: %w", dir, err)
	}
	helpers := map[string]string{}
	for _, e := range entries {
		full := filepath.Join(dir, e.Name())
		switch {
		case strings.HasPrefix(e.Name(), "."):
		case strings.HasPrefix(e.Name(), "_") && strings.HasSuffix(e.Name(), ".py") && isRegularFile(full):
			text, err := readText(full, e.Name())
			if err != nil {
				return nil, err
			}
			helpers[e.Name()] = text
		case isPackage(full):
			if err := readPackage(dir, e.Name(), helpers); err != nil {
				return nil, err
			}
		}
	}
	return helpers, nil
}

// isPackage reports whether p is a directory with an __init__.py.
func isPackage(p string) bool {
	info, err := os.Stat(p)
	if err != nil || !info.IsDir() || filepath.Base(p) == "__pycache__" {
		return false
	}
	return isRegularFile(filepath.Join(p, "__init__.py"))
}

// readPackage reads every .py file below the package pkg of dir into files.
func readPackage(dir, pkg string, files map[string]string) error {
	root := filepath.Join(dir, pkg)
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "__pycache__") {
			return fs.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".py") || !isRegularFile(p) {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = path.Clean(filepath.ToSlash(rel))
		text, err := readText(p, rel)
		if err != nil {
			return err
		}
		files[rel] = text
		return nil
	})
}

// readText reads a source file, which must be UTF-8 (as Python assumes).
func readText(p, name string) (string, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return "", &workflowfile.LoadError{Reason: workflowfile.ReasonLoadFailed, File: p, Message: err.Error()}
	}
	if !utf8.Valid(data) {
		return "", &workflowfile.LoadError{Reason: workflowfile.ReasonSyntaxError, File: p, Message: fmt.Sprintf("%s is not UTF-8 text: save it as UTF-8", name)}
	}
	return string(data), nil
}

// isRegularFile follows symlinks (a ConfigMap volume's files are symlinks into ..data).
func isRegularFile(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.Mode().IsRegular()
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
