package testcluster

import (
	"os"
	"testing"
)

// TestReadStat reads this process's own stat and status.
func TestReadStat(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != os.Getppid() || st.State == "" || st.State == "Z" {
		t.Errorf("ReadStat(self) = %+v, want ppid %d and a live state", st, os.Getppid())
	}
	rss, err := RSS(os.Getpid())
	if err != nil || rss <= 0 {
		t.Errorf("RSS(self) = %d, %v; want a positive size", rss, err)
	}
}

// TestModuleRoot finds the module's go.mod from this package's directory.
func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root + "/go.mod"); err != nil {
		t.Errorf("ModuleRoot() = %s, which holds no go.mod", root)
	}
}
