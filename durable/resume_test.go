package durable_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// A host that keeps a handler alive between executions (the Python workers) tags it with the
// journal's end and resumes it only when the next execution's journal ends at the same place.
func TestJournalEndSurvivesTheRoundTripThroughTheAPIServer(t *testing.T) {
	wf := durable.Define("ends", func(ctx *durable.Context, _ struct{}) (string, error) {
		if _, err := durable.Step(ctx, "a", func(context.Context) (string, error) { return "x", nil }); err != nil {
			return "", err
		}
		durable.Sleep(ctx, "nap", 1500*time.Millisecond+time.Nanosecond) // a wake time finer than status keeps
		return "done", nil
	})
	h := newHarness(t, wf)
	mustSuspend(t, h.execute(), "nap", epoch.Add(1500*time.Millisecond+time.Nanosecond))
	inMemory := h.journal.End()
	persisted := engine.NewJournal(h.rec.Persisted()).End()
	if inMemory != persisted || inMemory.Entries != 2 || inMemory.Digest == "" {
		t.Fatalf("the journal ends at %+v in memory but at %+v once persisted", inMemory, persisted)
	}
	if (engine.JournalEnd{}) != engine.NewJournal(nil).End() {
		t.Fatalf("an empty journal ends at %+v", engine.NewJournal(nil).End())
	}
}

// resumable plays a handler kept by its host: the first execution runs from the top to the
// sleep; later ones, when resume is set, continue at the sleep as a kept handler does.
func resumable(resume *bool, version *int, now *time.Time) durable.Workflow {
	return durable.Define("resumable", func(ctx *durable.Context, _ struct{}) (string, error) {
		if *resume {
			engine.Resume(ctx)
		} else {
			for _, name := range []string{"a", "b"} {
				if _, err := durable.Step(ctx, name, func(context.Context) (string, error) { return name, nil }); err != nil {
					return "", err
				}
			}
		}
		durable.Sleep(ctx, "nap", time.Minute)
		*now = durable.Now(ctx)
		*version = durable.GetVersion(ctx, "after-nap", durable.DefaultVersion, 1)
		return "done", nil
	})
}

func TestResumeContinuesAtTheEndOfTheJournal(t *testing.T) {
	resume, version, now := false, 0, time.Time{}
	h := newHarness(t, resumable(&resume, &version, &now))
	mustSuspend(t, h.execute(), "nap", epoch.Add(time.Minute))
	h.clock.Advance(time.Minute)

	resume = true
	mustComplete(t, h.execute(), `"done"`)
	if version != 1 {
		t.Errorf("GetVersion after a resume = %d; want 1: every recorded entry counts as reached, so the change is new", version)
	}
	if !now.Equal(epoch.Add(time.Minute)) {
		t.Errorf("durable.Now after the resumed sleep = %s; want the sleep's end %s, as a replay from the top says", now, epoch.Add(time.Minute))
	}
	if got := names(h.rec.Persisted()); len(got) != 4 {
		t.Errorf("journal %v; want a, b, nap and after-nap once each", got)
	}
}

func TestWithoutResumeAPartialReplayIsInsideHistory(t *testing.T) {
	// The same handler entering at the sleep without Resume is a replay that skipped recorded
	// entries: GetVersion must then answer DefaultVersion, which is why a host that keeps
	// handlers must call Resume.
	resume, version, now := false, 0, time.Time{}
	h := newHarness(t, resumable(&resume, &version, &now))
	mustSuspend(t, h.execute(), "nap", epoch.Add(time.Minute))
	h.clock.Advance(time.Minute)
	resume = true
	out := engine.Execute(context.Background(), durable.Define("skipper", func(ctx *durable.Context, _ struct{}) (int, error) {
		durable.Sleep(ctx, "nap", time.Minute)
		return durable.GetVersion(ctx, "after-nap", durable.DefaultVersion, 1), nil
	}), engine.Execution{Run: h.run, Journal: engine.NewJournal(h.rec.Persisted()), Clock: h.clock.Now, Recorder: h.rec})
	mustComplete(t, out, "-1")
}

func TestYieldPersistsWhatWasRecordedAndIsDueAtOnce(t *testing.T) {
	calls, yielded := 0, false
	wf := durable.Define("yields", func(ctx *durable.Context, _ struct{}) (string, error) {
		if _, err := durable.Step(ctx, "a", func(context.Context) (string, error) { calls++; return "a", nil }); err != nil {
			return "", err
		}
		if !yielded {
			yielded = true
			engine.Yield(ctx, "the process running the handler exited")
		}
		return "done", nil
	})
	h := newHarness(t, wf)
	out := h.execute()
	if out.Kind != engine.Suspended || !out.WakeAt.Equal(epoch) || out.Waiting != "the process running the handler exited" || out.Current != "a" {
		t.Fatalf("outcome: %s; want a suspension due now that says why", describe(out))
	}
	if h.entry("a").State != engine.StateCompleted {
		t.Fatalf("step a was not persisted with the yield: %+v", h.rec.Persisted())
	}
	mustComplete(t, h.execute(), `"done"`)
	if calls != 1 {
		t.Errorf("step a ran %d times; its record was persisted by the yield, so once", calls)
	}
}

func TestStoppingTellsADeferredFunctionHowTheExecutionEnds(t *testing.T) {
	var kinds []engine.OutcomeKind
	var stopped []bool
	wf := durable.Define("stopping", func(ctx *durable.Context, _ struct{}) (string, error) {
		defer func() {
			kind, ok := engine.Stopping(ctx)
			kinds, stopped = append(kinds, kind), append(stopped, ok)
		}()
		durable.Sleep(ctx, "nap", time.Minute)
		return "done", nil
	})
	h := newHarness(t, wf)
	mustSuspend(t, h.execute(), "nap", epoch.Add(time.Minute))
	h.clock.Advance(time.Minute)
	mustComplete(t, h.execute(), `"done"`)
	if len(kinds) != 2 || !stopped[0] || kinds[0] != engine.Suspended || stopped[1] {
		t.Fatalf("Stopping said %v %v; want Suspended while the sleep halts the handler, nothing once it returns", kinds, stopped)
	}
}

func TestAbortRecordsNothingAndAborts(t *testing.T) {
	boom := errors.New("the interpreter cannot start")
	wf := durable.Define("aborts", func(ctx *durable.Context, _ struct{}) (string, error) {
		engine.Abort(ctx, boom)
		return "unreachable", nil
	})
	out := newHarness(t, wf).execute()
	if out.Kind != engine.Aborted || !errors.Is(out.Err, boom) {
		t.Fatalf("outcome: %s; want Aborted with the host's error", describe(out))
	}
}

func TestABranchHasOptionsOfItsOwn(t *testing.T) {
	wf := durable.Define("branch-options", func(ctx *durable.Context, _ struct{}) ([]string, error) {
		fail := func(context.Context) (string, error) { return "", errors.New("down") }
		return durable.Parallel(ctx, []durable.Branch[string]{
			{Name: "patient", Fn: fail},
			{Name: "once", Fn: fail, Options: []durable.StepOption{durable.WithRetry(durable.RetryPolicy{MaxAttempts: 1})}},
		}, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 5}))
	})
	h := newHarness(t, wf)
	out := h.execute()
	mustFail(t, out, engine.ReasonStepFailed)
	if e := h.entry("once"); e.State != engine.StateFailed || e.Attempts != 1 {
		t.Errorf("branch once: %+v; want failed after its own single attempt", e)
	}
	if e := h.entry("patient"); e.State != engine.StateRetrying {
		t.Errorf("branch patient: %+v; want retrying under the group's five attempts", e)
	}
}
