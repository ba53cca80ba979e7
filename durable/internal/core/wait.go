package core

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrEventTimeout is what WaitForEvent returns when its timeout passes without a matching event.
// It is a normal result, not a failure of the run: branch on it with errors.Is.
var ErrEventTimeout = errors.New("timed out waiting for the event")

// ChildError is what WaitForWorkflow returns when the child run failed or was cancelled. A parent
// that returns it fails with reason ChildFailed; a parent that handles it goes on.
type ChildError struct {
	// Child is the child run's id.
	Child string
	// Reason and Message are the child's failure reason and message.
	Reason, Message string
}

func (e *ChildError) Error() string {
	return fmt.Sprintf("child run %s failed: %s: %s", e.Child, e.Reason, e.Message)
}

// ReasonChildFailed is the reason of a run that failed because it returned a *ChildError.
const ReasonChildFailed = "ChildFailed"

// childStartTarget starts the target of the entry that records a child's start ("start
// greet"); the entry of the wait for it names "workflow <id>".
const childStartTarget = "start "

// WaitOption configures a wait.
type WaitOption func(*waitOptions)

type waitOptions struct{ timeout time.Duration }

// WithWaitTimeout bounds a wait: once it passes, the wait returns its timeout result
// (ErrEventTimeout for events) instead of waiting on.
func WithWaitTimeout(d time.Duration) WaitOption { return func(o *waitOptions) { o.timeout = d } }

// WaitForEvent suspends the run until an event of eventType with correlationID exists in the
// run's namespace, and returns its payload decoded into T. An event created before the run
// reached the wait matches too (events are kept for a retention period); the oldest event the
// run has not received at another wait wins. The delivery is journalled, so a replay returns the
// same payload even after the event is gone. With WithWaitTimeout, the wait returns
// ErrEventTimeout once the timeout passes.
func WaitForEvent[T any](ctx *Context, name, eventType, correlationID string, opts ...WaitOption) (T, error) {
	var out T
	if err := ctx.exec.enter("WaitForEvent", name); err != nil {
		return out, err
	}
	var o waitOptions
	for _, opt := range opts {
		opt(&o)
	}
	e := ctx.exec
	target := eventTarget(eventType, correlationID)
	entry := e.await(name, KindEvent, target, o.timeout, func() (Result, string, error) {
		ev, found, err := e.host.FindEvent(e.ctx, EventQuery{Type: eventType, CorrelationID: correlationID, Exclude: e.consumedEvents(target)})
		if err != nil || !found {
			return Result{Pending: target}, "", err
		}
		return Result{Done: true, Output: ev.Payload}, ev.Ref, nil
	})
	if entry.State == StateFailed {
		return out, ErrEventTimeout
	}
	return decodeRecorded[T](e, entry)
}

// eventTarget is how a wait for an event is described in the journal and the run's status.
func eventTarget(eventType, correlationID string) string {
	return fmt.Sprintf("event %s/%s", eventType, correlationID)
}

// EventTarget is the status.waitingFor text of a run waiting for an event of eventType with
// correlationID; the controller indexes waiting runs by it.
func EventTarget(eventType, correlationID string) string {
	return eventTarget(eventType, correlationID)
}

// consumedEvents lists the events this run already received for target.
func (e *execution) consumedEvents(target string) []string {
	var refs []string
	for _, entry := range e.journal.Entries() {
		if entry.Kind == KindEvent && entry.Target == target && entry.Ref != "" {
			refs = append(refs, entry.Ref)
		}
	}
	return refs
}

// ChildRun is a child run the handler started: StartWorkflow returns it and WaitForWorkflow
// takes it, so the child's output type travels with it. It is a plain value, made again on
// every replay.
type ChildRun[Out any] struct {
	// ID is the child WorkflowRun's name.
	ID string
	// wait is the journal name of the wait for the child.
	wait string
}

// ChildRunByID returns a handle on the child run id for a handler that kept only its id:
// WaitForWorkflow journals the wait under name.
func ChildRunByID[Out any](name, id string) ChildRun[Out] { return ChildRun[Out]{ID: id, wait: name} }

