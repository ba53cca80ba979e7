package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/internal/textbound"
	"github.com/centaur-dev/workflow-operator/runquota"
	"github.com/centaur-dev/workflow-operator/schedule"
)

// maxRecentTicks is how many tick records a schedule's status keeps.
const maxRecentTicks = 10

// maxActiveListed is how many runs in flight a schedule's status names (the newest ones), so
// that an Allow schedule with long runs cannot grow its object without bound; activeCount
// counts them all.
const maxActiveListed = 100

// statusBatch is how long the status write of a reconcile that only started its ticks' runs
// waits for those runs to end, so that the ticks and the runs' ends (status.active) are
// written at once: one status write per tick instead of two when the run is shorter than
// this. Meanwhile the run's name, derived from its tick, keeps the tick from starting twice,
// even across a crash (the next manager records it as AlreadyStarted).
const statusBatch = 2 * time.Second

// WorkflowScheduleReconciler starts the runs of WorkflowSchedules. Each reconcile reads the
// schedule fresh (its status holds the last tick handled, which must never be stale: from the
// cache when it holds the version this reconciler last wrote or read, else past it), parses
// it, decides about every tick that fell due since (package schedule), starts the runs
// of the ticks that start under the concurrency policy, records the others as skipped, trims
// the run history, and writes status once; it then sleeps until the next tick is due.
//
// A tick's run is named after the schedule and the tick, so whatever happens between the
// create and the status write (a crash, a lost leadership, a second manager) the tick has one
// run: the next reconcile finds it and records the tick as started.
type WorkflowScheduleReconciler struct {
	client.Client
	// APIReader reads schedules and existing runs past the cache.
	APIReader client.Reader
	// Workflows holds the workflows schedules may start, by namespace.
	Workflows *catalog.Catalog
	// Events records Kubernetes Events on schedules.
	Events recorder.EventRecorder
	// Clock returns the current time; nil means time.Now. Tests run days of ticks in seconds.
	Clock func() time.Time
	// MaxConcurrentReconciles is how many schedules are handled in parallel.
	MaxConcurrentReconciles int
	// Runs holds every run (the manager's cache, or under sharding the view of every run,
	// since a schedule's runs execute on any shard); nil means the manager's cache.
	Runs cache.Cache

	// wake enqueues schedules whenever a test's clock moved; nil in the manager.
	wake <-chan event.GenericEvent
	// afterStart runs once a tick's run was created, before the tick is recorded; tests stop
	// the manager there, as a crash would.
	afterStart func(context.Context, *workflowsv1alpha1.WorkflowRun)

	// seen holds, by schedule, the resourceVersion this reconciler last wrote or read past
	// the cache: a cached copy at that version is fresh (see read).
	seen sync.Map // types.NamespacedName -> string
	// pending holds, by schedule, the work of a reconcile whose status write waits for the
	// next reconcile (see statusBatch).
	pending sync.Map // types.NamespacedName -> *scheduleWork
}

// scheduleWork is what one reconcile found and did: the inputs of the status write, events and
// metrics at its end.
type scheduleWork struct {
	ws   *workflowsv1alpha1.WorkflowSchedule
	base *workflowsv1alpha1.WorkflowSchedule
	now  time.Time

	ready   metav1.Condition
	sched   schedule.Schedule
	blocked finding
	plan    schedule.Plan
	planned bool

	active    []*workflowsv1alpha1.WorkflowRun // in flight: counts for the concurrency policy
	finished  []*workflowsv1alpha1.WorkflowRun
	cancelled []*workflowsv1alpha1.WorkflowRun // by Replace: still in flight until they stop
	handled   time.Time                        // the last tick whose outcome was carried out
	records   []workflowsv1alpha1.ScheduleTick
	lateness  []time.Duration // of each run this reconcile created
	// waiting is the earlier reconcile whose status this one writes (see statusBatch): its
	// events and metrics follow this one's write.
	waiting *scheduleWork
}

// +kubebuilder:rbac:groups=workflows.centaur.dev,resources=workflowschedules,verbs=get;list;watch
// +kubebuilder:rbac:groups=workflows.centaur.dev,resources=workflowschedules/status,verbs=get;update;patch

