package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testflows"
)

// The schedule figure: cfg.schedules WorkflowSchedules all fire on the same minute, and each
// starts one run. A schedule's start is its run's creation, which the schedule records
// (status.recentTicks[].startedAt, in microseconds); its lateness is that minus the minute.
// The lateness of the last start is set beside the raw limit, measured right before on the same
// API server with the same manager running: as many run creates, from as many writers as the
// manager has reconcilers, whose runs (of an unknown workflow) the manager fails once each, as
// it executes each scheduled run (no steps) once.

// scheduleNamespace holds the schedule figure's schedules and their runs.
const scheduleNamespace = "bench-schedules"

// scheduleFigures are the schedule figure's results.
type scheduleFigures struct {
	// lateness is each schedule's start minus the minute they share.
	lateness durations
	// rawTook is how long the raw creates took, at rawPerSec.
	rawTook   time.Duration
	rawPerSec float64
}

// measureSchedules creates the schedules for a minute far enough ahead that the manager has
// computed every one's next tick before it, waits for the minute and every run, and reads the
// starts from the schedules' status.
func (h *harness) measureSchedules(ctx context.Context, res *results) error {
	if err := h.clearEarlierRuns(ctx); err != nil {
		return err
	}
	for _, ns := range []string{scheduleNamespace, rawNamespace} {
		if err := h.ensureNamespace(ctx, ns); err != nil {
			return err
		}
	}
	m, err := h.startManager(ctx)
	if err != nil {
		return err
	}
	defer m.stop()
	n := h.cfg.schedules
	input, err := json.Marshal(testflows.NoopInput{Steps: 0})
	if err != nil {
		return fmt.Errorf("encode the input: %w", err)
	}
	f := &res.schedules
	start := time.Now()
	if f.rawPerSec, _, err = h.rawCreates(ctx, "sched", n, h.cfg.parallelism, input); err != nil {
		return fmt.Errorf("raw creates: %w", err)
	}
	f.rawTook = time.Since(start)
	// The manager fails the raw runs (their workflow is unknown) once its grace for a late
	// definition passed: before the minute, so that the tick's figures hold the ticks alone.
	if err := h.waitRunsIn(ctx, rawNamespace, n, workflowsv1alpha1.PhaseFailed); err != nil {
		return fmt.Errorf("raw creates: %w", err)
	}

	// The minute leaves time to create the schedules and for the manager to see each once.
	minute := time.Now().Add(10*time.Second + time.Duration(n)*20*time.Millisecond).Truncate(time.Minute).Add(time.Minute)
	h.logf("schedules: %d raw creates took %s (%.0f/s); creating %d schedules for %s", n, f.rawTook, f.rawPerSec, n, minute.Format(time.TimeOnly))
	if err := h.createSchedules(ctx, n, minute, input); err != nil {
		return err
	}
	if err := h.waitSchedules(ctx, n, "to compute their next tick", func(ws *workflowsv1alpha1.WorkflowSchedule) bool {
		return ws.Status.NextScheduleTime != nil && ws.Status.NextScheduleTime.Equal(&metav1.Time{Time: minute})
	}); err != nil {
		return err
	}
	if time.Now().After(minute) {
		return fmt.Errorf("the schedules were ready only after their minute %s; the machine is too slow for %d schedules", minute.Format(time.TimeOnly), n)
	}
	// The meter starts before the minute, so that it counts every tick's create.
	meter, err := h.startMeter(ctx, m, "schedules")
	if err != nil {
		return err
	}
	if err := testcluster.Sleep(ctx, time.Until(minute)); err != nil {
		return err
	}
	var late durations
	// The meter counts each tick whole: until its schedule recorded the start and its run's end.
	if err := h.waitSchedules(ctx, n, "to start their run and record its end", func(ws *workflowsv1alpha1.WorkflowSchedule) bool {
		st := ws.Status
		return st.LastScheduleTime != nil && st.LastScheduleTime.Equal(&metav1.Time{Time: minute}) &&
			st.ActiveCount == 0 && len(st.RecentTicks) == 1 && st.RecentTicks[0].RunPhase != ""
	}); err != nil {
		return err
	}
	if err := meter.stop(ctx, n); err != nil {
		return err
	}
	if late, err = h.scheduleStarts(ctx, minute); err != nil {
		return err
	}
	f.lateness = late
	h.logf("schedules: %d runs started; lateness p50 %s, last %s", len(late), late.percentile(50), late.max())
	return h.deleteSchedules(ctx)
}

