// Package testpython gives test suites real Python workers: a pyworker.Pool over the
// repository's own python/ packages (no extraction), and the loader that runs workflow files
// with it, so that suites load Python workflow files as the manager does.
package testpython

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"

	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/pyworkflow"
)

// Pool starts a pool of workers (on first use) over the repository's python/ directory;
// cfg's other fields are kept. Close it when the suite ends.
func Pool(cfg pyworker.Config) (*pyworker.Pool, error) {
	root, err := testcluster.ModuleRoot()
	if err != nil {
		return nil, err
	}
	cfg.PackageDir = filepath.Join(root, "python")
	if cfg.Logger.GetSink() == nil {
		cfg.Logger = logr.Discard()
	}
	return pyworker.New(cfg), nil
}

// Loader returns a loader of Python workflow files over pool, with the manager's defaults.
func Loader(pool *pyworker.Pool) *pyworkflow.Loader {
	return &pyworkflow.Loader{Pool: pool}
}

// WriteDir writes a workflow directory for a test: files maps a slash-separated path relative
// to dir (a workflow file, a helper, a package's module) to its text.
func WriteDir(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
