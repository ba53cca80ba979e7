package workflowfile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// DirFile is what became of one workflow file of a directory.
type DirFile struct {
	// Path is the file's path on disk.
	Path string
	// Workflow is the compiled workflow; nil when Err is set.
	Workflow *Workflow
	// Err says why the file does not load (a *LoadError).
	Err error
}

// IsWorkflowFile reports whether a directory entry named name is a workflow file: a .star file
// whose name starts with neither "_" (a module for load()) nor "." (hidden, such as a
// ConfigMap volume's ..data), and is not an author's test (*_test.star), which lives beside
// the workflow it tests and is not one itself.
func IsWorkflowFile(name string) bool {
	return strings.HasSuffix(name, ".star") && !strings.HasPrefix(name, "_") && !strings.HasPrefix(name, ".") &&
		!strings.HasSuffix(name, "_test.star")
}

// LoadDir compiles every workflow file at the top level of dir, in name order. Modules are
// loaded from dir and its subdirectories. A file that does not load is reported in its
// DirFile and does not stop the others; the error is for a directory that cannot be read.
func LoadDir(dir string, origin Origin, cfg *Config) ([]DirFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read workflow directory %s: %w", dir, err)
	}
	read := dirReader(dir)
	var out []DirFile
	for _, e := range entries {
		if !IsWorkflowFile(e.Name()) || !isRegularFile(filepath.Join(dir, e.Name())) {
			continue
		}
		f := DirFile{Path: filepath.Join(dir, e.Name())}
		f.Workflow, f.Err = Compile(e.Name(), read, origin, cfg)
		out = append(out, f)
	}
	return out, nil
}

// dirReader reads modules below dir; the loader has already refused paths that leave it.
func dirReader(dir string) ReadFunc {
	return func(p string) ([]byte, error) {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(path.Clean(p))))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no module %q in %s", p, dir)
		}
		return data, err
	}
}

// isRegularFile follows symlinks (a ConfigMap volume's files are symlinks into ..data).
func isRegularFile(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.Mode().IsRegular()
}

// Fingerprint is a digest of every workflow source below dir (.star and .py files, names and
// contents; Python's bytecode caches aside), so that a poller notices any change: an edit, a
// new or deleted file, a ConfigMap volume's atomic swap. A directory that does not exist has
// the fingerprint "absent".
func Fingerprint(dir string) (string, error) {
	h := sha256.New()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != dir && (strings.HasPrefix(d.Name(), ".") || d.Name() == "__pycache__") {
			return fs.SkipDir // a ConfigMap volume's timestamped copies (..data points at one), bytecode
		}
		if (strings.HasSuffix(p, ".star") || strings.HasSuffix(p, ".py")) && isRegularFile(p) {
			files = append(files, p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return "absent", nil
	}
	if err != nil {
		return "", fmt.Errorf("scan workflow directory %s: %w", dir, err)
	}
	sort.Strings(files)
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", p, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
