// Package python embeds the project's Python packages so that the manager binary carries
// them: api, which workflow files import (api.workflow_engine, api.webhooks), and
// centaur_worker, the process that runs them (python/PROTOCOL.md). The Python sources beside
// this file are the packages themselves; this Go file only ships them.
package python

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
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

// Digest is the hex SHA-256 of the packages (every file's path and contents): two binaries
// with the same digest carry the same Python code, so an extracted copy can be named by it.
func Digest() string {
	h := sha256.New()
	// WalkDir over an embed.FS visits files in lexical order and cannot fail on its own tree.
	_ = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		h.Write([]byte(p + "\x00" + strconv.Itoa(len(data)) + "\x00"))
		h.Write(data)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}

// ExtractCached makes sure root/<Digest()> holds the packages and returns that directory, to
// put on PYTHONPATH. A copy extracted earlier is used as it is; a new one is written into a
// temporary directory beside it and renamed into place, so that a concurrent caller never sees
// half a copy.
func ExtractCached(root string) (string, error) {
	dir := filepath.Join(root, Digest())
	if info, err := os.Stat(dir); err == nil && info.IsDir() {
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("make the Python package cache %s: %w", root, err)
	}
	tmp, err := os.MkdirTemp(root, ".extract-")
	if err != nil {
		return "", fmt.Errorf("make a directory in the Python package cache %s: %w", root, err)
	}
	defer os.RemoveAll(tmp) // gone after the rename; the leftovers of a failure otherwise
	if err := Extract(tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another process may have renamed its own copy into place first: use it.
		if info, statErr := os.Stat(dir); statErr == nil && info.IsDir() {
			return dir, nil
		}
		return "", fmt.Errorf("move the extracted Python package to %s: %w", dir, err)
	}
	return dir, nil
}
