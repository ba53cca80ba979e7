package catalog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/pyworkflow"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// DefaultDirsPollInterval is how often WORKFLOW_DIRS are checked for changes.
const DefaultDirsPollInterval = 2 * time.Second

// Dirs loads the workflow files of WORKFLOW_DIRS into a catalog, and again whenever a file
// changes: it polls a fingerprint of each directory, which catches edits, new and deleted
// files and a ConfigMap volume's atomic swap alike. Every replica runs it (the API server needs
// the workflows as much as the controllers).
//
// A directory holds Starlark (*.star) and Python (*.py) workflow files. Two files of one name
// in one directory are an error (the first in name order keeps the name, the other fails with
// DuplicateWorkflowName); across directories a later one overrides an earlier one's workflow
// of the same name, as the organisation's overlay overrides the image's built-ins.
//
// It logs workflow_loaded (name, file, revision, language) for each workflow at start-up and
// whenever one changes, workflow_load_failed (file, line, column, reason, message) for a file
// that does not load, and workflow_overrides_builtin when a file replaces a Go workflow or an
// earlier directory's file of the same name. A file that fails leaves the others running.
type Dirs struct {
	// Paths are the directories, in order: a later directory's file overrides an earlier one's.
	Paths []string
	// Catalog receives the workflows.
	Catalog *Catalog
	// Interval is the polling interval; zero means DefaultDirsPollInterval.
	Interval time.Duration
	// Logger receives the load events.
	Logger logr.Logger

	fingerprints []string
	logged       map[string]string // file path -> what was last logged for it
}

// Load reads every directory now and replaces the catalog's files. Call it once before the
// manager starts, so that no run finds its workflow missing at start-up.
func (d *Dirs) Load() {
	d.fingerprints = make([]string, len(d.Paths))
	for i, p := range d.Paths {
		fp, err := workflowfile.Fingerprint(p)
		if err != nil {
			d.Logger.Error(err, "workflow_dir_unreadable", "dir", p)
		}
		d.fingerprints[i] = fp
	}
	d.reload()
}

// Start polls the directories until ctx ends.
func (d *Dirs) Start(ctx context.Context) error {
	interval := d.Interval
	if interval <= 0 {
		interval = DefaultDirsPollInterval
	}
	wait.UntilWithContext(ctx, func(context.Context) {
		if d.changed() {
			d.reload()
		}
	}, interval)
	return nil
}

// NeedLeaderElection reports false: every replica loads the files.
func (d *Dirs) NeedLeaderElection() bool { return false }

// changed reports whether any directory's fingerprint moved since the last load.
func (d *Dirs) changed() bool {
	changed := false
	for i, p := range d.Paths {
		fp, err := workflowfile.Fingerprint(p)
		if err != nil {
			d.Logger.Error(err, "workflow_dir_unreadable", "dir", p)
			continue
		}
		if fp != d.fingerprints[i] {
			d.fingerprints[i], changed = fp, true
		}
	}
	return changed
}

// reload loads every directory and hands the workflows to the catalog.
func (d *Dirs) reload() {
	if d.logged == nil {
		d.logged = map[string]string{}
	}
	byName := map[string]Entry{}
	logged := map[string]string{}
	for _, dir := range d.Paths {
		files, err := d.loadDir(dir)
		if err != nil {
			d.Logger.Info("workflow_dir_missing", "dir", dir, "error", err.Error())
			continue
		}
		inDir := map[string]string{} // workflow name -> the file of this directory that has it
		for _, f := range files {
			if f.err == nil {
				if first, dup := inDir[f.workflow.Name()]; dup {
					f.err = &workflowfile.LoadError{Reason: workflowsv1alpha1.ReasonDuplicateWorkflowName, File: f.path, Message: fmt.Sprintf(
						"WORKFLOW_NAME %s is already defined by %s in the same directory, which keeps it: rename one of them", f.workflow.Name(), first)}
				}
			}
			if f.err != nil {
				d.logFailure(logged, f)
				continue
			}
			name := f.workflow.Name()
			inDir[name] = f.path
			if earlier, ok := byName[name]; ok {
				d.logOnce(logged, f.path+"#override", "workflow_overrides_builtin", "workflow", name, "file", f.path, "overrides", earlier.File,
					"message", "a file of a later WORKFLOW_DIRS directory replaces the workflow of the same name of an earlier one")
			}
			byName[name] = Entry{Workflow: f.workflow, Revision: f.workflow.Revision(), File: f.path}
			d.logLoaded(logged, f)
		}
	}
	entries := make([]Entry, 0, len(byName))
	for _, e := range byName {
		entries = append(entries, e)
	}
	d.Catalog.SetFiles(entries)
	for _, e := range d.Catalog.Overridden() {
		d.logOnce(logged, e.File+"#override", "workflow_overrides_builtin", "workflow", e.Name(), "file", e.File,
			"message", "the workflow file replaces the Go workflow of the same name")
	}
	d.logged = logged
}

