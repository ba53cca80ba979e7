package durable_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

func TestSleepSuspendsUntilItsWakeTimeThenContinues(t *testing.T) {
	afterSleep := 0
	wf := durable.Define("nap", func(ctx *durable.Context, _ struct{}) (string, error) {
		durable.Sleep(ctx, "nap", time.Hour)
		afterSleep++
		return durable.Step(ctx, "wake", func(context.Context) (string, error) { return "rested", nil })
	})
	h := newHarness(t, wf)
	wakeAt := epoch.Add(time.Hour)

	mustSuspend(t, h.execute(), "nap", wakeAt)
	if afterSleep != 0 {
		t.Fatalf("code after Sleep ran %d times before the wake time", afterSleep)
	}
	if h.rec.Writes() != 1 {
		t.Fatalf("recorder writes = %d; want 1 (the timer)", h.rec.Writes())
	}
	e := h.entry("nap")
	if e.Kind != engine.KindSleep || e.State != engine.StateSleeping || !e.StartedAt.Equal(epoch) || !e.WakeAt.Equal(wakeAt) {
		t.Fatalf("timer entry = %+v; want Sleep Sleeping from %s until %s", e, epoch, wakeAt)
	}

	// Woken early (a restart, a spurious reconcile): the same wake time, nothing written.
	h.clock.Advance(59 * time.Minute)
	mustSuspend(t, h.execute(), "nap", wakeAt)
	if afterSleep != 0 || h.rec.Writes() != 1 {
		t.Fatalf("an early wake-up ran code after Sleep %d times and wrote %d times; want 0 and 1", afterSleep, h.rec.Writes())
	}

	h.clock.Advance(time.Minute)
	mustComplete(t, h.execute(), `"rested"`)
	if afterSleep != 1 {
		t.Errorf("code after Sleep ran %d times; want 1", afterSleep)
	}
	if e := h.entry("nap"); e.State != engine.StateCompleted || !e.FinishedAt.Equal(wakeAt) {
		t.Errorf("timer entry after the wake-up = %+v; want Completed at %s", e, wakeAt)
	}
}

func TestHandlerCannotRunPastASuspension(t *testing.T) {
	tests := []struct {
		name string
		// pause is the handler's code before counter++; it suspends for an hour.
		pause func(ctx *durable.Context)
	}{
		{
			name:  "Sleep followed by more code",
			pause: func(ctx *durable.Context) { durable.Sleep(ctx, "pause", time.Hour) },
		},
		{
			name: "Sleep inside a recover",
			pause: func(ctx *durable.Context) {
				defer func() { _ = recover() }()
				durable.Sleep(ctx, "pause", time.Hour)
			},
		},
		{
			name: "retrying step whose error is ignored",
			pause: func(ctx *durable.Context) {
				_, _ = durable.Step(ctx, "pause", func(ctx context.Context) (int, error) {
					if durable.StepAttempt(ctx) == 1 {
						return 0, errors.New("not yet")
					}
					return 1, nil
				}, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Hour}))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counter := 0
			wf := durable.Define("stubborn", func(ctx *durable.Context, _ struct{}) (int, error) {
				tt.pause(ctx)
				counter++
				return counter, nil
			})
			h := newHarness(t, wf)
			mustSuspend(t, h.execute(), "pause", epoch.Add(time.Hour))
			h.clock.Advance(time.Hour - time.Second)
			mustSuspend(t, h.execute(), "pause", epoch.Add(time.Hour))
			if counter != 0 {
				t.Fatalf("code after the suspension ran %d times before the wake time", counter)
			}
			h.clock.Advance(time.Second)
			mustComplete(t, h.execute(), `1`)
		})
	}
}

