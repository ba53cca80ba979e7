package core

import (
	"context"
	"log/slog"
	"time"
)

// RunInfo identifies the run a handler executes.
type RunInfo struct {
	// Namespace and Name of the WorkflowRun.
	Namespace, Name string
	// UID is the run's unique id, stable for its whole life.
	UID string
	// WorkflowName is the registered workflow's name.
	WorkflowName string
	// StartedAt is when the run first started.
	StartedAt time.Time
}

// Context is what a handler receives: its access to the durable primitives, the run's
// identity, a deterministic clock and a replay-aware logger. It is valid only inside the
// handler's own goroutine, for the duration of one execution.
type Context struct {
	exec *execution
}

// Info returns the identity of the run being executed.
func Info(ctx *Context) RunInfo { return ctx.exec.run }

// Now returns the run's current time as recorded: the time the most recent primitive the
// handler reached finished (or the run's start). It returns the same value on every replay,
// unlike time.Now.
//
// Now may be called inside a step's function (it reads the same recorded time), but not from
// a goroutine the handler started: that fails the run with reason Misuse, and Now returns the
// zero time.
func Now(ctx *Context) time.Time {
	if ctx.exec.onHandler("Now", "") != nil {
		return time.Time{}
	}
	return ctx.exec.now
}

// Logger returns a logger that stays quiet while the handler is replaying recorded history,
// so each line is logged once, when the code that logs it runs for the first time.
func Logger(ctx *Context) *slog.Logger { return ctx.exec.logger }

// IsReplaying reports whether the handler is still answering from recorded history.
func IsReplaying(ctx *Context) bool { return !ctx.exec.live.Load() }

type stepAttemptKey struct{}

// StepAttempt returns the attempt number (1 for the first) of the step whose function got ctx,
// or 0 outside a step function.
func StepAttempt(ctx context.Context) int {
	n, _ := ctx.Value(stepAttemptKey{}).(int)
	return n
}

// replayAwareHandler drops log records while the execution replays.
type replayAwareHandler struct {
	slog.Handler
	exec *execution
}

func (h replayAwareHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.exec.live.Load() && h.Handler.Enabled(ctx, level)
}

func (h replayAwareHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return replayAwareHandler{Handler: h.Handler.WithAttrs(attrs), exec: h.exec}
}

func (h replayAwareHandler) WithGroup(name string) slog.Handler {
	return replayAwareHandler{Handler: h.Handler.WithGroup(name), exec: h.exec}
}