// loadedFile is what became of one workflow file of a directory, whatever its language.
type loadedFile struct {
	path     string
	workflow FileWorkflow
	err      error
}

// loadDir loads dir's Starlark and Python workflow files, in name order.
func (d *Dirs) loadDir(dir string) ([]loadedFile, error) {
	star, err := workflowfile.LoadDir(dir, workflowfile.OriginDir, d.Catalog.Config(workflowfile.OriginDir))
	if err != nil {
		return nil, err
	}
	var out []loadedFile
	for _, f := range star {
		lf := loadedFile{path: f.Path, err: f.Err}
		if f.Workflow != nil {
			lf.workflow = f.Workflow
		}
		out = append(out, lf)
	}
	py, err := d.loadPython(dir)
	if err != nil {
		return nil, err
	}
	out = append(out, py...)
	sort.SliceStable(out, func(i, j int) bool { return filepath.Base(out[i].path) < filepath.Base(out[j].path) })
	return out, nil
}

// loadPython loads dir's Python workflow files, or says of each that this manager runs no
// Python.
func (d *Dirs) loadPython(dir string) ([]loadedFile, error) {
	loader := d.Catalog.opts.Python
	if loader == nil {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		var out []loadedFile
		for _, e := range entries {
			if pyworkflow.IsWorkflowFile(e.Name()) {
				p := filepath.Join(dir, e.Name())
				out = append(out, loadedFile{path: p, err: &workflowfile.LoadError{Reason: pyworkflow.ReasonPythonUnavailable, File: p,
					Message: "this manager runs no Python workers, so Python workflow files do not load"}})
			}
		}
		return out, nil
	}
	files, err := loader.LoadDir(context.Background(), dir)
	if err != nil {
		return nil, err
	}
	out := make([]loadedFile, len(files))
	for i, f := range files {
		out[i] = loadedFile{path: f.Path, err: f.Err}
		if f.Workflow != nil {
			out[i].workflow = f.Workflow
		}
	}
	return out, nil
}

// logLoaded logs workflow_loaded for a file whose revision is new.
func (d *Dirs) logLoaded(logged map[string]string, f loadedFile) {
	d.logOnce(logged, f.path, "workflow_loaded", "workflow", f.workflow.Name(), "file", f.path,
		"revision", f.workflow.Revision(), "language", f.workflow.Language(), "source", string(SourceFile), "description", f.workflow.Description())
}

// logFailure logs workflow_load_failed for a file whose error is new.
func (d *Dirs) logFailure(logged map[string]string, f loadedFile) {
	var le *workflowfile.LoadError
	if !errors.As(f.err, &le) {
		d.logOnce(logged, f.path, "workflow_load_failed", "file", f.path, "message", f.err.Error())
		return
	}
	kv := []any{"file", f.path, "in", le.File, "line", le.Line, "column", le.Column, "reason", le.Reason, "message", le.Error()}
	if le.Backtrace != "" {
		kv = append(kv, "traceback", le.Backtrace)
	}
	d.logOnce(logged, f.path, "workflow_load_failed", kv...)
}

// logOnce logs msg with kv unless the same was logged for key by the previous load.
func (d *Dirs) logOnce(logged map[string]string, key, msg string, kv ...any) {
	line := msg
	for _, v := range kv {
		if s, ok := v.(string); ok {
			line += "\x00" + s
		}
	}
	logged[key] = line
	if d.logged[key] == line {
		return
	}
	d.Logger.Info(msg, kv...)
}
