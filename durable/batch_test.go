package durable_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// loopInput says how many cheap steps the loop workflow runs, and which of them are batched.
type loopInput struct {
	Steps int `json:"steps"`
	// Ordinary lists the steps (by index) that are not batched.
	Ordinary []int `json:"ordinary"`
	// SleepAfter, when positive, sleeps an hour after that many steps.
	SleepAfter int `json:"sleepAfter"`
}

// loopWorkflow runs in.Steps cheap steps, batched unless listed in in.Ordinary; calls counts
// each step function's calls and work is called inside each step.
func loopWorkflow(calls map[string]int, work func(i int)) durable.Workflow {
	return durable.Define("loop", func(ctx *durable.Context, in loopInput) (int, error) {
		sum := 0
		for i := range in.Steps {
			if in.SleepAfter > 0 && i == in.SleepAfter {
				durable.Sleep(ctx, "pause", time.Hour)
			}
			name := fmt.Sprintf("s-%03d", i)
			var opts []durable.StepOption
			if !slices.Contains(in.Ordinary, i) {
				opts = append(opts, durable.Batched())
			}
			v, err := durable.Step(ctx, name, func(context.Context) (int, error) {
				calls[name]++
				if work != nil {
					work(i)
				}
				return i, nil
			}, opts...)
			if err != nil {
				return 0, err
			}
			sum += v
		}
		return sum, nil
	})
}

// writeSizes lists how many entries each successful write persisted beyond the one before.
func writeSizes(r *memRecorder) []int {
	var sizes []int
	prev := 0
	for n := 1; n <= r.Writes(); n++ {
		size := len(r.Snapshot(n))
		sizes = append(sizes, size-prev)
		prev = size
	}
	return sizes
}

func TestBatchedStepsAreWrittenInBatchesOfBatchSteps(t *testing.T) {
	calls := map[string]int{}
	h := newHarness(t, loopWorkflow(calls, nil))
	h.limits.BatchSteps = 100
	h.input = []byte(`{"steps": 250}`)

	mustComplete(t, h.execute(), fmt.Sprint(249*250/2))
	// Full batches of 100 are written as they fill; the rest goes with the outcome.
	if got := writeSizes(h.rec); !slices.Equal(got, []int{100, 100, 50}) {
		t.Errorf("entries per write = %v; want [100 100 50]", got)
	}
	for name, n := range calls {
		if n != 1 {
			t.Errorf("step %s ran %d times; want 1", name, n)
		}
	}
	assertUniqueNames(t, h.rec.Persisted())
	if len(h.rec.Persisted()) != 250 {
		t.Errorf("persisted %d entries; want 250", len(h.rec.Persisted()))
	}
}

func TestBatchIsWrittenOnceItHoldsBatchBytes(t *testing.T) {
	calls := map[string]int{}
	h := newHarness(t, loopWorkflow(calls, nil))
	h.input = []byte(`{"steps": 1200}`)

	mustComplete(t, h.execute(), fmt.Sprint(1199*1200/2))
	sizes := writeSizes(h.rec)
	if len(sizes) < 2 {
		t.Fatalf("entries per write = %v; want batches closed by their size", sizes)
	}
	for n := 1; n < len(sizes); n++ {
		written := h.rec.Snapshot(n)
		bytes := 0
		for _, e := range written[len(written)-sizes[n-1]:] {
			b, _ := json.Marshal(e)
			bytes += len(b)
		}
		if bytes < engine.DefaultBatchBytes || bytes > engine.DefaultBatchBytes+200 {
			t.Errorf("batch %d holds %d bytes of entries; want it closed at %d", n, bytes, engine.DefaultBatchBytes)
		}
	}
}

func TestBatchIsWrittenOnceItsFirstStepIsBatchDelayOld(t *testing.T) {
	calls := map[string]int{}
	var h *harness
	// Every step takes 20 ms of (fake) time: the third one finishes 40 ms after the first.
	h = newHarness(t, loopWorkflow(calls, func(int) { h.clock.Advance(20 * time.Millisecond) }))
	h.limits.BatchDelay = 40 * time.Millisecond
	h.input = []byte(`{"steps": 7}`)

	mustComplete(t, h.execute(), "21")
	if got := writeSizes(h.rec); !slices.Equal(got, []int{3, 3, 1}) {
		t.Errorf("entries per write = %v; want [3 3 1]: a batch closes 40 ms after its first step", got)
	}
}

