package durable_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// TestReachedHookSeesEveryPrimitiveInOrder checks that Hooks.Reached is told of each
// primitive the handler asks for, replayed or new, in the handler's order, and that its error
// halts the execution before the primitive does anything.
func TestReachedHookSeesEveryPrimitiveInOrder(t *testing.T) {
	ran := 0
	wf := durable.Define("ordered", func(ctx *durable.Context, _ struct{}) (string, error) {
		a, err := durable.Step(ctx, "a", func(context.Context) (string, error) { ran++; return "A", nil })
		if err != nil {
			return "", err
		}
		durable.Sleep(ctx, "nap", time.Second)
		b, err := durable.Step(ctx, "b", func(context.Context) (string, error) { ran++; return "B", nil })
		return a + b, err
	})
	h := newHarness(t, wf)
	var seen []string
	h.hooks.Reached = func(name string, kind engine.Kind, _ func() string) error {
		seen = append(seen, fmt.Sprintf("%s %s", kind, name))
		return nil
	}
	mustSuspend(t, h.execute(), "nap", epoch.Add(time.Second))
	h.clock.Advance(time.Second)
	mustComplete(t, h.execute(), `"AB"`)
	want := []string{"Step a", "Sleep nap", "Step a", "Sleep nap", "Step b"}
	if !slices.Equal(seen, want) {
		t.Fatalf("Reached saw %q; want %q", seen, want)
	}

	// A fresh run whose hook refuses "b": the execution aborts with the hook's error and b's
	// function never runs.
	stop := errors.New("stop here")
	h = newHarness(t, wf)
	h.hooks.Reached = func(name string, _ engine.Kind, _ func() string) error {
		if name == "b" {
			return stop
		}
		return nil
	}
	h.execute()
	h.clock.Advance(time.Second)
	ran = 0
	out := h.execute()
	if out.Kind != engine.Aborted || !errors.Is(out.Err, stop) || out.Current != "b" {
		t.Fatalf("outcome: %s; want Aborted at \"b\" with the hook's error", describe(out))
	}
	if ran != 0 {
		t.Errorf("a step function ran %d times after the hook halted the execution", ran)
	}
}

// TestReachedHookSaysWhereTheLoaderSaysTheCallIs checks that where is empty until the
// workflow's loader tells the engine how to find call sites (engine.SetCallSite), and then
// asks it with each primitive's name.
func TestReachedHookSaysWhereTheLoaderSaysTheCallIs(t *testing.T) {
	wf := durable.Define("sited", func(ctx *durable.Context, _ struct{}) (string, error) {
		if _, err := durable.Step(ctx, "before", func(context.Context) (int, error) { return 1, nil }); err != nil {
			return "", err
		}
		engine.SetCallSite(ctx, func(name string) string { return "flow.star:7 asks for " + name })
		durable.Sleep(ctx, "nap", time.Second)
		return "", nil
	})
	h := newHarness(t, wf)
	var seen []string
	h.hooks.Reached = func(name string, _ engine.Kind, where func() string) error {
		seen = append(seen, fmt.Sprintf("%s at %q", name, where()))
		return nil
	}
	mustSuspend(t, h.execute(), "nap", epoch.Add(time.Second))
	want := []string{`before at ""`, `nap at "flow.star:7 asks for nap"`}
	if !slices.Equal(seen, want) {
		t.Fatalf("Reached saw %q; want %q", seen, want)
	}
}
