package controllers

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/schedule"
)

// scheduleClock is the schedule reconcilers' clock in the suite: the wall clock until a spec
// sets it, so specs run days of ticks in seconds. Every manager the suite starts registers a
// wake channel; poke enqueues a schedule in all of them, as the passing of time would.
var scheduleClock = &testClock{}

// testClock is a settable clock.
type testClock struct {
	mu     sync.Mutex
	frozen *time.Time
	wakes  []chan event.GenericEvent
}

// Now is the set time, or the wall clock.
func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen != nil {
		return *c.frozen
	}
	return time.Now()
}

// Set freezes the clock at t.
func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frozen = &t
}

// Real lets the clock follow the wall clock again.
func (c *testClock) Real() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frozen = nil
}

// wakeChannel registers and returns a new manager's wake channel.
func (c *testClock) wakeChannel() chan event.GenericEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan event.GenericEvent, 1024)
	c.wakes = append(c.wakes, ch)
	return ch
}

// poke enqueues ws in every manager.
func (c *testClock) poke(ws *workflowsv1alpha1.WorkflowSchedule) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.wakes {
		select {
		case ch <- event.GenericEvent{Object: ws}:
		default: // a stopped manager's channel is full; nobody listens there
		}
	}
}

// afterScheduledStart is the hook every manager's schedule reconciler calls after creating a
// tick's run; nil means none.
var afterScheduledStart atomic.Pointer[func(context.Context, *workflowsv1alpha1.WorkflowRun)]

// scheduleHooks are the schedule test hooks of a new manager.
func scheduleHooks() scheduleTestHooks {
	return scheduleTestHooks{
		clock: scheduleClock.Now,
		wake:  scheduleClock.wakeChannel(),
		afterStart: func(ctx context.Context, run *workflowsv1alpha1.WorkflowRun) {
			if hook := afterScheduledStart.Load(); hook != nil {
				(*hook)(ctx, run)
			}
		},
	}
}

// newSchedule creates a schedule of workflow on expr (UTC) in the default namespace, changed
// by mutate, and deletes it when the spec ends.
func newSchedule(expr, workflow string, input any, mutate ...func(*workflowsv1alpha1.WorkflowSchedule)) *workflowsv1alpha1.WorkflowSchedule {
	GinkgoHelper()
	ws := &workflowsv1alpha1.WorkflowSchedule{
		ObjectMeta: metav1.ObjectMeta{Name: "sched-" + rand.String(6), Namespace: "default"},
		Spec:       workflowsv1alpha1.WorkflowScheduleSpec{Schedule: expr, WorkflowName: workflow},
	}
	if input != nil {
		raw, err := json.Marshal(input)
		Expect(err).NotTo(HaveOccurred())
		ws.Spec.Input = &apiextensionsv1.JSON{Raw: raw}
	}
	for _, m := range mutate {
		m(ws)
	}
	Expect(k8sClient.Create(context.Background(), ws)).To(Succeed())
	DeferCleanup(func() { _ = k8sClient.Delete(context.Background(), ws) })
	return ws
}

// getSchedule reads ws afresh.
func getSchedule(ws *workflowsv1alpha1.WorkflowSchedule) *workflowsv1alpha1.WorkflowSchedule {
	GinkgoHelper()
	fresh := &workflowsv1alpha1.WorkflowSchedule{}
	Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(ws), fresh)).To(Succeed())
	return fresh
}

// stepTo sets the clock to t, wakes ws, and waits until it handled every tick up to t (its
// next tick lies after t), returning it as it stands then.
func stepTo(ws *workflowsv1alpha1.WorkflowSchedule, t time.Time) *workflowsv1alpha1.WorkflowSchedule {
	GinkgoHelper()
	scheduleClock.Set(t)
	var fresh *workflowsv1alpha1.WorkflowSchedule
	Eventually(func(g Gomega) {
		scheduleClock.poke(ws)
		fresh = &workflowsv1alpha1.WorkflowSchedule{}
		g.Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(ws), fresh)).To(Succeed())
		g.Expect(fresh.Status.NextScheduleTime).NotTo(BeNil(), "conditions: %+v", fresh.Status.Conditions)
		g.Expect(fresh.Status.NextScheduleTime.Time.After(t)).To(BeTrue(), "next %s, clock %s", fresh.Status.NextScheduleTime, t)
	}, 20*time.Second, 50*time.Millisecond).Should(Succeed())
	return fresh
}

// nextTick is ws's next tick, once the controller computed it.
func nextTick(ws *workflowsv1alpha1.WorkflowSchedule) time.Time {
	GinkgoHelper()
	var next time.Time
	Eventually(func(g Gomega) {
		fresh := getSchedule(ws)
		g.Expect(fresh.Status.NextScheduleTime).NotTo(BeNil(), "conditions: %+v", fresh.Status.Conditions)
		next = fresh.Status.NextScheduleTime.Time
	}, 20*time.Second, 50*time.Millisecond).Should(Succeed())
	return next
}

// scheduleRuns lists the runs of ws, oldest tick first.
func scheduleRuns(ws *workflowsv1alpha1.WorkflowSchedule) []*workflowsv1alpha1.WorkflowRun {
	GinkgoHelper()
	active, finished, err := schedule.Runs(context.Background(), k8sClient, ws)
	Expect(err).NotTo(HaveOccurred())
	all := append(active, finished...)
	slices.SortFunc(all, func(a, b *workflowsv1alpha1.WorkflowRun) int {
		ta, _ := schedule.TickOf(a)
		tb, _ := schedule.TickOf(b)
		return ta.Compare(tb)
	})
	return all
}

// runTicks returns the ticks of runs in UTC RFC 3339.
func runTicks(runs []*workflowsv1alpha1.WorkflowRun) []string {
	out := make([]string, 0, len(runs))
	for _, run := range runs {
		tick, _ := schedule.TickOf(run)
		out = append(out, tick.UTC().Format(time.RFC3339))
	}
	return out
}

// tickSummary renders recent ticks as "Outcome/Reason@time[xN]", oldest first.
func tickSummary(ticks []workflowsv1alpha1.ScheduleTick) []string {
	out := make([]string, 0, len(ticks))
	for _, t := range ticks {
		s := string(t.Outcome) + "/" + t.Reason + "@" + t.ScheduledTime.UTC().Format(time.RFC3339)
		if t.Count > 1 {
			s += "x" + strconv.FormatInt(t.Count, 10)
		}
		out = append(out, s)
	}
	return out
}

// nextHour returns the first whole hour after t, in UTC.
func nextHour(t time.Time) time.Time { return t.UTC().Truncate(time.Hour).Add(time.Hour) }

// int32p returns a pointer to n.
func int32p(n int32) *int32 { return &n }
