package durable_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

func TestFailingStepIsRetriedAfterDurableBackoff(t *testing.T) {
	calls := 0
	var willRetry []bool
	wf := durable.Define("flaky", func(ctx *durable.Context, _ struct{}) (string, error) {
		return durable.Step(ctx, "call-api", func(ctx context.Context) (string, error) {
			calls++
			if n := durable.StepAttempt(ctx); n < 3 {
				return "", fmt.Errorf("connection refused (attempt %d)", n)
			}
			return "ok", nil
		}, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 3, InitialBackoff: 10 * time.Second, Multiplier: 3, MaxBackoff: time.Hour}))
	})
	h := newHarness(t, wf)
	h.hooks.StepAttempted = func(_ string, _ int, _ time.Duration, _ error, retry bool) { willRetry = append(willRetry, retry) }

	// Attempt 1 fails: the wait before attempt 2 is the initial backoff.
	firstWake := epoch.Add(10 * time.Second)
	mustSuspend(t, h.execute(), "call-api", firstWake)
	e := h.entry("call-api")
	if e.State != engine.StateRetrying || e.Attempts != 1 || e.Error != "connection refused (attempt 1)" || !e.WakeAt.Equal(firstWake) {
		t.Fatalf("entry after attempt 1 = %+v; want Retrying, 1 attempt, its error, wake at %s", e, firstWake)
	}

	// Woken before the backoff elapsed: the function is not called, nothing is written.
	h.clock.Advance(9 * time.Second)
	mustSuspend(t, h.execute(), "call-api", firstWake)
	if calls != 1 || h.rec.Writes() != 1 {
		t.Fatalf("an early wake-up called the function %d times in all and wrote %d times; want 1 and 1", calls, h.rec.Writes())
	}

	// Attempt 2 fails: the backoff is multiplied.
	h.clock.Set(firstWake)
	secondWake := firstWake.Add(30 * time.Second)
	mustSuspend(t, h.execute(), "call-api", secondWake)
	if e := h.entry("call-api"); e.State != engine.StateRetrying || e.Attempts != 2 || e.Error != "connection refused (attempt 2)" {
		t.Fatalf("entry after attempt 2 = %+v; want Retrying after 2 attempts", e)
	}

	// Attempt 3 succeeds.
	h.clock.Set(secondWake)
	mustComplete(t, h.execute(), `"ok"`)
	e = h.entry("call-api")
	if e.State != engine.StateCompleted || e.Attempts != 3 || !e.StartedAt.Equal(epoch) || !e.FinishedAt.Equal(secondWake) {
		t.Errorf("entry after attempt 3 = %+v; want Completed after 3 attempts, started at the first", e)
	}
	if calls != 3 || h.rec.Writes() != 3 {
		t.Errorf("function calls = %d, writes = %d; want 3 and 3", calls, h.rec.Writes())
	}
	if !slices.Equal(willRetry, []bool{true, true, false}) {
		t.Errorf("StepAttempted willRetry = %v; want [true true false]", willRetry)
	}
	mustComplete(t, h.execute(), `"ok"`)
	if calls != 3 {
		t.Errorf("a replay called the function again (%d calls)", calls)
	}
}

func TestRetryBackoffGrowsUpToMaxBackoff(t *testing.T) {
	tests := []struct {
		name      string
		policy    durable.RetryPolicy
		wantWaits []time.Duration
	}{
		{
			name:      "zero policy takes the defaults",
			policy:    durable.RetryPolicy{},
			wantWaits: []time.Duration{time.Second, 2 * time.Second},
		},
		{
			name:      "capped by MaxBackoff",
			policy:    durable.RetryPolicy{MaxAttempts: 5, InitialBackoff: 10 * time.Second, Multiplier: 10, MaxBackoff: 45 * time.Second},
			wantWaits: []time.Duration{10 * time.Second, 45 * time.Second, 45 * time.Second, 45 * time.Second},
		},
		{
			name:      "multiplier 1 keeps a constant wait",
			policy:    durable.RetryPolicy{MaxAttempts: 4, InitialBackoff: 5 * time.Second, Multiplier: 1},
			wantWaits: []time.Duration{5 * time.Second, 5 * time.Second, 5 * time.Second},
		},
		{
			name:      "MaxAttempts 1 disables retries",
			policy:    durable.RetryPolicy{MaxAttempts: 1},
			wantWaits: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wf := durable.Define("always-fails", func(ctx *durable.Context, _ struct{}) (string, error) {
				return durable.Step(ctx, "doomed", func(context.Context) (string, error) {
					return "", errors.New("still down")
				}, durable.WithRetry(tt.policy))
			})
			h := newHarness(t, wf)
			var waits []time.Duration
			out := h.execute()
			for i := 0; out.Kind == engine.Suspended && i < 10; i++ {
				waits = append(waits, out.WakeAt.Sub(h.clock.Now()))
				h.clock.Set(out.WakeAt)
				out = h.execute()
			}
			if !slices.Equal(waits, tt.wantWaits) {
				t.Errorf("waits between attempts = %v; want %v", waits, tt.wantWaits)
			}
			f := mustFail(t, out, engine.ReasonStepFailed)
			wantMsg := fmt.Sprintf(`step "doomed" failed after %d attempt(s): still down`, len(tt.wantWaits)+1)
			if f.Message != wantMsg {
				t.Errorf("failure message = %q; want %q", f.Message, wantMsg)
			}
		})
	}
}

