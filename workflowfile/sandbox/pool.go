// Package sandbox executes tenants' workflow code (WorkflowDefinitions' Starlark) in child
// processes whose memory the kernel bounds, so that a step that builds a gigabyte kills a child
// and never the manager, whatever else it executes.
//
// go.starlark.net does not account allocations, so the bound comes from the operating system
// (package membound): a worker is the manager's own executable, started with
// CENTAUR_SANDBOX_WORKER set to its memory budget, which makes it a worker before main runs. The
// durable engine runs in the worker, unchanged, against a copy of the run's journal; whatever
// the engine asks of its Execution (recording entries, the payload store, events, children,
// agents, hooks and log lines) it asks the manager over a pipe, so every write to the API server
// stays the manager's, with the manager's credentials, which the worker never holds. The
// manager mirrors each recorded entry into its own journal, so that after an execution its
// journal is the worker's.
//
// The runs of the pool's shared worker execute side by side in it. When a worker dies, every
// execution in it ends with a Death; the caller counts strikes (package crashguard's rules) and
// executes a struck run again alone, in a worker of its own, so that its next death is its own.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/rpc"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/workflowfile"
	"github.com/centaur-dev/workflow-operator/workflowfile/internal/membound"
)

// EnvWorker names the environment variable that makes a process a sandbox worker; its value is
// the worker's memory budget in bytes. envConfig carries the worker's Config as JSON.
const (
	EnvWorker = "CENTAUR_SANDBOX_WORKER"
	envConfig = "CENTAUR_SANDBOX_CONFIG"
)

// DefaultMemory is the manager's default memory budget of one worker: far more than real
// workflows' executions need together, and well inside the manager's container limit.
const DefaultMemory = 256 << 20

// Config is how workers compile and bound tenants' code: the manager's settings for
// WorkflowDefinitions (see workflowfile.Config).
type Config struct {
	// Memory is each worker's budget of Go heap, in bytes.
	Memory uint64 `json:"memory"`
	// MaxSteps, MaxValueBytes, MaxParallelBranches and MaxResponseBytes are the
	// workflowfile.Config limits.
	MaxSteps            uint64 `json:"maxSteps"`
	MaxValueBytes       int    `json:"maxValueBytes"`
	MaxParallelBranches int    `json:"maxParallelBranches"`
	MaxResponseBytes    int64  `json:"maxResponseBytes"`
	// Deny and Allow are the egress policy of the http module (workflowfile.Egress).
	Deny  []netip.Prefix `json:"deny"`
	Allow []netip.Prefix `json:"allow"`
}

// compileConfig is the workflowfile.Config a worker compiles with.
func (c Config) compileConfig() *workflowfile.Config {
	return &workflowfile.Config{
		HTTP:     workflowfile.NewHTTPClient(&workflowfile.Egress{Deny: c.Deny, Allow: c.Allow}),
		MaxSteps: c.MaxSteps, MaxValueBytes: c.MaxValueBytes, MaxParallelBranches: c.MaxParallelBranches,
		MaxResponseBytes: c.MaxResponseBytes,
	}
}

// Death is how an execution ends when its worker died under it: most likely of the memory
// bound (Stderr's first line says "out of memory"), since nothing else a workflow may do ends
// the process.
type Death struct {
	// Alone says the execution had the worker to itself, so the death is its own.
	Alone bool
	// Stderr is the start of what the worker wrote to standard error (a Go runtime's fatal
	// error first).
	Stderr string
	// Memory is the worker's budget.
	Memory uint64
}

// Error says what died and why, for a status message.
func (d *Death) Error() string {
	return fmt.Sprintf("the sandbox process executing the run's code (memory budget %d MiB) died%s", d.Memory>>20, membound.FirstLine(d.Stderr))
}

// Pool starts workers and routes executions to them: side by side to a shared worker, or
// alone to a worker of their own. Its methods are safe for concurrent use.
type Pool struct {
	exe string
	cfg Config
	env string

	ids    atomic.Uint64
	mu     sync.Mutex
	shared *worker
}

// New returns a pool that starts workers from the running executable with cfg.
func New(cfg Config) (*Pool, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the manager's executable to start sandbox workers from: %w", err)
	}
	if cfg.Memory == 0 {
		cfg.Memory = DefaultMemory
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode the sandbox configuration: %w", err)
	}
	return &Pool{exe: exe, cfg: cfg, env: string(raw)}, nil
}

// Memory is each worker's budget in bytes.
func (p *Pool) Memory() uint64 { return p.cfg.Memory }

// Close stops the shared worker.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shared != nil {
		p.shared.stop()
		p.shared = nil
	}
}

