package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/centaur-dev/workflow-operator/internal/textbound"
)

// Default limits. A run's journal is kept in pieces (the host seals finished entries away and
// stores large results out of line), so what bounds a run is the total it stores, not the size
// of one object.
const (
	// DefaultMaxResultBytes caps one step's JSON result.
	DefaultMaxResultBytes = 4 << 20
	// DefaultInlineResultBytes is the largest result kept in the journal itself; larger ones go
	// to the execution's PayloadStore.
	DefaultInlineResultBytes = 4 << 10
	// DefaultMaxOutputBytes caps the run's output, which the host keeps in the run's status.
	DefaultMaxOutputBytes = 256 << 10
	// DefaultMaxChildren caps the child runs one run may start.
	DefaultMaxChildren = 1000
	// DefaultMaxRunBytes caps everything a run stores: input, journal, payloads and output.
	DefaultMaxRunBytes = 64 << 20
	// DefaultBatchSteps, DefaultBatchBytes and DefaultBatchDelay bound a batch of Batched
	// steps: it is recorded once it holds this many steps or bytes of entries, or this long
	// after its first step finished.
	DefaultBatchSteps = 2000
	DefaultBatchBytes = 128 << 10
	DefaultBatchDelay = 50 * time.Millisecond
)

// Recorder persists the journal. The engine calls it with the entries changed since its last
// call: before the handler reaches the primitive after an ordinary step (so a step's result is
// durable before the handler goes on to anything durable), and when a batch of Batched steps
// is full. The entries changed last are persisted by the host with the execution's outcome
// instead (Outcome.Unrecorded), which saves a write per suspension and per run.
//
// An error aborts the execution: someone else may have advanced the run (a write conflict, a
// lost connection, a cancelled run), so nothing more may be recorded from it. An error that
// is a *Failure fails the run instead (the write can never succeed, for example because it is
// too large); the host then keeps the journal as it last persisted it.
type Recorder interface {
	Record(ctx context.Context, journal *Journal, changed []Entry) error
}

// RecorderFunc adapts a function to Recorder.
type RecorderFunc func(ctx context.Context, journal *Journal, changed []Entry) error

// Record calls f.
func (f RecorderFunc) Record(ctx context.Context, journal *Journal, changed []Entry) error {
	return f(ctx, journal, changed)
}

// PayloadStore keeps results too large for the journal (over Limits.InlineResultBytes). The
// journal entry then holds the PayloadRef, and replay loads the result when the handler
// reaches the step. Store must be idempotent for a step and attempt: after a crash the same
// attempt may be stored again, with another result. Errors abort the execution, except a
// *Failure, which fails the run.
type PayloadStore interface {
	// Store keeps the result of the given attempt of the primitive named step.
	Store(ctx context.Context, step string, attempt int, result json.RawMessage) (PayloadRef, error)
	// Load returns a result stored earlier.
	Load(ctx context.Context, ref PayloadRef) (json.RawMessage, error)
}

// Limits bound what one run may store, and how Batched steps are grouped. Zero values take
// the defaults.
type Limits struct {
	// MaxResultBytes caps one step's JSON result. Default 4 MiB.
	MaxResultBytes int
	// InlineResultBytes is the largest result kept in the journal; larger results go to the
	// execution's PayloadStore (when it has one). Default 4 KiB.
	InlineResultBytes int
	// MaxOutputBytes caps the run's JSON output. Default 256 KiB.
	MaxOutputBytes int
	// MaxRunBytes caps what the run stores in all: input, journal, payloads and output.
	// Default 64 MiB.
	MaxRunBytes int
	// DefaultStepTimeout bounds each attempt of a step that sets no timeout of its own, and
	// MaxStepTimeout every attempt, whatever it asks for: a step that hangs gives its
	// execution slot back. Zero means no bound (the library's default; the manager sets both).
	DefaultStepTimeout, MaxStepTimeout time.Duration
	// MaxChildren caps the child runs one run may start, so that one request (a fan-out over
	// a list someone else sent) cannot create hundreds of thousands of objects. Default 1000.
	MaxChildren int
	// BatchSteps, BatchBytes and BatchDelay bound a batch of Batched steps. Defaults 2000
	// steps, 128 KiB of entries and 50 ms.
	BatchSteps int
	BatchBytes int
	BatchDelay time.Duration
}