func TestOrdinaryStepWritesTheBatchBeforeItTogetherWithItself(t *testing.T) {
	calls := map[string]int{}
	h := newHarness(t, loopWorkflow(calls, nil))
	// Steps 0-3 batched, 4 ordinary, 5-6 batched.
	h.input = []byte(`{"steps": 7, "ordinary": [4]}`)

	mustComplete(t, h.execute(), "21")
	if got := writeSizes(h.rec); !slices.Equal(got, []int{5, 2}) {
		t.Errorf("entries per write = %v; want [5 2]: the batch goes with the ordinary step, the rest with the outcome", got)
	}
	if got := h.rec.Changed()[0].Name; got != "s-004" {
		t.Errorf("the first write's last entry is %q; want the ordinary step s-004", got)
	}
}

func TestSuspensionWritesTheBatch(t *testing.T) {
	calls := map[string]int{}
	h := newHarness(t, loopWorkflow(calls, nil))
	h.input = []byte(`{"steps": 6, "sleepAfter": 3}`)

	mustSuspend(t, h.execute(), "pause", epoch.Add(time.Hour))
	if got := names(h.rec.Persisted()); !slices.Equal(got, []string{"s-000", "s-001", "s-002", "pause"}) {
		t.Fatalf("persisted at the suspension = %v; want the three batched steps and the sleep", got)
	}
	if h.rec.Writes() != 1 {
		t.Errorf("writes = %d; want 1 (the suspension's)", h.rec.Writes())
	}
	h.clock.Advance(time.Hour)
	mustComplete(t, h.execute(), "15")
	for name, n := range calls {
		if n != 1 {
			t.Errorf("step %s ran %d times; want 1", name, n)
		}
	}
}

func TestCrashLosesOnlyTheUnwrittenPartOfABatch(t *testing.T) {
	calls := map[string]int{}
	h := newHarness(t, loopWorkflow(calls, nil))
	h.limits.BatchSteps = 4
	h.input = []byte(`{"steps": 10}`)
	errCrash := errors.New("the manager died")
	// The first batch (s-000..s-003) is written; the second batch's write fails, as if the
	// manager died right before it.
	h.rec.fail = func(n int, _ []engine.Entry) error {
		if n == 2 {
			return errCrash
		}
		return nil
	}
	if out := h.execute(); out.Kind != engine.Aborted || !errors.Is(out.Err, errCrash) {
		t.Fatalf("outcome: %s; want Aborted with the write's error", describe(out))
	}
	if got := len(h.rec.Persisted()); got != 4 {
		t.Fatalf("persisted %d entries before the crash; want the first batch of 4", got)
	}

	mustComplete(t, h.execute(), "45")
	for i := range 10 {
		name := fmt.Sprintf("s-%03d", i)
		want := 1
		if i >= 4 && i < 8 {
			want = 2 // the lost batch ran again: at least once
		}
		if calls[name] != want {
			t.Errorf("step %s ran %d times; want %d", name, calls[name], want)
		}
	}
	assertUniqueNames(t, h.rec.Persisted())
}

func TestOrdinaryStepIsWrittenBeforeTheHandlerReachesItsNextPrimitive(t *testing.T) {
	var persistedWhenSecondRan []string
	var h *harness
	wf := durable.Define("two", func(ctx *durable.Context, _ struct{}) (string, error) {
		if _, err := durable.Step(ctx, "first", func(context.Context) (int, error) { return 1, nil }); err != nil {
			return "", err
		}
		return durable.Step(ctx, "second", func(context.Context) (string, error) {
			persistedWhenSecondRan = names(h.rec.Persisted())
			return "done", nil
		})
	})
	h = newHarness(t, wf)
	mustComplete(t, h.execute(), `"done"`)
	if !slices.Equal(persistedWhenSecondRan, []string{"first"}) {
		t.Errorf("persisted when the second step ran = %v; want [first]", persistedWhenSecondRan)
	}
	// The last step's record goes with the outcome: two writes for two steps, not three.
	if h.rec.Writes() != 2 {
		t.Errorf("writes = %d; want 2", h.rec.Writes())
	}
}

func TestRecorderFailureFailsTheRunWithoutRunningMore(t *testing.T) {
	calls := map[string]int{}
	h := newHarness(t, orderWorkflow(calls))
	h.input = []byte(`{"customer":"ada","items":["book"]}`)
	refused := &engine.Failure{Reason: engine.ReasonJournalTooLarge, Message: "the API server refused the write as too large"}
	h.rec.fail = func(n int, _ []engine.Entry) error {
		if n == 1 {
			return fmt.Errorf("write status: %w", refused)
		}
		return nil
	}
	f := mustFail(t, h.execute(), engine.ReasonJournalTooLarge)
	if f.Message != refused.Message {
		t.Errorf("failure = %q; want the recorder's", f.Message)
	}
	if calls["reserve"] != 1 || calls["charge"] != 0 {
		t.Errorf("calls = %v; want reserve once and nothing after the refused write", calls)
	}
}
