package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/python"
	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/pyworkflow"
	"github.com/centaur-dev/workflow-operator/schedule"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// Severity says whether a Diagnostic fails lint.
type Severity string

const (
	// SeverityError fails lint: the manager would not load the file (or not under its name).
	SeverityError Severity = "error"
	// SeverityNotice does not fail lint: something an author may not have meant, such as an
	// override of an earlier directory's workflow.
	SeverityNotice Severity = "notice"
)

// Diagnostic is one finding of lint, at a place in a file.
type Diagnostic struct {
	// Severity is error or notice.
	Severity Severity
	// File is the file the finding is in: the workflow file, or the helper module where its
	// load failed.
	File string
	// Line and Column are 1-based; 1:1 when the loader knows no better place.
	Line, Column int
	// Reason is the loader's reason (SyntaxError, MissingHandler, InvalidWebhook, ...), or
	// WorkflowOverridden for a notice of an override.
	Reason string
	// Message says what is wrong and how to fix it.
	Message string
}

// ReasonWorkflowOverridden is the Reason of the notice that a file overrides an earlier
// directory's workflow of the same name.
const ReasonWorkflowOverridden = "WorkflowOverridden"

// lintOptions are lint's flags.
type lintOptions struct {
	format string
	pythonOptions
}

// pythonOptions are the flags of the commands that start a CPython worker for Python files.
type pythonOptions struct {
	python     string
	packageDir string
}

// bind binds the flags, named as the manager's of the same settings.
func (o *pythonOptions) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.python, "python-interpreter", pyworker.DefaultPython, "The CPython (3.9 or later) that runs Python workflow files, as the manager's --python-interpreter.")
	fs.StringVar(&o.packageDir, "python-package-dir", "", "Directory holding the api and centaur_worker packages; empty: the copy centaur carries, extracted once as python-path does.")
}

// lintCommand loads workflow files as the manager does and reports what does not load.
func lintCommand() command {
	return command{
		name:       "lint",
		takesFiles: true,
		summary:    "Load workflow files as the manager does and report what does not load.",
		usage: `lint [--format text|github] [PATH...]

Loads every workflow file (*.py and *.star) of each PATH, a workflow directory or a file in
one, with the manager's own loaders, and prints a line for each problem:

  FILE:LINE:COLUMN: error: REASON: MESSAGE

A file that does not load, and two files of one WORKFLOW_NAME in one directory, are errors. A
file of a later directory that overrides an earlier one's workflow of the same name is a notice
(the manager does the same: the later directory wins). Directories are taken in the order
given, as WORKFLOW_DIRS orders them. A FILE that is a helper (_*.py, _*.star) or a test
(test_*.py, *_test.py, *_test.star) is no workflow: its directory's workflows are loaded and
the problems found in it are reported. Without PATH, the directories of WORKFLOW_DIRS
(colon-separated) are linted.

Python files are imported by the manager's CPython worker (python3 3.9 or later, with the api
package that centaur carries); Starlark files are compiled in process.

Exit status: 0 when no file has an error (notices allowed), 1 when one has, 2 on a usage error.`,
		flags: func(fs *flag.FlagSet) any {
			o := &lintOptions{}
			fs.StringVar(&o.format, "format", "text", "Output format: text (FILE:LINE:COLUMN: error: REASON: MESSAGE) or github (GitHub Actions annotations: ::error file=F,line=L,col=C::MESSAGE).")
			o.pythonOptions.bind(fs)
			return o
		},
		run: func(e *env, opts any, args []string) int {
			return e.lint(opts.(*lintOptions), args)
		},
	}
}

// lint runs the lint command.
func (e *env) lint(o *lintOptions, paths []string) int {
	c, _ := lookup("lint")
	write, ok := formats[o.format]
	if !ok {
		return e.usageError(c, fmt.Sprintf("--format %q: want text or github", o.format))
	}
	if len(paths) == 0 {
		paths = catalog.SplitDirs(os.Getenv("WORKFLOW_DIRS"))
		if len(paths) == 0 {
			return e.usageError(c, "no PATH given and WORKFLOW_DIRS is empty: name the workflow directories or files to lint")
		}
	}
	start := time.Now()
	res := Lint(paths, LintConfig{Python: o.python, PackageDir: o.packageDir})
	errs, notices := 0, 0
	for _, d := range res.Diagnostics {
		write(e.stdout, d)
		if d.Severity == SeverityError {
			errs++
		} else {
			notices++
		}
	}
	fmt.Fprintf(e.stderr, "%s lint: %s in %s, %s, %s (%s)\n", e.name, count(res.Files, "workflow file"), count(res.Dirs, "directory"),
		count(errs, "error"), count(notices, "notice"), time.Since(start).Round(time.Millisecond))
	if errs > 0 {
		return ExitFailed
	}
	return ExitOK
}

