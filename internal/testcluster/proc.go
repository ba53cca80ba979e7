package testcluster

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ModuleRoot returns the directory of the module's go.mod, searched upwards from the working
// directory, so that programs and tests find bin/ and config/ wherever they run from.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run from inside the module")
		}
		dir = parent
	}
}

// childByPath returns the pid of this process's live child that runs the binary at path.
func childByPath(path string) (int, error) {
	want, err := filepath.EvalSymlinks(path)
	if err != nil {
		return 0, fmt.Errorf("resolve %s: %w", path, err)
	}
	kids, err := Children()
	if err != nil {
		return 0, err
	}
	for _, k := range kids {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", k.PID)); err == nil && exe == want {
			return k.PID, nil
		}
	}
	return 0, fmt.Errorf("no running child process runs %s", path)
}

// Child is a live child process of this process.
type Child struct {
	Stat
	// PID is its process id.
	PID int
	// Name is its command name (/proc/PID/comm).
	Name string
}

// Children lists this process's live children, zombies left out, oldest first.
func Children() ([]Child, error) { return ChildrenOf(os.Getpid()) }

// ChildrenOf lists the live children of process parent, zombies left out, oldest first: the
// Python workers of a manager process, for example.
func ChildrenOf(parent int) ([]Child, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	self := parent
	var kids []Child
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := ReadStat(pid)
		if err != nil || st.PPID != self || st.State == "Z" {
			continue // gone meanwhile, or not ours
		}
		name, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		kids = append(kids, Child{Stat: st, PID: pid, Name: strings.TrimSpace(string(name))})
	}
	slices.SortFunc(kids, func(a, b Child) int { return cmp.Compare(a.Start, b.Start) })
	return kids, nil
}

// ProcessExists reports whether pid names a process that has not been reaped yet.
func ProcessExists(pid int) bool { return processExists(pid) }

// processExists reports whether pid names a process that has not been reaped yet.
func processExists(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// clockTicks is the kernel's USER_HZ, the unit of CPU times in /proc/PID/stat; 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// Stat is what /proc/PID/stat tells about a process.
type Stat struct {
	// State is the one-letter process state ("R", "S", "Z", ...).
	State string
	// PPID is the parent's pid.
	PPID int
	// CPU is the user plus system CPU time the process used so far.
	CPU time.Duration
	// Start is when the process started, in clock ticks after boot: with the pid it names
	// one process across pid reuse, since the kernel never gives both to two processes.
	Start uint64
}

// ReadStat parses /proc/PID/stat. The command name sits in parentheses and may hold spaces and
// parentheses, so fields are counted from the last ')'.
func ReadStat(pid int) (Stat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, fmt.Errorf("read the stat of pid %d: %w", pid, err)
	}
	s := string(data)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return Stat{}, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	// After ") ": state is field 3 (index 0), ppid 4 (1), utime 14 (11), stime 15 (12),
	// starttime 22 (19).
	f := strings.Fields(s[end+1:])
	if len(f) < 20 {
		return Stat{}, fmt.Errorf("parse /proc/%d/stat: only %d fields", pid, len(f))
	}
	ppid, err1 := strconv.Atoi(f[1])
	utime, err2 := strconv.ParseInt(f[11], 10, 64)
	stime, err3 := strconv.ParseInt(f[12], 10, 64)
	start, err4 := strconv.ParseUint(f[19], 10, 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return Stat{}, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	cpu := time.Duration(utime+stime) * time.Second / clockTicks
	return Stat{State: f[0], PPID: ppid, CPU: cpu, Start: start}, nil
}

// RSS returns the resident set size of pid in bytes (VmRSS of /proc/PID/status).
func RSS(pid int) (int64, error) { return statusBytes(pid, "VmRSS") }

// PeakRSS returns the largest resident set size pid has had (VmHWM), in bytes.
func PeakRSS(pid int) (int64, error) { return statusBytes(pid, "VmHWM") }

// statusBytes reads a "NAME: N kB" field of /proc/PID/status, in bytes.
func statusBytes(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read the status of pid %d: %w", pid, err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("parse %s of pid %d: %q", field, pid, line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s of pid %d: %w", field, pid, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no %s in the status of pid %d", field, pid)
}

// CPUTime returns the CPU time pid used so far, or 0 when it cannot be read.
func CPUTime(pid int) time.Duration {
	st, err := ReadStat(pid)
	if err != nil {
		return 0
	}
	return st.CPU
}

// signalGroup sends sig to the process group pgid, ignoring a group that is already gone.
func signalGroup(pgid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal process group %d: %w", pgid, err)
	}
	return nil
}
