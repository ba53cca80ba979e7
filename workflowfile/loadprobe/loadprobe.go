// Package loadprobe loads tenants' workflow files first in a child process whose memory the
// kernel bounds, so that a WorkflowDefinition whose top level allocates a gigabyte fails to
// load with the reason MemoryLimitExceeded instead of taking the manager down (and, since
// every replica compiles every definition when it starts, every replica, forever).
//
// go.starlark.net does not account allocations, so the bound comes from the operating system:
// the child is the manager's own executable, started with CENTAUR_LOAD_PROBE_MEMORY set, which
// makes it set RLIMIT_DATA (the Go heap's writable mappings) to that many bytes, load each
// bundle it is sent and answer. When a load needs more, the Go runtime cannot map the memory
// and the child dies with "out of memory"; the manager sees it, answers MemoryLimitExceeded and
// starts a new child for the next probe. Loading is deterministic (the clock and the network
// are refused at the top level), so a bundle that loads in the child within the bound loads
// within it in the manager too.
//
// Any binary that links this package becomes a probe child when started with that variable:
// the package's init serves probes and exits before main runs. The manager, programs built on
// package manager and test binaries all link it through package manager.
package loadprobe

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/centaur-dev/workflow-operator/workflowfile"
	"github.com/centaur-dev/workflow-operator/workflowfile/internal/membound"
)

// EnvMemory names the environment variable that makes a process a probe child; its value is
// the child's memory bound in bytes.
const EnvMemory = "CENTAUR_LOAD_PROBE_MEMORY"

// DefaultMemory is the manager's default bound on the memory one definition's load may use:
// far more than any real workflow file's top level needs, and a fraction of the manager's
// container limit.
const DefaultMemory = 256 << 20

// DefaultTimeout bounds one probe. A load is bounded in Starlark steps already; this catches a
// child that hangs for another reason.
const DefaultTimeout = 30 * time.Second

func init() {
	if limit, ok := os.LookupEnv(EnvMemory); ok {
		os.Exit(serve(limit, os.Stdin, os.Stdout))
	}
}

// request is what the manager sends the child for one probe: the bundle and the limits the
// manager will compile it with.
type request struct {
	Bundle        workflowfile.Bundle `json:"bundle"`
	MaxSteps      uint64              `json:"maxSteps"`
	MaxValueBytes int                 `json:"maxValueBytes"`
}

// reply is the child's answer: the bundle loaded, or failed to for a reason the manager will
// find again when it compiles it itself. Either way it fitted in memory.
type reply struct {
	Loaded bool `json:"loaded"`
}

// serve is the child: it bounds its own memory, then loads each bundle it reads and answers,
// until its input ends (the manager is gone). It returns the process's exit status.
func serve(budget string, in io.Reader, out io.Writer) int {
	n, err := strconv.ParseUint(budget, 10, 64)
	if err != nil || n == 0 {
		fmt.Fprintf(os.Stderr, "loadprobe: %s must be a number of bytes, got %q\n", EnvMemory, budget)
		return 2
	}
	if err := membound.Apply(n, overBudget); err != nil {
		fmt.Fprintf(os.Stderr, "loadprobe: %v\n", err)
		return 2
	}
	dec := json.NewDecoder(bufio.NewReader(in))
	enc := json.NewEncoder(out)
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return 0
			}
			fmt.Fprintf(os.Stderr, "loadprobe: read a request: %v\n", err)
			return 2
		}
		_, err := workflowfile.CompileBundle(req.Bundle, &workflowfile.Config{MaxSteps: req.MaxSteps, MaxValueBytes: req.MaxValueBytes})
		if err := enc.Encode(reply{Loaded: err == nil}); err != nil {
			return 2
		}
	}
}

// overBudget is what a child writes to standard error when the watchdog stops it.
const overBudget = "loadprobe: out of memory: the load grew the heap past its budget"

// Prober runs probes in one child process at a time, started when first needed and again
// after one died. Its zero value is not usable: make it with New.
type Prober struct {
	exe     string
	memory  uint64
	timeout time.Duration
	// compile holds the limits the child loads with, the manager's own for tenants' code.
	compile *workflowfile.Config

	mu    sync.Mutex
	child *child
}

