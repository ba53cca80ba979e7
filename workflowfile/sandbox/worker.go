package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/rpc"
	"os"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/workflowfile"
	"github.com/centaur-dev/workflow-operator/workflowfile/internal/membound"
)

// Any binary that links this package becomes a worker when started with EnvWorker: the
// package's init serves executions and exits before main runs. The manager, programs built on
// package manager and test binaries all link it through package manager.
func init() {
	if budget, ok := os.LookupEnv(EnvWorker); ok {
		os.Exit(serve(budget))
	}
}

// overBudget is what a worker writes to standard error when the watchdog stops it.
const overBudget = "sandbox: out of memory: the workflow code grew the heap past the worker's budget"

// maxCompiled bounds the revisions a worker keeps compiled; past it the worker starts afresh.
const maxCompiled = 256

// serve is the worker: it bounds its own memory, then executes what the manager sends until
// the manager closes the pipe. It returns the process's exit status.
func serve(budget string) int {
	n, err := strconv.ParseUint(budget, 10, 64)
	if err != nil || n == 0 {
		fmt.Fprintf(os.Stderr, "sandbox: %s must be a number of bytes, got %q\n", EnvWorker, budget)
		return 2
	}
	var cfg Config
	if err := json.Unmarshal([]byte(os.Getenv(envConfig)), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: read %s: %v\n", envConfig, err)
		return 2
	}
	// The http module writes a step's trace context with the global propagator, as in the
	// manager; here it is W3C trace context, which the manager's hook hands over.
	otel.SetTextMapPropagator(propagation.TraceContext{})
	if err := membound.Apply(n, overBudget); err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: %v\n", err)
		return 2
	}
	calls, replies := os.NewFile(3, "calls"), os.NewFile(4, "replies")
	hostCalls, hostReplies := os.NewFile(5, "host-calls"), os.NewFile(6, "host-replies")
	if calls == nil || replies == nil || hostCalls == nil || hostReplies == nil {
		fmt.Fprintln(os.Stderr, "sandbox: started without the manager's pipes")
		return 2
	}
	svc := &workerService{
		host:     rpc.NewClient(pipeConn{Reader: hostReplies, Writer: hostCalls, closer: hostCalls}),
		compile:  cfg.compileConfig(),
		compiled: map[string]*workflowfile.Workflow{},
		cancels:  map[uint64]context.CancelFunc{},
	}
	server := rpc.NewServer()
	if err := server.RegisterName("Worker", svc); err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: %v\n", err)
		return 2
	}
	server.ServeConn(pipeConn{Reader: calls, Writer: replies, closer: replies})
	return 0
}

// workerService executes the manager's executions in the worker.
type workerService struct {
	host    *rpc.Client
	compile *workflowfile.Config

	mu       sync.Mutex
	compiled map[string]*workflowfile.Workflow
	cancels  map[uint64]context.CancelFunc
}

// Execute runs one execution to its outcome.
func (s *workerService) Execute(a ExecuteArgs, r *ExecuteReply) error {
	wf, err := s.workflow(a.Bundle, a.Revision)
	if err != nil {
		r.Kind, r.Err = engine.Aborted, &wireError{Message: err.Error()}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	if !a.Deadline.IsZero() {
		ctx, cancel = context.WithDeadline(context.Background(), a.Deadline)
	}
	defer cancel()
	s.mu.Lock()
	s.cancels[a.ID] = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.cancels, a.ID)
		s.mu.Unlock()
	}()
	out := engine.Execute(ctx, wf, s.execution(a))
	*r = ExecuteReply{Kind: out.Kind, Output: out.Output, Failure: out.Failure, WakeAt: out.WakeAt, Waiting: out.Waiting,
		Current: out.Current, Unrecorded: out.Unrecorded, Err: encodeWorkerError(out.Err)}
	return nil
}

// Cancel cancels an execution's context, as the manager's was.
func (s *workerService) Cancel(a CancelArg, _ *NoReply) error {
	s.mu.Lock()
	cancel := s.cancels[a.ID]
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return nil
}

