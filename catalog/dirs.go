package catalog

import (
	"context"
	"errors"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// DefaultDirsPollInterval is how often WORKFLOW_DIRS are checked for changes.
const DefaultDirsPollInterval = 2 * time.Second

// Dirs loads the workflow files of WORKFLOW_DIRS into a catalog, and again whenever a file
// changes: it polls a fingerprint of each directory, which catches edits, new and deleted
// files and a ConfigMap volume's atomic swap alike. Every replica runs it (the API server needs
// the workflows as much as the controllers).
//
// It logs workflow_loaded (name, file, revision) for each workflow at start-up and whenever
// one changes, workflow_load_failed (file, line, column, reason, message) for a file that does
// not load, and workflow_overrides_builtin when a file replaces a Go workflow of the same name.
// A file that fails leaves the others running.
type Dirs struct {
	// Paths are the directories, in order: when two files define one workflow, the first wins.
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

// reload compiles every directory and hands the workflows to the catalog.
func (d *Dirs) reload() {
	if d.logged == nil {
		d.logged = map[string]string{}
	}
	seen := map[string]string{} // workflow name -> file that defines it
	var entries []Entry
	logged := map[string]string{}
	for _, dir := range d.Paths {
		files, err := workflowfile.LoadDir(dir, workflowfile.OriginDir, d.Catalog.Config(workflowfile.OriginDir))
		if err != nil {
			d.Logger.Info("workflow_dir_missing", "dir", dir, "error", err.Error())
			continue
		}
		for _, f := range files {
			if f.Err == nil {
				if first, dup := seen[f.Workflow.Name()]; dup {
					f.Err = &workflowfile.LoadError{Reason: "DuplicateWorkflowName", File: f.Workflow.File(),
						Message: "WORKFLOW_NAME " + f.Workflow.Name() + " is already defined by " + first + ", which wins"}
				}
			}
			if f.Err != nil {
				d.logFailure(logged, f)
				continue
			}
			seen[f.Workflow.Name()] = f.Path
			entries = append(entries, Entry{Workflow: f.Workflow, Revision: f.Workflow.Revision(), File: f.Path})
			d.logLoaded(logged, f)
		}
	}
	d.Catalog.SetFiles(entries)
	for _, e := range d.Catalog.Overridden() {
		d.logOnce(logged, e.File+"#override", "workflow_overrides_builtin", "workflow", e.Name(), "file", e.File,
			"message", "the workflow file replaces the Go workflow of the same name")
	}
	d.logged = logged
}

// logLoaded logs workflow_loaded for a file whose revision is new.
func (d *Dirs) logLoaded(logged map[string]string, f workflowfile.DirFile) {
	d.logOnce(logged, f.Path, "workflow_loaded", "workflow", f.Workflow.Name(), "file", f.Path,
		"revision", f.Workflow.Revision(), "source", string(SourceFile), "description", f.Workflow.Description())
}

// logFailure logs workflow_load_failed for a file whose error is new.
func (d *Dirs) logFailure(logged map[string]string, f workflowfile.DirFile) {
	var le *workflowfile.LoadError
	if !errors.As(f.Err, &le) {
		d.logOnce(logged, f.Path, "workflow_load_failed", "file", f.Path, "message", f.Err.Error())
		return
	}
	d.logOnce(logged, f.Path, "workflow_load_failed", "file", f.Path, "in", le.File, "line", le.Line, "column", le.Column,
		"reason", le.Reason, "message", le.Error())
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
