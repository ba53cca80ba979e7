package durable_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

func TestStepResultOverMaxResultBytesFailsTheStepAtOnce(t *testing.T) {
	calls := 0
	var stepErr *durable.StepError
	wf := durable.Define("download", func(ctx *durable.Context, _ struct{}) (string, error) {
		_, err := durable.Step(ctx, "fetch-page", func(context.Context) (string, error) {
			calls++
			return strings.Repeat("x", 100), nil // 102 bytes as JSON
		}, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 5}))
		errors.As(err, &stepErr)
		return "", err
	})
	h := newHarness(t, wf)
	h.limits.MaxResultBytes = 64

	mustFail(t, h.execute(), engine.ReasonStepFailed)
	if calls != 1 {
		t.Errorf("function calls = %d; an oversized result cannot be fixed by retrying (want 1)", calls)
	}
	if stepErr == nil || stepErr.Attempts != 1 || !strings.Contains(stepErr.Message, "102 bytes") || !strings.Contains(stepErr.Message, "limit of 64") {
		t.Errorf("step error = %+v; want 1 attempt and a message naming 102 bytes and the limit of 64", stepErr)
	}
	if e := h.entry("fetch-page"); e.State != engine.StateFailed || e.Result != nil {
		t.Errorf("entry = %+v; want Failed without the oversized result", e)
	}
}

func TestRunOverMaxRunBytesFailsBeforeItIsWritten(t *testing.T) {
	const limit = 1000
	calls := map[string]int{}
	wf := durable.Define("hoarder", func(ctx *durable.Context, _ struct{}) (int, error) {
		for i := range 50 {
			name := fmt.Sprintf("chunk-%02d", i)
			_, err := durable.Step(ctx, name, func(context.Context) (string, error) {
				calls[name]++
				return strings.Repeat("x", 100), nil
			})
			if err != nil {
				return 0, err
			}
		}
		return 50, nil
	})
	h := newHarness(t, wf)
	h.limits.MaxRunBytes = limit

	f := mustFail(t, h.execute(), engine.ReasonJournalTooLarge)
	written := h.rec.Writes()
	if written == 0 || written >= 50 {
		t.Fatalf("recorder writes = %d; want a few steps recorded before the budget ran out", written)
	}
	tooMuch := fmt.Sprintf("chunk-%02d", written)
	if !strings.Contains(f.Message, `"`+tooMuch+`"`) || !strings.Contains(f.Message, fmt.Sprintf("over the limit of %d", limit)) {
		t.Errorf("failure message = %q; want it to name step %q and the limit", f.Message, tooMuch)
	}
	if got := h.rec.MaxBytes(); got > limit {
		t.Errorf("the recorder was asked to write a journal of %d bytes; the limit is %d", got, limit)
	}
	if got := h.journal.Bytes(); got > limit {
		t.Errorf("the execution left a journal of %d bytes for the host to store; the limit is %d", got, limit)
	}

	// The failure is deterministic: a restart fails the same way without re-running recorded steps.
	again := mustFail(t, h.execute(), engine.ReasonJournalTooLarge)
	if again.Message != f.Message {
		t.Errorf("failure after a restart = %q; want %q", again.Message, f.Message)
	}
	if calls["chunk-00"] != 1 || h.rec.Writes() != written {
		t.Errorf("a restart re-ran recorded steps (%d calls) or wrote (%d writes)", calls["chunk-00"], h.rec.Writes())
	}
}

func TestTimersThatAreDueCountAgainstMaxRunBytes(t *testing.T) {
	const limit = 1000
	wf := durable.Define("many-deadlines", func(ctx *durable.Context, _ struct{}) (string, error) {
		for i := range 50 {
			durable.SleepUntil(ctx, fmt.Sprintf("deadline-%02d", i), epoch.Add(-time.Hour))
		}
		return "done", nil
	})
	h := newHarness(t, wf)
	h.limits.MaxRunBytes = limit

	mustFail(t, h.execute(), engine.ReasonJournalTooLarge)
	if got := h.journal.Bytes(); got > limit {
		t.Errorf("the execution left a journal of %d bytes for the host to store; the limit is %d", got, limit)
	}
}

func TestOutputOverMaxOutputBytesFailsWithOutputTooLarge(t *testing.T) {
	wf := durable.Define("verbose", func(ctx *durable.Context, _ struct{}) (string, error) {
		return strings.Repeat("y", 100), nil
	})
	h := newHarness(t, wf)
	h.limits.MaxOutputBytes = 64
	f := mustFail(t, h.execute(), engine.ReasonOutputTooLarge)
	if !strings.Contains(f.Message, "102 bytes") || !strings.Contains(f.Message, "limit is 64") {
		t.Errorf("failure message = %q; want it to name 102 bytes and the limit of 64", f.Message)
	}
}

func TestStepsGetTheDefaultTimeoutAndNoMoreThanTheMaximum(t *testing.T) {
	var deadlines []time.Duration
	wf := durable.Define("timed", func(ctx *durable.Context, _ struct{}) (int, error) {
		measure := func(c context.Context) (int, error) {
			d, ok := c.Deadline()
			if !ok {
				deadlines = append(deadlines, 0)
				return 0, nil
			}
			deadlines = append(deadlines, time.Until(d).Round(time.Minute))
			return 0, nil
		}
		for i, opts := range [][]durable.StepOption{nil, {durable.WithTimeout(3 * time.Minute)}, {durable.WithTimeout(5 * time.Hour)}} {
			if _, err := durable.Step(ctx, fmt.Sprintf("s-%d", i), measure, opts...); err != nil {
				return 0, err
			}
		}
		return len(deadlines), nil
	})
	h := newHarness(t, wf)
	h.limits.DefaultStepTimeout, h.limits.MaxStepTimeout = 10*time.Minute, time.Hour
	mustComplete(t, h.execute(), `3`)
	if want := []time.Duration{10 * time.Minute, 3 * time.Minute, time.Hour}; fmt.Sprint(deadlines) != fmt.Sprint(want) {
		t.Errorf("deadlines %v; want the default for a step without a timeout, its own below the maximum, the maximum above it", deadlines)
	}
}

func TestStepsHaveNoTimeoutWhenTheLimitsSetNone(t *testing.T) {
	var has bool
	wf := durable.Define("untimed", func(ctx *durable.Context, _ struct{}) (int, error) {
		return durable.Step(ctx, "s", func(c context.Context) (int, error) {
			_, has = c.Deadline()
			return 1, nil
		})
	})
	mustComplete(t, newHarness(t, wf).execute(), `1`)
	if has {
		t.Error("a step got a deadline though neither it nor the limits set one")
	}
}
