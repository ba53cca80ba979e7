package durable_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

type orderInput struct {
	Customer string   `json:"customer"`
	Items    []string `json:"items"`
}

type orderOutput struct {
	Reservation string `json:"reservation"`
	Charged     int    `json:"charged"`
	Receipt     string `json:"receipt"`
}

// orderWorkflow reserves, charges and mails a receipt; calls counts each step function's calls.
func orderWorkflow(calls map[string]int) durable.Workflow {
	return durable.Define("order", func(ctx *durable.Context, in orderInput) (orderOutput, error) {
		reservation, err := durable.Step(ctx, "reserve", func(context.Context) (string, error) {
			calls["reserve"]++
			return "res-" + strings.Join(in.Items, "+"), nil
		})
		if err != nil {
			return orderOutput{}, err
		}
		charged, err := durable.Step(ctx, "charge", func(context.Context) (int, error) {
			calls["charge"]++
			return 100 * len(in.Items), nil
		})
		if err != nil {
			return orderOutput{}, err
		}
		receipt, err := durable.Step(ctx, "receipt", func(context.Context) (string, error) {
			calls["receipt"]++
			return fmt.Sprintf("%s paid %d for %s", in.Customer, charged, reservation), nil
		})
		if err != nil {
			return orderOutput{}, err
		}
		return orderOutput{Reservation: reservation, Charged: charged, Receipt: receipt}, nil
	})
}

const orderWant = `{"reservation":"res-book+pen","charged":200,"receipt":"ada paid 200 for res-book+pen"}`

func TestStepsRunOnceAndReplayReturnsRecordedResults(t *testing.T) {
	calls := map[string]int{}
	h := newHarness(t, orderWorkflow(calls))
	h.input = []byte(`{"customer":"ada","items":["book","pen"]}`)

	first := h.execute()
	mustComplete(t, first, orderWant)

	// One write per new step, each persisting the journal up to and including that step.
	steps := []string{"reserve", "charge", "receipt"}
	if got := h.rec.Writes(); got != len(steps) {
		t.Fatalf("recorder writes = %d; want one per step (%d)", got, len(steps))
	}
	for i, name := range steps {
		changed := h.rec.Changed()[i]
		if changed.Name != name || changed.Kind != engine.KindStep || changed.State != engine.StateCompleted || changed.Attempts != 1 {
			t.Errorf("write %d recorded %+v; want step %q completed after 1 attempt", i+1, changed, name)
		}
		if got := names(h.rec.Snapshot(i + 1)); !slices.Equal(got, steps[:i+1]) {
			t.Errorf("journal persisted by write %d = %v; want %v", i+1, got, steps[:i+1])
		}
	}

	for replay := 1; replay <= 2; replay++ {
		again := h.execute()
		mustComplete(t, again, orderWant)
		if string(again.Output) != string(first.Output) {
			t.Errorf("replay %d output = %s; want exactly %s", replay, again.Output, first.Output)
		}
	}
	for _, name := range steps {
		if calls[name] != 1 {
			t.Errorf("step %q function called %d times over three executions; want 1", name, calls[name])
		}
	}
	if got := h.rec.Writes(); got != len(steps) {
		t.Errorf("recorder writes after replays = %d; replays must not write (want %d)", got, len(steps))
	}
}

func TestRestartAfterFailedWriteResumesAtTheUnrecordedStep(t *testing.T) {
	steps := []string{"reserve", "charge", "receipt"}
	for k, failing := range steps {
		t.Run("write of "+failing+" fails", func(t *testing.T) {
			calls := map[string]int{}
			h := newHarness(t, orderWorkflow(calls))
			h.input = []byte(`{"customer":"ada","items":["book","pen"]}`)
			errConflict := errors.New("the object has been modified")
			h.rec.fail = func(n int, _ []engine.Entry) error {
				if n == k+1 {
					return errConflict
				}
				return nil
			}

			out := h.execute()
			if out.Kind != engine.Aborted || !errors.Is(out.Err, errConflict) || out.Current != failing {
				t.Fatalf("outcome: %s; want Aborted at %q with the recorder's error", describe(out), failing)
			}
			for i, name := range steps {
				want := 0
				if i <= k {
					want = 1
				}
				if calls[name] != want {
					t.Errorf("before the restart, step %q ran %d times; want %d", name, calls[name], want)
				}
			}
			if got := names(h.rec.Persisted()); !slices.Equal(got, steps[:k]) {
				t.Fatalf("persisted journal = %v; want %v", got, steps[:k])
			}

			mustComplete(t, h.execute(), orderWant)
			for i, name := range steps {
				want := 1
				if i == k {
					want = 2 // at least once: its result was lost with the write
				}
				if calls[name] != want {
					t.Errorf("after the restart, step %q ran %d times in all; want %d", name, calls[name], want)
				}
			}
			persisted := h.rec.Persisted()
			assertUniqueNames(t, persisted)
			if got := names(persisted); !slices.Equal(got, steps) {
				t.Errorf("persisted journal = %v; want %v", got, steps)
			}
		})
	}
}

func TestReusedStepNameReturnsTheFirstRecordedResult(t *testing.T) {
	secondCalled := 0
	wf := durable.Define("reuse", func(ctx *durable.Context, _ struct{}) ([]int, error) {
		a, _ := durable.Step(ctx, "pick", func(context.Context) (int, error) { return 1, nil })
		b, _ := durable.Step(ctx, "pick", func(context.Context) (int, error) {
			secondCalled++
			return 2, nil
		})
		return []int{a, b}, nil
	})
	h := newHarness(t, wf)
	mustComplete(t, h.execute(), `[1,1]`)
	mustComplete(t, h.execute(), `[1,1]`)
	if secondCalled != 0 {
		t.Errorf("the second function under a recorded name ran %d times; want 0", secondCalled)
	}
	if h.rec.Writes() != 1 {
		t.Errorf("recorder writes = %d; want 1", h.rec.Writes())
	}
}

func TestStepWithoutResultRecordsNoResult(t *testing.T) {
	type nothing struct{}
	wf := durable.Define("notify", func(ctx *durable.Context, _ struct{}) (string, error) {
		_, err := durable.Step(ctx, "send", func(context.Context) (*nothing, error) { return nil, nil })
		return "sent", err
	})
	h := newHarness(t, wf)
	mustComplete(t, h.execute(), `"sent"`)
	if e := h.entry("send"); e.State != engine.StateCompleted || e.Result != nil {
		t.Errorf("entry = %+v; want Completed without a result", e)
	}
	mustComplete(t, h.execute(), `"sent"`)
}

func TestStepAttemptNumbersEachAttemptFromOne(t *testing.T) {
	var seen []int
	wf := durable.Define("attempts", func(ctx *durable.Context, _ struct{}) (int, error) {
		return durable.Step(ctx, "flaky", func(ctx context.Context) (int, error) {
			n := durable.StepAttempt(ctx)
			seen = append(seen, n)
			if n < 3 {
				return 0, fmt.Errorf("attempt %d failed", n)
			}
			return n, nil
		}, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 3}))
	})
	h := newHarness(t, wf)
	out := h.execute()
	for i := 0; out.Kind == engine.Suspended && i < 5; i++ {
		h.clock.Set(out.WakeAt)
		out = h.execute()
	}
	mustComplete(t, out, `3`)
	if !slices.Equal(seen, []int{1, 2, 3}) {
		t.Errorf("StepAttempt inside the function = %v; want [1 2 3]", seen)
	}
	if got := durable.StepAttempt(context.Background()); got != 0 {
		t.Errorf("StepAttempt outside a step = %d; want 0", got)
	}
}