// workflow compiles the bundle once per revision.
func (s *workerService) workflow(b workflowfile.Bundle, revision string) (*workflowfile.Workflow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if wf, ok := s.compiled[revision]; ok {
		return wf, nil
	}
	wf, err := workflowfile.CompileBundle(b, s.compile)
	if err != nil {
		return nil, fmt.Errorf("compile revision %s in the sandbox: %w", revision, err)
	}
	if wf.Revision() != revision {
		return nil, fmt.Errorf("the code sent as revision %s compiles to revision %s", revision, wf.Revision())
	}
	if len(s.compiled) >= maxCompiled {
		clear(s.compiled)
	}
	s.compiled[revision] = wf
	return wf, nil
}

// execution is the engine.Execution whose parts call the manager.
func (s *workerService) execution(a ExecuteArgs) engine.Execution {
	c := &caller{host: s.host, id: a.ID}
	ex := engine.Execution{
		Run: a.Run, Input: a.Input, Journal: engine.NewJournal(a.Journal), Limits: a.Limits,
		Recorder: engine.RecorderFunc(c.record),
		Logger:   slog.New(&logHandler{c: c}),
		Hooks:    engine.Hooks{StepAttempted: c.stepAttempted, Panicked: c.panicked},
	}
	if a.HostClock {
		ex.Clock = c.now
	}
	if a.HasPayloads {
		ex.Payloads = c
	}
	if a.HasHost {
		ex.Host = c
	}
	if a.HasStepStarting {
		ex.Hooks.StepStarting = c.stepStarting
	}
	return ex
}

// caller makes the manager's calls of one execution: it is the execution's Recorder,
// PayloadStore and Host.
type caller struct {
	host *rpc.Client
	id   uint64
}

// call calls the manager; a failed call (the manager is gone) is an error of the call.
func (c *caller) call(method string, args, reply any) error {
	if err := c.host.Call("Host."+method, args, reply); err != nil {
		return fmt.Errorf("ask the manager (%s): %w", method, err)
	}
	return nil
}

func (c *caller) record(_ context.Context, _ *engine.Journal, changed []engine.Entry) error {
	var r ErrReply
	if err := c.call("Record", RecordArgs{ID: c.id, Changed: changed}, &r); err != nil {
		return err
	}
	return r.Err.decode()
}

// Store implements engine.PayloadStore.
func (c *caller) Store(_ context.Context, step string, attempt int, result json.RawMessage) (engine.PayloadRef, error) {
	var r StoreReply
	if err := c.call("StorePayload", StoreArgs{ID: c.id, Step: step, Attempt: attempt, Result: result}, &r); err != nil {
		return engine.PayloadRef{}, err
	}
	return r.Ref, r.Err.decode()
}

// Load implements engine.PayloadStore.
func (c *caller) Load(_ context.Context, ref engine.PayloadRef) (json.RawMessage, error) {
	var r LoadReply
	if err := c.call("LoadPayload", LoadArgs{ID: c.id, Ref: ref}, &r); err != nil {
		return nil, err
	}
	return r.Result, r.Err.decode()
}

// FindEvent implements engine.Host.
func (c *caller) FindEvent(_ context.Context, q engine.EventQuery) (engine.EventRecord, bool, error) {
	var r FindEventReply
	if err := c.call("FindEvent", FindEventArgs{ID: c.id, Query: q}, &r); err != nil {
		return engine.EventRecord{}, false, err
	}
	return r.Event, r.Found, r.Err.decode()
}

// StartChild implements engine.Host.
func (c *caller) StartChild(_ context.Context, step, workflowName string, input json.RawMessage) (string, error) {
	var r IDReply
	if err := c.call("StartChild", StartChildArgs{ID: c.id, Step: step, Workflow: workflowName, Input: input}, &r); err != nil {
		return "", err
	}
	return r.ID, r.Err.decode()
}

