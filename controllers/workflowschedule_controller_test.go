package controllers

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/schedule"
)

// rfc renders t as the specs compare ticks: UTC RFC 3339.
func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// readyOf returns ws's Ready condition once it is there.
func readyOf(ws *workflowsv1alpha1.WorkflowSchedule) metav1.Condition {
	GinkgoHelper()
	var cond metav1.Condition
	Eventually(func(g Gomega) {
		fresh := getSchedule(ws)
		c := meta.FindStatusCondition(fresh.Status.Conditions, workflowsv1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.ObservedGeneration).To(Equal(fresh.Generation))
		cond = *c
	}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	return cond
}

// patchSchedule changes ws's spec with a merge patch, as kubectl patch or the REST API would.
func patchSchedule(ws *workflowsv1alpha1.WorkflowSchedule, patch string) {
	GinkgoHelper()
	Expect(k8sClient.Patch(context.Background(), &workflowsv1alpha1.WorkflowSchedule{ObjectMeta: metav1.ObjectMeta{Name: ws.Name, Namespace: ws.Namespace}},
		client.RawPatch(types.MergePatchType, []byte(patch)))).To(Succeed())
}

// stepHours steps schedules through n hourly ticks from first, and returns the ticks.
func stepHours(first time.Time, n int, schedules ...*workflowsv1alpha1.WorkflowSchedule) []string {
	GinkgoHelper()
	var ticks []string
	for i := range n {
		tick := first.Add(time.Duration(i) * time.Hour)
		for _, ws := range schedules {
			stepTo(ws, tick)
		}
		ticks = append(ticks, rfc(tick))
	}
	return ticks
}

// eventReasons lists the reasons of the Events recorded on obj.
func eventReasons(g Gomega, obj client.Object) []string {
	var events eventsv1.EventList
	g.Expect(k8sClient.List(context.Background(), &events, client.InNamespace(obj.GetNamespace()))).To(Succeed())
	var reasons []string
	for _, ev := range events.Items {
		if ev.Regarding.UID == obj.GetUID() {
			reasons = append(reasons, ev.Reason)
		}
	}
	return reasons
}

// withLimits sets a schedule's history limits.
func withLimits(succeeded, failed int32) func(*workflowsv1alpha1.WorkflowSchedule) {
	return func(ws *workflowsv1alpha1.WorkflowSchedule) {
		ws.Spec.SuccessfulRunsHistoryLimit, ws.Spec.FailedRunsHistoryLimit = int32p(succeeded), int32p(failed)
	}
}

var _ = Describe("A WorkflowSchedule", func() {
	AfterEach(func() {
		scheduleClock.Real()
		afterScheduledStart.Store(nil)
	})

	It("starts one run per tick, named after the tick, labelled with and owned by the schedule", func() {
		scheduleClock.Set(time.Now())
		ws := newSchedule("0 * * * *", "hello", map[string]string{"name": "Cron"}, withLimits(10, 1))
		first := nextTick(ws)
		Expect(first).To(BeTemporally("==", nextHour(time.Now())))
		Expect(scheduleRuns(ws)).To(BeEmpty(), "no tick has fallen yet")
		Expect(readyOf(ws).Reason).To(Equal(workflowsv1alpha1.ReasonScheduled))

		ticks := []time.Time{first, first.Add(time.Hour), first.Add(2 * time.Hour)}
		for _, tick := range ticks {
			stepTo(ws, tick.Add(150*time.Millisecond))
		}
		fresh := getSchedule(ws)
		runs := scheduleRuns(ws)
		Expect(runTicks(runs)).To(Equal([]string{rfc(ticks[0]), rfc(ticks[1]), rfc(ticks[2])}))
		for i, run := range runs {
			Expect(run.Name).To(Equal(schedule.TickRunName(ws.Name, ticks[i])))
			Expect(run.Name).To(Equal(ws.Name + "-" + ticks[i].UTC().Format("20060102-150405")))
			Expect(run.Labels).To(HaveKeyWithValue(workflowsv1alpha1.LabelSchedule, ws.Name))
			Expect(run.Annotations).To(HaveKeyWithValue(workflowsv1alpha1.AnnotationScheduleTrigger, schedule.TriggerTick))
			Expect(metav1.IsControlledBy(run, fresh)).To(BeTrue())
			Expect(run.Spec.Input.Raw).To(MatchJSON(`{"name": "Cron"}`))
			Expect(outputOf(waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 20*time.Second))).To(MatchJSON(`{"greeting": "Hello, Cron!"}`))
		}
		Expect(fresh.Status.RunsStarted).To(Equal(int64(3)))
		Expect(fresh.Status.LastScheduleTime.Time).To(BeTemporally("==", ticks[2]))
		Expect(fresh.Status.LastTickTime.Time).To(BeTemporally("==", ticks[2]))
		Expect(fresh.Status.NextScheduleTime.Time).To(BeTemporally("==", ticks[2].Add(time.Hour)))
		Expect(tickSummary(fresh.Status.RecentTicks)).To(Equal([]string{
			"Started/Scheduled@" + rfc(ticks[0]), "Started/Scheduled@" + rfc(ticks[1]), "Started/Scheduled@" + rfc(ticks[2]),
		}))
		for i, rec := range fresh.Status.RecentTicks {
			Expect(rec.Run).To(Equal(runs[i].Name))
			Expect(rec.StartedAt.Sub(ticks[i])).To(Equal(150*time.Millisecond), "the run was created when the clock showed the tick plus 150 ms")
		}
		Expect(eventReasons(Default, fresh)).NotTo(ContainElement("Started"), "a tick started as planned is in status.recentTicks, not an Event")
	})

	It("keeps successfulRunsHistoryLimit succeeded runs and failedRunsHistoryLimit failed ones, the newest", func() {
		scheduleClock.Set(time.Now())
		good := newSchedule("0 * * * *", "hello", map[string]string{"name": "H"}, withLimits(2, 1))
		bad := newSchedule("0 * * * *", "test_panic", map[string]string{"where": "handler"}, withLimits(2, 1))
		ticks := stepHours(nextTick(good), 4, good, bad)
		Eventually(func() []string { return runTicks(scheduleRuns(good)) }, 20*time.Second, 100*time.Millisecond).Should(Equal(ticks[2:]))
		Eventually(func() []string { return runTicks(scheduleRuns(bad)) }, 20*time.Second, 100*time.Millisecond).Should(Equal(ticks[3:]))
		Expect(getSchedule(good).Status.RunsStarted).To(Equal(int64(4)), "trimming history does not forget that the ticks ran")
	})

	Describe("concurrencyPolicy", func() {
		// Each run waits for the event test.signal/<key>, so it stays in flight until the spec
		// sends it.
		waiting := func(policy workflowsv1alpha1.ConcurrencyPolicy) (*workflowsv1alpha1.WorkflowSchedule, string, time.Time) {
			key := "sched-" + rand.String(6)
			scheduleClock.Set(time.Now())
			ws := newSchedule("0 * * * *", "test_event_then_sleep", map[string]string{"key": key}, withLimits(5, 5),
				func(ws *workflowsv1alpha1.WorkflowSchedule) { ws.Spec.ConcurrencyPolicy = policy })
			return ws, key, nextTick(ws)
		}

		It("Allow starts a tick's run next to the one in flight", func() {
			ws, _, first := waiting(workflowsv1alpha1.ConcurrencyAllow)
			stepTo(ws, first)
			fresh := stepTo(ws, first.Add(time.Hour))
			Expect(runTicks(scheduleRuns(ws))).To(Equal([]string{rfc(first), rfc(first.Add(time.Hour))}))
			Expect(fresh.Status.ActiveCount).To(Equal(int32(2)))
			Expect(fresh.Status.Active).To(HaveLen(2))
		})

		It("Forbid skips a tick while a run is in flight, and starts the next one once it finished", func() {
			ws, key, first := waiting(workflowsv1alpha1.ConcurrencyForbid)
			stepTo(ws, first)
			fresh := stepTo(ws, first.Add(time.Hour))
			Expect(tickSummary(fresh.Status.RecentTicks)).To(Equal([]string{
				"Started/Scheduled@" + rfc(first), "Skipped/ConcurrencyForbidden@" + rfc(first.Add(time.Hour)),
			}))
			Expect(fresh.Status.RecentTicks[1].Message).To(ContainSubstring(schedule.TickRunName(ws.Name, first)))

			createEvent("test.signal", key, map[string]string{"go": "on"})
			waitPhase(scheduleRuns(ws)[0], workflowsv1alpha1.PhaseSucceeded, 20*time.Second)
			Eventually(func() int32 { return getSchedule(ws).Status.ActiveCount }, 10*time.Second, 50*time.Millisecond).Should(BeZero())
			stepTo(ws, first.Add(2*time.Hour))
			Expect(runTicks(scheduleRuns(ws))).To(Equal([]string{rfc(first), rfc(first.Add(2 * time.Hour))}))
		})

		It("Replace cancels the run in flight and starts the tick's run", func() {
			ws, _, first := waiting(workflowsv1alpha1.ConcurrencyReplace)
			stepTo(ws, first)
			stepTo(ws, first.Add(time.Hour))
			runs := scheduleRuns(ws)
			Expect(runTicks(runs)).To(Equal([]string{rfc(first), rfc(first.Add(time.Hour))}))
			waitPhase(runs[0], workflowsv1alpha1.PhaseCancelled, 20*time.Second)
			waitPhase(runs[1], workflowsv1alpha1.PhaseWaiting, 20*time.Second)
			Eventually(func(g Gomega) {
				fresh := getSchedule(ws)
				g.Expect(fresh.Status.Active).To(Equal([]workflowsv1alpha1.ScheduledRun{{Name: runs[1].Name, ScheduledTime: metav1.NewTime(first.Add(time.Hour))}}))
				g.Expect(eventReasons(g, fresh)).To(ContainElement("Replaced"))
			}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
		})
	})

	It("records ticks as skipped while suspended, says why in Ready, and does not run them on resume", func() {
		scheduleClock.Set(time.Now())
		ws := newSchedule("0 * * * *", "hello", map[string]string{"name": "S"}, func(ws *workflowsv1alpha1.WorkflowSchedule) {
			ws.Spec.Suspend, ws.Spec.SuspendNote = true, "paused during the database migration, ask #ops"
		})
		first := nextTick(ws)
		ready := readyOf(ws)
		Expect(ready.Status).To(Equal(metav1.ConditionTrue))
		Expect(ready.Reason).To(Equal(workflowsv1alpha1.ReasonSuspended))
		Expect(ready.Message).To(ContainSubstring("paused during the database migration, ask #ops"))

		stepTo(ws, first)
		fresh := stepTo(ws, first.Add(time.Hour))
		Expect(tickSummary(fresh.Status.RecentTicks)).To(Equal([]string{"Skipped/Suspended@" + rfc(first) + "x2"}))
		Expect(fresh.Status.RecentTicks[0].LastScheduledTime.Time).To(BeTemporally("==", first.Add(time.Hour)))

		patchSchedule(ws, `{"spec": {"suspend": false, "suspendNote": null}}`)
		Eventually(func() string { return readyOf(ws).Reason }, 10*time.Second).Should(Equal(workflowsv1alpha1.ReasonScheduled))
		Consistently(func() []*workflowsv1alpha1.WorkflowRun { return scheduleRuns(ws) }, time.Second, 100*time.Millisecond).Should(BeEmpty())
		fresh = stepTo(ws, first.Add(2*time.Hour))
		Expect(runTicks(scheduleRuns(ws))).To(Equal([]string{rfc(first.Add(2 * time.Hour))}))
		Expect(fresh.Status.TicksSkipped).To(Equal(int64(2)))
		Expect(fresh.Status.RunsStarted).To(Equal(int64(1)))
	})

	It("says in Ready what is wrong with its cron, zone or workflow, skips ticks of an unknown workflow, and recovers", func() {
		scheduleClock.Set(time.Now())
		ws := newSchedule("0 25 * * *", "hello", map[string]string{"name": "R"})
		Eventually(func() metav1.Condition { return readyOf(ws) }, 10*time.Second).Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", workflowsv1alpha1.ReasonInvalidSchedule), HaveField("Message", ContainSubstring("spec.schedule"))))
		Expect(getSchedule(ws).Status.NextScheduleTime).To(BeNil())

		patchSchedule(ws, `{"spec": {"schedule": "0 * * * *", "timeZone": "Mars/Olympus_Mons"}}`)
		Eventually(func() metav1.Condition { return readyOf(ws) }, 10*time.Second).Should(And(
			HaveField("Reason", workflowsv1alpha1.ReasonInvalidTimeZone), HaveField("Message", ContainSubstring("spec.timeZone"))))

		patchSchedule(ws, `{"spec": {"timeZone": "Europe/Berlin", "workflowName": "no_such_workflow"}}`)
		Eventually(func() metav1.Condition { return readyOf(ws) }, 10*time.Second).Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", workflowsv1alpha1.ReasonUnknownWorkflow), HaveField("Message", ContainSubstring("hello"))))
		tick := nextTick(ws)
		fresh := stepTo(ws, tick)
		Expect(tickSummary(fresh.Status.RecentTicks)).To(Equal([]string{"Skipped/UnknownWorkflow@" + rfc(tick)}))
		Expect(scheduleRuns(ws)).To(BeEmpty())

		patchSchedule(ws, `{"spec": {"workflowName": "hello"}}`)
		Eventually(func() string { return readyOf(ws).Reason }, 10*time.Second).Should(Equal(workflowsv1alpha1.ReasonScheduled))
		stepTo(ws, tick.Add(time.Hour))
		Expect(runTicks(scheduleRuns(ws))).To(Equal([]string{rfc(tick.Add(time.Hour))}))
	})

	DescribeTable("is refused by the API server when its spec cannot mean anything",
		func(mutate func(*workflowsv1alpha1.WorkflowSchedule), fragment string) {
			ws := &workflowsv1alpha1.WorkflowSchedule{
				ObjectMeta: metav1.ObjectMeta{Name: "invalid-" + rand.String(6), Namespace: "default"},
				Spec:       workflowsv1alpha1.WorkflowScheduleSpec{Schedule: "0 2 * * *", WorkflowName: "hello"},
			}
			mutate(ws)
			err := k8sClient.Create(context.Background(), ws)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "err: %v", err)
			Expect(err.Error()).To(ContainSubstring(fragment))
		},
		Entry("a zone in the cron expression", func(ws *workflowsv1alpha1.WorkflowSchedule) { ws.Spec.Schedule = "CRON_TZ=Europe/Berlin 0 2 * * *" }, "spec.timeZone"),
		Entry("the manager's local zone", func(ws *workflowsv1alpha1.WorkflowSchedule) { ws.Spec.TimeZone = "Local" }, "name a zone"),
		Entry("a zone that is no name", func(ws *workflowsv1alpha1.WorkflowSchedule) { ws.Spec.TimeZone = "Europe/Berlin; rm -rf" }, "spec.timeZone"),
		Entry("an unknown concurrency policy", func(ws *workflowsv1alpha1.WorkflowSchedule) { ws.Spec.ConcurrencyPolicy = "Sometimes" }, "Unsupported value"),
		Entry("maxCatchUp without catchUp All", func(ws *workflowsv1alpha1.WorkflowSchedule) { ws.Spec.MaxCatchUp = int32p(5) }, "maxCatchUp applies only to catchUp All"),
		Entry("a starting deadline under a second", func(ws *workflowsv1alpha1.WorkflowSchedule) {
			ws.Spec.StartingDeadline = &metav1.Duration{Duration: 500 * time.Millisecond}
		}, "at least 1s"),
		Entry("a negative jitter", func(ws *workflowsv1alpha1.WorkflowSchedule) {
			ws.Spec.Jitter = &metav1.Duration{Duration: -time.Second}
		}, "jitter must not be negative"),
		Entry("no workflow", func(ws *workflowsv1alpha1.WorkflowSchedule) { ws.Spec.WorkflowName = "" }, "spec.workflowName"),
	)

	Describe("across daylight-saving changes in Europe/Berlin", func() {
		berlin, err := time.LoadLocation("Europe/Berlin")
		Expect(err).NotTo(HaveOccurred())
		// The next two changes of Berlin's clocks after today: one forward, one back.
		_, change1 := time.Now().In(berlin).ZoneBounds()
		_, change2 := change1.In(berlin).ZoneBounds()
		spring, autumn := change1, change2
		if _, off := spring.In(berlin).Zone(); off != 2*3600 {
			spring, autumn = change2, change1
		}
		at := func(day time.Time, days int) time.Time {
			d := day.In(berlin).AddDate(0, 0, days)
			return time.Date(d.Year(), d.Month(), d.Day(), 2, 30, 0, 0, berlin)
		}

		// nights steps a Europe/Berlin schedule from the day before change through three ticks
		// and returns the ticks that started runs. catchUp None: the jump of the clock from
		// today to that day leaves the months between unrun.
		nights := func(expr string, change time.Time, from time.Duration, n int) []string {
			ws := newSchedule(expr, "hello", map[string]string{"name": "DST"}, withLimits(10, 1), func(ws *workflowsv1alpha1.WorkflowSchedule) {
				ws.Spec.TimeZone, ws.Spec.CatchUp = "Europe/Berlin", workflowsv1alpha1.CatchUpNone
			})
			stepTo(ws, change.Add(-from))
			for range n {
				stepTo(ws, nextTick(ws))
			}
			return runTicks(scheduleRuns(ws))
		}

		It("starts a nightly 02:30 run once on the night clocks spring forward, at the jump", func() {
			Expect(nights("30 2 * * *", spring, 36*time.Hour, 3)).To(Equal([]string{rfc(at(spring, -1)), rfc(spring), rfc(at(spring, 1))}))
		})

		It("starts a nightly 02:30 run once on the night clocks fall back, the first time 02:30 comes", func() {
			Expect(nights("30 2 * * *", autumn, 36*time.Hour, 3)).To(Equal([]string{rfc(at(autumn, -1)), rfc(autumn.Add(-30 * time.Minute)), rfc(at(autumn, 1))}))
		})

		It("starts an hourly run every real hour of the night clocks fall back, twice at 02:30", func() {
			Expect(nights("30 * * * *", autumn, time.Hour, 3)).To(Equal([]string{
				rfc(autumn.Add(-30 * time.Minute)), rfc(autumn.Add(30 * time.Minute)), rfc(autumn.Add(90 * time.Minute)),
			}))
		})
	})

	It("after three days of downtime runs no missed tick, the latest, or all of them, as catchUp says", func() {
		scheduleClock.Set(time.Now())
		nightly := func(catchUp workflowsv1alpha1.CatchUpPolicy, deadline time.Duration) *workflowsv1alpha1.WorkflowSchedule {
			return newSchedule("0 2 * * *", "hello", map[string]string{"name": "Night"}, withLimits(10, 1), func(ws *workflowsv1alpha1.WorkflowSchedule) {
				ws.Spec.CatchUp = catchUp
				if deadline > 0 {
					ws.Spec.StartingDeadline = &metav1.Duration{Duration: deadline}
				}
			})
		}
		none, latest, all := nightly(workflowsv1alpha1.CatchUpNone, 0), nightly(workflowsv1alpha1.CatchUpLatest, 0), nightly(workflowsv1alpha1.CatchUpAll, 0)
		windowed := nightly(workflowsv1alpha1.CatchUpAll, 30*time.Hour)
		capped := nightly(workflowsv1alpha1.CatchUpAll, 0)
		patchSchedule(capped, `{"spec": {"maxCatchUp": 2}}`)
		schedules := []*workflowsv1alpha1.WorkflowSchedule{none, latest, all, windowed, capped}
		night := nextTick(none)
		for _, ws := range schedules {
			stepTo(ws, night)
		}

		By("stopping the manager for three days, and starting it at 05:00 on the fourth")
		manager.stop()
		scheduleClock.Set(night.Add(75 * time.Hour))
		manager = startManager()
		for _, ws := range schedules {
			Eventually(func(g Gomega) {
				g.Expect(getSchedule(ws).Status.LastTickTime.Time).To(BeTemporally("==", night.Add(72*time.Hour)))
			}, 20*time.Second, 50*time.Millisecond).Should(Succeed())
		}
		d1, d2, d3 := rfc(night.Add(24*time.Hour)), rfc(night.Add(48*time.Hour)), rfc(night.Add(72*time.Hour))
		expect := func(ws *workflowsv1alpha1.WorkflowSchedule, runs []string, ticks ...string) {
			GinkgoHelper()
			Expect(runTicks(scheduleRuns(ws))).To(Equal(append([]string{rfc(night)}, runs...)))
			summary := tickSummary(getSchedule(ws).Status.RecentTicks)
			// The night before the downtime started its one run (runTicks says so): recorded as
			// Scheduled, or as AlreadyStarted when a retried reconcile (a write conflict on a
			// loaded machine) found the run its first attempt had created.
			if len(summary) > 0 && summary[0] == "Started/AlreadyStarted@"+rfc(night) {
				summary[0] = "Started/Scheduled@" + rfc(night)
			}
			Expect(summary).To(Equal(append([]string{"Started/Scheduled@" + rfc(night)}, ticks...)))
		}
		expect(none, nil, "Skipped/NotCaughtUp@"+d1+"x3")
		expect(latest, []string{d3}, "Skipped/NotCaughtUp@"+d1+"x2", "Started/CaughtUp@"+d3)
		expect(all, []string{d1, d2, d3}, "Started/CaughtUp@"+d1, "Started/CaughtUp@"+d2, "Started/CaughtUp@"+d3)
		expect(windowed, []string{d2, d3}, "Skipped/StartingDeadlineExceeded@"+d1, "Started/CaughtUp@"+d2, "Started/CaughtUp@"+d3)
		expect(capped, []string{d2, d3}, "Skipped/MaxCatchUpExceeded@"+d1, "Started/CaughtUp@"+d2, "Started/CaughtUp@"+d3)
	})

	It("delays each tick's start by its jitter, the same delay for every manager", func() {
		scheduleClock.Set(time.Now())
		ws := newSchedule("0 * * * *", "hello", map[string]string{"name": "Jitter"}, func(ws *workflowsv1alpha1.WorkflowSchedule) {
			ws.Spec.Jitter = &metav1.Duration{Duration: 30 * time.Second}
		})
		tick := nextTick(ws)
		delay := schedule.Jitter(string(getSchedule(ws).UID), 30*time.Second)(tick)
		Expect(delay).To(BeNumerically(">", 0))
		scheduleClock.Set(tick.Add(delay - time.Millisecond))
		scheduleClock.poke(ws)
		Consistently(func() []*workflowsv1alpha1.WorkflowRun { return scheduleRuns(ws) }, time.Second, 100*time.Millisecond).Should(BeEmpty())
		Expect(getSchedule(ws).Status.NextScheduleTime.Time).To(BeTemporally("==", tick), "the tick is still to come")

		scheduleClock.Set(tick.Add(delay))
		scheduleClock.poke(ws)
		Eventually(func() []string { return runTicks(scheduleRuns(ws)) }, 10*time.Second, 50*time.Millisecond).Should(Equal([]string{rfc(tick)}))
		Eventually(func(g Gomega) {
			recent := getSchedule(ws).Status.RecentTicks
			g.Expect(recent).To(HaveLen(1))
			g.Expect(recent[0].StartedAt.Sub(tick)).To(Equal(delay))
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	})

	It("accepts the nightly_report sample, whose next tick is 02:00 in Berlin", func() {
		data, err := os.ReadFile("../config/samples/workflows_v1alpha1_workflowschedule_nightly_report.yaml")
		Expect(err).NotTo(HaveOccurred())
		ws := &workflowsv1alpha1.WorkflowSchedule{}
		Expect(yaml.UnmarshalStrict(data, ws)).To(Succeed())
		ws.Namespace, ws.Name = "default", "sample-"+rand.String(6)
		Expect(k8sClient.Create(context.Background(), ws)).To(Succeed())
		DeferCleanup(func() { _ = k8sClient.Delete(context.Background(), ws) })
		Expect(readyOf(ws).Reason).To(Equal(workflowsv1alpha1.ReasonScheduled))
		berlin, err := time.LoadLocation("Europe/Berlin")
		Expect(err).NotTo(HaveOccurred())
		next := nextTick(ws).In(berlin)
		Expect(next.Format("15:04")).To(Equal("02:00"))
		Expect(next.Sub(time.Now())).To(BeNumerically("<=", 24*time.Hour))
	})

	It("starts nothing twice when the manager is killed right after creating a tick's run", func() {
		scheduleClock.Set(time.Now())
		ws := newSchedule("0 * * * *", "hello", map[string]string{"name": "Crash"})
		tick := nextTick(ws)
		crashed := make(chan struct{})
		var once sync.Once
		hook := func(ctx context.Context, run *workflowsv1alpha1.WorkflowRun) {
			if run.Labels[workflowsv1alpha1.LabelSchedule] != ws.Name {
				return
			}
			once.Do(func() {
				go manager.cancel()
				<-ctx.Done() // the status write that follows fails: the tick is not recorded
				close(crashed)
			})
		}
		afterScheduledStart.Store(&hook)
		scheduleClock.Set(tick.Add(time.Second))
		scheduleClock.poke(ws)
		Eventually(crashed, 10*time.Second).Should(BeClosed())
		Eventually(manager.done, 30*time.Second).Should(BeClosed())
		Expect(getSchedule(ws).Status.LastTickTime).To(BeNil(), "the manager stopped before it recorded the tick")
		Expect(scheduleRuns(ws)).To(HaveLen(1))

		By("starting a new manager, which finds the tick due and its run there")
		afterScheduledStart.Store(nil)
		manager = startManager()
		Eventually(func(g Gomega) {
			g.Expect(getSchedule(ws).Status.LastTickTime).NotTo(BeNil())
		}, 20*time.Second, 50*time.Millisecond).Should(Succeed())
		fresh := getSchedule(ws)
		Expect(tickSummary(fresh.Status.RecentTicks)).To(Equal([]string{"Started/AlreadyStarted@" + rfc(tick)}))
		Expect(fresh.Status.RunsStarted).To(Equal(int64(1)))
		runs := scheduleRuns(ws)
		Expect(runs).To(HaveLen(1))
		waitPhase(runs[0], workflowsv1alpha1.PhaseSucceeded, 20*time.Second)
	})

	It("starts each tick once while two managers handle the schedule at the same time", func() {
		second := startManager()
		defer second.stop()
		scheduleClock.Set(time.Now())
		ws := newSchedule("0 * * * *", "hello", map[string]string{"name": "Twice"}, withLimits(10, 1))
		want := stepHours(nextTick(ws), 5, ws)
		Expect(runTicks(scheduleRuns(ws))).To(Equal(want))
		fresh := getSchedule(ws)
		Expect(fresh.Status.RunsStarted).To(Equal(int64(5)))
		var recorded []string
		for _, rec := range fresh.Status.RecentTicks {
			Expect(rec.Outcome).To(Equal(workflowsv1alpha1.TickStarted))
			recorded = append(recorded, rfc(rec.ScheduledTime.Time))
		}
		Expect(recorded).To(Equal(want), "each tick is recorded once")
	})

	It("costs the API server 3 requests per tick, its run's included: the run's create and status write, one status write of the schedule, no read past a fresh cache, no Event", func() {
		ns := "ticks-" + rand.String(5)
		Expect(k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		scheduleClock.Set(time.Now())
		const n = 4
		var schedules []*workflowsv1alpha1.WorkflowSchedule
		for range n {
			schedules = append(schedules, newSchedule("0 * * * *", "test_steps", stepsInput{Key: ns}, func(ws *workflowsv1alpha1.WorkflowSchedule) { ws.Namespace = ns }))
		}
		tick := nextTick(schedules[0])
		for _, ws := range schedules {
			Expect(nextTick(ws)).To(BeTemporally("==", tick))
		}
		// Each new schedule's Ready Event is posted asynchronously: wait for all n, so that none
		// is counted as a tick's request.
		Eventually(func() int {
			events := 0
			for _, r := range apiRequests.of(ns) {
				if r == "POST events" {
					events++
				}
			}
			return events
		}, 10*time.Second, 50*time.Millisecond).Should(BeNumerically(">=", n))
		before := len(apiRequests.of(ns))

		scheduleClock.Set(tick.Add(100 * time.Millisecond))
		for _, ws := range schedules {
			scheduleClock.poke(ws)
		}
		Eventually(func(g Gomega) {
			for _, ws := range schedules {
				fresh := getSchedule(ws)
				g.Expect(fresh.Status.LastScheduleTime).NotTo(BeNil())
				g.Expect(fresh.Status.LastScheduleTime.Time).To(BeTemporally("==", tick))
				g.Expect(fresh.Status.ActiveCount).To(BeZero(), "the run's end is recorded too")
				g.Expect(fresh.Status.RecentTicks).To(HaveLen(1))
				g.Expect(fresh.Status.RecentTicks[0].RunPhase).To(Equal(workflowsv1alpha1.PhaseSucceeded), "the tick's record tells how its run ended")
				g.Expect(fresh.Status.LastSuccessfulTime).NotTo(BeNil())
				runs := scheduleRuns(ws)
				g.Expect(runs).To(HaveLen(1))
				g.Expect(runs[0].Status.Phase).To(Equal(workflowsv1alpha1.PhaseSucceeded))
			}
		}, 20*time.Second, 100*time.Millisecond).Should(Succeed())
		// Events follow the writes that record them: count once nothing more comes.
		var made []string
		Eventually(func() int {
			prev := len(made)
			made = apiRequests.of(ns)[before:]
			return len(made) - prev
		}, 10*time.Second, time.Second).Should(BeZero())

		kinds := map[string]int{}
		for _, r := range made {
			kinds[r]++
		}
		GinkgoWriter.Printf("%d ticks made %d API requests: %v\n", n, len(made), kinds)
		Expect(kinds).NotTo(HaveKey("GET workflowschedules"), "a tick trusts the cache, which holds the schedule's last write")
		Expect(kinds["POST workflowruns"]).To(Equal(n), "one create per tick")
		Expect(kinds).NotTo(HaveKey("POST events"), "a tick that starts its run as planned, and the run's success, are told by the schedule's status, not by Events")
		Expect(kinds["PATCH workflowschedules/status"]).To(Equal(n), "one status write per tick: the tick and its run's end together")
		Expect(float64(len(made)-kinds["PUT workflowruns/status"])/n).To(BeNumerically("<=", 2), "the schedule's own requests per tick: %v", kinds)
		Expect(float64(len(made))/n).To(BeNumerically("<=", 3), "every request per tick, the run's own write included: %v", kinds)
	})

	It("starts an @every 2s schedule's runs on time, in real time: 20 runs, lateness p99 under 1 s", func() {
		ws := newSchedule("@every 2s", "hello", map[string]string{"name": "Tick"}, withLimits(40, 5))
		Eventually(func() int64 { return getSchedule(ws).Status.RunsStarted }, 70*time.Second, 250*time.Millisecond).Should(BeNumerically(">=", 20))
		patchSchedule(ws, `{"spec": {"suspend": true}}`)
		fresh := getSchedule(ws)
		runs := scheduleRuns(ws)[:20]
		var lateness []time.Duration
		for i, run := range runs {
			tick, _ := schedule.TickOf(run)
			Expect(tick.Sub(fresh.CreationTimestamp.Time)).To(Equal(time.Duration(i+1)*2*time.Second), "ticks are the creation plus whole intervals, none missing")
			done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 20*time.Second)
			lateness = append(lateness, entry(done, "greet").StartedAt.Sub(tick))
		}
		slices.Sort(lateness)
		p50, p99 := lateness[len(lateness)/2-1], lateness[len(lateness)-1] // nearest rank: the 20th of 20
		GinkgoWriter.Printf("@every 2s: 20 runs, lateness from the tick to the run's first step: p50 %s, p99 %s\n", p50, p99)
		Expect(p99).To(BeNumerically("<", time.Second))
	})
})

// withDeclared sets the suite's declared schedules (besides the Go workflows') and asks the
// manager to sync them.
func withDeclared(ds ...DeclaredSchedule) {
	testDeclared.set(ds...)
	manager.declared.Resync()
}

// declaredSource is a ScheduleSource the specs change, as workflow files come and go.
type declaredSource struct {
	mu sync.Mutex
	ds []DeclaredSchedule
}

var testDeclared = &declaredSource{}

func (s *declaredSource) set(ds ...DeclaredSchedule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ds = ds
}

// DeclaredSchedules returns the schedules the spec set.
func (s *declaredSource) DeclaredSchedules(context.Context) ([]DeclaredSchedule, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ds), nil
}

var _ = Describe("Schedules that workflows declare", func() {
	AfterEach(func() { withDeclared() })

	getDeclared := func(name string) (*workflowsv1alpha1.WorkflowSchedule, error) {
		ws := &workflowsv1alpha1.WorkflowSchedule{}
		return ws, k8sClient.Get(context.Background(), types.NamespacedName{Namespace: operatorNamespace, Name: name}, ws)
	}

	It("gets a WorkflowSchedule for a Go workflow's WithSchedule", func() {
		Eventually(func(g Gomega) {
			ws, err := getDeclared("test-declared")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ws.Labels).To(HaveKeyWithValue(workflowsv1alpha1.LabelDeclaredBy, DeclaredByGo))
			g.Expect(ws.Annotations).To(HaveKeyWithValue(workflowsv1alpha1.AnnotationDeclaredIn, "Go workflow test_declared"))
			g.Expect(ws.Spec.Schedule).To(Equal("0 3 * * *"))
			g.Expect(ws.Spec.TimeZone).To(Equal("Europe/Berlin"))
			g.Expect(ws.Spec.Input.Raw).To(MatchJSON(`{"name": "Declared"}`))
			g.Expect(ws.Spec.ConcurrencyPolicy).To(Equal(workflowsv1alpha1.ConcurrencyForbid))
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	})

	It("applies a declaration as it changes, keeps a pause, and deletes the schedule when the declaration goes", func() {
		decl := DeclaredSchedule{Workflow: "hello", DeclaredBy: DeclaredByFile, Origin: "file /workflows/hello.star",
			Spec: durable.ScheduleSpec{Name: "morning", Cron: "0 7 * * 1-5", TimeZone: "Europe/Berlin", Input: map[string]string{"name": "Team"},
				CatchUp: "None", Jitter: 30 * time.Second}}
		withDeclared(decl)
		var ws *workflowsv1alpha1.WorkflowSchedule
		Eventually(func(g Gomega) {
			var err error
			ws, err = getDeclared("hello-morning")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ws.Spec.Schedule).To(Equal("0 7 * * 1-5"))
			g.Expect(ws.Spec.CatchUp).To(Equal(workflowsv1alpha1.CatchUpNone))
			g.Expect(ws.Spec.Jitter.Duration).To(Equal(30 * time.Second))
			g.Expect(ws.Labels).To(HaveKeyWithValue(workflowsv1alpha1.LabelDeclaredBy, DeclaredByFile))
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())

		By("pausing it as the REST API does, then changing the declaration")
		patchSchedule(ws, `{"spec": {"suspend": true, "suspendNote": "holiday"}}`)
		decl.Spec.Cron, decl.Spec.Jitter = "0 8 * * 1-5", 0
		withDeclared(decl)
		Eventually(func(g Gomega) {
			fresh, err := getDeclared("hello-morning")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(fresh.Spec.Schedule).To(Equal("0 8 * * 1-5"))
			g.Expect(fresh.Spec.Jitter).To(BeNil(), "a field the declaration no longer sets is removed")
			g.Expect(fresh.Spec.Suspend).To(BeTrue(), "the pause is kept")
			g.Expect(fresh.Spec.SuspendNote).To(Equal("holiday"))
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())

		By("someone editing the declared spec by hand: the declaration wins")
		patchSchedule(ws, `{"spec": {"schedule": "0 9 * * *"}}`)
		Eventually(func() string { fresh, _ := getDeclared("hello-morning"); return fresh.Spec.Schedule }, 10*time.Second, 50*time.Millisecond).Should(Equal("0 8 * * 1-5"))

		By("removing the declaration")
		withDeclared()
		Eventually(func(g Gomega) {
			fresh, err := getDeclared("hello-morning")
			if apierrors.IsNotFound(err) {
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			// Deleted with propagation Orphan: the garbage collector (not part of envtest)
			// takes the runs' owner references off, then removes the schedule.
			g.Expect(fresh.DeletionTimestamp).NotTo(BeNil())
			g.Expect(fresh.Finalizers).To(ContainElement(metav1.FinalizerOrphanDependents))
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	})

	It("leaves alone a schedule it did not declare whose name a declaration wants", func() {
		mine := &workflowsv1alpha1.WorkflowSchedule{
			ObjectMeta: metav1.ObjectMeta{Name: "hello-evening", Namespace: operatorNamespace},
			Spec:       workflowsv1alpha1.WorkflowScheduleSpec{Schedule: "0 20 * * *", WorkflowName: "hello"},
		}
		Expect(k8sClient.Create(context.Background(), mine)).To(Succeed())
		DeferCleanup(func() { _ = k8sClient.Delete(context.Background(), mine) })
		withDeclared(DeclaredSchedule{Workflow: "hello", DeclaredBy: DeclaredByFile, Origin: "file /workflows/hello.star",
			Spec: durable.ScheduleSpec{Name: "evening", Cron: "0 21 * * *"}})
		Eventually(func(g Gomega) []string { return eventReasons(g, mine) }, 10*time.Second, 50*time.Millisecond).Should(ContainElement("DeclaredScheduleNameTaken"))
		fresh, err := getDeclared("hello-evening")
		Expect(err).NotTo(HaveOccurred())
		Expect(fresh.Spec.Schedule).To(Equal("0 20 * * *"))
		Expect(fresh.Labels).NotTo(HaveKey(workflowsv1alpha1.LabelDeclaredBy))
	})

	It("makes the manager refuse to start when a Go workflow declares a schedule it cannot use", func() {
		noop := func(*durable.Context, struct{}) (string, error) { return "", nil }
		reg := engine.NewRegistry()
		Expect(reg.Register(
			durable.Define("bad_cron", noop, durable.WithSchedule(durable.ScheduleSpec{Cron: "0 25 * * *"})),
			durable.Define("twice", noop, durable.WithSchedule(durable.ScheduleSpec{Name: "x", Cron: "@daily"}), durable.WithSchedule(durable.ScheduleSpec{Name: "x", Cron: "@hourly"})),
			durable.Define("bad_input", noop, durable.WithSchedule(durable.ScheduleSpec{Cron: "@daily", Input: func() {}})),
		)).To(Succeed())
		err := ValidateDeclaredSchedules(reg)
		Expect(err).To(HaveOccurred())
		lines := strings.Split(err.Error(), "\n")
		Expect(lines).To(ConsistOf(
			And(ContainSubstring("Go workflow bad_cron"), ContainSubstring("0 25 * * *")),
			And(ContainSubstring("Go workflow twice"), ContainSubstring("default/twice-x is declared by Go workflow twice too")),
			And(ContainSubstring("Go workflow bad_input"), ContainSubstring("does not encode to JSON")),
		))
	})
})
