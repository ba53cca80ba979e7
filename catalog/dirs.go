package catalog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
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
	files, unreadable := LoadFiles(d.Paths, d.Catalog.Config(workflowfile.OriginDir), d.Catalog.opts.Python)
	for _, u := range unreadable {
		d.Logger.Info("workflow_dir_missing", "dir", u.Dir, "error", u.Err.Error())
	}
	byName := map[string]Entry{}
	logged := map[string]string{}
	for _, f := range files {
		if f.Err != nil {
			d.logFailure(logged, f)
			continue
		}
		name := f.Workflow.Name()
		if f.Overrides != "" {
			d.logOnce(logged, f.Path+"#override", "workflow_overrides_builtin", "workflow", name, "file", f.Path, "overrides", f.Overrides,
				"message", OverrideMessage)
		}
		byName[name] = Entry{Workflow: f.Workflow, Revision: f.Workflow.Revision(), File: f.Path}
		d.logLoaded(logged, f)
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

// OverrideMessage says what a LoadedFile's Overrides means, in the manager's log and in
// centaur lint's notice alike.
const OverrideMessage = "a file of a later WORKFLOW_DIRS directory replaces the workflow of the same name of an earlier one"

// SplitDirs splits WORKFLOW_DIRS (and --workflow-dirs): colon-separated directories in order,
// a later one overriding an earlier one; empty entries and surrounding spaces are dropped.
func SplitDirs(s string) []string {
	var out []string
	for _, d := range strings.Split(s, ":") {
		if d = strings.TrimSpace(d); d != "" {
			out = append(out, d)
		}
	}
	return out
}

// LoadedFile is what became of one workflow file of WORKFLOW_DIRS, whatever its language.
type LoadedFile struct {
	// Path is the file's path on disk.
	Path string
	// Workflow is the loaded workflow; nil when Err is set.
	Workflow FileWorkflow
	// Err says why the file does not load: a *workflowfile.LoadError, whose reason is
	// DuplicateWorkflowName for a second file of one name in one directory.
	Err error
	// Overrides is the file of an earlier directory whose workflow of the same name this one
	// replaces; empty when it replaces none.
	Overrides string
}

// UnreadableDir is a directory of WORKFLOW_DIRS that could not be read (most often, one that
// does not exist).
type UnreadableDir struct {
	// Dir is the directory as given.
	Dir string
	// Err says why.
	Err error
}

// LoadFiles loads the workflow files of dirs as the manager does, directory by directory and
// each in name order: Starlark files compiled with trusted, Python files with python (nil: each
// fails with PythonUnavailable). Two files of one name in one directory are an error (the
// first in name order keeps the name, the other fails with DuplicateWorkflowName); a file of a
// later directory overrides an earlier one's of the same name (LoadedFile.Overrides). A
// directory that cannot be read is reported in the second result and the others still load.
func LoadFiles(dirs []string, trusted *workflowfile.Config, python *pyworkflow.Loader) ([]LoadedFile, []UnreadableDir) {
	var out []LoadedFile
	var unreadable []UnreadableDir
	byName := map[string]string{} // workflow name -> the file of an earlier directory that has it
	for _, dir := range dirs {
		files, err := loadDir(dir, trusted, python)
		if err != nil {
			unreadable = append(unreadable, UnreadableDir{Dir: dir, Err: err})
			continue
		}
		inDir := map[string]string{} // workflow name -> the file of this directory that has it
		for _, f := range files {
			if f.Err == nil {
				name := f.Workflow.Name()
				if first, dup := inDir[name]; dup {
					le := &workflowfile.LoadError{Reason: workflowsv1alpha1.ReasonDuplicateWorkflowName, File: f.Path, Message: fmt.Sprintf(
						"WORKFLOW_NAME %s is already defined by %s in the same directory, which keeps it: rename one of them", name, first)}
					b := f.Workflow.Bundle()
					if le.Line = workflowfile.GlobalLine(b.Files[b.Entry], "WORKFLOW_NAME"); le.Line > 0 {
						le.Column = 1
					}
					f.Workflow, f.Err = nil, le
				} else {
					inDir[name] = f.Path
					f.Overrides = byName[name]
				}
			}
			out = append(out, f)
		}
		for name, file := range inDir {
			byName[name] = file
		}
	}
	return out, unreadable
}

// loadDir loads dir's Starlark and Python workflow files, in name order.
func loadDir(dir string, trusted *workflowfile.Config, python *pyworkflow.Loader) ([]LoadedFile, error) {
	star, err := workflowfile.LoadDir(dir, workflowfile.OriginDir, trusted)
	if err != nil {
		return nil, err
	}
	var out []LoadedFile
	for _, f := range star {
		lf := LoadedFile{Path: f.Path, Err: f.Err}
		if f.Workflow != nil {
			lf.Workflow = f.Workflow
		}
		out = append(out, lf)
	}
	py, err := loadPython(dir, python)
	if err != nil {
		return nil, err
	}
	out = append(out, py...)
	sort.SliceStable(out, func(i, j int) bool { return filepath.Base(out[i].Path) < filepath.Base(out[j].Path) })
	return out, nil
}

// loadPython loads dir's Python workflow files with loader, or says of each that this manager
// runs no Python when loader is nil.
func loadPython(dir string, loader *pyworkflow.Loader) ([]LoadedFile, error) {
	if loader == nil {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("read workflow directory %s: %w", dir, err)
		}
		var out []LoadedFile
		for _, e := range entries {
			if pyworkflow.IsWorkflowFile(e.Name()) {
				p := filepath.Join(dir, e.Name())
				out = append(out, LoadedFile{Path: p, Err: &workflowfile.LoadError{Reason: pyworkflow.ReasonPythonUnavailable, File: p,
					Message: "this manager runs no Python workers, so Python workflow files do not load"}})
			}
		}
		return out, nil
	}
	files, err := loader.LoadDir(context.Background(), dir)
	if err != nil {
		return nil, err
	}
	out := make([]LoadedFile, len(files))
	for i, f := range files {
		out[i] = LoadedFile{Path: f.Path, Err: f.Err}
		if f.Workflow != nil {
			out[i].Workflow = f.Workflow
		}
	}
	return out, nil
}

// logLoaded logs workflow_loaded for a file whose revision is new.
func (d *Dirs) logLoaded(logged map[string]string, f LoadedFile) {
	d.logOnce(logged, f.Path, "workflow_loaded", "workflow", f.Workflow.Name(), "file", f.Path,
		"revision", f.Workflow.Revision(), "language", f.Workflow.Language(), "source", string(SourceFile), "description", f.Workflow.Description())
}

// logFailure logs workflow_load_failed for a file whose error is new.
func (d *Dirs) logFailure(logged map[string]string, f LoadedFile) {
	var le *workflowfile.LoadError
	if !errors.As(f.Err, &le) {
		d.logOnce(logged, f.Path, "workflow_load_failed", "file", f.Path, "message", f.Err.Error())
		return
	}
	kv := []any{"file", f.Path, "in", le.File, "line", le.Line, "column", le.Column, "reason", le.Reason, "message", le.Error()}
	if le.Backtrace != "" {
		kv = append(kv, "traceback", le.Backtrace)
	}
	d.logOnce(logged, f.Path, "workflow_load_failed", kv...)
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
