package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/centaur-dev/workflow-operator/internal/textbound"
)

// RetryPolicy says how often and how fast a failing step is tried again. Zero fields take the
// defaults: 3 attempts, 1 s initial backoff, multiplier 2, backoff capped at 1 minute.
type RetryPolicy struct {
	// MaxAttempts counts every call of the step's function, the first included; 1 disables
	// retries.
	MaxAttempts int
	// InitialBackoff is the wait before the second attempt.
	InitialBackoff time.Duration
	// Multiplier grows the wait after each further failure.
	Multiplier float64
	// MaxBackoff caps the wait.
	MaxBackoff time.Duration
	// NonRetryableErrors fail the step at once when the error matches one of them
	// (errors.Is). Errors wrapped with NonRetryable, and an *ApplicationError with
	// NonRetryable set, always do.
	NonRetryableErrors []error
	// NonRetryableErrorTypes fail the step at once when the error's type (see
	// ApplicationError) is one of them.
	NonRetryableErrorTypes []string
}

// DefaultRetryPolicy is the policy of a step that sets none.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Second, Multiplier: 2, MaxBackoff: time.Minute}

func (p RetryPolicy) withDefaults() RetryPolicy {
	d := DefaultRetryPolicy
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = d.InitialBackoff
	}
	if p.Multiplier < 1 {
		p.Multiplier = d.Multiplier
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = max(d.MaxBackoff, p.InitialBackoff)
	}
	return p
}

// backoff is the wait after the given failed attempt (1-based).
func (p RetryPolicy) backoff(attempt int) time.Duration {
	d := float64(p.InitialBackoff) * math.Pow(p.Multiplier, float64(attempt-1))
	if d > float64(p.MaxBackoff) {
		return p.MaxBackoff
	}
	return time.Duration(d)
}

// retryable reports whether err may be retried under p.
func (p RetryPolicy) retryable(err error) bool {
	if IsNonRetryable(err) {
		return false
	}
	for _, target := range p.NonRetryableErrors {
		if errors.Is(err, target) {
			return false
		}
	}
	t := errorTypeOf(err)
	return t == "" || !slices.Contains(p.NonRetryableErrorTypes, t)
}

// StepOption configures one step.
type StepOption func(*stepOptions)

type stepOptions struct {
	retry   RetryPolicy
	timeout time.Duration
	batched bool
}

// WithRetry sets the step's retry policy.
func WithRetry(p RetryPolicy) StepOption { return func(o *stepOptions) { o.retry = p } }

// WithTimeout bounds each attempt: the step function's context gets this deadline, and an
// attempt that overruns it fails with context.DeadlineExceeded (and may be retried). Step
// functions must honour their context for the timeout to interrupt them.
func WithTimeout(d time.Duration) StepOption { return func(o *stepOptions) { o.timeout = d } }

// Batched records the step together with the steps around it instead of on its own: group
// commit for cheap steps, as Temporal's local activities do. A batched step's result is
// written with the next ordinary step's, at the run's next suspension or at its end, or when
// the batch is full: Limits.BatchSteps steps (default 2000) or Limits.BatchBytes of journal
// entries (default 128 KiB, about 1000 steps without results), or Limits.BatchDelay (default
// 50 ms) after the batch's first step finished, whichever comes first. A loop of a thousand
// cheap steps then costs one write instead of a thousand.
//
// The price: a crash loses the unwritten part of the batch, and those steps run again when the
// run resumes. Use it for idempotent work only (at least once, as always, but a crash re-runs
// up to a batch of steps instead of one). Retries work as for any step; a failed attempt that
// will be retried is written at once, since the run sleeps until the next attempt.
func Batched() StepOption { return func(o *stepOptions) { o.batched = true } }

// Step runs fn once for the run and returns its result. The result is JSON-encoded into the
// journal before Step returns; on replay Step returns the recorded result without calling fn.
// fn may run more than once if the process dies before the result is recorded (at least once),
// but its result is recorded exactly once. Errors are retried per the step's RetryPolicy; when
// the step fails for good Step returns a *StepError.
func Step[T any](ctx *Context, name string, fn func(context.Context) (T, error), opts ...StepOption) (T, error) {
	var out T
	if err := ctx.exec.enter("Step", name); err != nil {
		return out, err
	}
	raw, err := ctx.exec.step(name, func(c context.Context) (any, error) { return fn(c) }, opts)
	if err != nil {
		return out, err
	}
	return decodeStep[T](ctx.exec, name, raw), nil
}

// decodeStep decodes a step's recorded result into T, failing the run when it does not fit.
func decodeStep[T any](e *execution, name string, raw json.RawMessage) T {
	var out T
	if len(raw) == 0 {
		return out
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		e.failRun(ReasonNonDeterministic, "the recorded result of step %q does not decode into %T: %v; keep a step's result type stable across versions of a workflow", name, out, err)
	}
	return out
}