func TestExhaustedRetriesReturnAStepError(t *testing.T) {
	calls := 0
	var got []*durable.StepError
	wf := durable.Define("charge", func(ctx *durable.Context, _ struct{}) (string, error) {
		_, err := durable.Step(ctx, "charge-card", func(context.Context) (string, error) {
			calls++
			return "", errors.New("card declined")
		}, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Minute}))
		var stepErr *durable.StepError
		if !errors.As(err, &stepErr) {
			return "", fmt.Errorf("want a *durable.StepError, got %T %v", err, err)
		}
		got = append(got, stepErr)
		return "", err
	})
	h := newHarness(t, wf)
	mustSuspend(t, h.execute(), "charge-card", epoch.Add(time.Minute))
	h.clock.Advance(time.Minute)

	f := mustFail(t, h.execute(), engine.ReasonStepFailed)
	if want := `step "charge-card" failed after 2 attempt(s): card declined`; f.Message != want {
		t.Errorf("failure message = %q; want %q", f.Message, want)
	}
	if e := h.entry("charge-card"); e.State != engine.StateFailed || e.Attempts != 2 || e.Error != "card declined" {
		t.Errorf("entry = %+v; want Failed after 2 attempts with the last error", e)
	}

	// A replay returns the same error from the journal, without calling the function.
	mustFail(t, h.execute(), engine.ReasonStepFailed)
	if calls != 2 {
		t.Errorf("function calls = %d; want 2", calls)
	}
	want := durable.StepError{Step: "charge-card", Attempts: 2, Message: "card declined"}
	if len(got) != 2 || *got[0] != want || *got[1] != want {
		t.Errorf("StepErrors seen by the handler = %v; want %+v twice", got, want)
	}
}

func TestHandlerThatHandlesAStepErrorCanSucceed(t *testing.T) {
	wf := durable.Define("fallback", func(ctx *durable.Context, _ struct{}) (string, error) {
		quote, err := durable.Step(ctx, "primary", func(context.Context) (string, error) {
			return "", durable.NonRetryable(errors.New("primary is gone"))
		})
		var stepErr *durable.StepError
		if errors.As(err, &stepErr) {
			quote, err = durable.Step(ctx, "secondary", func(context.Context) (string, error) {
				return "42 (after: " + stepErr.Message + ")", nil
			})
		}
		return quote, err
	})
	h := newHarness(t, wf)
	mustComplete(t, h.execute(), `"42 (after: primary is gone)"`)
	mustComplete(t, h.execute(), `"42 (after: primary is gone)"`)
}

var errNotFound = errors.New("404 not found")

func TestNonRetryableErrorsFailAfterOneAttempt(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		policy  durable.RetryPolicy
		wantMsg string
	}{
		{"marked NonRetryable", durable.NonRetryable(errors.New("invalid card number")), durable.RetryPolicy{MaxAttempts: 5}, "invalid card number"},
		{"wrapping a NonRetryable", fmt.Errorf("charge: %w", durable.NonRetryable(errors.New("invalid card number"))), durable.RetryPolicy{MaxAttempts: 5}, "charge: invalid card number"},
		{"listed in NonRetryableErrors", fmt.Errorf("get user: %w", errNotFound), durable.RetryPolicy{MaxAttempts: 5, NonRetryableErrors: []error{errNotFound}}, "get user: 404 not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			wf := durable.Define("no-retry", func(ctx *durable.Context, _ struct{}) (string, error) {
				return durable.Step(ctx, "fetch", func(context.Context) (string, error) {
					calls++
					return "", tt.err
				}, durable.WithRetry(tt.policy))
			})
			h := newHarness(t, wf)
			f := mustFail(t, h.execute(), engine.ReasonStepFailed)
			if want := `step "fetch" failed after 1 attempt(s): ` + tt.wantMsg; f.Message != want {
				t.Errorf("failure message = %q; want %q", f.Message, want)
			}
			if calls != 1 || h.rec.Writes() != 1 {
				t.Errorf("function calls = %d, writes = %d; want 1 and 1", calls, h.rec.Writes())
			}
			if e := h.entry("fetch"); e.State != engine.StateFailed || e.Attempts != 1 {
				t.Errorf("entry = %+v; want Failed after 1 attempt", e)
			}
		})
	}
	if durable.NonRetryable(nil) != nil {
		t.Error("NonRetryable(nil) is not nil")
	}
	if !durable.IsNonRetryable(fmt.Errorf("x: %w", durable.NonRetryable(errNotFound))) || durable.IsNonRetryable(errNotFound) {
		t.Error("IsNonRetryable does not see through wrapping, or sees a mark that is not there")
	}
}

