package workflowfile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	starlarktime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/textbound"
)

// ReasonExecutionLimit is the failure reason of a run whose handler ran more Starlark steps in
// one execution than Config.MaxSteps allows: almost always an endless loop.
const ReasonExecutionLimit = "ExecutionLimitExceeded"

// stepScopeKey is the thread-local key under which a step function's thread keeps its scope.
const stepScopeKey = "centaur.workflowfile.step"

// stepScope is what a step function's thread knows of its step: its name, its context
// (cancelled at the step's timeout and the run's deadline) and the run's recorded time (what
// ctx.now() says there).
type stepScope struct {
	ctx  context.Context
	step string
	now  time.Time
}

// requireStep returns the scope of the step whose function runs on thread, or an error saying
// that what (a side effect) belongs inside a step.
func requireStep(thread *starlark.Thread, what string) (*stepScope, error) {
	scope, ok := thread.Local(stepScopeKey).(*stepScope)
	if !ok {
		return nil, fmt.Errorf("%s is a side effect: call it inside a ctx.step function, so that it runs once and its result is recorded", what)
	}
	return scope, nil
}

// StepContext returns the context of the step whose function runs on thread: modules the
// manager hands to files use it for cancellation. ok is false outside step functions.
func StepContext(thread *starlark.Thread) (ctx context.Context, ok bool) {
	scope, ok := thread.Local(stepScopeKey).(*stepScope)
	if !ok {
		return nil, false
	}
	return scope.ctx, true
}

// StepOnly wraps a builtin with side effects, of a module the manager hands to files, so that
// it works only inside a step function, as the http module does.
func StepOnly(b *starlark.Builtin) *starlark.Builtin {
	return starlark.NewBuiltin(b.Name(), func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if _, err := requireStep(thread, b.Name()); err != nil {
			return nil, err
		}
		return b.CallInternal(thread, args, kwargs)
	})
}

// nondeterministicNow is the clock of the time module outside step functions: it refuses, so
// that a handler cannot decide differently on replay.
func nondeterministicNow() (time.Time, error) {
	return time.Time{}, errors.New("time.now() reads the clock, which differs on every replay: use ctx.now() in the handler, or call time.now() inside a ctx.step function")
}

// limitedThread is a Starlark thread with the step budget of Config.MaxSteps, which remembers
// whether the budget ran out (as opposed to a cancellation for another reason).
type limitedThread struct {
	*starlark.Thread
	max      uint64
	exceeded bool
}

// newThread prepares a thread that prints into logger and stops after the step budget.
func (w *Workflow) newThread(name string, logger *slog.Logger) *limitedThread {
	t := &limitedThread{Thread: &starlark.Thread{Name: name}, max: w.cfg.maxSteps()}
	t.Print = func(_ *starlark.Thread, msg string) { logger.Info(textbound.Cut(msg, textbound.LogValue)) }
	t.SetMaxExecutionSteps(t.max)
	t.OnMaxSteps = func(th *starlark.Thread) {
		t.exceeded = true
		th.Cancel("too many steps")
	}
	return t
}

// run is the workflow's durable handler: it checks and converts the input, calls the file's
// handler(inp, ctx) on the engine's handler goroutine and encodes what it returns.
func (w *Workflow) run(dctx *durable.Context, raw json.RawMessage) (json.RawMessage, error) {
	inp, err := inputOf(w.input, raw)
	if err != nil {
		return nil, &engine.Failure{Reason: engine.ReasonInvalidInput, Message: err.Error()}
	}
	thread := w.newThread("handler", durable.Logger(dctx))
	starlarktime.SetNow(thread.Thread, nondeterministicNow)
	engine.SetCallSite(dctx, func(string) string { return callSite(thread.Thread) })
	out, err := starlark.Call(thread.Thread, w.handler, starlark.Tuple{inp, newCtx(dctx, w)}, nil)
	if err != nil {
		return nil, w.handlerFailure(thread, err)
	}
	result, err := toJSON(out, w.cfg.maxValueBytes())
	if err != nil {
		return nil, fmt.Errorf("the handler returned something that cannot be the run's output: %w", err)
	}
	return result, nil
}

