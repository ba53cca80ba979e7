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
	if st.PPID != os.Getppid() || st.State == "" || st.State == "Z" || st.Start == 0 {
		t.Errorf("ReadStat(self) = %+v, want ppid %d, a live state and a start time", st, os.Getppid())
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

// TestChildren finds a child this process started, by pid and name, and loses it once it is
// killed and reaped.
func TestChildren(t *testing.T) {
	p, err := StartProcess(ProcessOptions{Binary: "/bin/sleep", Args: []string{"60"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Kill() }()
	find := func() *Child {
		kids, err := Children()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range kids {
			if k.PID == p.PID() {
				return &k
			}
		}
		return nil
	}
	if k := find(); k == nil || k.Name != "sleep" || k.Start == 0 {
		t.Fatalf("Children() has %+v for the sleep child (pid %d), want it named sleep with a start time", k, p.PID())
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if k := find(); k != nil {
		t.Errorf("Children() still lists the killed child: %+v", k)
	}
	if !p.Exited() {
		t.Error("Kill returned before the child was reaped")
	}
}