// deleteSchedules deletes the figure's schedules and their runs while its manager still runs,
// so that the managers of later figures do not spend their time on them.
func (h *harness) deleteSchedules(ctx context.Context) error {
	if err := h.client.DeleteAllOf(ctx, &workflowsv1alpha1.WorkflowSchedule{}, client.InNamespace(scheduleNamespace)); err != nil {
		return fmt.Errorf("delete the schedules: %w", err)
	}
	return h.deleteRuns(ctx, scheduleNamespace)
}

// createSchedules creates n schedules that fire at minute (every day, UTC), each starting a run
// of bench-noop with no steps.
func (h *harness) createSchedules(ctx context.Context, n int, minute time.Time, input []byte) error {
	expr := fmt.Sprintf("%d %d * * *", minute.UTC().Minute(), minute.UTC().Hour())
	return parallel(ctx, n, h.cfg.senders, func(ctx context.Context, i int) error {
		ws := &workflowsv1alpha1.WorkflowSchedule{
			ObjectMeta: metav1.ObjectMeta{Namespace: scheduleNamespace, Name: fmt.Sprintf("sched-%05d", i)},
			Spec: workflowsv1alpha1.WorkflowScheduleSpec{
				Schedule: expr, WorkflowName: testflows.NoopName, Input: &apiextensionsv1.JSON{Raw: input},
			},
		}
		if err := h.client.Create(ctx, ws); err != nil {
			return fmt.Errorf("create schedule %s: %w", ws.Name, err)
		}
		return nil
	})
}

// waitSchedules polls the schedules every second until n of them satisfy done.
func (h *harness) waitSchedules(ctx context.Context, n int, what string, done func(*workflowsv1alpha1.WorkflowSchedule) bool) error {
	deadline := time.Now().Add(h.cfg.timeout)
	for {
		var list workflowsv1alpha1.WorkflowScheduleList
		if err := h.client.List(ctx, &list, client.InNamespace(scheduleNamespace), cachedList()); err != nil {
			return fmt.Errorf("list the schedules: %w", err)
		}
		ready := 0
		for i := range list.Items {
			if done(&list.Items[i]) {
				ready++
			}
		}
		if ready == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d schedules did not get %s within %s", n-ready, n, what, h.cfg.timeout)
		}
		if err := testcluster.Sleep(ctx, time.Second); err != nil {
			return err
		}
	}
}

// scheduleStarts reads each schedule's start of the tick at minute, checks that it started
// exactly one run, and returns the starts' lateness.
func (h *harness) scheduleStarts(ctx context.Context, minute time.Time) (durations, error) {
	var list workflowsv1alpha1.WorkflowScheduleList
	if err := h.client.List(ctx, &list, client.InNamespace(scheduleNamespace)); err != nil {
		return nil, fmt.Errorf("list the schedules: %w", err)
	}
	var late durations
	for i := range list.Items {
		ws := &list.Items[i]
		ticks := ws.Status.RecentTicks
		if ws.Status.RunsStarted != 1 || len(ticks) != 1 || ticks[0].StartedAt == nil || !ticks[0].ScheduledTime.Equal(&metav1.Time{Time: minute}) {
			return nil, fmt.Errorf("schedule %s did not record one start of the tick at %s: %d runs, ticks %+v", ws.Name, minute, ws.Status.RunsStarted, ticks)
		}
		late = append(late, ticks[0].StartedAt.Sub(minute))
	}
	runs, err := h.listRuns(ctx, scheduleNamespace)
	if err != nil {
		return nil, err
	}
	if len(runs) != len(list.Items) {
		return nil, fmt.Errorf("%d schedules started %d runs", len(list.Items), len(runs))
	}
	return late, nil
}