// Reconcile brings a schedule up to date: fetch it fresh, check its spec, handle its due
// ticks, trim its history, then write status and record events and metrics in one place.
func (r *WorkflowScheduleReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	w, err := r.begin(ctx, req.NamespacedName)
	if w == nil || err != nil {
		return ctrl.Result{}, err
	}
	defer func() { result, retErr = r.summarize(ctx, w, result, retErr) }()
	if !r.reconcileSpec(w) {
		return ctrl.Result{}, nil
	}
	if err := r.reconcileTicks(ctx, w); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.reconcileHistory(ctx, w); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

// begin starts the work of a reconcile of the schedule key: from the schedule as the last
// reconcile left it when that one's status write waits (see statusBatch), else from the
// schedule as it stands (read). Nil when the schedule is gone or going.
func (r *WorkflowScheduleReconciler) begin(ctx context.Context, key types.NamespacedName) (*scheduleWork, error) {
	if p, ok := r.pending.LoadAndDelete(key); ok {
		waiting := p.(*scheduleWork)
		return &scheduleWork{ws: waiting.ws, base: waiting.base, now: now(r.Clock), waiting: waiting}, nil
	}
	ws, err := r.read(ctx, key)
	if err != nil {
		if apierrors.IsNotFound(err) {
			r.seen.Delete(key)
		}
		return nil, client.IgnoreNotFound(err)
	}
	if !ws.DeletionTimestamp.IsZero() {
		return nil, nil
	}
	return &scheduleWork{ws: ws, base: ws.DeepCopy(), now: now(r.Clock)}, nil
}

// read returns the schedule key as it stands: the cached copy when it is at the version this
// reconciler last wrote or read (the cache has caught up with this reconciler's own writes; a
// tick comes long after the last one), else the API server's. A copy older than someone
// else's later write is caught by the status write, which is guarded by resourceVersion:
// its conflict forgets the version, so the next reconcile reads past the cache. Saves a read
// per tick.
func (r *WorkflowScheduleReconciler) read(ctx context.Context, key types.NamespacedName) (*workflowsv1alpha1.WorkflowSchedule, error) {
	ws := &workflowsv1alpha1.WorkflowSchedule{}
	if seen, ok := r.seen.Load(key); ok {
		if err := r.Get(ctx, key, ws); err == nil && ws.ResourceVersion == seen.(string) {
			return ws, nil
		}
		ws = &workflowsv1alpha1.WorkflowSchedule{}
	}
	if err := r.APIReader.Get(ctx, key, ws); err != nil {
		return nil, err
	}
	r.seen.Store(key, ws.ResourceVersion)
	return ws, nil
}

// reconcileSpec parses the schedule and checks its workflow, and sets the Ready condition. It
// returns false when no tick can be computed (an invalid schedule or zone); an unknown workflow
// still lets ticks be computed, each recorded as skipped.
func (r *WorkflowScheduleReconciler) reconcileSpec(w *scheduleWork) bool {
	spec := w.ws.Spec
	sched, err := schedule.Parse(spec.Schedule, spec.TimeZone, w.ws.CreationTimestamp.Time)
	if err != nil {
		var se *schedule.SpecError
		reason := workflowsv1alpha1.ReasonInvalidSchedule
		if errors.As(err, &se) {
			reason = se.Reason
		}
		w.setReady(metav1.ConditionFalse, reason, err.Error())
		return false
	}
	w.sched = sched
	switch _, known := r.Workflows.Lookup(w.ws.Namespace, spec.WorkflowName); {
	case !known:
		unknown := r.Workflows.UnknownWorkflow(w.ws.Namespace, spec.WorkflowName)
		unknown.Field = "spec.workflowName"
		w.blocked = finding{workflowsv1alpha1.ReasonUnknownWorkflow, unknown.Error()}
		w.setReady(metav1.ConditionFalse, w.blocked.reason, w.blocked.message+"; until then every tick is recorded as skipped")
	case spec.Suspend:
		note := "spec.suspend is true"
		if spec.SuspendNote != "" {
			note += ": " + spec.SuspendNote
		}
		w.setReady(metav1.ConditionTrue, workflowsv1alpha1.ReasonSuspended, "suspended ("+note+"); ticks are recorded as skipped until it is resumed")
	default:
		w.setReady(metav1.ConditionTrue, workflowsv1alpha1.ReasonScheduled, "ticks start runs of workflow "+spec.WorkflowName)
	}
	return true
}

// setReady sets the Ready condition the reconcile will write.
func (w *scheduleWork) setReady(status metav1.ConditionStatus, reason, message string) {
	w.ready = metav1.Condition{Type: workflowsv1alpha1.ConditionReady, Status: status, Reason: reason,
		Message: message, ObservedGeneration: w.ws.Generation}
}

// reconcileTicks decides about the ticks due since the last one handled and carries the
// decisions out in tick order. On an error it stops; what it did so far is recorded, and the
// next reconcile goes on from there.
func (r *WorkflowScheduleReconciler) reconcileTicks(ctx context.Context, w *scheduleWork) error {
	active, finished, err := schedule.Runs(ctx, r.Runs, w.ws)
	if err != nil {
		return err
	}
	w.active, w.finished = active, finished
	w.plan, w.planned = schedule.Decide(r.window(w)), true
	for _, o := range w.plan.Outcomes {
		if err := r.carryOut(ctx, w, o); err != nil {
			return err
		}
		w.handled = o.Last
	}
	return nil
}

// window is what the plan decides on: the ticks after the last one handled (after the
// schedule's creation for a new one), and the schedule's policies and runs.
func (r *WorkflowScheduleReconciler) window(w *scheduleWork) schedule.Window {
	spec := w.ws.Spec
	win := schedule.Window{
		Schedule: w.sched, After: w.ws.CreationTimestamp.Time, Now: w.now,
		CatchUp: spec.CatchUp, Suspended: spec.Suspend, Blocked: w.blocked.reason, BlockedMessage: w.blocked.message,
		Started: map[int64]bool{},
	}
	if t := w.ws.Status.LastTickTime; t != nil {
		win.After = t.Time
	}
	if spec.StartingDeadline != nil {
		win.StartingDeadline = spec.StartingDeadline.Duration
	}
	if spec.MaxCatchUp != nil {
		win.MaxCatchUp = int(*spec.MaxCatchUp)
	}
	if spec.Jitter != nil {
		win.Jitter = schedule.Jitter(string(w.ws.UID), spec.Jitter.Duration)
	}
	for _, run := range append(append([]*workflowsv1alpha1.WorkflowRun{}, w.active...), w.finished...) {
		if tick, ok := schedule.TickOf(run); ok && schedule.IsTickRun(run) {
			win.Started[tick.Unix()] = true
		}
	}
	return win
}

// carryOut does what one outcome says: record an existing run or a skip, or start a run.
func (r *WorkflowScheduleReconciler) carryOut(ctx context.Context, w *scheduleWork, o schedule.Outcome) error {
	switch o.Action {
	case schedule.Start:
		return r.start(ctx, w, o)
	case schedule.Exists:
		w.recordStarted(o.Tick, workflowsv1alpha1.ReasonAlreadyStarted, schedule.TickRunName(w.ws.Name, o.Tick), nil)
	default:
		w.recordSkipped(o)
	}
	return nil
}

// start starts the run of o's tick if the concurrency policy admits it, cancelling the runs in
// flight first under Replace.
func (r *WorkflowScheduleReconciler) start(ctx context.Context, w *scheduleWork, o schedule.Outcome) error {
	admitted, replace := schedule.Admit(w.ws.Spec.ConcurrencyPolicy, len(w.active))
	if !admitted {
		o.Action, o.Reason = schedule.Skip, workflowsv1alpha1.ReasonConcurrencyForbidden
		o.Message = fmt.Sprintf("concurrencyPolicy is Forbid and run %s was still in flight", w.active[len(w.active)-1].Name)
		w.recordSkipped(o)
		return nil
	}
	if replace {
		if err := schedule.Cancel(ctx, r.Client, w.active); err != nil {
			return err
		}
		w.cancelled, w.active = append(w.cancelled, w.active...), nil
	}
	startedAt := metav1.NewMicroTime(now(r.Clock))
	run, created, err := schedule.StartRun(ctx, r.Client, r.APIReader, w.ws, o.Tick, schedule.TriggerTick)
	var (
		taken *schedule.NameTakenError
		quota *runquota.ExceededError
	)
	switch {
	case errors.As(err, &taken):
		o.Action, o.Reason, o.Message = schedule.Skip, workflowsv1alpha1.ReasonRunNameTaken, taken.Error()
		w.recordSkipped(o)
		return nil
	case errors.As(err, &quota):
		o.Action, o.Reason, o.Message = schedule.Skip, workflowsv1alpha1.ReasonOverQuota, quota.Error()
		w.recordSkipped(o)
		return nil
	case err != nil:
		return err
	}
	if !created {
		w.recordStarted(o.Tick, workflowsv1alpha1.ReasonAlreadyStarted, run.Name, nil)
		w.active = append(w.active, run)
		return nil
	}
	if r.afterStart != nil {
		r.afterStart(ctx, run)
	}
	w.recordStarted(o.Tick, o.Reason, run.Name, &startedAt)
	// o.Late is how late the tick was when the reconcile began; the create came after that.
	w.lateness = append(w.lateness, o.Late+startedAt.Sub(w.now))
	w.active = append(w.active, run)
	return nil
}

// recordStarted records a tick whose run exists.
func (w *scheduleWork) recordStarted(tick time.Time, reason, run string, startedAt *metav1.MicroTime) {
	w.records = append(w.records, workflowsv1alpha1.ScheduleTick{
		ScheduledTime: metav1.NewTime(tick), Outcome: workflowsv1alpha1.TickStarted, Reason: reason, Run: run, StartedAt: startedAt,
	})
}

// recordSkipped records a skipped tick or stretch of ticks.
func (w *scheduleWork) recordSkipped(o schedule.Outcome) {
	rec := workflowsv1alpha1.ScheduleTick{ScheduledTime: metav1.NewTime(o.Tick), Outcome: workflowsv1alpha1.TickSkipped, Reason: o.Reason,
		Message: textbound.Cut(o.Message, workflowsv1alpha1.MaxTickMessageLength)}
	if o.Count > 1 {
		last := metav1.NewTime(o.Last)
		rec.LastScheduledTime, rec.Count = &last, o.Count
	}
	w.records = append(w.records, rec)
}

// reconcileHistory deletes the schedule's finished runs beyond its history limits, oldest
// tick first: succeeded ones beyond successfulRunsHistoryLimit, failed and cancelled ones
// beyond failedRunsHistoryLimit.
func (r *WorkflowScheduleReconciler) reconcileHistory(ctx context.Context, w *scheduleWork) error {
	var succeeded, failed []*workflowsv1alpha1.WorkflowRun
	for _, run := range w.finished {
		if run.Status.Phase == workflowsv1alpha1.PhaseSucceeded {
			succeeded = append(succeeded, run)
		} else {
			failed = append(failed, run)
		}
	}
	excess := append(beyond(succeeded, w.ws.Spec.SuccessfulRunsHistoryLimit, 3), beyond(failed, w.ws.Spec.FailedRunsHistoryLimit, 1)...)
	for _, run := range excess {
		if err := r.Delete(ctx, run, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete run %s/%s beyond the schedule's history limit: %w", run.Namespace, run.Name, err)
		}
	}
	return nil
}

// beyond returns the oldest runs past the newest limit ones (def when limit is unset).
func beyond(runs []*workflowsv1alpha1.WorkflowRun, limit *int32, def int) []*workflowsv1alpha1.WorkflowRun {
	keep := def
	if limit != nil {
		keep = int(*limit)
	}
	if len(runs) <= keep {
		return nil
	}
	return runs[:len(runs)-keep]
}

// summarize is the one place that writes a schedule's status: it folds what the reconcile did
// into status, writes it in one patch guarded by resourceVersion (patchStatus; a lost race
// means someone else moved the schedule on: read it again), and only then records events and
// metrics, and asks to be woken when the next tick is due. A reconcile that did nothing but
// start its ticks' runs leaves the write to the next one, at the latest statusBatch later:
// when the runs end sooner (their end wakes the schedule), one write records both.
func (r *WorkflowScheduleReconciler) summarize(ctx context.Context, w *scheduleWork, result ctrl.Result, err error) (ctrl.Result, error) {
	w.applyStatus()
	key := client.ObjectKeyFromObject(w.ws)
	if err == nil && w.onlyStarted() {
		r.pending.Store(key, w)
		return ctrl.Result{RequeueAfter: min(statusBatch, w.untilDue(now(r.Clock)))}, nil
	}
	if _, perr := patchStatus(ctx, r.Client, w.base, w.ws); perr != nil {
		r.seen.Delete(key)
		res, perr := requeueOnConflict(fmt.Errorf("write the status of schedule %s/%s: %w", w.ws.Namespace, w.ws.Name, perr))
		return res, errors.Join(err, perr)
	}
	r.seen.Store(key, w.ws.ResourceVersion)
	if w.waiting != nil {
		r.announce(ctx, w.waiting)
	}
	r.announce(ctx, w)
	if err != nil || !w.planned || w.plan.NextDue.IsZero() {
		return result, err
	}
	return ctrl.Result{RequeueAfter: w.untilDue(now(r.Clock))}, nil
}

// onlyStarted reports whether the reconcile, not itself writing for an earlier one, started
// runs and did nothing else that people wait to see: no skip, no replacement, Ready unchanged.
// Its status write can wait for the runs' ends (see statusBatch).
func (w *scheduleWork) onlyStarted() bool {
	if w.waiting != nil || len(w.lateness) == 0 || len(w.cancelled) > 0 {
		return false
	}
	for _, rec := range w.records {
		if rec.Outcome != workflowsv1alpha1.TickStarted {
			return false
		}
	}
	prev := meta.FindStatusCondition(w.base.Status.Conditions, workflowsv1alpha1.ConditionReady)
	return prev != nil && prev.Status == w.ready.Status && prev.Reason == w.ready.Reason
}

// untilDue is how long from now until the plan's next tick is due (at least a millisecond;
// an hour when none is).
func (w *scheduleWork) untilDue(now time.Time) time.Duration {
	if !w.planned || w.plan.NextDue.IsZero() {
		return time.Hour
	}
	return max(w.plan.NextDue.Sub(now), time.Millisecond)
}

// applyStatus folds the reconcile's work into the schedule's status.
func (w *scheduleWork) applyStatus() {
	st := &w.ws.Status
	if w.ready.Type != "" {
		setCondition(&st.Conditions, w.ready)
	}
	st.ObservedGeneration = w.ws.Generation
	if !w.handled.IsZero() {
		st.LastTickTime = timePtr(w.handled)
	}
	for _, rec := range w.records {
		if rec.Outcome == workflowsv1alpha1.TickStarted && (st.LastScheduleTime == nil || st.LastScheduleTime.Before(&rec.ScheduledTime)) {
			st.LastScheduleTime = timePtr(rec.ScheduledTime.Time)
		}
		if rec.Outcome == workflowsv1alpha1.TickStarted {
			st.RunsStarted++
		} else {
			st.TicksSkipped += max(rec.Count, 1)
		}
	}
	st.NextScheduleTime = nil
	if w.planned && !w.plan.Next.IsZero() && w.handled.Equal(w.plan.Handled) {
		st.NextScheduleTime = timePtr(w.plan.Next)
	}
	if w.planned {
		inFlight := append(append([]*workflowsv1alpha1.WorkflowRun{}, w.cancelled...), w.active...)
		st.ActiveCount = int32(len(inFlight))
		st.Active = nil
		for _, run := range inFlight[max(len(inFlight)-maxActiveListed, 0):] {
			tick, _ := schedule.TickOf(run)
			st.Active = append(st.Active, workflowsv1alpha1.ScheduledRun{Name: run.Name, ScheduledTime: metav1.NewTime(tick)})
		}
	}
	st.RecentTicks = appendTicks(st.RecentTicks, w.records)
	recordEnds(st, w.finished)
}

// recordEnds writes how each finished tick run ended into its record in recentTicks, and when
// the newest successful one finished into lastSuccessfulTime. The schedule's status is where a
// scheduled run's success is told: such a run records no Event of its own (see
// WorkflowRunReconciler.finish), so that a tick costs the API server its run's create and
// status write and the schedule's one status write, and nothing else.
func recordEnds(st *workflowsv1alpha1.WorkflowScheduleStatus, finished []*workflowsv1alpha1.WorkflowRun) {
	ended := make(map[string]*workflowsv1alpha1.WorkflowRun, len(finished))
	for _, run := range finished {
		ended[run.Name] = run
		if run.Status.Phase != workflowsv1alpha1.PhaseSucceeded || run.Status.FinishedAt == nil {
			continue
		}
		if st.LastSuccessfulTime == nil || st.LastSuccessfulTime.Time.Before(run.Status.FinishedAt.Time) {
			st.LastSuccessfulTime = timePtr(run.Status.FinishedAt.Time)
		}
	}
	for i := range st.RecentTicks {
		rec := &st.RecentTicks[i]
		if run, ok := ended[rec.Run]; ok && rec.Outcome == workflowsv1alpha1.TickStarted {
			rec.RunPhase = run.Status.Phase
		}
	}
}

// appendTicks adds records to the recent ticks, continuing the last stretch of skips when the
// first new record is a skip for the same reason, and keeps the newest maxRecentTicks.
func appendTicks(recent, records []workflowsv1alpha1.ScheduleTick) []workflowsv1alpha1.ScheduleTick {
	for _, rec := range records {
		n := len(recent)
		if n > 0 && rec.Outcome == workflowsv1alpha1.TickSkipped && recent[n-1].Outcome == workflowsv1alpha1.TickSkipped && recent[n-1].Reason == rec.Reason {
			prev := &recent[n-1]
			last := rec.ScheduledTime
			if rec.LastScheduledTime != nil {
				last = *rec.LastScheduledTime
			}
			prev.LastScheduledTime, prev.Count, prev.Message = &last, max(prev.Count, 1)+max(rec.Count, 1), rec.Message
			continue
		}
		recent = append(recent, rec)
	}
	if len(recent) > maxRecentTicks {
		recent = append([]workflowsv1alpha1.ScheduleTick(nil), recent[len(recent)-maxRecentTicks:]...)
	}
	return recent
}

// timePtr returns t as a *metav1.Time in UTC.
func timePtr(t time.Time) *metav1.Time {
	v := metav1.NewTime(t.UTC())
	return &v
}

// announce records, after the status write, the metrics of every run started, every skip and
// every replacement, and an Event for every skip and replacement and when Ready changed. A
// tick that started its run as planned gets no Event of the schedule's: its record in
// status.recentTicks, the metrics and the run's own Event tell it, and an Event per tick
// would be a request per tick.
func (r *WorkflowScheduleReconciler) announce(ctx context.Context, w *scheduleWork) {
	workflow := w.ws.Spec.WorkflowName
	for _, late := range w.lateness {
		scheduleLateness.WithLabelValues(workflow).Observe(late.Seconds())
	}
	for _, rec := range w.records {
		scheduleTicks.WithLabelValues(workflow, string(rec.Outcome), rec.Reason).Add(float64(max(rec.Count, 1)))
		if rec.Outcome == workflowsv1alpha1.TickSkipped {
			eventType := corev1.EventTypeWarning
			if rec.Reason == workflowsv1alpha1.ReasonSuspended {
				eventType = corev1.EventTypeNormal
			}
			emit(r.Events, w.ws, eventType, rec.Reason, "Skip", "skipped %s: %s", describeTicks(rec), rec.Message)
		}
	}
	for _, run := range w.cancelled {
		emit(r.Events, w.ws, corev1.EventTypeNormal, workflowsv1alpha1.ReasonReplaced, "Cancel", "cancelled run %s: concurrencyPolicy is Replace and a new tick started", run.Name)
	}
	prev := meta.FindStatusCondition(w.base.Status.Conditions, workflowsv1alpha1.ConditionReady)
	if w.ready.Type == "" || (prev != nil && prev.Status == w.ready.Status && prev.Reason == w.ready.Reason) {
		return
	}
	eventType := corev1.EventTypeNormal
	if w.ready.Status != metav1.ConditionTrue {
		eventType = corev1.EventTypeWarning
	}
	emit(r.Events, w.ws, eventType, w.ready.Reason, "Reconcile", "%s", w.ready.Message)
	log.FromContext(ctx).Info("workflow_schedule_ready_changed", "ready", w.ready.Status, "reason", w.ready.Reason, "message", logText(w.ready.Message))
}

// describeTicks says which ticks a record stands for.
func describeTicks(rec workflowsv1alpha1.ScheduleTick) string {
	first := rec.ScheduledTime.UTC().Format(time.RFC3339)
	if rec.Count <= 1 || rec.LastScheduledTime == nil {
		return "the tick at " + first
	}
	return fmt.Sprintf("%d ticks from %s to %s", rec.Count, first, rec.LastScheduledTime.UTC().Format(time.RFC3339))
}

// SetupWithManager registers the reconciler: schedules by their spec, and their runs when one
// finishes or goes (the concurrency policy and the history limits depend on them).
func (r *WorkflowScheduleReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Runs == nil {
		r.Runs = mgr.GetCache()
	}
	runs := source.Kind(r.Runs, client.Object(&workflowsv1alpha1.WorkflowRun{}),
		handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(), &workflowsv1alpha1.WorkflowSchedule{}, handler.OnlyControllerOwner()),
		finishedPredicate(runFinished))
	b := ctrl.NewControllerManagedBy(mgr).
		For(&workflowsv1alpha1.WorkflowSchedule{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(runs).
		Named("workflowschedule").
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.MaxConcurrentReconciles, 1)})
	if r.wake != nil {
		b = b.WatchesRawSource(source.Channel(r.wake, &handler.EnqueueRequestForObject{}))
	}
	return b.Complete(r)
}