// step answers a step from the journal or runs its next attempt.
func (e *execution) step(name string, fn func(context.Context) (any, error), opts []StepOption) (json.RawMessage, error) {
	entry, found := e.lookup(name, KindStep)
	if found {
		switch entry.State {
		case StateCompleted:
			e.advanceClock(entry.FinishedAt)
			return e.resultOf(entry), nil
		case StateFailed:
			e.advanceClock(entry.FinishedAt)
			return nil, stepErrorOf(entry)
		case StateRetrying:
			if now := e.clock(); now.Before(entry.WakeAt) {
				e.suspend(name, entry.WakeAt, "")
			}
		}
	}
	o := stepOptionsOf(opts)
	e.inStep = name
	t := e.try(name, entry.Attempts+1, fn, o.timeout)
	e.inStep = ""
	e.haltIfMisused() // a goroutine the function started called a primitive
	next := e.settle(name, entry, t, o)
	if next.State == StateRetrying {
		e.suspend(name, next.WakeAt, "")
	}
	if t.err != nil {
		return nil, stepErrorOf(next)
	}
	return t.raw, nil
}

// stepOptionsOf applies opts.
func stepOptionsOf(opts []StepOption) stepOptions {
	var o stepOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// stepErrorOf is the error of a step whose entry says it failed.
func stepErrorOf(entry Entry) *StepError {
	return &StepError{Step: entry.Name, Attempts: entry.Attempts, Message: textbound.Cut(entry.Error, MaxErrorBytes), Type: entry.ErrorType}
}

// tried is what came of one call of a step's function: its encoded result or its error, and
// when the call started and finished.
type tried struct {
	raw               json.RawMessage
	err               error
	started, finished time.Time
}

// try calls a step's function once and encodes its result. It reads only what no other
// goroutine writes (the clock, the limits, the hooks), so Parallel calls it from one
// goroutine per branch.
func (e *execution) try(name string, attempt int, fn func(context.Context) (any, error), timeout time.Duration) tried {
	t := tried{started: e.clock()}
	value, err := e.call(name, attempt, fn, timeout)
	if err == nil {
		t.raw, err = e.encodeResult(name, value)
	}
	t.err, t.finished = err, e.clock()
	return t
}

// settle records what the attempt t of the step name (recorded before as prev) came to:
// completed, retrying or failed for good, per the step's retry policy. It returns the new
// entry as it was before staging (its result inline).
func (e *execution) settle(name string, prev Entry, t tried, o stepOptions) Entry {
	policy := o.retry.withDefaults()
	attempt := prev.Attempts + 1
	willRetry := t.err != nil && policy.retryable(t.err) && attempt < policy.MaxAttempts
	if e.hooks.StepAttempted != nil {
		e.hooks.StepAttempted(name, attempt, t.finished.Sub(t.started), t.err, willRetry)
	}

	next := Entry{Name: name, Kind: KindStep, Attempts: attempt, StartedAt: prev.StartedAt}
	if next.StartedAt.IsZero() {
		next.StartedAt = t.started
	}
	switch {
	case t.err == nil:
		next.State, next.FinishedAt, next.Result = StateCompleted, t.finished, t.raw
	case willRetry:
		next.State, next.WakeAt = StateRetrying, t.finished.Add(policy.backoff(attempt))
	default:
		next.State, next.FinishedAt = StateFailed, t.finished
	}
	if t.err != nil {
		next.Error, next.ErrorType = textbound.Cut(t.err.Error(), MaxErrorBytes), errorTypeOf(t.err)
	}
	if o.batched && !willRetry {
		e.recordBatched(next)
	} else {
		e.record(next)
	}
	e.advanceClock(t.finished)
	return next
}

// call runs fn with the attempt's context, turning a panic into an error.
func (e *execution) call(name string, attempt int, fn func(context.Context) (any, error), timeout time.Duration) (value any, err error) {
	ctx := context.WithValue(e.ctx, stepAttemptKey{}, attempt)
	if e.hooks.StepStarting != nil {
		ctx = e.hooks.StepStarting(ctx, name, attempt)
	}
	timeout = e.limits.stepTimeout(timeout)
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			e.panicked(fmt.Sprintf("step %q", name), r)
			value, err = nil, fmt.Errorf("%w: %v", errStepPanicked, r)
		}
	}()
	value, err = fn(ctx)
	if err == nil && timeout > 0 && ctx.Err() != nil {
		// The function overran its deadline but did not notice: its result came too late.
		err = fmt.Errorf("step %q overran its %s timeout: %w", name, timeout, ctx.Err())
	}
	return value, err
}

// encodeResult encodes a step's value, refusing results over the size limit.
func (e *execution) encodeResult(name string, value any) (json.RawMessage, error) {
	raw, err := json.Marshal(value)
	if err != nil {
		return nil, NonRetryable(fmt.Errorf("encode the result of step %q as JSON: %w", name, err))
	}
	if len(raw) > e.limits.MaxResultBytes {
		return nil, NonRetryable(fmt.Errorf("the result of step %q is %d bytes, over the limit of %d: store large data elsewhere and return a reference", name, len(raw), e.limits.MaxResultBytes))
	}
	if string(raw) == "null" {
		return nil, nil
	}
	return raw, nil
}
