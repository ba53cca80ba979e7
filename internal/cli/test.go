package cli

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/localrun"
	"github.com/centaur-dev/workflow-operator/localrun/startest"
	"github.com/centaur-dev/workflow-operator/pyworker"
)

// pyTestsRunner is the Python program that runs Python test files under unittest and reports
// each test's outcome as a JSON line on fd 3.
//
//go:embed pytests.py
var pyTestsRunner string

// testOptions are test's flags.
type testOptions struct {
	pytest bool
	pythonOptions
}

// testCommand runs the tests of workflow files.
func testCommand() command {
	return command{
		name:       "test",
		takesFiles: true,
		summary:    "Run the tests beside workflow files: *_test.star in process, test_*.py and *_test.py in python3.",
		usage: `test [--pytest] [PATH...]

Runs the tests of workflow files. Each PATH is a workflow directory (its test files at the top
level, where the manager's loader skips them) or a test file. Without PATH, the directories of
WORKFLOW_DIRS, else the current directory.

  *_test.star   run in process: each test_*(t) function starts runs of the directory's
                workflows on the manager's engine (time skipped; events, mocked steps, agent
                turns and children; t.eq, t.true, ... at the caller's line).
  test_*.py     run by python3 under unittest (under pytest with --pytest), with PYTHONPATH
  *_test.py     holding the api package centaur carries (api.testing) and the test's directory.

Prints one line per test, PASS, FAIL or SKIP with the file, the test and its time (a failure's
detail indented below it), then a summary.

Exit status: 0 when every test passed, 1 when one failed or no test was found, 2 on a usage
error (an unknown flag, a PATH that does not exist).`,
		flags: func(fs *flag.FlagSet) any {
			o := &testOptions{}
			fs.BoolVar(&o.pytest, "pytest", false, "Run Python test files with python3 -m pytest instead of unittest (pytest must be installed for that python3).")
			o.pythonOptions.bind(fs)
			return o
		},
		run: func(e *env, opts any, args []string) int {
			return e.test(opts.(*testOptions), args)
		},
	}
}

// testOutcome is how one test ended.
type testOutcome struct {
	file, name string
	status     string // PASS, FAIL or SKIP
	detail     string
	took       time.Duration
}

// testFiles are the test files found, by language, in the order found.
type testFiles struct {
	star []string
	// python groups the Python test files by directory, each run in one process.
	python map[string][]string
	dirs   []string // the keys of python, in the order found
}

// test runs the test command.
func (e *env) test(o *testOptions, paths []string) int {
	c, _ := lookup("test")
	if len(paths) == 0 {
		if paths = catalog.SplitDirs(os.Getenv("WORKFLOW_DIRS")); len(paths) == 0 {
			paths = []string{"."}
		}
	}
	files, err := findTests(paths)
	if err != nil {
		return e.usageError(c, err.Error())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	var outcomes []testOutcome
	report := func(out testOutcome) {
		outcomes = append(outcomes, out)
		e.printOutcome(out)
	}
	for _, file := range files.star {
		e.runStarTests(ctx, o, file, report)
	}
	for _, dir := range files.dirs {
		e.runPythonTests(ctx, o, dir, files.python[dir], report)
	}
	return e.testSummary(outcomes, len(files.star)+pythonFileCount(files), time.Since(start))
}

// findTests lists the test files of paths: a directory's at its top level, a file as given.
func findTests(paths []string) (testFiles, error) {
	found := testFiles{python: map[string][]string{}}
	seen := map[string]bool{}
	add := func(path string) {
		path = filepath.Clean(path)
		if seen[path] {
			return
		}
		seen[path] = true
		name := filepath.Base(path)
		switch {
		case startest.IsTestFile(name):
			found.star = append(found.star, path)
		case isPythonTest(name):
			dir := filepath.Dir(path)
			if _, ok := found.python[dir]; !ok {
				found.dirs = append(found.dirs, dir)
			}
			found.python[dir] = append(found.python[dir], path)
		}
	}
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return testFiles{}, fmt.Errorf("PATH %s: %w", p, err)
		}
		if !info.IsDir() {
			if !startest.IsTestFile(filepath.Base(p)) && !isPythonTest(filepath.Base(p)) {
				return testFiles{}, fmt.Errorf("%s is not a test file: name it *_test.star, test_*.py or *_test.py", p)
			}
			add(p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return testFiles{}, fmt.Errorf("read %s: %w", p, err)
		}
		for _, entry := range entries { // in name order
			if !entry.IsDir() {
				add(filepath.Join(p, entry.Name()))
			}
		}
	}
	return found, nil
}

