package durable_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// reportCode is the workflow "report" as deployed at some point: v1 is the code before the
// change; maxVersion > 0 is the code after it, which fetches from a new API under GetVersion
// (supporting versions minVersion to maxVersion). Every version prepares, naps, fetches and
// naps again, so a run can stand before or after the change when the code is replaced.
type reportCode struct {
	minVersion, maxVersion int
	calls                  *branchCalls
	// replaying notes what IsReplaying said right after GetVersion, per execution.
	replaying []bool
}

func (c *reportCode) workflow() durable.Workflow {
	return durable.Define("report", func(ctx *durable.Context, _ struct{}) (string, error) {
		step := func(name, result string) (string, error) {
			return durable.Step(ctx, name, func(context.Context) (string, error) {
				c.calls.add(name)
				return result, nil
			})
		}
		if _, err := step("prepare", "prepared"); err != nil {
			return "", err
		}
		durable.Sleep(ctx, "nap", time.Second)
		version := durable.DefaultVersion
		if c.maxVersion > 0 {
			version = durable.GetVersion(ctx, "fetch-api", c.minVersion, c.maxVersion)
			c.replaying = append(c.replaying, durable.IsReplaying(ctx))
		}
		var page string
		var err error
		if version == durable.DefaultVersion {
			page, err = step("fetch", "old api")
		} else {
			page, err = step("fetch-v2", "new api")
		}
		if err != nil {
			return "", err
		}
		durable.Sleep(ctx, "after", time.Second)
		return fmt.Sprintf("%s, version %d", page, version), nil
	})
}

// v1 and v2 are the code before and after the change.
func v1(calls *branchCalls) *reportCode { return &reportCode{calls: calls} }
func v2(calls *branchCalls) *reportCode {
	return &reportCode{minVersion: durable.DefaultVersion, maxVersion: 1, calls: calls}
}

// mustHaveVersion fails the test unless the persisted journal records version v for change.
func mustHaveVersion(t *testing.T, h *harness, change string, v int) {
	t.Helper()
	e := h.entry(change)
	if e.Kind != engine.KindVersion || e.State != engine.StateCompleted || string(e.Result) != fmt.Sprint(v) {
		t.Errorf("entry %q = %+v; want a Completed Version entry with result %d", change, e, v)
	}
}

// finish advances the clock past each nap until the run completes, and returns the outcome.
func finish(t *testing.T, h *harness) engine.Outcome {
	t.Helper()
	for range 5 {
		o := h.execute()
		if o.Kind != engine.Suspended {
			return o
		}
		h.clock.Set(o.WakeAt)
	}
	t.Fatalf("the run did not finish; journal %v", names(h.rec.Persisted()))
	return engine.Outcome{}
}

func TestGetVersionOnANewRunRecordsTheMaximumAndReplaysIt(t *testing.T) {
	var calls branchCalls
	h := newHarness(t, v2(&calls).workflow())
	mustSuspend(t, h.execute(), "nap", epoch.Add(time.Second))
	h.clock.Advance(time.Second)
	mustSuspend(t, h.execute(), "after", epoch.Add(2*time.Second))
	mustHaveVersion(t, h, "fetch-api", 1)
	if got, want := names(h.rec.Persisted()), []string{"prepare", "nap", "fetch-api", "fetch-v2", "after"}; !slices.Equal(got, want) {
		t.Errorf("journal %v; want %v", got, want)
	}

	// Code that supports a later version too replays the version the run recorded.
	code := &reportCode{minVersion: durable.DefaultVersion, maxVersion: 2, calls: &calls}
	h.wf = code.workflow()
	h.clock.Advance(time.Second)
	mustComplete(t, h.execute(), `"new api, version 1"`)
	mustHaveVersion(t, h, "fetch-api", 1)
	if n := calls.get("fetch-v2"); n != 1 {
		t.Errorf("fetch-v2 ran %d times; want once", n)
	}
	if calls.get("fetch") != 0 {
		t.Errorf("the old branch ran in a run that took version 1")
	}
}