// StartWorkflow starts a child run of wf with input and returns it at once. The child's id is
// derived from the parent and name, so a replay, or a crash between creating the child and
// recording it, never makes a second child. Starts are recorded together, as Batched steps
// are, so a loop starting many children costs the parent a few writes. Cancelling the parent
// cancels the child. Wait for it with WaitForWorkflow, which journals the wait as
// name + "/result".
func StartWorkflow[In, Out any](ctx *Context, name string, wf *WorkflowDef[In, Out], input In) (ChildRun[Out], error) {
	e := ctx.exec
	if err := e.enter("StartWorkflow", name); err != nil {
		return ChildRun[Out]{}, err
	}
	raw, err := json.Marshal(input)
	if err != nil {
		return ChildRun[Out]{}, fmt.Errorf("encode the input of child %q: %w", name, err)
	}
	id := e.once(name, KindChild, childStartTarget+wf.Name(), func() (string, error) {
		return e.host.StartChild(e.ctx, name, wf.Name(), raw)
	})
	return ChildRun[Out]{ID: id, wait: name + "/result"}, nil
}

// once answers a primitive that asks the host to do something exactly once for the run
// (start a child or an agent turn, send an event) from the journal, or calls do and records
// the ref it returns, as a Completed entry of kind with target. Host errors halt the
// execution (see haltOnHostError); do must be idempotent for the primitive's name.
//
// Because do is idempotent, a child's or an event's entry is written as a batched step's is
// (recordBatched): a loop that starts a thousand children writes the run a few times instead
// of once per child, and a crash before the write only has do answer again with what it did.
// An agent turn's entry is written before the handler goes on, since the turn is answered only
// once its run's journal records it (the agent policy's proof that the run made it).
func (e *execution) once(name string, kind Kind, target string, do func() (string, error)) string {
	entry, found := e.lookup(name, kind)
	if found && entry.final() {
		e.advanceClock(entry.FinishedAt)
		return entry.Ref
	}
	e.requireHost(name)
	if kind == KindChild && e.journal.Children() >= e.limits.MaxChildren {
		e.failRun(ReasonTooManyChildren, "child %q would be this run's child number %d, over the limit of %d per run: start the work in batches (a child per batch of items), or in several runs",
			name, e.journal.Children()+1, e.limits.MaxChildren)
	}
	ref, err := do()
	if err != nil {
		e.haltOnHostError(name, fmt.Errorf("%s %q: %w", target, name, err))
	}
	now := e.clock()
	entry = Entry{Name: name, Kind: kind, State: StateCompleted, StartedAt: now, FinishedAt: now, Target: target, Ref: ref}
	if kind == KindAgent {
		e.record(entry)
	} else {
		e.recordBatched(entry)
	}
	e.advanceClock(now)
	return ref
}

// SendEvent delivers an event of eventType with correlationID and payload (any value that
// encodes to JSON; nil for none) to the runs in this run's namespace, exactly once however
// often the handler replays: in the operator it creates a WorkflowEvent whose name derives
// from the run and name, as POST /api/workflows/events would, so runs waiting for that type
// and correlation id resume. It is journalled as an Event entry with target
// "send event TYPE/CORRELATION".
//
//	err := durable.SendEvent(ctx, "notify-approver", "approval.requested", in.RequestID, Request{By: in.User})
func SendEvent(ctx *Context, name, eventType, correlationID string, payload any) error {
	e := ctx.exec
	if err := e.enter("SendEvent", name); err != nil {
		return err
	}
	if eventType == "" || len(eventType) > 253 || len(correlationID) > 253 {
		return fmt.Errorf("send event %q: the type must be 1 to 253 characters and the correlation id at most 253, got %d and %d", name, len(eventType), len(correlationID))
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode the payload of event %q: %w", name, err)
	}
	if string(raw) == "null" {
		raw = nil
	}
	ev := OutgoingEvent{Type: eventType, CorrelationID: correlationID, Payload: raw}
	e.once(name, KindEvent, "send "+eventTarget(eventType, correlationID), func() (string, error) {
		return e.host.SendEvent(e.ctx, name, ev)
	})
	return nil
}

