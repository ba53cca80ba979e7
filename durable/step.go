package durable

import (
	"context"
	"time"

	"github.com/centaur-dev/workflow-operator/durable/internal/core"
)

// StepError is what a step returns once it failed for good: its attempts are exhausted or its
// error was non-retryable. It carries only what the journal records (the message and the error
// type), so a replay returns exactly the same error as the first execution.
//
// When the last attempt's error had a type (an *ApplicationError, or any error with an
// ErrorType method), the StepError wraps an *ApplicationError of that type: errors.Is matches
// it against any error of the same type (a sentinel made with NewError, or a value of your
// own error type), and errors.As finds the *ApplicationError, on the first execution and after
// replay alike. errors.As into your own error type does not survive replay: branch on the type.
type StepError = core.StepError

// ApplicationError is an error with a type that a step's function returns: the type is
// recorded in the journal with the message (status.journal[].errorType), so the handler can
// branch on it after replay, and a retry policy can refuse to retry it. It plays the part of
// Temporal's ApplicationError. Make one with NewError; wrapping it with fmt.Errorf("...: %w")
// keeps its type.
type ApplicationError = core.ApplicationError

// NewError returns an *ApplicationError of errType. With nonRetryable the step fails at once,
// whatever its retry policy. Declare the errors a handler branches on as sentinels:
//
//	var ErrNotFound = durable.NewError("NotFound", "no such user", true)
//
// and test a step's error with errors.Is(err, ErrNotFound), which matches by type.
func NewError(errType, message string, nonRetryable bool) error {
	return core.NewError(errType, message, nonRetryable)
}

// NonRetryable marks err so that the step fails at once instead of being retried: use it for
// errors that another attempt cannot fix, such as a 404 or invalid data.
func NonRetryable(err error) error {
	return core.NonRetryable(err)
}

// IsNonRetryable reports whether err, or an error it wraps, was marked with NonRetryable or
// is an *ApplicationError with NonRetryable set.
func IsNonRetryable(err error) bool {
	return core.IsNonRetryable(err)
}

// RetryPolicy says how often and how fast a failing step is tried again. Zero fields take the
// defaults: 3 attempts, 1 s initial backoff, multiplier 2, backoff capped at 1 minute.
type RetryPolicy = core.RetryPolicy

// DefaultRetryPolicy is the policy of a step that sets none.
var DefaultRetryPolicy = core.DefaultRetryPolicy

// StepOption configures one step.
type StepOption = core.StepOption

// WithRetry sets the step's retry policy.
func WithRetry(p RetryPolicy) StepOption {
	return core.WithRetry(p)
}

// WithTimeout bounds each attempt: the step function's context gets this deadline, and an
// attempt that overruns it fails with context.DeadlineExceeded (and may be retried). Step
// functions must honour their context for the timeout to interrupt them.
func WithTimeout(d time.Duration) StepOption {
	return core.WithTimeout(d)
}

// Batched records the step together with the steps around it instead of on its own: group
// commit for cheap steps, as Temporal's local activities do. A batched step's result is
// written with the next ordinary step's, at the run's next suspension or at its end, or when
// the batch is full (by default 2000 steps or 128 KiB of journal entries, about 1000 steps
// without results; the manager's limits), or 50 ms (by default) after the batch's first step
// finished, whichever comes first. A loop of a thousand cheap steps then costs one write
// instead of a thousand.
//
// The price: a crash loses the unwritten part of the batch, and those steps run again when the
// run resumes. Use it for idempotent work only (at least once, as always, but a crash re-runs
// up to a batch of steps instead of one). Retries work as for any step; a failed attempt that
// will be retried is written at once, since the run sleeps until the next attempt.
func Batched() StepOption {
	return core.Batched()
}

// Step runs fn once for the run and returns its result. The result is JSON-encoded into the
// journal before Step returns; on replay Step returns the recorded result without calling fn.
// fn may run more than once if the process dies before the result is recorded (at least once),
// but its result is recorded exactly once. Errors are retried per the step's RetryPolicy; when
// the step fails for good Step returns a *StepError.
func Step[T any](ctx *Context, name string, fn func(context.Context) (T, error), opts ...StepOption) (T, error) {
	return core.Step[T](ctx, name, fn, opts...)
}

// Branch is one step of a Parallel group: its name, unique within the run like any step's,
// its function, and options of its own.
type Branch[T any] = core.Branch[T]

// Parallel runs the functions of several steps at once, one goroutine each, and returns their
// results in the branches' order:
//
//	pages, err := durable.Parallel(ctx, []durable.Branch[Page]{
//		{Name: "fetch-docs", Fn: fetch("https://example.com/docs")},
//		{Name: "fetch-blog", Fn: fetch("https://example.com/blog")},
//	})
//
// Each branch is journalled as an ordinary step under its own name (as if Step had run it),
// so a replay returns the recorded results, a restart runs again only the branches without a
// record, and a workflow that used to run the same steps one by one replays unchanged. The
// options apply to every branch (a Branch's own Options after them); each branch retries on
// its own, and while any branch waits for its next attempt the run sleeps until the earliest
// one is due.
//
// When a branch fails for good, Parallel returns its *StepError (the first such branch in
// order) once every branch has had its attempt; branches still to be retried are not tried
// again. Branch functions follow the rules of step functions: no durable primitives inside.
func Parallel[T any](ctx *Context, branches []Branch[T], opts ...StepOption) ([]T, error) {
	return core.Parallel[T](ctx, branches, opts...)
}