// ChildResult implements engine.Host.
func (c *caller) ChildResult(_ context.Context, id string) (engine.Result, error) {
	var r ResultReply
	if err := c.call("ChildResult", ResultArgs{ID: c.id, Child: id}, &r); err != nil {
		return engine.Result{}, err
	}
	return r.Result, r.Err.decode()
}

// StartAgent implements engine.Host.
func (c *caller) StartAgent(_ context.Context, step string, req durable.AgentRequest) (string, error) {
	var r IDReply
	if err := c.call("StartAgent", StartAgentArgs{ID: c.id, Step: step, Request: req}, &r); err != nil {
		return "", err
	}
	return r.ID, r.Err.decode()
}

// AgentResult implements engine.Host.
func (c *caller) AgentResult(_ context.Context, id string) (engine.Result, error) {
	var r ResultReply
	if err := c.call("AgentResult", ResultArgs{ID: c.id, Child: id}, &r); err != nil {
		return engine.Result{}, err
	}
	return r.Result, r.Err.decode()
}

// SendEvent implements engine.Host.
func (c *caller) SendEvent(_ context.Context, step string, ev engine.OutgoingEvent) (string, error) {
	var r IDReply
	if err := c.call("SendEvent", SendEventArgs{ID: c.id, Step: step, Event: ev}, &r); err != nil {
		return "", err
	}
	return r.ID, r.Err.decode()
}

func (c *caller) stepAttempted(step string, attempt int, took time.Duration, err error, willRetry bool) {
	a := StepAttemptedArgs{ID: c.id, Step: step, Attempt: attempt, Took: took, WillRetry: willRetry}
	if err != nil {
		a.Failed, a.Err = true, err.Error()
	}
	_ = c.call("StepAttempted", a, &NoReply{})
}

// stepStarting is the worker's StepStarting hook when the manager has one: ctx carrying the
// trace context the manager's hook gives the attempt, which the http module's propagator
// writes into the step's requests. A failed call leaves ctx as it was: the step runs
// untraced rather than not at all.
func (c *caller) stepStarting(ctx context.Context, step string, attempt int) context.Context {
	var r StepStartingReply
	if err := c.call("StepStarting", StepStartingArgs{ID: c.id, Step: step, Attempt: attempt}, &r); err != nil {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(r.Carrier))
}

func (c *caller) panicked(where string, value any, stack []byte) {
	_ = c.call("Panicked", PanickedArgs{ID: c.id, Where: where, Value: fmt.Sprint(value), Stack: stack}, &NoReply{})
}

// now is the manager's clock (a test's fake one).
func (c *caller) now() time.Time {
	var r NowReply
	if err := c.call("Now", IdArgs{ID: c.id}, &r); err != nil {
		return time.Now()
	}
	return r.Now
}

// logHandler sends the handler's log lines to the manager, attributes as text.
type logHandler struct {
	c     *caller
	attrs []string
	group string
}

// Enabled passes every line: the manager's logger decides.
func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

// Handle sends one line.
func (h *logHandler) Handle(_ context.Context, rec slog.Record) error {
	attrs := append([]string(nil), h.attrs...)
	rec.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, h.group+a.Key, a.Value.Resolve().String())
		return true
	})
	// A call, not a message sent ahead: a line sent ahead could arrive after its execution
	// ended, and be lost.
	return h.c.call("Log", LogArgs{ID: h.c.id, Level: int(rec.Level), Msg: rec.Message, Attrs: attrs}, &NoReply{})
}

// WithAttrs keeps attributes for every line.
func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := &logHandler{c: h.c, group: h.group, attrs: append([]string(nil), h.attrs...)}
	for _, a := range as {
		out.attrs = append(out.attrs, h.group+a.Key, a.Value.Resolve().String())
	}
	return out
}

// WithGroup prefixes later attributes' keys.
func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{c: h.c, attrs: h.attrs, group: h.group + name + "."}
}