func TestStepTimeoutGivesTheFunctionADeadline(t *testing.T) {
	const timeout = 20 * time.Millisecond
	var hadDeadline []bool
	var attemptErrs []error
	wf := durable.Define("slow", func(ctx *durable.Context, _ struct{}) (string, error) {
		return durable.Step(ctx, "hang", func(ctx context.Context) (string, error) {
			_, ok := ctx.Deadline()
			hadDeadline = append(hadDeadline, ok)
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(2 * time.Second): // only when the engine forgot the timeout
				return "", errors.New("the step's context was never cancelled")
			}
		}, durable.WithTimeout(timeout), durable.WithRetry(durable.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Second}))
	})
	h := newHarness(t, wf)
	h.hooks.StepAttempted = func(_ string, _ int, _ time.Duration, err error, _ bool) { attemptErrs = append(attemptErrs, err) }

	mustSuspend(t, h.execute(), "hang", epoch.Add(time.Second))
	if e := h.entry("hang"); e.State != engine.StateRetrying || e.Error != context.DeadlineExceeded.Error() {
		t.Fatalf("entry after a timed-out attempt = %+v; want Retrying with %q", e, context.DeadlineExceeded)
	}
	h.clock.Advance(time.Second)
	f := mustFail(t, h.execute(), engine.ReasonStepFailed)
	if !strings.Contains(f.Message, "after 2 attempt(s): context deadline exceeded") {
		t.Errorf("failure message = %q; want the deadline error after 2 attempts", f.Message)
	}
	if !slices.Equal(hadDeadline, []bool{true, true}) {
		t.Errorf("the function's context had a deadline: %v; want [true true]", hadDeadline)
	}
	for i, err := range attemptErrs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("attempt %d error = %v; want context.DeadlineExceeded", i+1, err)
		}
	}
}

func TestStepThatReturnsAfterItsTimeoutFails(t *testing.T) {
	const timeout = 5 * time.Millisecond
	wf := durable.Define("late", func(ctx *durable.Context, _ struct{}) (string, error) {
		return durable.Step(ctx, "late", func(ctx context.Context) (string, error) {
			select { // waits out the deadline, then ignores it
			case <-ctx.Done():
			case <-time.After(2 * time.Second): // only when the engine forgot the timeout
			}
			return "too late", nil
		}, durable.WithTimeout(timeout), durable.WithRetry(durable.RetryPolicy{MaxAttempts: 1}))
	})
	h := newHarness(t, wf)
	f := mustFail(t, h.execute(), engine.ReasonStepFailed)
	if !strings.Contains(f.Message, "overran its 5ms timeout: context deadline exceeded") {
		t.Errorf("failure message = %q; want it to say the step overran its timeout", f.Message)
	}
}

// stepLabelKey is the context key of TestStepStartingHookGivesTheFunctionItsContext.
type stepLabelKey struct{}

func TestStepStartingHookGivesTheFunctionItsContext(t *testing.T) {
	var seen []string
	wf := durable.Define("labelled", func(ctx *durable.Context, _ struct{}) (string, error) {
		return durable.Step(ctx, "call-api", func(ctx context.Context) (string, error) {
			label, _ := ctx.Value(stepLabelKey{}).(string)
			seen = append(seen, label)
			if durable.StepAttempt(ctx) < 2 {
				return "", errors.New("try again")
			}
			return label, nil
		}, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Second}))
	})
	h := newHarness(t, wf)
	h.hooks.StepStarting = func(ctx context.Context, step string, attempt int) context.Context {
		return context.WithValue(ctx, stepLabelKey{}, fmt.Sprintf("%s#%d", step, attempt))
	}
	mustSuspend(t, h.execute(), "call-api", epoch.Add(time.Second))
	h.clock.Advance(time.Second)
	mustComplete(t, h.execute(), `"call-api#2"`)
	mustComplete(t, h.execute(), `"call-api#2"`)
	if !slices.Equal(seen, []string{"call-api#1", "call-api#2"}) {
		t.Errorf("the step's function saw %v; want each attempt's context, and none on replay", seen)
	}
}