func TestSleepThatIsAlreadyDueReturnsAtOnce(t *testing.T) {
	tests := []struct {
		name  string
		sleep func(ctx *durable.Context)
	}{
		{"SleepUntil in the past", func(ctx *durable.Context) { durable.SleepUntil(ctx, "due", epoch.Add(-time.Hour)) }},
		{"SleepUntil now", func(ctx *durable.Context) { durable.SleepUntil(ctx, "due", epoch) }},
		{"Sleep zero", func(ctx *durable.Context) { durable.Sleep(ctx, "due", 0) }},
		{"Sleep negative", func(ctx *durable.Context) { durable.Sleep(ctx, "due", -time.Minute) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wf := durable.Define("due", func(ctx *durable.Context, _ struct{}) (string, error) {
				tt.sleep(ctx)
				return durable.Step(ctx, "after", func(context.Context) (string, error) { return "went on", nil })
			})
			h := newHarness(t, wf)
			mustComplete(t, h.execute(), `"went on"`)
			if h.rec.Writes() != 1 {
				t.Errorf("recorder writes = %d; a due timer needs no write of its own (want 1)", h.rec.Writes())
			}
			if e := h.entry("due"); e.Kind != engine.KindSleep || e.State != engine.StateCompleted {
				t.Errorf("timer entry = %+v; want a completed Sleep", e)
			}
			mustComplete(t, h.execute(), `"went on"`)
		})
	}
}

func TestSleepUntilSuspendsUntilThatTime(t *testing.T) {
	deadline := epoch.Add(36 * time.Hour)
	wf := durable.Define("until", func(ctx *durable.Context, _ struct{}) (string, error) {
		durable.SleepUntil(ctx, "deadline", deadline)
		return durable.Now(ctx).Format(time.RFC3339), nil
	})
	h := newHarness(t, wf)
	mustSuspend(t, h.execute(), "deadline", deadline)
	h.clock.Set(deadline.Add(5 * time.Minute)) // woken late: Now still says when the timer fired
	mustComplete(t, h.execute(), `"2030-01-03T15:04:05Z"`)
}

func TestNowIsTheSameOnFirstExecutionAndOnReplay(t *testing.T) {
	tests := []struct {
		name  string
		start time.Time
	}{
		{"clock on whole seconds", epoch},
		// The API server keeps microseconds; the engine must not hand out what it cannot replay.
		{"clock with nanoseconds", epoch.Add(123456789 * time.Nanosecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var clock *fakeClock
			seen := map[string][]time.Time{}
			observe := func(ctx *durable.Context, point string) { seen[point] = append(seen[point], durable.Now(ctx)) }
			wf := durable.Define("clocked", func(ctx *durable.Context, _ struct{}) (string, error) {
				observe(ctx, "start")
				_, _ = durable.Step(ctx, "a", func(context.Context) (int, error) { clock.Advance(2 * time.Second); return 1, nil })
				observe(ctx, "after a")
				durable.Sleep(ctx, "nap", time.Hour)
				observe(ctx, "after nap")
				_, _ = durable.Step(ctx, "b", func(context.Context) (int, error) { clock.Advance(3 * time.Second); return 2, nil })
				observe(ctx, "after b")
				return "done", nil
			})
			h := newHarness(t, wf)
			clock = h.clock
			h.clock.Set(tt.start)
			h.run.StartedAt = tt.start

			out := h.execute()
			if out.Kind != engine.Suspended {
				t.Fatalf("first execution: %s; want Suspended", describe(out))
			}
			h.clock.Advance(2 * time.Hour) // woken late
			mustComplete(t, h.execute(), `"done"`)
			mustComplete(t, h.execute(), `"done"`)

			a := tt.start.Add(2 * time.Second).Truncate(time.Microsecond)
			want := map[string]time.Time{
				"start":     tt.start,
				"after a":   a,                                         // when step a finished
				"after nap": a.Add(time.Hour),                          // when the timer was due, not when the run woke
				"after b":   a.Add(2 * time.Hour).Add(3 * time.Second), // when step b finished
			}
			wantCounts := map[string]int{"start": 3, "after a": 3, "after nap": 2, "after b": 2}
			for _, point := range slices.Sorted(maps.Keys(want)) {
				if len(seen[point]) != wantCounts[point] {
					t.Errorf("point %q reached %d times; want %d", point, len(seen[point]), wantCounts[point])
				}
				for i, got := range seen[point] {
					if !got.Equal(want[point]) {
						t.Errorf("Now at %q in its execution %d = %s; want %s every time", point, i+1, got.Format(time.RFC3339Nano), want[point].Format(time.RFC3339Nano))
					}
				}
			}
		})
	}
}
