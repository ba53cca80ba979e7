// Package testpython gives test suites real Python workers: a pyworker.Pool over the
// repository's own python/ packages (no extraction), and the loader that runs workflow files
// with it, so that suites load Python workflow files as the manager does.
package testpython

import (
	"path/filepath"

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