// TestGetVersionWhenTheCodeChangesUnderARun starts runs on v1, replaces the code with v2
// while they stand before or after the change, and checks the branch each takes.
func TestGetVersionWhenTheCodeChangesUnderARun(t *testing.T) {
	for _, tc := range []struct {
		name string
		// onV1 brings the run as far as it gets on v1.
		onV1    func(t *testing.T, h *harness)
		want    string
		version int
	}{{
		name: "a run past the change keeps the old branch and records nothing",
		onV1: func(t *testing.T, h *harness) {
			mustSuspend(t, h.execute(), "nap", epoch.Add(time.Second))
			h.clock.Advance(time.Second)
			mustSuspend(t, h.execute(), "after", epoch.Add(2*time.Second))
		},
		want: `"old api, version -1"`, version: durable.DefaultVersion,
	}, {
		name: "a run before the change takes the new branch",
		onV1: func(t *testing.T, h *harness) {
			mustSuspend(t, h.execute(), "nap", epoch.Add(time.Second))
		},
		want: `"new api, version 1"`, version: 1,
	}, {
		// Every recorded entry is final, so the handler never leaves replay before the call:
		// only whether entries remain unreached tells that the run stands at the change.
		name: "a run whose record ends right at the change takes the new branch",
		onV1: func(t *testing.T, h *harness) {
			h.seed([]engine.Entry{
				{Name: "prepare", Kind: engine.KindStep, State: engine.StateCompleted, Attempts: 1, StartedAt: epoch, FinishedAt: epoch, Result: []byte(`"prepared"`)},
				{Name: "nap", Kind: engine.KindSleep, State: engine.StateCompleted, StartedAt: epoch, WakeAt: epoch.Add(time.Second), FinishedAt: epoch.Add(time.Second)},
			})
			h.clock.Advance(time.Second)
		},
		want: `"new api, version 1"`, version: 1,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var calls branchCalls
			h := newHarness(t, v1(&calls).workflow())
			tc.onV1(t, h)
			code := v2(&calls)
			h.wf = code.workflow()
			mustComplete(t, finish(t, h), tc.want)

			if tc.version == durable.DefaultVersion {
				assertNotRecorded(t, h, "fetch-api")
				assertNotRecorded(t, h, "fetch-v2")
				if n := calls.get("fetch"); n != 1 {
					t.Errorf("fetch ran %d times; want once, on v1", n)
				}
				// The call stands inside recorded history: the handler still replays there.
				if !code.replaying[0] {
					t.Errorf("IsReplaying was false after GetVersion answered DefaultVersion inside recorded history")
				}
			} else {
				mustHaveVersion(t, h, "fetch-api", tc.version)
				assertNotRecorded(t, h, "fetch")
			}
			assertUniqueNames(t, h.rec.Persisted())
		})
	}
}

func TestGetVersionAnswersTheSameChangeTheSameWayWithinARun(t *testing.T) {
	// An old run: it went past the first call on code without the change, and reaches the
	// second call at the end of its record. Both get DefaultVersion.
	var got []int
	wf := durable.Define("twice", func(ctx *durable.Context, _ struct{}) ([]int, error) {
		first := durable.GetVersion(ctx, "change", durable.DefaultVersion, 1)
		if _, err := durable.Step(ctx, "old", func(context.Context) (int, error) { return 1, nil }); err != nil {
			return nil, err
		}
		second := durable.GetVersion(ctx, "change", durable.DefaultVersion, 1)
		got = []int{first, second}
		return got, nil
	})
	h := newHarness(t, wf)
	h.seed([]engine.Entry{{Name: "old", Kind: engine.KindStep, State: engine.StateCompleted, Attempts: 1, StartedAt: epoch, FinishedAt: epoch, Result: []byte(`1`)}})
	mustComplete(t, h.execute(), `[-1, -1]`)
	assertNotRecorded(t, h, "change")
}

func TestGetVersionOutsideTheSupportedRangeFailsTheRun(t *testing.T) {
	for _, tc := range []struct {
		name string
		// started is the code the run went past the change on; then comes code supporting
		// versions min to max.
		started     func(*branchCalls) *reportCode
		min, max    int
		reason      string
		fragments   []string
		notRecorded bool
	}{
		{"a recorded version the code no longer supports", v2, 2, 3, engine.ReasonUnsupportedVersion,
			[]string{`change "fetch-api"`, "took version 1,", "supports versions 2 to 3", "keep version 1 supported"}, false},
		{"DefaultVersion after support for it was dropped", v1, 1, 1, engine.ReasonUnsupportedVersion,
			[]string{`change "fetch-api"`, "took version -1 (DefaultVersion", "supports versions 1 to 1"}, true},
		{"a range whose minimum exceeds its maximum", v1, 2, 1, engine.ReasonHandlerError,
			[]string{`durable.GetVersion("fetch-api") supports versions 2 to 1`}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls branchCalls
			h := newHarness(t, tc.started(&calls).workflow())
			mustSuspend(t, h.execute(), "nap", epoch.Add(time.Second))
			h.clock.Advance(time.Second)
			mustSuspend(t, h.execute(), "after", epoch.Add(2*time.Second))

			h.wf = (&reportCode{minVersion: tc.min, maxVersion: tc.max, calls: &calls}).workflow()
			h.clock.Advance(time.Second)
			f := mustFail(t, h.execute(), tc.reason)
			for _, frag := range tc.fragments {
				if !strings.Contains(f.Message, frag) {
					t.Errorf("failure message %q does not contain %q", f.Message, frag)
				}
			}
			if tc.notRecorded {
				assertNotRecorded(t, h, "fetch-api")
			}
		})
	}
}

