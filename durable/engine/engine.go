package engine

import (
	"context"
	"encoding/json"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/internal/core"
)

// ReasonChildFailed is the reason of a run that failed because it returned a *ChildError.
const ReasonChildFailed = core.ReasonChildFailed

// EventTarget is the status.waitingFor text of a run waiting for an event of eventType with
// correlationID; the controller indexes waiting runs by it.
func EventTarget(eventType, correlationID string) string {
	return core.EventTarget(eventType, correlationID)
}

// ReasonAgentFailed is the reason of a run that failed because it returned an *AgentError.
const ReasonAgentFailed = core.ReasonAgentFailed

// Kind is the kind of durable primitive a journal entry records.
type Kind = core.Kind

const KindStep = core.KindStep

const KindSleep = core.KindSleep

const KindEvent = core.KindEvent

const KindChild = core.KindChild

const KindAgent = core.KindAgent

// State is where a journalled primitive stands.
type State = core.State

// StateRetrying: a step failed and waits for its next attempt at WakeAt.
const StateRetrying = core.StateRetrying

// StateSleeping: a timer runs until WakeAt.
const StateSleeping = core.StateSleeping

// StateWaiting: something outside the run (an event, a child, an agent) is awaited.
const StateWaiting = core.StateWaiting

// StateCompleted: the primitive finished; Result holds its value.
const StateCompleted = core.StateCompleted

// StateFailed: the primitive failed for good; Error holds the message.
const StateFailed = core.StateFailed

// Entry is one record of the journal. Its JSON form mirrors status.journal[] of a WorkflowRun,
// so the engine can measure the journal's size as the API server will see it.
type Entry = core.Entry

// PayloadRef says where a PayloadStore keeps a result too large for the journal. The engine
// treats it as opaque apart from Bytes, which counts against the run's budget.
type PayloadRef = core.PayloadRef

// Journal is a run's record of the primitives it reached, keyed by name and kept in the order
// they were first reached. It tracks its own size as JSON so that the engine can refuse to grow
// it past what the API server accepts.
type Journal = core.Journal

// NewJournal builds a journal from entries recorded earlier (in status), in their order.
func NewJournal(entries []Entry) *Journal {
	return core.NewJournal(entries)
}

// ReasonMisuse is the reason of a run whose code called a durable primitive where the engine
// cannot make it durable: from a goroutine the handler started, or inside a step's function.
const ReasonMisuse = core.ReasonMisuse

// SecretRefIsEnv reports whether a secret reference names an environment variable rather than
// a Secret key ("name/key").
func SecretRefIsEnv(ref string) bool {
	return core.SecretRefIsEnv(ref)
}

// RawHandler is the handler of a workflow whose input and output are JSON as stored, for
// hosts that bring their own types, such as the interpreter of workflow files.
type RawHandler = core.RawHandler

// DefineRaw makes a Workflow from a handler of raw JSON. The handler decodes and checks the
// input itself (failing the run with a *Failure of reason InvalidInput when it does not fit)
// and returns its output as JSON; WithInputCheck lets the REST API check input up front.
func DefineRaw(name string, handler RawHandler, opts ...durable.Option) durable.Workflow {
	return core.DefineRaw(name, handler, opts...)
}

// WithInputCheck sets how a workflow defined with DefineRaw checks its input before a run
// starts (see durable.Workflow's CheckInput); the handler should report the same problems as a
// *Failure with reason InvalidInput.
func WithInputCheck(check func(input json.RawMessage) error) durable.Option {
	return core.WithInputCheck(check)
}

// Registry holds the workflows a manager can run, by name. It is the one piece of shared
// state: built at start-up, read concurrently by reconcilers and the HTTP server.
type Registry = core.Registry

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return core.NewRegistry()
}

// DefaultMaxResultBytes caps one step's JSON result.
const DefaultMaxResultBytes = core.DefaultMaxResultBytes

// DefaultInlineResultBytes is the largest result kept in the journal itself; larger ones go
// to the execution's PayloadStore.
const DefaultInlineResultBytes = core.DefaultInlineResultBytes