// Execute runs the handler of bundle's workflow (at revision) as engine.Execute runs it, in a
// worker: the shared one, or, with alone, one started for this execution only. A worker that
// dies under the execution ends it with a Death instead of an Outcome; entries recorded before
// stay recorded.
func (p *Pool) Execute(ctx context.Context, bundle workflowfile.Bundle, revision string, ex engine.Execution, alone bool) (engine.Outcome, *Death) {
	w, err := p.worker(alone)
	if err != nil {
		return engine.Outcome{Kind: engine.Aborted, Err: err}, nil
	}
	if alone {
		defer w.stop()
	}
	x := &execution{ctx: ctx, ex: ex, errs: map[uint64]error{}}
	id := p.ids.Add(1)
	w.execs.Store(id, x)
	defer w.execs.Delete(id)
	args := ExecuteArgs{ID: id, Bundle: bundle, Revision: revision, Run: ex.Run, Input: ex.Input, Journal: ex.Journal.Entries(),
		Limits: ex.Limits, HostClock: ex.Clock != nil, HasPayloads: ex.Payloads != nil, HasHost: ex.Host != nil,
		HasStepStarting: ex.Hooks.StepStarting != nil}
	if deadline, ok := ctx.Deadline(); ok {
		args.Deadline = deadline
	}
	var reply ExecuteReply
	call := w.client.Go("Worker.Execute", args, &reply, make(chan *rpc.Call, 1))
	cancelled := ctx.Done()
	for {
		select {
		case <-call.Done:
			if call.Error != nil {
				return p.lost(w, alone, call.Error)
			}
			return x.outcome(reply), nil
		case <-cancelled:
			cancelled = nil
			w.client.Go("Worker.Cancel", CancelArg{ID: id}, &NoReply{}, make(chan *rpc.Call, 1))
		case <-w.exited:
			return p.lost(w, alone, errors.New("the worker exited"))
		}
	}
}

// lost ends an execution whose worker stopped answering: a death when the process is gone
// (it is waited for briefly), else an error to execute again.
func (p *Pool) lost(w *worker, alone bool, err error) (engine.Outcome, *Death) {
	select {
	case <-w.exited:
	case <-time.After(5 * time.Second):
		w.stop()
		return engine.Outcome{Kind: engine.Aborted, Err: fmt.Errorf("the sandbox worker stopped answering: %w", err)}, nil
	}
	p.mu.Lock()
	if p.shared == w {
		p.shared = nil
	}
	p.mu.Unlock()
	return engine.Outcome{}, &Death{Alone: alone, Stderr: w.stderr.String(), Memory: p.cfg.Memory}
}

// worker returns the shared worker, started if need be, or a new one for alone.
func (p *Pool) worker(alone bool) (*worker, error) {
	if alone {
		return p.start()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shared != nil {
		select {
		case <-p.shared.exited:
			p.shared = nil
		default:
			return p.shared, nil
		}
	}
	w, err := p.start()
	if err != nil {
		return nil, err
	}
	p.shared = w
	return w, nil
}

// worker is one worker process, seen from the manager.
type worker struct {
	cmd    *exec.Cmd
	client *rpc.Client
	stderr *membound.HeadBuffer
	// exited is closed once the process has ended.
	exited chan struct{}
	// execs holds the executions in flight by id, for the worker's calls.
	execs sync.Map
	// closers are the manager's ends of the pipes.
	closers []io.Closer
}

// start starts a worker: fd 3 and 4 carry the manager's calls and their replies, fd 5 and 6
// the worker's calls of the manager and theirs.
func (p *Pool) start() (*worker, error) {
	var pipes [4][2]*os.File // [read, write]
	for i := range pipes {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(pipes[:i])
			return nil, fmt.Errorf("make the sandbox worker's pipes: %w", err)
		}
		pipes[i] = [2]*os.File{r, w}
	}
	calls, replies, workerCalls, workerReplies := pipes[0], pipes[1], pipes[2], pipes[3]
	cmd := exec.Command(p.exe)
	cmd.Env = append(membound.RuntimeEnv(), EnvWorker+"="+strconv.FormatUint(p.cfg.Memory, 10), envConfig+"="+p.env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.ExtraFiles = []*os.File{calls[0], replies[1], workerCalls[1], workerReplies[0]}
	stderr := &membound.HeadBuffer{Max: membound.StderrHead}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		closeAll(pipes[:])
		return nil, fmt.Errorf("start a sandbox worker: %w", err)
	}
	for _, f := range cmd.ExtraFiles {
		_ = f.Close()
	}
	w := &worker{cmd: cmd, stderr: stderr, exited: make(chan struct{}),
		closers: []io.Closer{calls[1], replies[0], workerCalls[0], workerReplies[1]}}
	go func() {
		_ = cmd.Wait()
		close(w.exited)
	}()
	w.client = rpc.NewClient(pipeConn{Reader: replies[0], Writer: calls[1], closer: calls[1]})
	server := rpc.NewServer()
	if err := server.RegisterName("Host", &hostService{w: w}); err != nil {
		w.stop()
		return nil, fmt.Errorf("serve a sandbox worker: %w", err)
	}
	go server.ServeConn(pipeConn{Reader: workerCalls[0], Writer: workerReplies[1], closer: workerReplies[1]})
	return w, nil
}

// stop ends the worker: closing its input ends it, a kill makes sure.
func (w *worker) stop() {
	for _, c := range w.closers {
		_ = c.Close()
	}
	select {
	case <-w.exited:
	case <-time.After(2 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.exited
	}
}

// closeAll closes both ends of pipes.
func closeAll(pipes [][2]*os.File) {
	for _, p := range pipes {
		for _, f := range p {
			if f != nil {
				_ = f.Close()
			}
		}
	}
}

// pipeConn is one direction pair of pipes as the io.ReadWriteCloser net/rpc speaks over.
type pipeConn struct {
	io.Reader
	io.Writer
	closer io.Closer
}

// Close closes the writing end: the peer then reads the end of its input.
func (c pipeConn) Close() error { return c.closer.Close() }