// New returns a prober whose children may use memory bytes each and which gives a probe
// timeout to answer. cfg's limits (steps, value bytes) are the child's too.
func New(memory uint64, timeout time.Duration, cfg *workflowfile.Config) (*Prober, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the manager's executable to start load probes from: %w", err)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Prober{exe: exe, memory: memory, timeout: timeout, compile: cfg}, nil
}

// Check loads b in the child. It returns nil when b loaded or failed to load there for an
// ordinary reason (the caller's own compile reports that one), and a *LoadError when the load
// ran out of memory or the child died or hung for another reason.
func (p *Prober) Check(b workflowfile.Bundle) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.child == nil {
		c, err := p.start()
		if err != nil {
			return fmt.Errorf("start a load probe: %w", err)
		}
		p.child = c
	}
	req := request{Bundle: b, MaxSteps: p.compile.MaxSteps, MaxValueBytes: p.compile.MaxValueBytes}
	err := p.child.ask(req, p.timeout)
	if err == nil {
		return nil
	}
	dead := p.child
	p.child = nil
	return p.verdict(b, dead.stop(), err)
}

// Close stops the child, if one runs.
func (p *Prober) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.child != nil {
		p.child.stop()
		p.child = nil
	}
}

// verdict turns a child's death while loading b into the error its definition reports. A load
// within the budget cannot end the child: Starlark refuses the clock, the network and files at
// load, so short of a panic in the interpreter (reported as such) the child died of the memory
// bound, whichever way the runtime noticed it first (an allocation, a thread's stack, the
// watchdog).
func (p *Prober) verdict(b workflowfile.Bundle, stderr string, err error) error {
	var timeout *timeoutError
	if errors.As(err, &timeout) || strings.Contains(stderr, "\npanic: ") || strings.HasPrefix(stderr, "panic: ") {
		return &workflowfile.LoadError{Reason: workflowfile.ReasonLoadFailed, File: b.Entry, Message: fmt.Sprintf(
			"the process that loads a definition first, with a memory bound, did not answer: %v%s", err, membound.FirstLine(stderr))}
	}
	return &workflowfile.LoadError{Reason: workflowfile.ReasonMemoryLimitExceeded, File: b.Entry, Message: fmt.Sprintf(
		"loading this file takes more than %d MiB of memory, the most one WorkflowDefinition's load may use (the process that loads it first stopped%s): build large values inside a step function, at run time, or not at all",
		p.memory>>20, membound.FirstLine(stderr))}
}

// child is one running probe process.
type child struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	enc    *json.Encoder
	dec    *json.Decoder
	stderr *membound.HeadBuffer
}

// start starts a child with the prober's memory bound.
func (p *Prober) start() (*child, error) {
	cmd := exec.Command(p.exe)
	cmd.Env = append(membound.RuntimeEnv(), EnvMemory+"="+strconv.FormatUint(p.memory, 10))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr := &membound.HeadBuffer{Max: membound.StderrHead}
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &child{cmd: cmd, in: in, enc: json.NewEncoder(in), dec: json.NewDecoder(bufio.NewReader(out)), stderr: stderr}, nil
}

// ask sends one request and waits at most timeout for its reply.
func (c *child) ask(req request, timeout time.Duration) error {
	if err := c.enc.Encode(req); err != nil {
		return fmt.Errorf("send the bundle: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		var r reply
		done <- c.dec.Decode(&r)
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("the probe process exited while loading (%w)", err)
		}
		return nil
	case <-time.After(timeout):
		return &timeoutError{after: timeout}
	}
}

// timeoutError is a probe that got no answer in time.
type timeoutError struct{ after time.Duration }

func (e *timeoutError) Error() string { return fmt.Sprintf("the load took more than %s", e.after) }

// stop kills the child, waits for it and returns the start of what it wrote to standard error.
func (c *child) stop() string {
	_ = c.in.Close()
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	return c.stderr.String()
}