// count is "1 error", "2 errors", "1 directory", "2 directories".
func count(n int, noun string) string {
	switch {
	case n == 1:
		return "1 " + noun
	case strings.HasSuffix(noun, "y"):
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(noun, "y"))
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// formats write a diagnostic, by --format.
var formats = map[string]func(io.Writer, Diagnostic){
	"text": func(w io.Writer, d Diagnostic) {
		fmt.Fprintf(w, "%s:%d:%d: %s: %s: %s\n", d.File, d.Line, d.Column, d.Severity, d.Reason, oneLine(d.Message))
	},
	// GitHub Actions workflow commands: properties and message are escaped as the runner
	// expects (https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts).
	"github": func(w io.Writer, d Diagnostic) {
		fmt.Fprintf(w, "::%s file=%s,line=%d,col=%d,title=%s::%s\n", d.Severity, escapeProperty(d.File), d.Line, d.Column,
			escapeProperty(d.Reason), escapeData(d.Message))
	},
}

// oneLine keeps a message on its line, so that every text line is one finding.
func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", " ") }

// escapeData escapes an annotation's message.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// escapeProperty escapes an annotation's property value.
func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// LintConfig configures Lint.
type LintConfig struct {
	// Python is the interpreter of the workers that import Python files; empty: python3.
	Python string
	// PackageDir holds the api and centaur_worker packages; empty: the embedded copy, extracted
	// into the cache python-path uses.
	PackageDir string
}

// LintResult is what Lint found.
type LintResult struct {
	// Diagnostics in the order the manager loads the files: directory by directory, each in
	// name order.
	Diagnostics []Diagnostic
	// Files and Dirs count the workflow files and directories loaded.
	Files, Dirs int
}

// Lint loads the workflow files of paths with the manager's loaders (catalog.LoadFiles) and
// returns what does not load, and the overrides across directories. A path is a directory,
// or a file whose directory is loaded and whose own problems are reported; directories are
// taken in the order they first appear.
func Lint(paths []string, cfg LintConfig) LintResult {
	var res LintResult
	var dirs []string
	whole := map[string]bool{}  // directories reported in full
	picked := map[string]bool{} // files named on the command line
	for _, p := range paths {
		p = filepath.Clean(p)
		info, err := os.Stat(p)
		if err != nil {
			res.Diagnostics = append(res.Diagnostics, Diagnostic{Severity: SeverityError, File: p, Line: 1, Column: 1, Reason: "NotFound",
				Message: fmt.Sprintf("cannot lint it: %v", err)})
			continue
		}
		dir := p
		if info.IsDir() {
			whole[p] = true
		} else {
			dir = filepath.Dir(p)
			picked[p] = true
		}
		if !slices.Contains(dirs, dir) {
			dirs = append(dirs, dir)
		}
	}
	if len(dirs) == 0 {
		return res
	}
	pool := pyworker.New(pyworker.Config{Python: cfg.Python, PackageDir: packageDir(cfg.PackageDir), Logger: logr.Discard()})
	defer pool.Close()
	files, unreadable := catalog.LoadFiles(dirs,
		&workflowfile.Config{CheckSchedule: schedule.CheckDeclaration},
		&pyworkflow.Loader{Pool: pool, CheckSchedule: schedule.CheckDeclaration})
	res.Dirs, res.Files = len(dirs)-len(unreadable), len(files)
	for _, u := range unreadable {
		res.Diagnostics = append(res.Diagnostics, Diagnostic{Severity: SeverityError, File: u.Dir, Line: 1, Column: 1, Reason: "UnreadableDirectory",
			Message: u.Err.Error()})
	}
	for _, f := range files {
		d, ok := diagnose(f)
		if !ok {
			continue
		}
		if whole[filepath.Dir(f.Path)] || picked[f.Path] || picked[filepath.Clean(d.File)] {
			res.Diagnostics = append(res.Diagnostics, d)
		}
	}
	return res
}

// diagnose is the finding of one loaded file, if it has one.
func diagnose(f catalog.LoadedFile) (Diagnostic, bool) {
	switch {
	case f.Err != nil:
		d := Diagnostic{Severity: SeverityError, File: f.Path, Line: 1, Column: 1, Reason: workflowfile.ReasonLoadFailed, Message: f.Err.Error()}
		var le *workflowfile.LoadError
		if errors.As(f.Err, &le) {
			d.Reason, d.Message = le.Reason, le.Message
			d.File = faultyFile(f.Path, le.File)
			if le.Line > 0 {
				d.Line, d.Column = le.Line, max(le.Column, 1)
			}
		}
		return d, true
	case f.Overrides != "":
		return Diagnostic{Severity: SeverityNotice, File: f.Path, Line: 1, Column: 1, Reason: ReasonWorkflowOverridden, Message: fmt.Sprintf(
			"workflow %q overrides the one of %s: %s", f.Workflow.Name(), f.Overrides, catalog.OverrideMessage)}, true
	}
	return Diagnostic{}, false
}

// faultyFile is the path on disk of the file a load error of the workflow file path names.
// The Starlark compiler names it relative to the workflow's directory (the workflow file, or
// a module it loads); Python's worker and the catalog name it by its path on disk.
func faultyFile(path, named string) string {
	switch {
	case named == "" || named == path:
		return path
	case strings.HasSuffix(path, ".star") && !filepath.IsAbs(named):
		return filepath.Join(filepath.Dir(path), filepath.FromSlash(named))
	}
	return filepath.Clean(named)
}

// packageDir is dir, else the embedded packages extracted into the cache; empty (the pool
// then extracts them into a temporary directory) when the cache cannot be written.
func packageDir(dir string) string {
	if dir != "" {
		return dir
	}
	root, err := cacheRoot()
	if err != nil {
		return ""
	}
	extracted, err := python.ExtractCached(root)
	if err != nil {
		return ""
	}
	return extracted
}