// stepTimeout is the bound of a step's attempt that asked for asked (zero for none).
func (l Limits) stepTimeout(asked time.Duration) time.Duration {
	if asked <= 0 {
		asked = l.DefaultStepTimeout
	}
	if l.MaxStepTimeout > 0 && (asked <= 0 || asked > l.MaxStepTimeout) {
		asked = l.MaxStepTimeout
	}
	return asked
}

func (l Limits) withDefaults() Limits {
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxResultBytes, DefaultMaxResultBytes)
	set(&l.InlineResultBytes, DefaultInlineResultBytes)
	set(&l.MaxOutputBytes, DefaultMaxOutputBytes)
	set(&l.MaxRunBytes, DefaultMaxRunBytes)
	set(&l.MaxChildren, DefaultMaxChildren)
	set(&l.BatchSteps, DefaultBatchSteps)
	set(&l.BatchBytes, DefaultBatchBytes)
	if l.BatchDelay <= 0 {
		l.BatchDelay = DefaultBatchDelay
	}
	return l
}

// Hooks let the host observe an execution (metrics, events) without the engine knowing how.
type Hooks struct {
	// StepAttempted is called after each call of a step's function.
	StepAttempted func(step string, attempt int, took time.Duration, err error, willRetry bool)
	// StepStarting is called before each call of a step's function with the context the
	// function is about to get; the function gets the context it returns. A host adds what
	// the function's own calls should carry there (the trace context of the attempt, so that
	// its outbound requests join the run's trace). It may be called from a Parallel branch's
	// goroutine.
	StepStarting func(ctx context.Context, step string, attempt int) context.Context
	// Panicked is called with the stack of a panic in a handler or a step function.
	Panicked func(where string, value any, stack []byte)
	// Reached is called on the handler's goroutine each time the handler asks for a durable
	// primitive, in the order it asks, with the primitive's name and kind, before the engine
	// looks the name up in the journal or does anything for it. The journal answers by name,
	// so this is how a host sees the order of the calls: a check of new code against a
	// recorded journal compares it with the journal's order. A non-nil error halts the
	// execution right there: the outcome is Aborted with that error, and nothing more runs or
	// is recorded.
	//
	// where returns the place in the workflow's source that asked, as its loader tells the
	// engine (SetCallSite: "file.star:12:5 in handler"), or "" when the loader does not say. A
	// Go handler's loader says nothing: since Reached runs on the handler's goroutine, the
	// host can read the handler's frame from its own stack. Call where only during Reached.
	Reached func(name string, kind Kind, where func() string) error
}

// Execution is everything one replay of a run needs.
type Execution struct {
	// Run identifies the run.
	Run RunInfo
	// Input is the run's JSON input.
	Input json.RawMessage
	// Journal holds what earlier executions recorded; the engine extends it.
	Journal *Journal
	// Clock returns the wall-clock time; tests pass a fake one. Default time.Now.
	Clock func() time.Time
	// Recorder persists the journal as the handler goes on.
	Recorder Recorder
	// Payloads stores results over Limits.InlineResultBytes out of line; nil keeps every
	// result in the journal.
	Payloads PayloadStore
	// Logger receives the handler's log lines (quiet while replaying). Default: discard.
	Logger *slog.Logger
	// Limits bound sizes; zero values take the defaults.
	Limits Limits
	// Hooks observe the execution; any may be nil.
	Hooks Hooks
	// Host answers the primitives that depend on the world outside the run (events, child
	// runs, agent turns). Without one, those primitives fail the run.
	Host Host
}

// OutcomeKind says how an execution ended.
type OutcomeKind int

const (
	// Completed: the handler returned an output.
	Completed OutcomeKind = iota
	// Failed: the run failed for good; Outcome.Failure says why.
	Failed
	// Suspended: the handler stopped at a primitive that has to wait; Outcome.WakeAt is when
	// to run again (zero: when something outside wakes the run).
	Suspended
	// Aborted: recording failed (Outcome.Err); re-read the run and execute again.
	Aborted
)

// String names the kind, for logs and test failures.
func (k OutcomeKind) String() string {
	switch k {
	case Completed:
		return "Completed"
	case Failed:
		return "Failed"
	case Suspended:
		return "Suspended"
	case Aborted:
		return "Aborted"
	default:
		return fmt.Sprintf("OutcomeKind(%d)", int(k))
	}
}

