package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// errLocked says that another devcluster holds .dev/lock. main turns it into exit status 1
// without touching anything else in .dev.
var errLocked = errors.New("another `make dev` is already running")

// devLock is an exclusive flock on .dev/lock, held for the whole life of a devcluster so two of
// them never share one etcd data dir. The kernel drops the lock when the process dies, however
// it dies, so a crash never leaves a stale lock behind.
type devLock struct {
	f *os.File
}

// acquireLock takes the lock without blocking. When another process holds it, the error wraps
// errLocked and names that process's pid (read from the file, where every holder writes it).
func acquireLock(path string) (*devLock, error) {
	// No O_TRUNC: the holder's pid must survive our open so we can report it.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open the lock file %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := readHolderPID(f)
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (pid %s); stop it first (Ctrl-C in its terminal, or kill %s)", errLocked, holder, holder)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := writeHolderPID(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("record our pid in %s: %w", path, err)
	}
	return &devLock{f: f}, nil
}

// readHolderPID returns the pid recorded in the lock file, or "unknown" while the holder has not
// written it yet.
func readHolderPID(f *os.File) string {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil || pid <= 0 {
		return "unknown"
	}
	return strconv.Itoa(pid)
}

// writeHolderPID replaces the file's content with our pid.
func writeHolderPID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// release drops the lock. The file stays: removing a lock file races with the next process
// that opens it.
func (l *devLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}