// scheduleTestHooks let the suite drive the schedule reconciler: its clock, a channel that
// enqueues schedules when the clock moved, and a hook after each created run.
type scheduleTestHooks struct {
	clock      func() time.Time
	wake       <-chan event.GenericEvent
	afterStart func(context.Context, *workflowsv1alpha1.WorkflowRun)
}

// setupSchedules registers the WorkflowSchedule controller and the reconciler of declared
// schedules, after checking that the Go workflows' declarations are usable.
func setupSchedules(mgr ctrl.Manager, o Options, view cache.Cache) (*DeclaredScheduleReconciler, error) {
	schedules := &WorkflowScheduleReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Workflows: o.Workflows,
		Events: mgr.GetEventRecorder("workflowschedule-controller"), MaxConcurrentReconciles: o.MaxConcurrentReconciles, Runs: view,
		Clock: o.schedules.clock, wake: o.schedules.wake, afterStart: o.schedules.afterStart,
	}
	if err := schedules.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("set up the WorkflowSchedule controller: %w", err)
	}
	if err := ValidateDeclaredSchedules(o.Workflows.Registry()); err != nil {
		return nil, fmt.Errorf("the schedules that workflows declare in code: %w", err)
	}
	src := o.DeclaredSchedules
	if src == nil {
		src = CatalogSchedules(o.Workflows)
	}
	namespace := declaredNamespace(o.ScheduleNamespace, o.Workflows.OperatorNamespace())
	declared := NewDeclaredScheduleReconciler(mgr.GetClient(), src, namespace, mgr.GetEventRecorder("declaredschedule-controller"))
	declared.Clock = o.schedules.clock
	if err := declared.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("set up the declared schedules: %w", err)
	}
	o.Workflows.OnChange(declared.Resync) // workflow files and definitions come and go
	return declared, nil
}