// isPythonTest reports whether name is a Python test file: test_*.py or *_test.py.
func isPythonTest(name string) bool {
	return strings.HasSuffix(name, ".py") && (strings.HasPrefix(name, "test_") || strings.HasSuffix(name, "_test.py"))
}

// pythonFileCount counts the Python test files found.
func pythonFileCount(files testFiles) int {
	n := 0
	for _, list := range files.python {
		n += len(list)
	}
	return n
}

// printOutcome prints one test's line, and a failure's detail indented below it.
func (e *env) printOutcome(out testOutcome) {
	fmt.Fprintf(e.stdout, "%-4s %s %s (%s)\n", out.status, out.file, out.name, out.took.Round(time.Millisecond))
	if out.status == "FAIL" && out.detail != "" {
		for line := range strings.SplitSeq(strings.TrimRight(out.detail, "\n"), "\n") {
			fmt.Fprintf(e.stdout, "    %s\n", line)
		}
	}
}

// testSummary prints the summary line and returns the exit status.
func (e *env) testSummary(outcomes []testOutcome, files int, took time.Duration) int {
	counts := map[string]int{}
	for _, out := range outcomes {
		counts[out.status]++
	}
	summary := fmt.Sprintf("%s test: %s in %s, %d passed, %d failed", e.name, count(len(outcomes), "test"), count(files, "file"), counts["PASS"], counts["FAIL"])
	if counts["SKIP"] > 0 {
		summary += fmt.Sprintf(", %d skipped", counts["SKIP"])
	}
	fmt.Fprintf(e.stdout, "%s (%s)\n", summary, took.Round(time.Millisecond))
	switch {
	case len(outcomes) == 0:
		fmt.Fprintf(e.stderr, "%s test: no tests found: write *_test.star files with test_*(t) functions, or test_*.py files, beside the workflows\n", e.name)
		return ExitFailed
	case counts["FAIL"] > 0:
		return ExitFailed
	}
	return ExitOK
}

// runStarTests runs the test functions of one *_test.star file.
func (e *env) runStarTests(ctx context.Context, o *testOptions, file string, report func(testOutcome)) {
	start := time.Now()
	opts := startest.Options{Load: localrun.LoadOptions{Python: pyworker.Config{Python: o.python, PackageDir: packageDir(o.packageDir), Logger: logr.Discard()}}}
	results, err := startest.RunFile(ctx, file, opts)
	if err != nil {
		report(testOutcome{file: file, name: "(file)", status: "FAIL", detail: err.Error(), took: time.Since(start)})
		return
	}
	for _, r := range results {
		out := testOutcome{file: file, name: r.Name, status: "PASS", took: r.Duration}
		if !r.Passed() {
			out.status, out.detail = "FAIL", strings.Join(r.Failures, "\n")
		}
		report(out)
	}
}

// runPythonTests runs the Python test files of one directory in one python3 process, with
// PYTHONPATH holding the api package and the directory.
func (e *env) runPythonTests(ctx context.Context, o *testOptions, dir string, files []string, report func(testOutcome)) {
	start := time.Now()
	fail := func(err error) {
		for _, f := range files {
			report(testOutcome{file: f, name: "(file)", status: "FAIL", detail: err.Error(), took: time.Since(start)})
		}
	}
	pkg := packageDir(o.packageDir)
	if pkg == "" {
		fail(errors.New("cannot extract the Python package centaur carries: set --python-package-dir"))
		return
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		fail(err)
		return
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f)
	}
	env := append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONPATH="+strings.Join(slices.DeleteFunc([]string{pkg, abs, os.Getenv("PYTHONPATH")}, func(s string) bool { return s == "" }), string(os.PathListSeparator)))
	var outcomes []testOutcome
	if o.pytest {
		outcomes, err = runPytest(ctx, o.python, abs, dir, names, env)
	} else {
		outcomes, err = runUnittest(ctx, o.python, abs, dir, names, env)
	}
	for _, out := range outcomes {
		report(out)
	}
	if err != nil {
		fail(err)
	}
}

// pyOutcome is one line the unittest runner writes.
type pyOutcome struct {
	File    string  `json:"file"`
	Test    string  `json:"test"`
	Outcome string  `json:"outcome"`
	Detail  string  `json:"detail"`
	Seconds float64 `json:"seconds"`
}

