// Package python embeds the project's Python packages so that the manager binary carries
// them: api, which workflow files import (api.workflow_engine, api.webhooks), and
// centaur_worker, the process that runs them (python/PROTOCOL.md). The Python sources beside
// this file are the packages themselves; this Go file only ships them.
package python

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed api/*.py api/py.typed centaur_worker/*.py
var files embed.FS

// FS returns the packages' files, rooted where api/ and centaur_worker/ are.
func FS() fs.FS { return files }

// Extract writes the packages into dir, which then goes on PYTHONPATH (read-only files).
func Extract(dir string) error {
	return fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, data, 0o444); err != nil {
			return fmt.Errorf("extract the Python package: %w", err)
		}
		return nil
	})
}