func TestGetVersionNamesAreCheckedLikeEveryPrimitives(t *testing.T) {
	t.Run("a step's name", func(t *testing.T) {
		wf := durable.Define("clash", func(ctx *durable.Context, _ struct{}) (int, error) {
			if _, err := durable.Step(ctx, "x", func(context.Context) (int, error) { return 1, nil }); err != nil {
				return 0, err
			}
			return durable.GetVersion(ctx, "x", durable.DefaultVersion, 1), nil
		})
		f := mustFail(t, newHarness(t, wf).execute(), engine.ReasonNonDeterministic)
		if !strings.Contains(f.Message, `"x" was recorded as a Step but the handler now calls it as a Version`) {
			t.Errorf("failure message %q does not name the clash", f.Message)
		}
	})
	t.Run("a recorded change id used by a step", func(t *testing.T) {
		wf := durable.Define("clash", func(ctx *durable.Context, _ struct{}) (int, error) {
			durable.GetVersion(ctx, "x", durable.DefaultVersion, 1)
			return durable.Step(ctx, "x", func(context.Context) (int, error) { return 1, nil })
		})
		f := mustFail(t, newHarness(t, wf).execute(), engine.ReasonNonDeterministic)
		if !strings.Contains(f.Message, `"x" was recorded as a Version but the handler now calls it as a Step`) {
			t.Errorf("failure message %q does not name the clash", f.Message)
		}
	})
	t.Run("an empty change id", func(t *testing.T) {
		wf := durable.Define("empty", func(ctx *durable.Context, _ struct{}) (int, error) {
			return durable.GetVersion(ctx, "", durable.DefaultVersion, 1), nil
		})
		mustFail(t, newHarness(t, wf).execute(), engine.ReasonNonDeterministic)
	})
}

func TestGetVersionOffTheHandlerFailsWithMisuse(t *testing.T) {
	t.Run("from a goroutine", func(t *testing.T) {
		got := 0
		wf := durable.Define("goroutine", func(ctx *durable.Context, _ struct{}) (int, error) {
			var wg sync.WaitGroup
			wg.Go(func() { got = durable.GetVersion(ctx, "change", durable.DefaultVersion, 1) })
			wg.Wait()
			return got, nil
		})
		h := newHarness(t, wf)
		mustMisuse(t, h.execute(), `durable.GetVersion("change")`, "goroutine the handler started")
		if got != durable.DefaultVersion {
			t.Errorf("GetVersion off the handler returned %d; want DefaultVersion", got)
		}
		assertNotRecorded(t, h, "change")
	})
	t.Run("inside a step's function", func(t *testing.T) {
		wf := durable.Define("in-step", func(ctx *durable.Context, _ struct{}) (int, error) {
			return durable.Step(ctx, "s", func(context.Context) (int, error) {
				return durable.GetVersion(ctx, "change", durable.DefaultVersion, 1), nil
			})
		})
		mustMisuse(t, newHarness(t, wf).execute(), `durable.GetVersion("change")`, `inside the function of step "s"`)
	})
}

// GetVersion branches where a workflow's code changed while runs were in flight: a new run
// records the newest version; runs that went past the change on older code get DefaultVersion.
func ExampleGetVersion() {
	wf := durable.Define("greeting", func(ctx *durable.Context, _ struct{}) (string, error) {
		if durable.GetVersion(ctx, "formal-greeting", durable.DefaultVersion, 1) == durable.DefaultVersion {
			return durable.Step(ctx, "greet", func(context.Context) (string, error) { return "Hi Ada", nil })
		}
		return durable.Step(ctx, "greet-formally", func(context.Context) (string, error) { return "Good day, Ada", nil })
	})
	out, entries := runOnce(wf)
	fmt.Printf("%s %s\n", out.Kind, out.Output)
	for _, e := range entries {
		fmt.Println(e.Name, e.Kind, e.State, string(e.Result))
	}
	// Output:
	// Completed "Good day, Ada"
	// formal-greeting Version Completed 1
	// greet-formally Step Completed "Good day, Ada"
}