// callSite is where the handler's Starlark code calls the ctx method running now: the
// innermost frame of the thread's call stack that is in a file, "order.star:5:12 in handler".
func callSite(thread *starlark.Thread) string {
	for depth := 0; depth < thread.CallStackDepth(); depth++ {
		fr := thread.CallFrame(depth)
		if fr.Pos.IsValid() && fr.Pos.Filename() != "<builtin>" {
			return fmt.Sprintf("%s in %s", fr.Pos, fr.Name)
		}
	}
	return ""
}

// handlerFailure turns the error a handler stopped with into the run's failure: the
// execution limit, or the error of a primitive (kept as its type, so the run's reason is
// StepFailed, ChildFailed, ...) or of the Starlark code, each with the file:line backtrace.
func (w *Workflow) handlerFailure(thread *limitedThread, err error) error {
	trace := backtrace(err)
	if thread.exceeded {
		return &engine.Failure{Reason: ReasonExecutionLimit, Message: fmt.Sprintf(
			"the handler ran more than %d Starlark steps in one execution without finishing or waiting (an endless loop?)\n%s", thread.max, trace)}
	}
	var failure *engine.Failure
	if errors.As(err, &failure) {
		return failure
	}
	var stepErr *durable.StepError
	var childErr *durable.ChildError
	var agentErr *durable.AgentError
	if errors.As(err, &stepErr) || errors.As(err, &childErr) || errors.As(err, &agentErr) {
		return &tracedError{cause: err, trace: trace}
	}
	return errors.New(trace)
}

// backtrace is Starlark's "Traceback (most recent call last): file:line:col: in fn ... Error:
// message" for an evaluation error, or the error's message.
func backtrace(err error) string {
	var evalErr *starlark.EvalError
	if errors.As(err, &evalErr) {
		return evalErr.Backtrace()
	}
	return err.Error()
}

// tracedError is a primitive's error with the backtrace of the handler that returned it: its
// message is the backtrace, and errors.As still finds the primitive's error type.
type tracedError struct {
	cause error
	trace string
}

func (e *tracedError) Error() string { return e.trace }
func (e *tracedError) Unwrap() error { return e.cause }

// misuseError is a ctx primitive called where it must not be (inside a step function).
type misuseError struct{ msg string }

func (e *misuseError) Error() string { return e.msg }

// callStep runs a step function on a thread of its own, with the step's scope (so that http
// and the clock work), the step's context (its timeout cancels the thread) and a step budget
// of its own. Errors that another attempt cannot fix are non-retryable. It may run on any
// goroutine: it touches nothing of the execution but what it is given.
func (w *Workflow) callStep(sctx context.Context, logger *slog.Logger, now time.Time, name string, fn starlark.Callable) (json.RawMessage, error) {
	thread := w.newThread("step "+name, logger)
	thread.SetLocal(stepScopeKey, &stepScope{ctx: sctx, step: name, now: now})
	starlarktime.SetNow(thread.Thread, func() (time.Time, error) { return time.Now(), nil })
	stop := context.AfterFunc(sctx, func() { thread.Cancel("the step's time is up: " + context.Cause(sctx).Error()) })
	defer stop()
	v, err := starlark.Call(thread.Thread, fn, nil, nil)
	if err != nil {
		trace := backtrace(err)
		var misuse *misuseError
		switch {
		case thread.exceeded:
			return nil, durable.NonRetryable(fmt.Errorf("the function of step %q ran more than %d Starlark steps (an endless loop?)\n%s", name, thread.max, trace))
		case errors.As(err, &misuse):
			return nil, durable.NonRetryable(errors.New(trace))
		case sctx.Err() != nil:
			return nil, fmt.Errorf("%s: %w", trace, sctx.Err())
		}
		return nil, errors.New(trace)
	}
	raw, err := toJSON(v, w.cfg.maxValueBytes())
	if err != nil {
		return nil, durable.NonRetryable(fmt.Errorf("step %q must return JSON: its %w", name, err))
	}
	return raw, nil
}
