package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"go.opentelemetry.io/otel/propagation"

	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// execution is one execution in a worker, seen from the manager: the Execution the caller
// gave, whose parts answer the worker's calls, and the errors those parts returned, kept by
// reference until the outcome comes back.
type execution struct {
	ctx context.Context
	ex  engine.Execution

	mu   sync.Mutex
	errs map[uint64]error
	next uint64
}

// wire keeps err for the outcome and encodes it for the worker.
func (x *execution) wire(err error) *wireError {
	if err == nil {
		return nil
	}
	x.mu.Lock()
	x.next++
	ref := x.next
	x.errs[ref] = err
	x.mu.Unlock()
	w := &wireError{Message: err.Error(), Ref: ref}
	var failure *engine.Failure
	if errors.As(err, &failure) {
		w.Failure = failure
	}
	return w
}

// outcome turns the worker's reply into the engine's Outcome, with the manager's own error
// objects back in place, and mirrors the unrecorded entries into the manager's journal.
func (x *execution) outcome(r ExecuteReply) engine.Outcome {
	x.ex.Journal.Mirror(r.Unrecorded)
	return engine.Outcome{Kind: r.Kind, Output: r.Output, Failure: r.Failure, WakeAt: r.WakeAt, Waiting: r.Waiting,
		Current: r.Current, Unrecorded: r.Unrecorded, Err: x.unwire(r.Err)}
}

// unwire is the error an outcome carries: the manager's own, wrapped in the worker's words,
// when the worker's error came from the manager.
func (x *execution) unwire(w *wireError) error {
	if w == nil {
		return nil
	}
	x.mu.Lock()
	orig := x.errs[w.Ref]
	x.mu.Unlock()
	switch {
	case orig != nil:
		return &hostError{message: w.Message, err: orig}
	case w.Failure != nil:
		return w.Failure
	}
	return errors.New(w.Message)
}

// hostError is a manager's error as the outcome of an execution returns it: the text the
// engine gave it, and the error itself for errors.Is and errors.As.
type hostError struct {
	message string
	err     error
}

func (e *hostError) Error() string { return e.message }
func (e *hostError) Unwrap() error { return e.err }

// hostService answers a worker's calls for the executions in flight in it.
type hostService struct{ w *worker }

// errGone answers a call for an execution that has ended.
var errGone = &wireError{Message: "the execution has ended"}

// find returns the execution of id, or nil.
func (h *hostService) find(id uint64) *execution {
	x, ok := h.w.execs.Load(id)
	if !ok {
		return nil
	}
	return x.(*execution)
}

// Record mirrors the changed entries into the manager's journal, then records them.
func (h *hostService) Record(a RecordArgs, r *ErrReply) error {
	x := h.find(a.ID)
	if x == nil {
		r.Err = errGone
		return nil
	}
	x.ex.Journal.Mirror(a.Changed)
	r.Err = x.wire(x.ex.Recorder.Record(x.ctx, x.ex.Journal, a.Changed))
	return nil
}

// StorePayload stores a large result.
func (h *hostService) StorePayload(a StoreArgs, r *StoreReply) error {
	x := h.find(a.ID)
	if x == nil || x.ex.Payloads == nil {
		r.Err = errGone
		return nil
	}
	ref, err := x.ex.Payloads.Store(x.ctx, a.Step, a.Attempt, a.Result)
	r.Ref, r.Err = ref, x.wire(err)
	return nil
}

// LoadPayload reads a stored result.
func (h *hostService) LoadPayload(a LoadArgs, r *LoadReply) error {
	x := h.find(a.ID)
	if x == nil || x.ex.Payloads == nil {
		r.Err = errGone
		return nil
	}
	result, err := x.ex.Payloads.Load(x.ctx, a.Ref)
	r.Result, r.Err = result, x.wire(err)
	return nil
}

// host returns the execution's Host, or nil.
func (h *hostService) host(id uint64) (*execution, engine.Host) {
	x := h.find(id)
	if x == nil || x.ex.Host == nil {
		return nil, nil
	}
	return x, x.ex.Host
}

// FindEvent answers Host.FindEvent.
func (h *hostService) FindEvent(a FindEventArgs, r *FindEventReply) error {
	x, host := h.host(a.ID)
	if host == nil {
		r.Err = errGone
		return nil
	}
	ev, found, err := host.FindEvent(x.ctx, a.Query)
	r.Event, r.Found, r.Err = ev, found, x.wire(err)
	return nil
}