// Outcome is the result of one execution.
type Outcome struct {
	Kind OutcomeKind
	// Output is the handler's JSON output (Completed).
	Output json.RawMessage
	// Failure says why the run failed (Failed).
	Failure *Failure
	// WakeAt is when a suspended run should be executed again; zero means on an outside event.
	WakeAt time.Time
	// Waiting says what a run suspended without a wake time waits for.
	Waiting string
	// Current is the name of the primitive the handler stopped at.
	Current string
	// Unrecorded are the entries changed since the Recorder's last call, in order. The host
	// persists them (they are in the journal) with a Completed, Failed or Suspended outcome. A
	// host that persists the journal it passed in (the WorkflowRun controller) has them there;
	// one whose handler ran against a copy of the journal in another process reads them here:
	// workflowfile/sandbox sends them back from its worker and mirrors them into the
	// manager's journal (Journal.Mirror).
	Unrecorded []Entry
	// Err is the recording error (Aborted).
	Err error
}

// Execute runs the workflow's handler from the top against ex.Journal and returns how it
// ended. New steps run and are recorded one by one through ex.Recorder; the handler goes on
// until it returns, fails or reaches a primitive that must wait. Execute never panics.
func Execute(ctx context.Context, w Workflow, ex Execution) Outcome {
	if ex.Recorder == nil {
		return Outcome{Kind: Aborted, Err: errors.New("execution has no Recorder: nothing it does could be made durable")}
	}
	e := newExecution(ctx, ex)
	done := make(chan Outcome, 1)
	go func() {
		e.handlerEntry = goroutineEntry()
		returned := false
		defer func() {
			if returned {
				return
			}
			if r := recover(); r != nil {
				done <- e.panicked("handler", r)
				return
			}
			// The handler's goroutine exited through runtime.Goexit: a primitive stopped it.
			if e.stop != nil {
				done <- e.outcome(*e.stop)
				return
			}
			done <- Outcome{Kind: Failed, Failure: &Failure{Reason: ReasonHandlerExited,
				Message: "the handler called runtime.Goexit (t.FailNow or similar); handlers must return"}}
		}()
		out, err := w.invoke(&Context{exec: e}, ex.Input)
		returned = true
		done <- e.outcome(e.finish(out, err))
	}()
	return <-done
}

// outcome hands the entries that still need writing to the host with o. A misuse found on
// another goroutine (see enter) fails the run whatever the handler did after it, unless the
// execution aborted, in which case the next execution finds the misuse again.
func (e *execution) outcome(o Outcome) Outcome {
	if o.Kind == Aborted {
		return o
	}
	if f := e.misused.Load(); f != nil {
		o = Outcome{Kind: Failed, Failure: f, Current: o.Current}
	}
	o.Unrecorded = e.unwritten
	return o
}

// execution is the engine's state for one replay of one run.
type execution struct {
	ctx      context.Context
	run      RunInfo
	journal  *Journal
	clock    func() time.Time
	rec      Recorder
	payloads PayloadStore
	limits   Limits
	hooks    Hooks
	host     Host
	logger   *slog.Logger

	// now is the run's deterministic time: when the last primitive reached finished.
	now time.Time
	// live turns true once the handler goes past recorded history. It is atomic because the
	// replay-aware logger may be used from any goroutine.
	live atomic.Bool
	// stop is how the execution ends when a primitive stops the handler.
	stop *Outcome
	// handlerEntry identifies the handler's goroutine (see goroutineEntry); inStep names the
	// step whose function is running on it; misused is the failure of a primitive called
	// from another goroutine. Only the handler's goroutine reads or writes anything else.
	handlerEntry uintptr
	inStep       string
	misused      atomic.Pointer[Failure]
	// agentTurns counts AgentTurn calls, to name them.
	agentTurns int
	// site tells where in the workflow's source the handler asks for a primitive (see
	// SetCallSite); nil when its loader does not say.
	site func(name string) string
	// progress is how far the handler has come through the journal it started with.
	progress replayProgress
	// inputBytes is the input's size, which counts against the run's budget.
	inputBytes int

	// unwritten are the entries staged since the Recorder's last call; mustWrite says that
	// one of them is an ordinary step's (or another primitive's) record, which must be
	// written before the handler reaches its next primitive.
	unwritten []Entry
	mustWrite bool
	// batched counts the Batched steps among unwritten, batchBytes the size of their entries;
	// batchStart is when the first of them finished.
	batched    int
	batchBytes int
	batchStart time.Time
}

