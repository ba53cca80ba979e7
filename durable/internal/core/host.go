package core

import (
	"context"
	"encoding/json"
)

// Host connects the engine to the world outside one run: the event store, child runs and agent
// turns. The WorkflowRun controller implements it over the Kubernetes API; tests implement it
// in memory. Every method must be idempotent: a replay may ask the same question again, and a
// crash between a Start call and its record means Start is called again with the same step name
// and must return the same object rather than make a second one.
type Host interface {
	// FindEvent returns the oldest event of the query's type and correlation id that is not in
	// Exclude (events this run has already consumed), or found=false.
	FindEvent(ctx context.Context, q EventQuery) (ev EventRecord, found bool, err error)
	// StartChild creates the child run for the parent's primitive named step, or finds the one
	// created earlier, and returns its id.
	StartChild(ctx context.Context, step, workflowName string, input json.RawMessage) (id string, err error)
	// ChildResult reports whether the child run id has finished, and how.
	ChildResult(ctx context.Context, id string) (Result, error)
	// StartAgent creates the agent turn for the primitive named step, or finds the one created
	// earlier, and returns its id.
	StartAgent(ctx context.Context, step string, req AgentRequest) (id string, err error)
	// AgentResult reports whether the agent turn id has finished, and how.
	AgentResult(ctx context.Context, id string) (Result, error)
	// SendEvent delivers the event the run sends at its primitive named step, or finds the one
	// delivered earlier, and returns its ref. An error that is a *Failure (an event the
	// store refuses for good) fails the run; any other error aborts the execution.
	SendEvent(ctx context.Context, step string, ev OutgoingEvent) (ref string, err error)
}

// OutgoingEvent is an event a run sends (see SendEvent).
type OutgoingEvent struct {
	Type          string
	CorrelationID string
	// Payload is the event's JSON payload.
	Payload json.RawMessage
}

// EventQuery selects the event a wait_for_event receives.
type EventQuery struct {
	Type          string
	CorrelationID string
	// Exclude lists the refs of events this run already received at other waits.
	Exclude []string
}

// EventRecord is an event found by the host.
type EventRecord struct {
	// Ref identifies the event (for the journal and for Exclude).
	Ref string
	// Payload is the event's JSON payload.
	Payload json.RawMessage
}

// Result is the state of something a run waits for outside itself.
type Result struct {
	// Done is true once it finished, successfully or not.
	Done bool
	// Output is its JSON result when it succeeded.
	Output json.RawMessage
	// Failure says why it failed; nil when it succeeded.
	Failure *Failure
	// Pending, while not Done, says in words what it waits for (shown in the run's status).
	Pending string
}
