package durable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"time"
)

// Default size limits. The API server refuses requests over about 1.5 MiB of JSON, so the
// journal's budget leaves room for the rest of the object.
const (
	DefaultMaxResultBytes  = 256 << 10
	DefaultMaxJournalBytes = 1 << 20
)

// Recorder persists the journal after an entry changed. The engine calls it once per completed
// step, recorded timer or failed attempt, and goes on only when it returns nil. An error
// (a write conflict, a lost connection, a cancelled run) aborts the execution: someone else
// may have advanced the run, so nothing more may be recorded from this execution.
type Recorder interface {
	Record(ctx context.Context, journal *Journal, changed Entry) error
}

// RecorderFunc adapts a function to Recorder.
type RecorderFunc func(ctx context.Context, journal *Journal, changed Entry) error

// Record calls f.
func (f RecorderFunc) Record(ctx context.Context, journal *Journal, changed Entry) error {
	return f(ctx, journal, changed)
}

// Limits bound what one run may store.
type Limits struct {
	// MaxResultBytes caps one step's JSON result (and the run's output). Default 256 KiB.
	MaxResultBytes int
	// MaxJournalBytes caps the journal as JSON. Default 1 MiB.
	MaxJournalBytes int
}

func (l Limits) withDefaults() Limits {
	if l.MaxResultBytes <= 0 {
		l.MaxResultBytes = DefaultMaxResultBytes
	}
	if l.MaxJournalBytes <= 0 {
		l.MaxJournalBytes = DefaultMaxJournalBytes
	}
	return l
}

// Hooks let the host observe an execution (metrics, events) without the engine knowing how.
type Hooks struct {
	// StepAttempted is called after each call of a step's function.
	StepAttempted func(step string, attempt int, took time.Duration, err error, willRetry bool)
	// Panicked is called with the stack of a panic in a handler or a step function.
	Panicked func(where string, value any, stack []byte)
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
	// Recorder persists the journal after each change.
	Recorder Recorder
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
				done <- *e.stop
				return
			}
			done <- Outcome{Kind: Failed, Failure: &Failure{Reason: ReasonHandlerExited,
				Message: "the handler called runtime.Goexit (t.FailNow or similar); handlers must return"}}
		}()
		out, err := w.invoke(&Context{exec: e}, ex.Input)
		returned = true
		done <- e.finish(out, err)
	}()
	return <-done
}

// execution is the engine's state for one replay of one run.
type execution struct {
	ctx     context.Context
	run     RunInfo
	journal *Journal
	clock   func() time.Time
	rec     Recorder
	limits  Limits
	hooks   Hooks
	host    Host
	logger  *slog.Logger

	// now is the run's deterministic time: when the last primitive reached finished.
	now time.Time
	// live turns true once the handler goes past recorded history.
	live bool
	// stop is how the execution ends when a primitive stops the handler.
	stop *Outcome
	// agentTurns counts AgentTurn calls, to name them.
	agentTurns int
}

func newExecution(ctx context.Context, ex Execution) *execution {
	e := &execution{
		ctx:     ctx,
		run:     ex.Run,
		journal: ex.Journal,
		rec:     ex.Recorder,
		limits:  ex.Limits.withDefaults(),
		hooks:   ex.Hooks,
		host:    ex.Host,
		now:     ex.Run.StartedAt,
	}
	if e.journal == nil {
		e.journal = NewJournal(nil)
	}
	clock := ex.Clock
	if clock == nil {
		clock = time.Now
	}
	// Recorded times round-trip through the API server with microsecond precision; truncating
	// here makes a replay see exactly the times the first execution saw.
	e.clock = func() time.Time { return clock().UTC().Truncate(time.Microsecond) }
	e.live = e.journal.Len() == 0
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
	if len(out) > e.limits.MaxResultBytes {
		return Outcome{Kind: Failed, Failure: &Failure{Reason: ReasonOutputTooLarge,
			Message: fmt.Sprintf("the output is %d bytes; the limit is %d: store large data elsewhere and return a reference", len(out), e.limits.MaxResultBytes)}}
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
// another kind of primitive.
func (e *execution) lookup(name string, kind Kind) (Entry, bool) {
	if name == "" {
		e.failRun(ReasonNonDeterministic, "a %s primitive was called with an empty name; every primitive needs a name unique within the run", kind)
	}
	entry, ok := e.journal.Lookup(name)
	if ok && entry.Kind != kind {
		e.failRun(ReasonNonDeterministic, "%q was recorded as a %s but the handler now calls it as a %s: keep the names of primitives stable across versions of a workflow", name, entry.Kind, kind)
	}
	if !ok || !entry.final() {
		e.live = true
	}
	return entry, ok
}

// record persists entry, halting the execution when it cannot be recorded: the journal would
// outgrow its budget (the run fails) or the write failed (the execution aborts).
func (e *execution) record(entry Entry) {
	e.stage(entry)
	if err := e.rec.Record(e.ctx, e.journal, entry); err != nil {
		e.halt(Outcome{Kind: Aborted, Err: fmt.Errorf("record %s %q: %w", entry.Kind, entry.Name, err), Current: entry.Name})
	}
}

// stage puts entry into the journal without writing it: the write that suspends the run
// persists it. It still refuses to outgrow the journal's budget.
func (e *execution) stage(entry Entry) {
	if size := e.journal.sizeAfter(entry); size > e.limits.MaxJournalBytes {
		e.failRun(ReasonJournalTooLarge, "recording %q would grow the journal to %d bytes, over the limit of %d: return smaller step results or split the work into child workflows", entry.Name, size, e.limits.MaxJournalBytes)
	}
	e.journal.put(entry)
}

// advance moves the deterministic clock to t when t is later.
func (e *execution) advance(t time.Time) {
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