func newExecution(ctx context.Context, ex Execution) *execution {
	e := &execution{
		ctx:        ctx,
		run:        ex.Run,
		journal:    ex.Journal,
		rec:        ex.Recorder,
		payloads:   ex.Payloads,
		limits:     ex.Limits.withDefaults(),
		inputBytes: len(ex.Input),
		hooks:      ex.Hooks,
		host:       ex.Host,
		now:        ex.Run.StartedAt,
	}
	if e.journal == nil {
		e.journal = NewJournal(nil)
	}
	e.progress = newReplayProgress(e.journal.Len())
	clock := ex.Clock
	if clock == nil {
		clock = time.Now
	}
	// Recorded times round-trip through the API server with microsecond precision; truncating
	// here makes a replay see exactly the times the first execution saw.
	e.clock = func() time.Time { return clock().UTC().Truncate(time.Microsecond) }
	e.live.Store(e.journal.Len() == 0)
	base := slog.New(slog.DiscardHandler)
	if ex.Logger != nil {
		base = ex.Logger
	}
	e.logger = slog.New(replayAwareHandler{Handler: base.Handler(), exec: e})
	return e
}

// finish turns the handler's return values into the outcome.
func (e *execution) finish(out json.RawMessage, err error) Outcome {
	if err != nil {
		return Outcome{Kind: Failed, Failure: failureOf(err)}
	}
	if len(out) > e.limits.MaxOutputBytes {
		return Outcome{Kind: Failed, Failure: &Failure{Reason: ReasonOutputTooLarge,
			Message: fmt.Sprintf("the output is %d bytes; the limit is %d: store large data elsewhere and return a reference", len(out), e.limits.MaxOutputBytes)}}
	}
	if total := e.recorded() + len(out); total > e.limits.MaxRunBytes {
		return Outcome{Kind: Failed, Failure: &Failure{Reason: ReasonJournalTooLarge,
			Message: fmt.Sprintf("with its output of %d bytes the run would store %d bytes, over the limit of %d: return a smaller output", len(out), total, e.limits.MaxRunBytes)}}
	}
	return Outcome{Kind: Completed, Output: out}
}

// panicked turns a recovered panic into a failed outcome and reports the stack.
func (e *execution) panicked(where string, value any) Outcome {
	if e.hooks.Panicked != nil {
		e.hooks.Panicked(where, value, debug.Stack())
	}
	return Outcome{Kind: Failed, Failure: &Failure{Reason: ReasonPanic, Message: fmt.Sprintf("%s panicked: %v", where, value)}}
}

// halt ends the execution with o: the handler's goroutine exits right here, so no user code
// can carry on past a suspension or a failure by ignoring a return value.
func (e *execution) halt(o Outcome) {
	e.stop = &o
	runtime.Goexit()
}

// failRun halts the execution and fails the run.
func (e *execution) failRun(reason, format string, args ...any) {
	e.halt(Outcome{Kind: Failed, Failure: &Failure{Reason: reason, Message: fmt.Sprintf(format, args...)}})
}

// lookup returns the entry recorded under name, failing the run when it was recorded as
// another kind of primitive. Every primitive starts here, so this is where a record the
// handler left behind is written before it goes on (see Recorder).
func (e *execution) lookup(name string, kind Kind) (Entry, bool) {
	if e.mustWrite {
		e.write()
	}
	if name == "" {
		e.failRun(ReasonNonDeterministic, "a %s primitive was called with an empty name; every primitive needs a name unique within the run", kind)
	}
	if e.hooks.Reached != nil {
		if err := e.hooks.Reached(name, kind, func() string { return e.callSite(name) }); err != nil {
			e.abort(name, err)
		}
	}
	entry, ok := e.journal.Lookup(name)
	if ok && entry.Kind != kind {
		e.failRun(ReasonNonDeterministic, "%q was recorded as a %s but the handler now calls it as a %s: keep the names of primitives stable across versions of a workflow", name, entry.Kind, kind)
	}
	if ok {
		e.progress.reach(e.journal.index[name])
	}
	if !ok || !entry.final() {
		e.live.Store(true)
	}
	return entry, ok
}

// record stages entry and has it written before the handler reaches its next primitive, or
// with the outcome if there is none.
func (e *execution) record(entry Entry) {
	e.stage(entry)
	e.mustWrite = true
}

// recordBatched stages the entry of a Batched step; the batch is written with the next
// ordinary record, suspension or outcome, or once it is full (Limits.BatchSteps steps or
// Limits.BatchBytes of entries, or Limits.BatchDelay after its first step finished).
func (e *execution) recordBatched(entry Entry) {
	e.stage(entry)
	now := e.clock()
	if e.batched == 0 {
		e.batchStart = now
	}
	e.batched++
	e.batchBytes += e.journal.EntryBytes(e.journal.index[entry.Name])
	if e.batched >= e.limits.BatchSteps || e.batchBytes >= e.limits.BatchBytes || now.Sub(e.batchStart) >= e.limits.BatchDelay {
		e.write()
	}
}

