package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/internal/cli"
)

// testDir is a workflow directory with a Starlark and a Python workflow, each with a test
// file holding a passing and a failing test.
var testDir = map[string]string{
	"double.star": `WORKFLOW_NAME = "double"

def handler(inp, ctx):
    ctx.sleep("nap", "2h")
    return {"n": ctx.step("twice", lambda: inp["n"] * 2)}
`,
	"double_test.star": `def test_doubles(t):
    run = t.run("double.star", input = {"n": 2})
    t.eq(run.output, {"n": 4})
    t.eq(run.skipped, 7200.0)

def test_wrong(t):
    t.eq(t.run("double.star", input = {"n": 2}).output, {"n": 5})
`,
	"greet.py": `WORKFLOW_NAME = "greet"

async def handler(inp, ctx):
    reply = await ctx.run_agent("hello", text="Greet " + inp["name"])
    return {"greeting": reply}
`,
	"test_greet.py": `import os
import unittest

from api.testing import WorkflowEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))


class GreetTest(unittest.TestCase):
    def test_greets(self):
        env = WorkflowEnvironment(os.path.join(HERE, "greet.py")).mock_agent("hello", "Hi Ada")
        self.assertEqual(env.start({"name": "Ada"}).assert_succeeded(), {"greeting": "Hi Ada"})

    def test_wrong(self):
        env = WorkflowEnvironment(os.path.join(HERE, "greet.py")).mock_agent("hello", "Hi Ada")
        self.assertEqual(env.start({"name": "Ada"}).assert_succeeded(), {"greeting": "Bye"})

    @unittest.skip("shows as SKIP")
    def test_skipped(self):
        pass
`,
}

// writeTestDir writes files into a new directory and returns it.
func writeTestDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// testLine matches one test's line: status, file, test name and time.
var testLine = regexp.MustCompile(`^(PASS|FAIL|SKIP) (\S+) (\S+) \(\d+(\.\d+)?(ms|s|µs)\)$`)

// statuses maps each test's "file test" to its status, from centaur test's output.
func statuses(t *testing.T, stdout string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for line := range strings.SplitSeq(stdout, "\n") {
		if m := testLine.FindStringSubmatch(line); m != nil {
			got[filepath.Base(m[2])+" "+m[3]] = m[1]
		}
	}
	return got
}

func TestTestRunsStarlarkAndPythonTestsWithALinePerTest(t *testing.T) {
	isolateCache(t)
	dir := writeTestDir(t, testDir)
	r := centaur(t, "test", dir)
	want := map[string]string{
		"double_test.star test_doubles":                   "PASS",
		"double_test.star test_wrong":                     "FAIL",
		"test_greet.py test_greet.GreetTest.test_greets":  "PASS",
		"test_greet.py test_greet.GreetTest.test_wrong":   "FAIL",
		"test_greet.py test_greet.GreetTest.test_skipped": "SKIP",
	}
	got := statuses(t, r.stdout)
	for test, status := range want {
		if got[test] != status {
			t.Errorf("%s: %q, want %s", test, got[test], status)
		}
	}
	if len(got) != len(want) || r.exit != cli.ExitFailed {
		t.Errorf("exit %d with %d test lines, want exit 1 and %d lines:\n%s\nstderr:\n%s", r.exit, len(got), len(want), r.stdout, r.stderr)
	}
	for _, detail := range []string{
		filepath.Join(dir, "double_test.star") + `:7:9: got {"n": 4}, want {"n": 5}`, // the Starlark failure at its line
		`AssertionError: {'greeting': 'Hi Ada'} != {'greeting': 'Bye'}`,              // the Python traceback
		"centaur test: 5 tests in 2 files, 2 passed, 2 failed, 1 skipped (",
	} {
		if !strings.Contains(r.stdout, detail) {
			t.Errorf("the output lacks %q:\n%s", detail, r.stdout)
		}
	}
}

func TestTestExitsZeroWhenEveryTestPasses(t *testing.T) {
	isolateCache(t)
	files := map[string]string{}
	for name, text := range testDir {
		files[name] = text
	}
	files["double_test.star"] = strings.Split(testDir["double_test.star"], "def test_wrong")[0]
	files["test_greet.py"] = strings.Replace(testDir["test_greet.py"], `{"greeting": "Bye"}`, `{"greeting": "Hi Ada"}`, 1)
	dir := writeTestDir(t, files)
	// A test file given by name runs alone.
	if r := centaur(t, "test", filepath.Join(dir, "double_test.star")); r.exit != cli.ExitOK || len(statuses(t, r.stdout)) != 1 {
		t.Errorf("centaur test FILE = exit %d, want 0 and one test:\n%s%s", r.exit, r.stdout, r.stderr)
	}
	// Without PATH, the directories of WORKFLOW_DIRS.
	t.Setenv("WORKFLOW_DIRS", dir)
	if r := centaur(t, "test"); r.exit != cli.ExitOK || !strings.Contains(r.stdout, "4 tests in 2 files, 3 passed, 0 failed, 1 skipped") {
		t.Errorf("centaur test = exit %d, want 0 and every test passed:\n%s%s", r.exit, r.stdout, r.stderr)
	}
}

