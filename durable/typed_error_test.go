package durable_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// ErrNotFound is a sentinel an author declares and branches on.
var ErrNotFound = durable.NewError("NotFound", "no such user", true)

// quotaError is an author's own error type, typed by its ErrorType method.
type quotaError struct{ left int }

func (e quotaError) Error() string     { return fmt.Sprintf("quota exhausted (%d left)", e.left) }
func (e quotaError) ErrorType() string { return "QuotaExceeded" }

// seenError is what a handler saw of a step's error, the same on every execution.
type seenError struct {
	IsSentinel bool   `json:"isSentinel"`
	StepType   string `json:"stepType"`
	AppType    string `json:"appType"`
	Attempts   int    `json:"attempts"`
	Message    string `json:"message"`
}

// observe records what errors.Is and errors.As make of err.
func observe(err, sentinel error) seenError {
	var s seenError
	s.IsSentinel = errors.Is(err, sentinel)
	var stepErr *durable.StepError
	if errors.As(err, &stepErr) {
		s.StepType, s.Attempts, s.Message = stepErr.Type, stepErr.Attempts, stepErr.Message
	}
	var app *durable.ApplicationError
	if errors.As(err, &app) {
		s.AppType = app.Type
	}
	return s
}

// typedFailure is a workflow whose step "lookup" fails with fail's error on every attempt;
// the handler records what it saw of the error, then sleeps so that the next execution
// replays the failure from the journal.
func typedFailure(fail func(attempt int) error, sentinel error, policy durable.RetryPolicy, seen *[]seenError, calls *int) durable.Workflow {
	return durable.Define("typed", func(ctx *durable.Context, _ struct{}) (seenError, error) {
		_, err := durable.Step(ctx, "lookup", func(c context.Context) (string, error) {
			*calls++
			return "", fail(durable.StepAttempt(c))
		}, durable.WithRetry(policy))
		s := observe(err, sentinel)
		*seen = append(*seen, s)
		durable.Sleep(ctx, "pause", time.Second)
		return s, nil
	})
}

func TestAStepErrorKeepsItsTypeThroughTheJournal(t *testing.T) {
	var seen []seenError
	calls := 0
	wf := typedFailure(func(int) error { return fmt.Errorf("load user 42: %w", ErrNotFound) }, ErrNotFound,
		durable.RetryPolicy{MaxAttempts: 5}, &seen, &calls)
	h := newHarness(t, wf)

	mustSuspend(t, h.execute(), "pause", epoch.Add(time.Second))
	if calls != 1 {
		t.Errorf("a non-retryable typed error ran the step %d times; want 1", calls)
	}
	e := h.entry("lookup")
	if e.State != engine.StateFailed || e.ErrorType != "NotFound" || e.Error != "load user 42: no such user" {
		t.Errorf("entry = %+v; want Failed with errorType NotFound and the wrapped message", e)
	}

	h.clock.Advance(time.Second)
	want := seenError{IsSentinel: true, StepType: "NotFound", AppType: "NotFound", Attempts: 1, Message: "load user 42: no such user"}
	mustComplete(t, h.execute(), `{"isSentinel": true, "stepType": "NotFound", "appType": "NotFound", "attempts": 1, "message": "load user 42: no such user"}`)
	if len(seen) != 2 || seen[0] != want || seen[1] != want {
		t.Errorf("the handler saw %+v on the first execution and the replay; want %+v both times", seen, want)
	}
	if calls != 1 {
		t.Errorf("the replay called the failed step again (%d calls)", calls)
	}
}

func TestAnAuthorsErrorTypeMatchesBySentinelAfterReplay(t *testing.T) {
	var seen []seenError
	calls := 0
	wf := typedFailure(func(attempt int) error { return quotaError{left: attempt} }, quotaError{},
		durable.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Second}, &seen, &calls)
	h := newHarness(t, wf)

	mustSuspend(t, h.execute(), "lookup", epoch.Add(time.Second))
	if e := h.entry("lookup"); e.State != engine.StateRetrying || e.ErrorType != "QuotaExceeded" {
		t.Errorf("entry after the first attempt = %+v; want Retrying with errorType QuotaExceeded", e)
	}
	h.clock.Advance(time.Second)
	mustSuspend(t, h.execute(), "pause", epoch.Add(2*time.Second))
	h.clock.Advance(time.Second)
	mustComplete(t, h.execute(), `{"isSentinel": true, "stepType": "QuotaExceeded", "appType": "QuotaExceeded", "attempts": 2, "message": "quota exhausted (2 left)"}`)
	if len(seen) != 2 || seen[0] != seen[1] {
		t.Errorf("the handler saw %+v; want the same error on the first execution and the replay", seen)
	}
}

func TestNonRetryableErrorTypesStopRetries(t *testing.T) {
	var seen []seenError
	calls := 0
	wf := typedFailure(func(int) error { return quotaError{} }, quotaError{},
		durable.RetryPolicy{MaxAttempts: 5, NonRetryableErrorTypes: []string{"QuotaExceeded"}}, &seen, &calls)
	h := newHarness(t, wf)
	mustSuspend(t, h.execute(), "pause", epoch.Add(time.Second))
	if calls != 1 || h.entry("lookup").State != engine.StateFailed {
		t.Errorf("calls = %d, entry = %+v; want one call and a Failed step", calls, h.entry("lookup"))
	}
}

func TestAnUntypedStepErrorMatchesNoType(t *testing.T) {
	var seen []seenError
	calls := 0
	wf := typedFailure(func(int) error { return errors.New("plain") }, ErrNotFound,
		durable.RetryPolicy{MaxAttempts: 1}, &seen, &calls)
	h := newHarness(t, wf)
	mustSuspend(t, h.execute(), "pause", epoch.Add(time.Second))
	if e := h.entry("lookup"); e.ErrorType != "" {
		t.Errorf("entry = %+v; want no errorType", e)
	}
	if seen[0].IsSentinel || seen[0].AppType != "" || seen[0].StepType != "" {
		t.Errorf("an untyped error matched a type: %+v", seen[0])
	}
}

func TestARunFailedByATypedStepNamesTheType(t *testing.T) {
	wf := durable.Define("typed-fail", func(ctx *durable.Context, _ struct{}) (string, error) {
		return durable.Step(ctx, "lookup", func(context.Context) (string, error) { return "", ErrNotFound })
	})
	f := mustFail(t, newHarness(t, wf).execute(), engine.ReasonStepFailed)
	if want := `step "lookup" failed after 1 attempt(s): no such user (error type NotFound)`; f.Message != want {
		t.Errorf("failure message = %q; want %q", f.Message, want)
	}
}