// DefaultMaxOutputBytes caps the run's output, which the host keeps in the run's status.
const DefaultMaxOutputBytes = core.DefaultMaxOutputBytes

// DefaultMaxRunBytes caps everything a run stores: input, journal, payloads and output.
const DefaultMaxRunBytes = core.DefaultMaxRunBytes

// DefaultMaxChildren caps the child runs one run may start.
const DefaultMaxChildren = core.DefaultMaxChildren

// DefaultBatchSteps, DefaultBatchBytes and DefaultBatchDelay bound a batch of Batched
// steps: it is recorded once it holds this many steps or bytes of entries, or this long
// after its first step finished.
const DefaultBatchSteps = core.DefaultBatchSteps

const DefaultBatchBytes = core.DefaultBatchBytes

const DefaultBatchDelay = core.DefaultBatchDelay

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
type Recorder = core.Recorder

// RecorderFunc adapts a function to Recorder.
type RecorderFunc = core.RecorderFunc

// PayloadStore keeps results too large for the journal (over Limits.InlineResultBytes). The
// journal entry then holds the PayloadRef, and replay loads the result when the handler
// reaches the step. Store must be idempotent for a step and attempt: after a crash the same
// attempt may be stored again, with another result. Errors abort the execution, except a
// *Failure, which fails the run.
type PayloadStore = core.PayloadStore

// Limits bound what one run may store, and how Batched steps are grouped. Zero values take
// the defaults.
type Limits = core.Limits

// Hooks let the host observe an execution (metrics, events) without the engine knowing how.
type Hooks = core.Hooks

// Execution is everything one replay of a run needs.
type Execution = core.Execution

// OutcomeKind says how an execution ended.
type OutcomeKind = core.OutcomeKind

// Completed: the handler returned an output.
const Completed = core.Completed

// Failed: the run failed for good; Outcome.Failure says why.
const Failed = core.Failed

// Suspended: the handler stopped at a primitive that has to wait; Outcome.WakeAt is when
// to run again (zero: when something outside wakes the run).
const Suspended = core.Suspended

// Aborted: recording failed (Outcome.Err); re-read the run and execute again.
const Aborted = core.Aborted

// Outcome is the result of one execution.
type Outcome = core.Outcome

// Execute runs the workflow's handler from the top against ex.Journal and returns how it
// ended. New steps run and are recorded one by one through ex.Recorder; the handler goes on
// until it returns, fails or reaches a primitive that must wait. Execute never panics.
func Execute(ctx context.Context, w durable.Workflow, ex Execution) Outcome {
	return core.Execute(ctx, w, ex)
}

// MaxErrorBytes bounds the error message a journal entry records; longer messages are cut
// (see textbound.Cut), so that one huge error never outgrows the journal.
const MaxErrorBytes = core.MaxErrorBytes

const ReasonUnknownWorkflow = core.ReasonUnknownWorkflow

const ReasonInvalidInput = core.ReasonInvalidInput

const ReasonNonDeterministic = core.ReasonNonDeterministic

const ReasonHandlerError = core.ReasonHandlerError

const ReasonStepFailed = core.ReasonStepFailed

const ReasonPanic = core.ReasonPanic

const ReasonJournalTooLarge = core.ReasonJournalTooLarge

const ReasonOutputTooLarge = core.ReasonOutputTooLarge

const ReasonHandlerExited = core.ReasonHandlerExited

const ReasonTooManyChildren = core.ReasonTooManyChildren

// Failure is why a run failed: a CamelCase reason and a message for people.
type Failure = core.Failure

// MaxErrorTypeBytes bounds the error type a journal entry records; a longer one is cut.
const MaxErrorTypeBytes = core.MaxErrorTypeBytes

// Host connects the engine to the world outside one run: the event store, child runs and agent
// turns. The WorkflowRun controller implements it over the Kubernetes API; tests implement it
// in memory. Every method must be idempotent: a replay may ask the same question again, and a
// crash between a Start call and its record means Start is called again with the same step name
// and must return the same object rather than make a second one.
type Host = core.Host

