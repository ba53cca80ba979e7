package localrun

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/go-logr/logr"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/pyworkflow"
	"github.com/centaur-dev/workflow-operator/schedule"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// LoadOptions configure how LoadDir loads workflow files.
type LoadOptions struct {
	// Starlark is the configuration of Starlark files; nil takes the manager's defaults for
	// trusted files (WORKFLOW_DIRS): an http module without an egress policy, and schedules
	// checked as the manager checks them.
	Starlark *workflowfile.Config
	// Python configures the CPython workers that run Python files (interpreter, workers,
	// handler deadline); an empty PackageDir extracts the package embedded in this binary,
	// and zero Workers means one.
	Python pyworker.Config
	// NoPython skips Python files: they are reported in Dir.Errors instead of loaded.
	NoPython bool
}

// Dir holds the workflows of one directory, loaded as the manager loads WORKFLOW_DIRS: every
// Starlark (*.star) and Python (*.py) workflow file at its top level. Close it when done: it
// may hold Python workers.
type Dir struct {
	// Path is the directory.
	Path string
	// Workflows are the loaded workflows by name.
	Workflows map[string]durable.Workflow
	// Files maps each loaded file's path to its workflow's name.
	Files map[string]string
	// Errors say why files did not load (each a *workflowfile.LoadError where the loader
	// gave one); the other files load regardless.
	Errors []error

	failed map[string]error // file path -> its error in Errors
	pool   *pyworker.Pool
}

// LoadDir loads the workflow files of dir with the manager's loaders (workflowfile and
// pyworkflow). The error is for a directory that cannot be read or Python workers that cannot
// be set up; a file that does not load is in Dir.Errors.
func LoadDir(ctx context.Context, dir string, opts LoadOptions) (*Dir, error) {
	d := &Dir{Path: dir, Workflows: map[string]durable.Workflow{}, Files: map[string]string{}, failed: map[string]error{}}
	cfg := opts.Starlark
	if cfg == nil {
		cfg = &workflowfile.Config{HTTP: workflowfile.NewHTTPClient(nil), CheckSchedule: schedule.CheckDeclaration}
	}
	star, err := workflowfile.LoadDir(dir, workflowfile.OriginDir, cfg)
	if err != nil {
		return nil, fmt.Errorf("load Starlark workflows: %w", err)
	}
	for _, f := range star {
		if f.Workflow == nil {
			d.add(f.Path, nil, f.Err)
			continue
		}
		d.add(f.Path, f.Workflow, nil)
	}
	if err := d.loadPython(ctx, opts); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// loadPython loads dir's Python files through a pool of workers it starts only when there
// are any.
func (d *Dir) loadPython(ctx context.Context, opts LoadOptions) error {
	entries, err := os.ReadDir(d.Path)
	if err != nil {
		return fmt.Errorf("read workflow directory %s: %w", d.Path, err)
	}
	var files []string
	for _, e := range entries {
		if pyworkflow.IsWorkflowFile(e.Name()) {
			files = append(files, filepath.Join(d.Path, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil
	}
	if opts.NoPython {
		for _, p := range files {
			d.add(p, nil, &workflowfile.LoadError{Reason: pyworkflow.ReasonPythonUnavailable, File: p, Message: "Python files are not loaded (NoPython)"})
		}
		return nil
	}
	cfg := opts.Python
	if cfg.Workers <= 0 {
		cfg.Workers = 1 // one run tree at a time: its children run in turn
	}
	if cfg.Logger.GetSink() == nil {
		cfg.Logger = logr.Discard()
	}
	d.pool = pyworker.New(cfg)
	loader := &pyworkflow.Loader{Pool: d.pool, CheckSchedule: schedule.CheckDeclaration}
	loaded, err := loader.LoadDir(ctx, d.Path)
	if err != nil {
		return fmt.Errorf("load Python workflows: %w", err)
	}
	for _, f := range loaded {
		if f.Workflow == nil {
			d.add(f.Path, nil, f.Err)
			continue
		}
		d.add(f.Path, f.Workflow, nil)
	}
	return nil
}

// add records what became of the file at path. Two files of one name is an error, as in the
// manager: the first keeps the name.
func (d *Dir) add(path string, w durable.Workflow, err error) {
	if err == nil && w != nil {
		if first, dup := d.fileOf(w.Name()); dup {
			err = &workflowfile.LoadError{Reason: workflowsv1alpha1.ReasonDuplicateWorkflowName, File: path, Message: fmt.Sprintf(
				"WORKFLOW_NAME %s is already defined by %s in the same directory, which keeps it: rename one of them", w.Name(), first)}
		}
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
		d.Errors = append(d.Errors, err)
		d.failed[path] = err
		return
	}
	d.Workflows[w.Name()] = w
	d.Files[path] = w.Name()
}

// fileOf returns the file that defines the workflow name.
func (d *Dir) fileOf(name string) (string, bool) {
	for p, n := range d.Files {
		if n == name {
			return p, true
		}
	}
	return "", false
}

// Lookup returns the directory's workflow of that name; it is what Options.Workflows wants.
func (d *Dir) Lookup(name string) (durable.Workflow, bool) {
	w, ok := d.Workflows[name]
	return w, ok
}

// File returns the workflow the file at path defines, or why it did not load.
func (d *Dir) File(path string) (durable.Workflow, error) {
	if name, ok := d.Files[path]; ok {
		return d.Workflows[name], nil
	}
	if err, ok := d.failed[path]; ok {
		return nil, err
	}
	return nil, fmt.Errorf("%s is not a workflow file of %s: a workflow file is a .star or .py file whose name starts with neither _ nor .", path, d.Path)
}

// Close stops the directory's Python workers, if it started any.
func (d *Dir) Close() {
	if d.pool != nil {
		d.pool.Close()
	}
}

// Lookup returns an Options.Workflows that finds the given workflows (Go ones, say) by name.
func Lookup(workflows ...durable.Workflow) func(name string) (durable.Workflow, bool) {
	return func(name string) (durable.Workflow, bool) {
		i := slices.IndexFunc(workflows, func(w durable.Workflow) bool { return w.Name() == name })
		if i < 0 {
			return nil, false
		}
		return workflows[i], true
	}
}

// RunFile loads the directory of the workflow file at path, runs the file's workflow with
// opts (its children found in the same directory unless opts.Workflows is set) and closes
// the directory.
func RunFile(ctx context.Context, path string, opts Options, load LoadOptions) (*Result, error) {
	d, w, err := LoadFile(ctx, path, load)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if opts.Workflows == nil {
		opts.Workflows = d.Lookup
	}
	return Run(ctx, w, opts)
}

// LoadFile loads the directory of the workflow file at path, as the manager loads it, and
// returns it with the file's workflow. Close the directory when done; on an error there is
// nothing to close.
func LoadFile(ctx context.Context, path string, load LoadOptions) (*Dir, durable.Workflow, error) {
	d, err := LoadDir(ctx, filepath.Dir(path), load)
	if err != nil {
		return nil, nil, err
	}
	w, err := d.File(filepath.Join(d.Path, filepath.Base(path)))
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	return d, w, nil
}