// timing is the time at the end of a test's line and of the summary.
var timing = regexp.MustCompile(` \(\d+(\.\d+)?(ms|s|µs)\)$`)

func TestTestRunsTheDocumentedExamples(t *testing.T) {
	isolateCache(t)
	doc := readFile(t, filepath.Join("..", "..", "docs", "cli.md"))
	root := t.TempDir()
	examples := map[string]string{
		filepath.Join("..", "..", "workflows", "github_issue_triage.py"):      "",
		filepath.Join("..", "..", "workflows", "test_github_issue_triage.py"): "shown",
		filepath.Join("testdata", "docexample", "order.star"):                 "shown",
		filepath.Join("testdata", "docexample", "order_test.star"):            "shown",
	}
	if err := os.Mkdir(filepath.Join(root, "workflows"), 0o755); err != nil {
		t.Fatal(err)
	}
	for path, shown := range examples {
		text := readFile(t, path)
		if shown != "" && !strings.Contains(doc, "```python\n"+text+"```") {
			t.Errorf("docs/cli.md does not show %s as it is", path)
		}
		if err := os.WriteFile(filepath.Join(root, "workflows", filepath.Base(path)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(root)
	r := centaur(t, "test", "workflows/")
	if r.exit != cli.ExitFailed {
		t.Errorf("centaur test workflows/ = exit %d, want 1 (the documented failure)", r.exit)
	}
	_, transcript, ok := strings.Cut(doc, "$ centaur test workflows/\n")
	transcript, _, _ = strings.Cut(transcript, "```")
	if !ok || transcript == "" {
		t.Fatal("docs/cli.md has no transcript of centaur test workflows/")
	}
	if got, want := withoutTimes(r.stdout), withoutTimes(transcript); got != want {
		t.Errorf("centaur test workflows/ printed (times aside)\n%s\nbut docs/cli.md shows\n%s", got, want)
	}
}

// withoutTimes drops the times of centaur test's lines, which vary from run to run.
func withoutTimes(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i, line := range lines {
		lines[i] = timing.ReplaceAllString(line, "")
	}
	return strings.Join(lines, "\n")
}

// readFile returns a file's text, failing the test when it cannot be read.
func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestTestUnderPytest(t *testing.T) {
	isolateCache(t)
	dir := writeTestDir(t, testDir)
	python := "python3"
	for _, candidate := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(candidate, "-m", "pytest", "--version").Run() == nil {
			python = candidate
			break
		}
	}
	r := centaur(t, "test", "--pytest", "--python-interpreter", python, filepath.Join(dir, "test_greet.py"))
	if exec.Command(python, "-m", "pytest", "--version").Run() != nil {
		// No pytest on this machine: --pytest says how to get it, and fails.
		if r.exit != cli.ExitFailed || !strings.Contains(r.stdout, "apt-get install python3-pytest") {
			t.Errorf("--pytest without pytest = exit %d, want 1 and how to install it:\n%s", r.exit, r.stdout)
		}
		return
	}
	got := statuses(t, r.stdout)
	want := map[string]string{
		"test_greet.py test_greet.GreetTest.test_greets":  "PASS",
		"test_greet.py test_greet.GreetTest.test_wrong":   "FAIL",
		"test_greet.py test_greet.GreetTest.test_skipped": "SKIP",
	}
	for test, status := range want {
		if got[test] != status {
			t.Errorf("%s: %q, want %s\n%s", test, got[test], status, r.stdout)
		}
	}
	if r.exit != cli.ExitFailed {
		t.Errorf("exit %d, want 1", r.exit)
	}
}

func TestTestUsageAndEmptyDirectories(t *testing.T) {
	isolateCache(t)
	empty := t.TempDir()
	for _, tc := range []struct {
		args   []string
		exit   int
		stderr string
	}{
		{[]string{"test", "--no-such-flag"}, cli.ExitUsage, "flag provided but not defined"},
		{[]string{"test", filepath.Join(empty, "missing")}, cli.ExitUsage, "no such file or directory"},
		{[]string{"test", filepath.Join("..", "..", "workflows", "github_issue_triage.py")}, cli.ExitUsage, "is not a test file"},
		{[]string{"test", empty}, cli.ExitFailed, "no tests found"},
	} {
		if r := centaur(t, tc.args...); r.exit != tc.exit || !strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("centaur %q = exit %d, stderr:\n%s\nwant exit %d and %q", tc.args, r.exit, r.stderr, tc.exit, tc.stderr)
		}
	}
}
