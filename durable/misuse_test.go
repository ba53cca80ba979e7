package durable_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// mustMisuse fails the test unless the run failed with reason Misuse and a message holding
// every fragment, and returns the failure.
func mustMisuse(t *testing.T, o engine.Outcome, fragments ...string) *engine.Failure {
	t.Helper()
	f := mustFail(t, o, engine.ReasonMisuse)
	for _, frag := range fragments {
		if !strings.Contains(f.Message, frag) {
			t.Errorf("failure message %q does not contain %q", f.Message, frag)
		}
	}
	return f
}

// assertNotRecorded fails the test when the persisted journal holds an entry called name.
func assertNotRecorded(t *testing.T, h *harness, name string) {
	t.Helper()
	for _, e := range h.rec.Persisted() {
		if e.Name == name {
			t.Errorf("entry %q was recorded: %+v", name, e)
		}
	}
}

func TestSleepInAGoroutineFailsTheRunWithMisuse(t *testing.T) {
	var slept bool
	wf := durable.Define("nap-in-goroutine", func(ctx *durable.Context, _ struct{}) (string, error) {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			durable.Sleep(ctx, "nap", time.Hour)
			slept = true // Sleep returns at once off the handler's goroutine
		}()
		wg.Wait()
		return "done without sleeping", nil
	})
	h := newHarness(t, wf)
	mustMisuse(t, h.execute(), `durable.Sleep("nap")`, "goroutine the handler started", "call it from the handler itself")
	if !slept {
		t.Errorf("the goroutine was stopped inside Sleep; it should get control back so that the handler's WaitGroup is released")
	}
	assertNotRecorded(t, h, "nap")

	// The run fails the same way every time it is executed.
	mustMisuse(t, h.execute(), `durable.Sleep("nap")`)
}

func TestStepInAGoroutineReturnsTheMisuseAndFailsTheRun(t *testing.T) {
	ran := false
	wf := durable.Define("step-in-goroutine", func(ctx *durable.Context, _ struct{}) (string, error) {
		errs := make(chan error, 1)
		go func() {
			_, err := durable.Step(ctx, "fetch", func(context.Context) (int, error) { ran = true; return 1, nil })
			errs <- err
		}()
		err := <-errs
		var f *engine.Failure
		if !errors.As(err, &f) || f.Reason != engine.ReasonMisuse {
			t.Errorf("Step off the handler's goroutine returned %v; want a *Failure with reason Misuse", err)
		}
		// The handler ignores the error and goes on: its next primitive halts it.
		durable.Sleep(ctx, "later", time.Hour)
		return "unreachable", nil
	})
	h := newHarness(t, wf)
	mustMisuse(t, h.execute(), `durable.Step("fetch")`)
	if ran {
		t.Errorf("the step's function ran off the handler's goroutine")
	}
	assertNotRecorded(t, h, "fetch")
	assertNotRecorded(t, h, "later")
}

func TestStepInsideAStepFailsTheRunWithMisuse(t *testing.T) {
	innerRan := false
	wf := durable.Define("step-in-step", func(ctx *durable.Context, _ struct{}) (string, error) {
		return durable.Step(ctx, "outer", func(context.Context) (string, error) {
			return durable.Step(ctx, "inner", func(context.Context) (string, error) { innerRan = true; return "x", nil })
		})
	})
	h := newHarness(t, wf)
	mustMisuse(t, h.execute(), `durable.Step("inner")`, `inside the function of step "outer"`, "call durable.Step from the handler")
	if innerRan {
		t.Errorf("the nested step's function ran")
	}
	assertNotRecorded(t, h, "inner")
	assertNotRecorded(t, h, "outer")
}

func TestPrimitivesInsideAStepFailTheRun(t *testing.T) {
	tests := []struct {
		call string
		use  func(ctx *durable.Context)
	}{
		{`durable.Sleep("nap")`, func(ctx *durable.Context) { durable.Sleep(ctx, "nap", time.Second) }},
		{`durable.WaitForEvent("ev")`, func(ctx *durable.Context) {
			_, _ = durable.WaitForEvent[string](ctx, "ev", "t", "c")
		}},
		{`durable.RunWorkflow("child")`, func(ctx *durable.Context) {
			_, _ = durable.RunWorkflow(ctx, "child", durable.WorkflowByName[any, string]("hello"), nil)
		}},
		{`durable.AgentTurn()`, func(ctx *durable.Context) { _, _ = durable.AgentTurn(ctx, "hi", "thread") }},
	}
	for _, tt := range tests {
		t.Run(tt.call, func(t *testing.T) {
			wf := durable.Define("primitive-in-step", func(ctx *durable.Context, _ struct{}) (string, error) {
				return durable.Step(ctx, "outer", func(context.Context) (string, error) {
					tt.use(ctx)
					return "x", nil
				})
			})
			mustMisuse(t, newHarness(t, wf).execute(), tt.call, `inside the function of step "outer"`)
		})
	}
}

func TestSleepInAGoroutineOfAStepFunctionFailsTheRun(t *testing.T) {
	wf := durable.Define("nap-in-step-goroutine", func(ctx *durable.Context, _ struct{}) (string, error) {
		return durable.Step(ctx, "outer", func(context.Context) (string, error) {
			done := make(chan struct{})
			go func() { defer close(done); durable.Sleep(ctx, "nap", time.Hour) }()
			<-done
			return "x", nil
		})
	})
	h := newHarness(t, wf)
	mustMisuse(t, h.execute(), `durable.Sleep("nap")`, "goroutine")
	assertNotRecorded(t, h, "outer")
}

func TestNowFromAGoroutineFailsButNowAndLoggerInAStepWork(t *testing.T) {
	t.Run("Now from a goroutine", func(t *testing.T) {
		wf := durable.Define("now-in-goroutine", func(ctx *durable.Context, _ struct{}) (time.Time, error) {
			times := make(chan time.Time)
			go func() { times <- durable.Now(ctx) }()
			return <-times, nil
		})
		mustMisuse(t, newHarness(t, wf).execute(), "durable.Now()")
	})
	t.Run("Now and Logger in a step function", func(t *testing.T) {
		wf := durable.Define("now-in-step", func(ctx *durable.Context, _ struct{}) (bool, error) {
			before := durable.Now(ctx)
			return durable.Step(ctx, "read", func(context.Context) (bool, error) {
				durable.Logger(ctx).Info("inside")
				return durable.Now(ctx).Equal(before), nil
			})
		})
		mustComplete(t, newHarness(t, wf).execute(), `true`)
	})
}
