package durable_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// branchCalls counts the calls of each branch's function.
type branchCalls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *branchCalls) add(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[name]++
	return c.n[name]
}

func (c *branchCalls) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

// fetchGroup runs branches a, b and c in parallel, each returning its name upper-cased
// unless fail says otherwise for the attempt, then sleeps, so the next execution replays.
func fetchGroup(calls *branchCalls, fail func(name string, attempt int) error, opts ...durable.StepOption) durable.Workflow {
	return durable.Define("group", func(ctx *durable.Context, _ struct{}) ([]string, error) {
		var branches []durable.Branch[string]
		for _, name := range []string{"a", "b", "c"} {
			branches = append(branches, durable.Branch[string]{Name: name, Fn: func(c context.Context) (string, error) {
				n := calls.add(name)
				if err := fail(name, n); err != nil {
					return "", err
				}
				return fmt.Sprintf("%s%d", name, n), nil
			}})
		}
		out, err := durable.Parallel(ctx, branches, opts...)
		if err != nil {
			return nil, err
		}
		durable.Sleep(ctx, "after", time.Second)
		return out, nil
	})
}

func never(string, int) error { return nil }

func TestParallelRunsBranchesAtOnceAndRecordsEachByName(t *testing.T) {
	// Each branch waits until all three are running: only concurrent calls get through.
	var started sync.WaitGroup
	started.Add(3)
	all := make(chan struct{})
	go func() { started.Wait(); close(all) }()
	var calls branchCalls
	wf := fetchGroup(&calls, func(string, int) error {
		started.Done()
		select {
		case <-all:
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("the other branches did not run at the same time")
		}
	})
	h := newHarness(t, wf)
	mustSuspend(t, h.execute(), "after", epoch.Add(time.Second))
	if got, want := names(h.rec.Persisted()), []string{"a", "b", "c", "after"}; !slices.Equal(got, want) {
		t.Errorf("journal names = %q; want %q", got, want)
	}
	for _, name := range []string{"a", "b", "c"} {
		if e := h.entry(name); e.Kind != engine.KindStep || e.State != engine.StateCompleted {
			t.Errorf("entry %q = %+v; want a Completed Step", name, e)
		}
	}
	h.clock.Advance(time.Second)
	mustComplete(t, h.execute(), `["a1", "b1", "c1"]`)
	for _, name := range []string{"a", "b", "c"} {
		if n := calls.get(name); n != 1 {
			t.Errorf("branch %q ran %d times; the replay must return its record", name, n)
		}
	}
}

func TestParallelRetriesOnlyTheFailedBranch(t *testing.T) {
	var calls branchCalls
	wf := fetchGroup(&calls, func(name string, attempt int) error {
		if name == "b" && attempt == 1 {
			return errors.New("flaky")
		}
		return nil
	}, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Second}))
	h := newHarness(t, wf)
	mustSuspend(t, h.execute(), "b", epoch.Add(time.Second))
	if e := h.entry("b"); e.State != engine.StateRetrying || e.Error != "flaky" {
		t.Errorf("entry b = %+v; want Retrying with the error", e)
	}
	h.clock.Advance(time.Second)
	mustSuspend(t, h.execute(), "after", epoch.Add(2*time.Second))
	h.clock.Advance(time.Second)
	mustComplete(t, h.execute(), `["a1", "b2", "c1"]`)
	if calls.get("a") != 1 || calls.get("b") != 2 || calls.get("c") != 1 {
		t.Errorf("calls: a %d, b %d, c %d; want 1, 2, 1", calls.get("a"), calls.get("b"), calls.get("c"))
	}
}

func TestParallelReturnsTheFirstBranchThatFailedForGood(t *testing.T) {
	var calls branchCalls
	wf := durable.Define("group", func(ctx *durable.Context, _ struct{}) (string, error) {
		_, err := durable.Parallel(ctx, []durable.Branch[int]{
			{Name: "ok", Fn: func(context.Context) (int, error) { calls.add("ok"); return 1, nil }},
			{Name: "gone", Fn: func(context.Context) (int, error) { calls.add("gone"); return 0, ErrNotFound }},
			{Name: "flaky", Fn: func(context.Context) (int, error) { calls.add("flaky"); return 0, errors.New("flaky") }},
		})
		durable.Sleep(ctx, "after", time.Second)
		return fmt.Sprint(errors.Is(err, ErrNotFound)), nil
	})
	h := newHarness(t, wf)
	mustSuspend(t, h.execute(), "after", epoch.Add(time.Second))
	h.clock.Advance(time.Hour)
	mustComplete(t, h.execute(), `"true"`)
	if calls.get("flaky") != 1 || calls.get("gone") != 1 {
		t.Errorf("calls: gone %d, flaky %d; a group settled by a failure runs nothing again", calls.get("gone"), calls.get("flaky"))
	}
}

func TestParallelReplaysStepsRecordedOneByOne(t *testing.T) {
	var calls branchCalls
	sequential := durable.Define("group", func(ctx *durable.Context, _ struct{}) ([]string, error) {
		var out []string
		for _, name := range []string{"a", "b", "c"} {
			v, err := durable.Step(ctx, name, func(context.Context) (string, error) { return "recorded-" + name, nil })
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		durable.Sleep(ctx, "after", time.Second)
		return out, nil
	})
	h := newHarness(t, sequential)
	mustSuspend(t, h.execute(), "after", epoch.Add(time.Second))

	h.wf = fetchGroup(&calls, never) // the next version runs the same steps in parallel
	h.clock.Advance(time.Second)
	mustComplete(t, h.execute(), `["recorded-a", "recorded-b", "recorded-c"]`)
	if calls.get("a")+calls.get("b")+calls.get("c") != 0 {
		t.Errorf("the parallel version ran recorded steps again")
	}
}

func TestParallelMisuse(t *testing.T) {
	t.Run("a primitive inside a branch", func(t *testing.T) {
		wf := durable.Define("group", func(ctx *durable.Context, _ struct{}) ([]int, error) {
			return durable.Parallel(ctx, []durable.Branch[int]{{Name: "a", Fn: func(context.Context) (int, error) {
				durable.Sleep(ctx, "nap", time.Hour)
				return 1, nil
			}}})
		})
		h := newHarness(t, wf)
		mustMisuse(t, h.execute(), `durable.Sleep("nap")`)
		assertNotRecorded(t, h, "a")
	})
	t.Run("two branches of one name", func(t *testing.T) {
		wf := durable.Define("group", func(ctx *durable.Context, _ struct{}) ([]int, error) {
			one := func(context.Context) (int, error) { return 1, nil }
			return durable.Parallel(ctx, []durable.Branch[int]{{Name: "a", Fn: one}, {Name: "a", Fn: one}})
		})
		mustFail(t, newHarness(t, wf).execute(), engine.ReasonNonDeterministic)
	})
}

func TestParallelBranchThatExitsItsGoroutineFails(t *testing.T) {
	wf := durable.Define("group", func(ctx *durable.Context, _ struct{}) ([]int, error) {
		return durable.Parallel(ctx, []durable.Branch[int]{{Name: "quit", Fn: func(context.Context) (int, error) {
			runtime.Goexit()
			return 1, nil
		}}}, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 1}))
	})
	h := newHarness(t, wf)
	f := mustFail(t, h.execute(), engine.ReasonStepFailed)
	if !strings.Contains(f.Message, "runtime.Goexit") {
		t.Errorf("failure message %q does not name runtime.Goexit", f.Message)
	}
}
