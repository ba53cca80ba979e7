package durable

import (
	"context"
	"log/slog"
	"time"

	"github.com/centaur-dev/workflow-operator/durable/internal/core"
)

// RunInfo identifies the run a handler executes.
type RunInfo = core.RunInfo

// Context is what a handler receives: its access to the durable primitives, the run's
// identity, a deterministic clock and a replay-aware logger. It is valid only inside the
// handler's own goroutine, for the duration of one execution.
type Context = core.Context

// Info returns the identity of the run being executed.
func Info(ctx *Context) RunInfo {
	return core.Info(ctx)
}

// Now returns the run's current time as recorded: the time the most recent primitive the
// handler reached finished (or the run's start). It returns the same value on every replay,
// unlike time.Now.
//
// Now may be called inside a step's function (it reads the same recorded time), but not from
// a goroutine the handler started: that fails the run with reason Misuse, and Now returns the
// zero time.
func Now(ctx *Context) time.Time {
	return core.Now(ctx)
}

// Logger returns a logger that stays quiet while the handler is replaying recorded history,
// so each line is logged once, when the code that logs it runs for the first time.
func Logger(ctx *Context) *slog.Logger {
	return core.Logger(ctx)
}

// IsReplaying reports whether the handler is still answering from recorded history.
func IsReplaying(ctx *Context) bool {
	return core.IsReplaying(ctx)
}

// StepAttempt returns the attempt number (1 for the first) of the step whose function got ctx,
// or 0 outside a step function.
func StepAttempt(ctx context.Context) int {
	return core.StepAttempt(ctx)
}
