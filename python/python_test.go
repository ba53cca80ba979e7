package python_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/centaur-dev/workflow-operator/python"
)

func TestExtractCachedWritesOnceAndReusesTheCopy(t *testing.T) {
	root := filepath.Join(t.TempDir(), "cache")
	dir, err := python.ExtractCached(root)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dir) != python.Digest() || len(python.Digest()) != 64 {
		t.Errorf("extracted to %s, want a directory named by the digest %s", dir, python.Digest())
	}
	for _, f := range []string{"api/workflow_engine.py", "api/webhooks.py", "centaur_worker/__main__.py"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the copy lacks %s: %v", f, err)
		}
	}
	again, err := python.ExtractCached(root)
	if err != nil || again != dir {
		t.Fatalf("second ExtractCached = %s, %v; want %s", again, err, dir)
	}
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != 1 {
		t.Errorf("the cache holds %d entries (%v), want the one copy and no leftovers", len(entries), err)
	}
}
