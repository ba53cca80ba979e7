package sandbox

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// The wire: two net/rpc connections over pipes, one each way. The manager calls the worker's
// "Worker" service (Execute, Cancel); while an execution runs, the worker calls the manager's
// "Host" service for everything the engine asks of its Execution (Record, the payload store,
// the host's primitives, hooks, log lines, the clock). Every call carries the execution's id.

// ExecuteArgs is one execution: the run, its journal so far and the code to run.
type ExecuteArgs struct {
	ID       uint64
	Bundle   workflowfile.Bundle
	Revision string
	Run      durable.RunInfo
	Input    json.RawMessage
	Journal  []engine.Entry
	Limits   engine.Limits
	// Deadline bounds the execution as the manager's context does; zero means none.
	Deadline time.Time
	// HostClock, HasPayloads and HasHost say which optional parts of the Execution the
	// manager has: the worker asks for them only then.
	HostClock, HasPayloads, HasHost bool
	// HasStepStarting says the manager has a StepStarting hook (tracing is on): the worker
	// asks it for each step attempt's trace context before the step's function runs.
	HasStepStarting bool
}

// ExecuteReply is the engine's Outcome.
type ExecuteReply struct {
	Kind       engine.OutcomeKind
	Output     json.RawMessage
	Failure    *engine.Failure
	WakeAt     time.Time
	Waiting    string
	Current    string
	Unrecorded []engine.Entry
	Err        *wireError
}

// wireError is an error crossing the pipes. A *engine.Failure keeps its type (the engine
// branches on it); an error of the manager keeps its identity through Ref, the key under which
// the manager kept it for the execution, so that what comes back in an Outcome is the same
// error (a conflict, an interruption) and not just its text.
type wireError struct {
	Message string
	Failure *engine.Failure
	Ref     uint64
}

// remoteError is a manager's error as the worker sees it.
type remoteError struct {
	message string
	ref     uint64
}

func (e *remoteError) Error() string { return e.message }

// decode is the error the worker's engine sees for w.
func (w *wireError) decode() error {
	switch {
	case w == nil:
		return nil
	case w.Failure != nil:
		return w.Failure
	}
	return &remoteError{message: w.Message, ref: w.Ref}
}

// encodeWorkerError is how the worker sends err back: the manager's own errors by their Ref.
func encodeWorkerError(err error) *wireError {
	if err == nil {
		return nil
	}
	w := &wireError{Message: err.Error()}
	var remote *remoteError
	if errors.As(err, &remote) {
		w.Ref = remote.ref
	}
	var failure *engine.Failure
	if errors.As(err, &failure) {
		w.Failure = failure
	}
	return w
}

// The Host service's arguments and replies, one pair per method of the same name.
type (
	RecordArgs struct {
		ID      uint64
		Changed []engine.Entry
	}
	ErrReply struct{ Err *wireError }

	StoreArgs struct {
		ID      uint64
		Step    string
		Attempt int
		Result  json.RawMessage
	}
	StoreReply struct {
		Ref engine.PayloadRef
		Err *wireError
	}
	LoadArgs struct {
		ID  uint64
		Ref engine.PayloadRef
	}
	LoadReply struct {
		Result json.RawMessage
		Err    *wireError
	}

	FindEventArgs struct {
		ID    uint64
		Query engine.EventQuery
	}
	FindEventReply struct {
		Event engine.EventRecord
		Found bool
		Err   *wireError
	}
	StartChildArgs struct {
		ID       uint64
		Step     string
		Workflow string
		Input    json.RawMessage
	}
	StartAgentArgs struct {
		ID      uint64
		Step    string
		Request durable.AgentRequest
	}
	IDReply struct {
		ID  string
		Err *wireError
	}
	ResultArgs struct {
		ID    uint64
		Child string
	}
	ResultReply struct {
		Result engine.Result
		Err    *wireError
	}
	SendEventArgs struct {
		ID    uint64
		Step  string
		Event engine.OutgoingEvent
	}

	StepAttemptedArgs struct {
		ID        uint64
		Step      string
		Attempt   int
		Took      time.Duration
		Err       string
		Failed    bool
		WillRetry bool
	}
	StepStartingArgs struct {
		ID      uint64
		Step    string
		Attempt int
	}
	// StepStartingReply is the attempt's trace context as W3C headers (traceparent,
	// tracestate): what crosses from the manager's hook to the worker's step context.
	StepStartingReply struct{ Carrier map[string]string }
	PanickedArgs      struct {
		ID    uint64
		Where string
		Value string
		Stack []byte
	}
	LogArgs struct {
		ID    uint64
		Level int
		Msg   string
		Attrs []string
	}
	NowReply  struct{ Now time.Time }
	IdArgs    struct{ ID uint64 }
	NoReply   struct{}
	CancelArg struct{ ID uint64 }
)
