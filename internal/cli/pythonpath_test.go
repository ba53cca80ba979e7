package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/internal/cli"
	"github.com/centaur-dev/workflow-operator/pyworker"
)

func TestPythonPathLetsAuthorsTestsImportTheAPI(t *testing.T) {
	cache := isolateCache(t)
	for _, tc := range []struct {
		name string
		args []string
		root string // where the copy must be
	}{
		{name: "user cache", args: []string{"python-path"}, root: filepath.Join(cache, "centaur", "python")},
		{name: "--cache-dir", args: []string{"python-path", "--cache-dir", filepath.Join(cache, "elsewhere")}, root: filepath.Join(cache, "elsewhere")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := centaur(t, tc.args...)
			dir := strings.TrimSpace(r.stdout)
			if r.exit != cli.ExitOK || filepath.Dir(dir) != tc.root {
				t.Fatalf("centaur %q = exit %d, %q (stderr %q); want a directory in %s", tc.args, r.exit, dir, r.stderr, tc.root)
			}
			// An author's test, run by the interpreter the manager would use.
			cmd := exec.Command(pyworker.DefaultPython, "-c",
				"import api.workflow_engine, api.webhooks; from api.workflow_engine import WorkflowContext, Schedule; print('ok')")
			cmd.Env = append(os.Environ(), "PYTHONPATH="+dir, "PYTHONDONTWRITEBYTECODE=1")
			out, err := cmd.CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "ok" {
				t.Errorf("python3 with PYTHONPATH=%s: %v\n%s", dir, err, out)
			}
			if again := centaur(t, tc.args...); strings.TrimSpace(again.stdout) != dir {
				t.Errorf("a second python-path printed %q, want the same %s", again.stdout, dir)
			}
		})
	}
}