// StartChild answers Host.StartChild.
func (h *hostService) StartChild(a StartChildArgs, r *IDReply) error {
	x, host := h.host(a.ID)
	if host == nil {
		r.Err = errGone
		return nil
	}
	id, err := host.StartChild(x.ctx, a.Step, a.Workflow, a.Input)
	r.ID, r.Err = id, x.wire(err)
	return nil
}

// ChildResult answers Host.ChildResult.
func (h *hostService) ChildResult(a ResultArgs, r *ResultReply) error {
	x, host := h.host(a.ID)
	if host == nil {
		r.Err = errGone
		return nil
	}
	res, err := host.ChildResult(x.ctx, a.Child)
	r.Result, r.Err = res, x.wire(err)
	return nil
}

// StartAgent answers Host.StartAgent.
func (h *hostService) StartAgent(a StartAgentArgs, r *IDReply) error {
	x, host := h.host(a.ID)
	if host == nil {
		r.Err = errGone
		return nil
	}
	id, err := host.StartAgent(x.ctx, a.Step, a.Request)
	r.ID, r.Err = id, x.wire(err)
	return nil
}

// AgentResult answers Host.AgentResult.
func (h *hostService) AgentResult(a ResultArgs, r *ResultReply) error {
	x, host := h.host(a.ID)
	if host == nil {
		r.Err = errGone
		return nil
	}
	res, err := host.AgentResult(x.ctx, a.Child)
	r.Result, r.Err = res, x.wire(err)
	return nil
}

// SendEvent answers Host.SendEvent.
func (h *hostService) SendEvent(a SendEventArgs, r *IDReply) error {
	x, host := h.host(a.ID)
	if host == nil {
		r.Err = errGone
		return nil
	}
	ref, err := host.SendEvent(x.ctx, a.Step, a.Event)
	r.ID, r.Err = ref, x.wire(err)
	return nil
}

// StepAttempted passes a step attempt to the execution's hook.
func (h *hostService) StepAttempted(a StepAttemptedArgs, _ *NoReply) error {
	if x := h.find(a.ID); x != nil && x.ex.Hooks.StepAttempted != nil {
		var err error
		if a.Failed {
			err = errors.New(a.Err)
		}
		x.ex.Hooks.StepAttempted(a.Step, a.Attempt, a.Took, err, a.WillRetry)
	}
	return nil
}

// StepStarting asks the execution's StepStarting hook for the context of a step's attempt and
// answers the trace context it carries (traceparent, tracestate): the worker's step function
// gets that, so its outbound calls join the run's trace as a trusted file's steps do. Nothing
// else of the hook's context crosses the pipe.
func (h *hostService) StepStarting(a StepStartingArgs, r *StepStartingReply) error {
	r.Carrier = map[string]string{}
	if x := h.find(a.ID); x != nil && x.ex.Hooks.StepStarting != nil {
		ctx := x.ex.Hooks.StepStarting(x.ctx, a.Step, a.Attempt)
		propagation.TraceContext{}.Inject(ctx, propagation.MapCarrier(r.Carrier))
	}
	return nil
}

// Panicked passes a panic of the workflow's code to the execution's hook.
func (h *hostService) Panicked(a PanickedArgs, _ *NoReply) error {
	if x := h.find(a.ID); x != nil && x.ex.Hooks.Panicked != nil {
		x.ex.Hooks.Panicked(a.Where, a.Value, a.Stack)
	}
	return nil
}

// Log writes a line of the handler's log to the execution's logger.
func (h *hostService) Log(a LogArgs, _ *NoReply) error {
	x := h.find(a.ID)
	if x == nil || x.ex.Logger == nil {
		return nil
	}
	args := make([]any, 0, len(a.Attrs))
	for _, s := range a.Attrs {
		args = append(args, s)
	}
	x.ex.Logger.Log(x.ctx, slog.Level(a.Level), a.Msg, args...)
	return nil
}

// Now answers the execution's clock.
func (h *hostService) Now(a IdArgs, r *NowReply) error {
	x := h.find(a.ID)
	if x == nil || x.ex.Clock == nil {
		return fmt.Errorf("execution %d has no clock of the manager's", a.ID)
	}
	r.Now = x.ex.Clock()
	return nil
}
