package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/centaur-dev/workflow-operator/internal/testcluster"
)

// leftoverStopTimeout is how long a leftover process from a crashed run may take to exit after
// SIGTERM before it is killed.
const leftoverStopTimeout = 10 * time.Second

// procID names one process across pid reuse: the kernel never gives the same pid and start
// time (clock ticks since boot) to two processes.
type procID struct {
	pid   int
	start uint64
	name  string
}

// recordChildren writes our children to path, one "pid start name" a line, so that the next run
// can stop them if this one dies without cleaning up (kill -9, OOM killer). envtest starts etcd
// and kube-apiserver in their own process groups with no parent-death signal, so nothing else
// would ever stop them, and the orphaned etcd would keep the data dir's database locked.
func recordChildren(path string) error {
	// Oldest first: etcd and kube-apiserver (started by envtest), kube-controller-manager,
	// then the manager.
	kids, err := testcluster.Children()
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, k := range kids {
		fmt.Fprintf(&b, "%d %d %s\n", k.PID, k.Start, k.Name)
	}
	if err := writeFileAtomic(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("record the child processes: %w", err)
	}
	return nil
}

// stopLeftovers stops the processes recorded in path by an earlier run that died without
// stopping them, then removes the file. Call it only while holding the lock: then no live
// devcluster owns them. A recorded pid whose start time differs is another process and is left
// alone.
func stopLeftovers(path string) error {
	recorded, err := readRecorded(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// Reverse start order: kube-apiserver before etcd, the manager first of all.
	for i := len(recorded) - 1; i >= 0; i-- {
		if p := recorded[i]; isAlive(p) {
			logf("stopping %s (pid %d), left running by an earlier `make dev` that did not shut down", p.name, p.pid)
			stopLeftover(p)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// readRecorded parses a file written by recordChildren, skipping malformed lines.
func readRecorded(path string) ([]procID, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []procID
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var p procID
		if _, err := fmt.Sscanf(sc.Text(), "%d %d %s", &p.pid, &p.start, &p.name); err == nil && p.pid > 1 {
			out = append(out, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

// isAlive reports whether the very process p still runs.
func isAlive(p procID) bool {
	st, err := testcluster.ReadStat(p.pid)
	return err == nil && st.Start == p.start && st.State != "Z"
}

// stopLeftover sends SIGTERM to p (to its whole group when it leads one, as envtest's processes
// do), waits up to leftoverStopTimeout, then sends SIGKILL.
func stopLeftover(p procID) {
	target := p.pid
	if pgid, err := syscall.Getpgid(p.pid); err == nil && pgid == p.pid {
		target = -p.pid
	}
	_ = syscall.Kill(target, syscall.SIGTERM)
	deadline := time.Now().Add(leftoverStopTimeout)
	for isAlive(p) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if isAlive(p) {
		_ = syscall.Kill(target, syscall.SIGKILL)
	}
}

// writeFileAtomic replaces path with data and mode in one rename, so a reader (kubectl, the
// manager) never sees a half-written file and an existing file's looser mode never survives.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("create a temporary file next to %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}