// runUnittest runs the files of dir (shown as shown) under unittest with pytests.py, reading
// each test's outcome from fd 3; the tests' own output goes to the command's output.
func runUnittest(ctx context.Context, python, dir, shown string, names, env []string) ([]testOutcome, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("make a pipe for the Python tests' outcomes: %w", err)
	}
	defer r.Close()
	cmd := exec.CommandContext(ctx, python, append([]string{"-B", "-c", pyTestsRunner}, names...)...)
	cmd.Dir, cmd.Env, cmd.ExtraFiles = dir, env, []*os.File{w}
	var output strings.Builder
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("start %s for the Python tests: %w", python, err)
	}
	w.Close()
	var outcomes []testOutcome
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for scanner.Scan() {
		var line pyOutcome
		if err := json.Unmarshal(scanner.Bytes(), &line); err != nil {
			continue
		}
		outcomes = append(outcomes, pyTestOutcome(shown, line))
	}
	if err := cmd.Wait(); err != nil || len(outcomes) == 0 {
		return outcomes, fmt.Errorf("%s ended with %v before reporting its tests:\n%s", python, err, strings.TrimSpace(output.String()))
	}
	return outcomes, nil
}

// pyTestOutcome is the outcome the runner reported, with the file shown as given.
func pyTestOutcome(dir string, line pyOutcome) testOutcome {
	out := testOutcome{file: filepath.Join(dir, line.File), name: line.Test, status: "PASS", detail: line.Detail,
		took: time.Duration(line.Seconds * float64(time.Second))}
	switch line.Outcome {
	case "fail", "error":
		out.status = "FAIL"
	case "skip":
		out.status = "SKIP"
	}
	return out
}

// junitSuites is the part of pytest's --junitxml report centaur reads.
type junitSuites struct {
	Cases []junitCase `xml:"testsuite>testcase"`
}

// junitCase is one test of a JUnit XML report.
type junitCase struct {
	Class   string       `xml:"classname,attr"`
	Name    string       `xml:"name,attr"`
	File    string       `xml:"file,attr"`
	Time    float64      `xml:"time,attr"`
	Failure *junitDetail `xml:"failure"`
	Error   *junitDetail `xml:"error"`
	Skipped *junitDetail `xml:"skipped"`
}

// junitDetail is a failure's, error's or skip's message and text.
type junitDetail struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// runPytest runs the files of dir under pytest and reads its JUnit XML report.
func runPytest(ctx context.Context, python, dir, shown string, names, env []string) ([]testOutcome, error) {
	if err := exec.CommandContext(ctx, python, "-m", "pytest", "--version").Run(); err != nil {
		return nil, fmt.Errorf("--pytest: %s -m pytest does not run (%v): install pytest for it (Debian: apt-get install python3-pytest), or leave out --pytest to use unittest", python, err)
	}
	report, err := os.CreateTemp("", "centaur-pytest-*.xml")
	if err != nil {
		return nil, fmt.Errorf("make pytest's report file: %w", err)
	}
	report.Close()
	defer os.Remove(report.Name())
	args := append([]string{"-B", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml", report.Name(), "-o", "junit_family=xunit1"}, names...)
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Dir, cmd.Env = dir, env
	output, runErr := cmd.CombinedOutput()
	data, err := os.ReadFile(report.Name())
	if err != nil || len(data) == 0 {
		return nil, fmt.Errorf("pytest wrote no report (%v):\n%s", runErr, strings.TrimSpace(string(output)))
	}
	var suites junitSuites
	if err := xml.Unmarshal(data, &suites); err != nil {
		return nil, fmt.Errorf("read pytest's report: %w", err)
	}
	outcomes := make([]testOutcome, 0, len(suites.Cases))
	for _, tc := range suites.Cases {
		outcomes = append(outcomes, junitOutcome(shown, tc))
	}
	if len(outcomes) == 0 {
		return nil, fmt.Errorf("pytest found no tests:\n%s", strings.TrimSpace(string(output)))
	}
	return outcomes, nil
}

// junitOutcome is one test case of pytest's report.
func junitOutcome(dir string, tc junitCase) testOutcome {
	out := testOutcome{file: filepath.Join(dir, tc.File), name: tc.Class + "." + tc.Name, status: "PASS",
		took: time.Duration(tc.Time * float64(time.Second))}
	if tc.File == "" {
		out.file = dir
	}
	for _, d := range []*junitDetail{tc.Failure, tc.Error} {
		if d != nil {
			out.status, out.detail = "FAIL", strings.TrimSpace(d.Text+"\n"+d.Message)
		}
	}
	if tc.Skipped != nil && out.status == "PASS" {
		out.status, out.detail = "SKIP", tc.Skipped.Message
	}
	return out
}
