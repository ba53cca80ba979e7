package durable

import (
	"time"

	"github.com/centaur-dev/workflow-operator/durable/internal/core"
)

// ErrEventTimeout is what WaitForEvent returns when its timeout passes without a matching event.
// It is a normal result, not a failure of the run: branch on it with errors.Is.
var ErrEventTimeout = core.ErrEventTimeout

// ChildError is what WaitForWorkflow returns when the child run failed or was cancelled. A parent
// that returns it fails with reason ChildFailed; a parent that handles it goes on.
type ChildError = core.ChildError

// WaitOption configures a wait.
type WaitOption = core.WaitOption

// WithWaitTimeout bounds a wait: once it passes, the wait returns its timeout result
// (ErrEventTimeout for events) instead of waiting on.
func WithWaitTimeout(d time.Duration) WaitOption {
	return core.WithWaitTimeout(d)
}

// WaitForEvent suspends the run until an event of eventType with correlationID exists in the
// run's namespace, and returns its payload decoded into T. An event created before the run
// reached the wait matches too (events are kept for a retention period); the oldest event the
// run has not received at another wait wins. The delivery is journalled, so a replay returns the
// same payload even after the event is gone. With WithWaitTimeout, the wait returns
// ErrEventTimeout once the timeout passes.
func WaitForEvent[T any](ctx *Context, name, eventType, correlationID string, opts ...WaitOption) (T, error) {
	return core.WaitForEvent[T](ctx, name, eventType, correlationID, opts...)
}

// ChildRun is a child run the handler started: StartWorkflow returns it and WaitForWorkflow
// takes it, so the child's output type travels with it. It is a plain value, made again on
// every replay.
type ChildRun[Out any] = core.ChildRun[Out]

// ChildRunByID returns a handle on the child run id for a handler that kept only its id:
// WaitForWorkflow journals the wait under name.
func ChildRunByID[Out any](name, id string) ChildRun[Out] {
	return core.ChildRunByID[Out](name, id)
}

// StartWorkflow starts a child run of wf with input and returns it at once. The child's id is
// derived from the parent and name, so a replay, or a crash between creating the child and
// recording it, never makes a second child. Starts are recorded together, as Batched steps
// are, so a loop starting many children costs the parent a few writes. Cancelling the parent
// cancels the child. Wait for it with WaitForWorkflow, which journals the wait as
// name + "/result".
func StartWorkflow[In, Out any](ctx *Context, name string, wf *WorkflowDef[In, Out], input In) (ChildRun[Out], error) {
	return core.StartWorkflow[In, Out](ctx, name, wf, input)
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
	return core.SendEvent(ctx, name, eventType, correlationID, payload)
}

// WaitForWorkflow suspends the run until child finishes and returns its output, or a
// *ChildError carrying the child's failure reason. The parent is woken by a watch on its
// children, never by polling.
func WaitForWorkflow[Out any](ctx *Context, child ChildRun[Out]) (Out, error) {
	return core.WaitForWorkflow[Out](ctx, child)
}

// RunWorkflow starts a child run of wf and waits for it: StartWorkflow under name, then
// WaitForWorkflow (journalled as name + "/result", as in every release).
//
//	out, err := durable.RunWorkflow(ctx, "greet-ada", Hello, HelloInput{Name: "Ada"}) // out is a HelloOutput
func RunWorkflow[In, Out any](ctx *Context, name string, wf *WorkflowDef[In, Out], input In) (Out, error) {
	return core.RunWorkflow[In, Out](ctx, name, wf, input)
}