// WaitForWorkflow suspends the run until child finishes and returns its output, or a
// *ChildError carrying the child's failure reason. The parent is woken by a watch on its
// children, never by polling.
func WaitForWorkflow[Out any](ctx *Context, child ChildRun[Out]) (Out, error) {
	var out Out
	e := ctx.exec
	if err := e.enter("WaitForWorkflow", child.wait); err != nil {
		return out, err
	}
	if child.ID == "" || child.wait == "" {
		e.failRun(ReasonHandlerError, "durable.WaitForWorkflow(%q) got a ChildRun without an id: pass the ChildRun StartWorkflow returned, or make one with ChildRunByID", child.wait)
	}
	entry := e.await(child.wait, KindChild, "workflow "+child.ID, 0, func() (Result, string, error) {
		res, err := e.host.ChildResult(e.ctx, child.ID)
		return res, child.ID, err
	})
	if entry.State == StateFailed {
		reason, message, _ := strings.Cut(entry.Error, ": ")
		return out, &ChildError{Child: child.ID, Reason: reason, Message: message}
	}
	return decodeRecorded[Out](e, entry)
}

// RunWorkflow starts a child run of wf and waits for it: StartWorkflow under name, then
// WaitForWorkflow (journalled as name + "/result", as in every release).
//
//	out, err := durable.RunWorkflow(ctx, "greet-ada", Hello, HelloInput{Name: "Ada"}) // out is a HelloOutput
func RunWorkflow[In, Out any](ctx *Context, name string, wf *WorkflowDef[In, Out], input In) (Out, error) {
	if err := ctx.exec.enter("RunWorkflow", name); err != nil {
		var zero Out
		return zero, err
	}
	child, err := StartWorkflow(ctx, name, wf, input)
	if err != nil {
		var zero Out
		return zero, err
	}
	return WaitForWorkflow(ctx, child)
}

// await answers a wait from the journal, or asks poll whether the awaited thing is done: if so
// it records the result; if the timeout passed it records a timeout; otherwise it records that
// the run waits (once) and suspends until a watch or the timeout wakes the run.
func (e *execution) await(name string, kind Kind, target string, timeout time.Duration, poll func() (Result, string, error)) Entry {
	entry, found := e.lookup(name, kind)
	if found && entry.final() {
		e.advanceClock(entry.FinishedAt)
		return entry
	}
	e.requireHost(name)
	res, ref, err := poll()
	if err != nil {
		e.abort(name, fmt.Errorf("check %s: %w", target, err))
	}
	now := e.clock()
	if !found {
		entry = Entry{Name: name, Kind: kind, State: StateWaiting, StartedAt: now, Target: target}
		if timeout > 0 {
			entry.WakeAt = now.Add(timeout)
		}
	}
	switch {
	case res.Done:
		entry.State, entry.FinishedAt, entry.Ref, entry.WakeAt = StateCompleted, now, ref, time.Time{}
		if res.Failure != nil {
			entry.State, entry.Error = StateFailed, res.Failure.Reason+": "+res.Failure.Message
		} else {
			entry.Result = res.Output
		}
	case !entry.WakeAt.IsZero() && !now.Before(entry.WakeAt):
		entry.State, entry.FinishedAt, entry.Error = StateFailed, now, "timed out"
	default:
		if !found {
			e.stage(entry) // persisted by the write that records the suspension
		}
		waiting := target
		if res.Pending != "" {
			waiting = res.Pending
		}
		e.halt(Outcome{Kind: Suspended, Current: name, WakeAt: entry.WakeAt, Waiting: waiting})
	}
	e.record(entry)
	e.advanceClock(now)
	return entry
}

// requireHost fails the run when a primitive needs a host and the execution has none.
func (e *execution) requireHost(name string) {
	if e.host == nil {
		e.failRun(ReasonHandlerError, "%q needs the world outside the run (events, child runs or agents), which this execution does not provide", name)
	}
}

// abort halts the execution after a transient error talking to the host: nothing is recorded
// and the run is executed again.
func (e *execution) abort(name string, err error) {
	e.halt(Outcome{Kind: Aborted, Current: name, Err: err})
}

// decodeRecorded decodes an entry's recorded JSON result into T, failing the run when it does
// not fit.
func decodeRecorded[T any](e *execution, entry Entry) (T, error) {
	var out T
	raw := e.resultOf(entry)
	if len(raw) == 0 {
		return out, nil
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		e.failRun(ReasonNonDeterministic, "the recorded result of %q does not decode into %T: %v; keep a primitive's result type stable across versions of a workflow", entry.Name, out, err)
	}
	return out, nil
}
