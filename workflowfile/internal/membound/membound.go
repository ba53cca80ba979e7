// Package membound bounds the memory of a child process that runs tenants' code: the kernel
// refuses the process's mappings past a limit (RLIMIT_DATA) and a watchdog ends it as soon as
// the Go heap passes a budget, so that the code dies of its own appetite and the manager that
// started the process does not. go.starlark.net does not account allocations, so the bound
// comes from the operating system. Packages loadprobe (a definition's load) and sandbox (its
// executions) start such children.
package membound

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// threadRoom is room in the data limit for the stacks of the runtime's threads.
const threadRoom = 64 << 20

// Apply bounds the calling process to budget bytes of Go heap on top of what it holds now. The
// kernel refuses a single allocation past twice the budget (and some room for threads'
// stacks); a watchdog ends the process with exit status 3, after writing overBudget (a line
// that starts with "out of memory") to standard error, once the heap passes the budget by small
// allocations. The process also asks the kernel's OOM killer to take it first, so that a
// container short of memory loses the child, not the manager.
func Apply(budget uint64, overBudget string) error {
	// The Go runtime's own writable mappings (about 100 MiB of address space, little of it
	// resident) come on top of the budget.
	base, err := dataBytes()
	if err != nil {
		return err
	}
	limit := base + 2*budget + threadRoom
	var inherited syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_DATA, &inherited); err == nil && inherited.Max < limit {
		limit = inherited.Max // the manager runs under a tighter bound already
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_DATA, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		return fmt.Errorf("set the memory limit: %w", err)
	}
	go watch(budget, overBudget)
	_ = os.WriteFile("/proc/self/oom_score_adj", []byte("1000"), 0)
	return nil
}

// watch ends the process as soon as the Go runtime holds more than budget bytes for the heap.
func watch(budget uint64, overBudget string) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	for range time.Tick(2 * time.Millisecond) {
		metrics.Read(sample)
		if sample[0].Value.Uint64() > budget {
			fmt.Fprintln(os.Stderr, overBudget)
			os.Exit(3)
		}
	}
}

// dataBytes reads the process's data segment size (VmData, the mappings RLIMIT_DATA bounds).
func dataBytes() (uint64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read the process's memory use: %w", err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmData:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read VmData from %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("/proc/self/status has no VmData line")
}

// RuntimeEnv is the part of the calling process's environment a child that runs tenants' code
// gets: the Go runtime's settings (GO*) and the time zone, nothing else. The manager's
// environment may hold webhook secrets and API keys; they are none of tenants' code's business.
func RuntimeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GO") || strings.HasPrefix(kv, "TZ=") {
			env = append(env, kv)
		}
	}
	return env
}

// StderrHead is how much of a dead child's standard error is kept to say why it died.
const StderrHead = 4 << 10

// HeadBuffer keeps the first Max bytes written to it: a Go runtime's fatal error is its first
// line, the goroutine dumps after it are not needed.
type HeadBuffer struct {
	// Max is how many bytes are kept.
	Max int

	mu  sync.Mutex
	buf bytes.Buffer
}

// Write keeps what fits and reports everything written.
func (t *HeadBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if room := t.Max - t.buf.Len(); room > 0 {
		t.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// String returns what was kept.
func (t *HeadBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}

// FirstLine is ": " and the first line of s (a Go runtime's fatal error), or "" when s is
// blank.
func FirstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if line == "" {
		return ""
	}
	return ": " + line
}
