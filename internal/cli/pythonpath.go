package cli

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/centaur-dev/workflow-operator/python"
)

// pythonPathOptions are python-path's flags.
type pythonPathOptions struct {
	cacheDir string
}

// pythonPathCommand extracts the Python package centaur carries and prints where it is.
func pythonPathCommand() command {
	return command{
		name:    "python-path",
		summary: "Extract the api Python package and print the directory to put on PYTHONPATH.",
		usage: `python-path [--cache-dir DIR]

Extracts the Python packages centaur carries (api: api.workflow_engine and api.webhooks, which
workflow files import; centaur_worker, the manager's worker) into a directory named by their
digest under the cache, once, and prints that directory. Put it on PYTHONPATH to run your own
tests of workflow files with no package index:

  PYTHONPATH="$(centaur python-path)" python3 -m unittest discover -s workflows

The cache is $XDG_CACHE_HOME/centaur/python (the platform's user cache directory elsewhere).`,
		flags: func(fs *flag.FlagSet) any {
			o := &pythonPathOptions{}
			fs.StringVar(&o.cacheDir, "cache-dir", "", "Directory under which the packages are extracted; empty: the user cache directory's centaur/python.")
			return o
		},
		run: func(e *env, opts any, args []string) int {
			c, _ := lookup("python-path")
			if len(args) > 0 {
				return e.usageError(c, fmt.Sprintf("unexpected argument %q", args[0]))
			}
			root := opts.(*pythonPathOptions).cacheDir
			if root == "" {
				var err error
				if root, err = cacheRoot(); err != nil {
					fmt.Fprintf(e.stderr, "%s python-path: %v: set --cache-dir\n", e.name, err)
					return ExitFailed
				}
			}
			dir, err := python.ExtractCached(root)
			if err != nil {
				fmt.Fprintf(e.stderr, "%s python-path: %v\n", e.name, err)
				return ExitFailed
			}
			fmt.Fprintln(e.stdout, dir)
			return ExitOK
		},
	}
}

// cacheRoot is where the Python packages are extracted: the user cache directory's
// centaur/python ($XDG_CACHE_HOME, else ~/.cache, on Linux).
func cacheRoot() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the user cache directory: %w", err)
	}
	return filepath.Join(base, "centaur", "python"), nil
}
