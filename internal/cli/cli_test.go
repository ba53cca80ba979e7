package cli_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/internal/cli"
)

// result is what one run of the CLI printed and returned.
type result struct {
	exit           int
	stdout, stderr string
}

// centaur runs the CLI in process with args. The Python package is extracted into a cache of
// the test's own (XDG_CACHE_HOME), never the user's.
func centaur(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	exit := cli.Main("centaur", args, &stdout, &stderr)
	return result{exit: exit, stdout: stdout.String(), stderr: stderr.String()}
}

// isolateCache points the user cache directory at a temporary one for the rest of the test.
func isolateCache(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", dir)
	return dir
}

func TestCommandsExitAsScriptsExpect(t *testing.T) {
	isolateCache(t)
	for _, tc := range []struct {
		args       []string
		exit       int
		stdout     string // a substring of stdout
		stderr     string // a substring of stderr
		emptyOuput bool   // nothing on stdout
	}{
		{args: nil, exit: cli.ExitUsage, stderr: "Commands:", emptyOuput: true},
		{args: []string{"frobnicate"}, exit: cli.ExitUsage, stderr: `unknown command "frobnicate"`, emptyOuput: true},
		{args: []string{"--help"}, exit: cli.ExitOK, stdout: "python-path"},
		{args: []string{"help"}, exit: cli.ExitOK, stdout: "lint"},
		{args: []string{"help", "lint"}, exit: cli.ExitOK, stdout: "--format"},
		{args: []string{"help", "help"}, exit: cli.ExitOK, stdout: "help [COMMAND]"},
		{args: []string{"help", "nope"}, exit: cli.ExitUsage, stderr: `unknown command "nope"`},
		{args: []string{"lint", "--help"}, exit: cli.ExitOK, stdout: "Exit status"},
		{args: []string{"python-path", "-h"}, exit: cli.ExitOK, stdout: "PYTHONPATH"},
		{args: []string{"version", "--help"}, exit: cli.ExitOK, stdout: "Usage: centaur version"},
		{args: []string{"version"}, exit: cli.ExitOK, stdout: "centaur "},
		{args: []string{"--version"}, exit: cli.ExitOK, stdout: "python package "},
		{args: []string{"version", "extra"}, exit: cli.ExitUsage, stderr: `unexpected argument "extra"`},
		{args: []string{"lint", "--no-such-flag", "."}, exit: cli.ExitUsage, stderr: "flag provided but not defined"},
		{args: []string{"lint", "--format", "xml", "."}, exit: cli.ExitUsage, stderr: `--format "xml"`},
		{args: []string{"python-path", "extra"}, exit: cli.ExitUsage, stderr: `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			r := centaur(t, tc.args...)
			if r.exit != tc.exit || !strings.Contains(r.stdout, tc.stdout) || !strings.Contains(r.stderr, tc.stderr) ||
				(tc.emptyOuput && r.stdout != "") {
				t.Errorf("centaur %q = exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d, stdout with %q, stderr with %q",
					tc.args, r.exit, r.stdout, r.stderr, tc.exit, tc.stdout, tc.stderr)
			}
		})
	}
}

func TestKubectlPluginNamesItselfInUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if exit := cli.Main("kubectl centaur", []string{"help"}, &stdout, &stderr); exit != cli.ExitOK ||
		!strings.Contains(stdout.String(), "kubectl centaur COMMAND") {
		t.Errorf("kubectl centaur help = %d:\n%s", exit, stdout.String())
	}
}