// write hands the unwritten entries to the Recorder, halting the execution when they cannot
// be written: the run fails when the Recorder says so (a *Failure), the execution aborts on
// any other error.
func (e *execution) write() {
	changed := e.unwritten
	e.unwritten, e.mustWrite, e.batched, e.batchBytes = nil, false, 0, 0
	if len(changed) == 0 {
		return
	}
	last := changed[len(changed)-1]
	if err := e.rec.Record(e.ctx, e.journal, changed); err != nil {
		var failure *Failure
		if errors.As(err, &failure) {
			e.halt(Outcome{Kind: Failed, Failure: failure, Current: last.Name})
		}
		e.halt(Outcome{Kind: Aborted, Err: fmt.Errorf("record %s %q: %w", last.Kind, last.Name, err), Current: last.Name})
	}
}

// stage puts entry into the journal without writing it. A result over the inline limit goes
// to the PayloadStore first, and an entry that would take the run over its budget fails the
// run instead.
func (e *execution) stage(entry Entry) {
	entry.Error = textbound.Cut(entry.Error, MaxErrorBytes)
	if total := e.recordedAfter(entry); total > e.limits.MaxRunBytes {
		e.failRun(ReasonJournalTooLarge, "recording %q would bring what the run stores (input, journal and large results) to %d bytes, over the limit of %d: return smaller step results or split the work into child workflows", entry.Name, total, e.limits.MaxRunBytes)
	}
	stored := e.outOfLine(entry)
	e.journal.put(stored)
	e.unwritten = append(e.unwritten, stored)
}

// outOfLine moves a result over the inline limit to the PayloadStore and returns the entry
// referencing it; other entries are returned as they are.
func (e *execution) outOfLine(entry Entry) Entry {
	if e.payloads == nil || len(entry.Result) <= e.limits.InlineResultBytes {
		return entry
	}
	ref, err := e.payloads.Store(e.ctx, entry.Name, max(entry.Attempts, 1), entry.Result)
	if err != nil {
		e.haltOnHostError(entry.Name, fmt.Errorf("store the result of %q: %w", entry.Name, err))
	}
	entry.Result, entry.Payload = nil, &ref
	return entry
}

// resultOf returns an entry's recorded result, loading it from the PayloadStore when it was
// stored out of line.
func (e *execution) resultOf(entry Entry) json.RawMessage {
	if entry.Payload == nil {
		return entry.Result
	}
	if e.payloads == nil {
		e.failRun(ReasonHandlerError, "the result of %q is stored out of line (%s) but this execution has no payload store", entry.Name, entry.Payload.Name)
	}
	raw, err := e.payloads.Load(e.ctx, *entry.Payload)
	if err != nil {
		e.haltOnHostError(entry.Name, fmt.Errorf("load the result of %q: %w", entry.Name, err))
	}
	return raw
}

// haltOnHostError halts after an error of the PayloadStore or the Host: a *Failure fails the
// run, anything else aborts the execution so that it is tried again.
func (e *execution) haltOnHostError(name string, err error) {
	var failure *Failure
	if errors.As(err, &failure) {
		e.halt(Outcome{Kind: Failed, Failure: failure, Current: name})
	}
	e.abort(name, err)
}

// recorded is what the run stores so far: its input, its journal and its large results.
func (e *execution) recorded() int {
	return e.inputBytes + e.journal.Bytes() + e.journal.PayloadBytes()
}

// recordedAfter is what the run stores once entry has been put, its result counted whether it
// stays inline or not.
func (e *execution) recordedAfter(entry Entry) int {
	return e.inputBytes + e.journal.sizeAfter(entry) + e.journal.payloadBytesAfter(entry)
}

// advanceClock moves the deterministic clock to t when t is later.
func (e *execution) advanceClock(t time.Time) {
	if t.After(e.now) {
		e.now = t
	}
}

// suspend halts the execution until wake (zero: until something outside wakes the run).
func (e *execution) suspend(current string, wake time.Time, waiting string) {
	e.halt(Outcome{Kind: Suspended, Current: current, WakeAt: wake, Waiting: waiting})
}

// errStepPanicked wraps the value of a panic in a step function.
var errStepPanicked = errors.New("step function panicked")