// OutgoingEvent is an event a run sends (see SendEvent).
type OutgoingEvent = core.OutgoingEvent

// EventQuery selects the event a wait_for_event receives.
type EventQuery = core.EventQuery

// EventRecord is an event found by the host.
type EventRecord = core.EventRecord

// Result is the state of something a run waits for outside itself.
type Result = core.Result

// ReasonUnsupportedVersion is the reason of a run whose recorded version of a change (see
// GetVersion) is one the running code no longer supports.
const ReasonUnsupportedVersion = core.ReasonUnsupportedVersion

// KindVersion records the version GetVersion chose for a change.
const KindVersion = core.KindVersion

// JournalEnd says where a journal ends: how many entries it holds and a digest of the last
// one. A host that keeps a handler alive between executions (a Python worker keeps its
// suspended coroutine) tags it with the JournalEnd its execution left behind, and uses it
// again only when the journal read for the next execution ends at the same place: nobody
// else advanced the run in between, and every write of the execution was persisted.
type JournalEnd = core.JournalEnd

// Resume tells the engine that the handler continues where the previous execution of this
// journal suspended it, instead of starting from the top: the host keeps handlers between
// executions and calls Resume, on the handler's goroutine, before the handler's first
// primitive. Every recorded entry then counts as reached (so GetVersion knows that the
// handler stands at the end of its history) and the run's clock stands where a replay of the
// whole journal would have left it. The handler's first primitive is the one it stopped at.
//
// Only a handler that keeps its own execution-scoped state may be resumed: the names of
// unnamed agent turns and the versions GetVersion answered without a record are counted per
// execution by the engine, so such a handler names every turn and remembers its versions.
func Resume(ctx *durable.Context) { core.Resume(ctx) }

// JournalEndOf returns where the journal of ctx's execution ends now, entries staged for the
// outcome's write included.
func JournalEndOf(ctx *durable.Context) JournalEnd { return core.JournalEndOf(ctx) }

// Stopping reports how the execution ends when a primitive halted the handler's goroutine
// (Suspended, Failed or Aborted); ok is false while the handler runs on. A host whose handler
// lives outside the engine reads it in a deferred function, to keep a suspended handler for
// the next execution and drop a failed one.
func Stopping(ctx *durable.Context) (kind OutcomeKind, ok bool) { return core.Stopping(ctx) }

// Yield ends the execution on the handler's goroutine as a suspension that is due at once:
// what the handler recorded so far is persisted with the outcome, and the run is executed
// again right away, from its journal. A host calls it when the process that runs the
// handler's code died or stopped answering: the records made before are valid (a step whose
// worker died is recorded as a failed attempt), and persisting them keeps a deterministic
// crash from repeating forever. why says what happened, for the run's status.
func Yield(ctx *durable.Context, why string) { core.Yield(ctx, why) }

// Abort halts the execution on the handler's goroutine without recording anything more: the
// host executes the run again later (with the backoff of a failed reconcile). A host calls it
// when it cannot run the handler's code now at all (its interpreter cannot start, the
// execution's context ended).
func Abort(ctx *durable.Context, err error) { core.Abort(ctx, err) }

// ContextOf returns the context of ctx's execution: it ends when the execution must stop (the
// manager stops, the run's deadline passes). A host whose handler waits on another process
// waits on it too.
func ContextOf(ctx *durable.Context) context.Context { return core.ContextOf(ctx) }

// Recorded returns the entry the journal of ctx's execution holds under name.
func Recorded(ctx *durable.Context, name string) (Entry, bool) { return core.Recorded(ctx, name) }

// SetCallSite tells the engine how the workflow's loader finds the place in the workflow's
// source where the handler asks for the primitive name ("file.star:12:5 in handler"), for
// hosts that report it (Hooks.Reached, as `centaur replay` does for the first call that
// diverges from a recorded journal). The engine calls site only when a host asks, on the
// handler's goroutine while the handler waits for the primitive. Call it from the handler
// before its first primitive.
func SetCallSite(ctx *durable.Context, site func(name string) string) {
	core.SetCallSite(ctx, site)
}
