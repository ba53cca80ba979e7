// Package controllers holds the operator's reconcilers: thin adapters that read custom
// resources, hand the work to the durable engine or the agent backends, and write the outcome
// into status. The status write of each reconciler lives in one place.
package controllers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/crashguard"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/tracing"
	"github.com/centaur-dev/workflow-operator/runstore"
	"github.com/centaur-dev/workflow-operator/schedule"
	"github.com/centaur-dev/workflow-operator/sharding/placement"
	"github.com/centaur-dev/workflow-operator/workflowfile/sandbox"
)

// errInterrupted aborts an execution between steps once the run's timeout has passed; the
// next reconcile fails it with workflowsv1alpha1.ReasonTimeout. (A cancel needs no such check: it changes the
// run's spec, so the next write is refused as a conflict.)
var errInterrupted = errors.New("the run's timeout passed")

// WorkflowRunReconciler drives WorkflowRuns: it replays each run's handler with the durable
// engine, recording every completed step in status before the handler goes on, and turns the
// engine's outcome into phase, conditions, events and a requeue time.
type WorkflowRunReconciler struct {
	client.Client
	// APIReader reads past the cache, so that an execution always starts from the latest
	// journal and never re-runs a step whose result the cache has not seen yet.
	APIReader client.Reader
	// Workflows answers which workflow, at which revision, a run executes.
	Workflows *catalog.Catalog
	// Events records Kubernetes Events on runs.
	Events recorder.EventRecorder
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Limits bound step results and what a run stores, and group batched steps.
	Limits engine.Limits
	// Storage says how journals are kept: sealing, object and namespace budgets, memory (the
	// store is built from it when the reconciler is set up).
	Storage runstore.Options
	// MaxConcurrentReconciles is how many runs execute in parallel.
	MaxConcurrentReconciles int
	// UnknownWorkflowGrace is how long a new run waits for its workflow to be defined before
	// failing with UnknownWorkflow (DefaultUnknownWorkflowGrace when zero).
	UnknownWorkflowGrace time.Duration
	// Crashes, when set, records the runs of WorkflowDefinitions while they execute, so that
	// a run whose code keeps killing the process is stopped (see package crashguard).
	Crashes *crashguard.Guard
	// Sandbox, when set, executes the runs of WorkflowDefinitions in bounded worker processes
	// (see package sandbox), so that their code cannot take the manager's memory.
	Sandbox *sandbox.Pool
	// BeforeTTLDelete, when set, is called with a finished run before its TTL deletes it; an
	// error keeps the run until the next attempt. The webhook server's delivery ledger
	// records webhook runs here, so that their deliveries are not forgotten with them.
	BeforeTTLDelete func(context.Context, *workflowsv1alpha1.WorkflowRun) error
	// Tracing, when set, makes each run a trace (see package tracing); nil is tracing off.
	Tracing *tracing.Provider

	// store keeps the runs' journals (built from Storage by setup).
	store *runstore.Store

	// wake carries events whose waiting runs must be woken again (see eventWaker).
	wake <-chan event.GenericEvent
	// claims keep one run from executing twice at once in this process (controller and eager
	// start); budget bounds the executions of both together (built by setup).
	claims runClaims
	budget *executionBudget
	// view holds every run (lean under sharding), for children and their parents; nil means
	// the manager's cache.
	view cache.Cache
	// shards is this replica's part in the ring; nil in single-leader mode.
	shards *placement.Sharding
	// executes reports whether this replica executes a run (see Executes).
	executes func(*workflowsv1alpha1.WorkflowRun) bool
}

// Executes reports whether this replica executes run now: under sharding when the run is in
// its shard, otherwise when it leads the controllers. The REST API's eager start executes a
// run in process only then, and otherwise waits for the owner's first write.
func (r *WorkflowRunReconciler) Executes(run *workflowsv1alpha1.WorkflowRun) bool {
	return r.executes != nil && r.executes(run)
}

// +kubebuilder:rbac:groups=workflows.centaur.dev,resources=workflowruns,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=workflows.centaur.dev,resources=workflowruns/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=workflows.centaur.dev,resources=workflowruns/finalizers,verbs=update
// +kubebuilder:rbac:groups=workflows.centaur.dev,resources=workflowrunsegments;workflowrunpayloads,verbs=get;list;create;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile executes one run as far as it can go: fetch it, honour TTL, cancellation and
// timeout, execute the handler, and record the outcome. A run an eager start is executing, or
// a run to execute while the execution budget is spent, comes back after busyRequeue: the
// worker never waits for either.
func (r *WorkflowRunReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	release, ok := r.claims.tryClaim(req.String())
	if !ok {
		return ctrl.Result{RequeueAfter: busyRequeue}, nil
	}
	defer release()
	run := &workflowsv1alpha1.WorkflowRun{}
	if err := r.Get(ctx, req.NamespacedName, run); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !run.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	if run.Status.Phase.IsFinal() {
		r.store.Forget(run.UID)
		return r.reconcileTTL(ctx, run)
	}
	done, ok := r.budget.tryAcquire(run.Namespace)
	if !ok {
		return ctrl.Result{RequeueAfter: busyRequeue}, nil
	}
	defer done()
	return r.executeFresh(ctx, run)
}

// Execute executes run right away in this process, as the controller would, and returns the
// run as it stands afterwards. The REST API's eager start uses it so that a new run's first
// segment executes without waiting for the watch, and hands it the run as its create returned
// it: a run nobody has written since is executed from that copy, without a read (as the
// controller does with a cached copy nobody wrote); otherwise it is read past the cache. It
// takes a slot of the controller's execution budget and returns ErrBudgetSpent at once when
// none is free; it returns an error at once, too, when the run is executing in this process
// already. Only this replica executes the run (Executes) and the claim keeps its own
// controller out meanwhile, so the created copy is current; were it not, the run's
// resourceVersion would refuse the execution's first write, as for the controller's cached
// copy.
func (r *WorkflowRunReconciler) Execute(ctx context.Context, created *workflowsv1alpha1.WorkflowRun) (*workflowsv1alpha1.WorkflowRun, error) {
	key := client.ObjectKeyFromObject(created)
	done, ok := r.budget.tryAcquire(key.Namespace)
	if !ok {
		return nil, ErrBudgetSpent
	}
	defer done()
	release, ok := r.claims.tryClaim(key.String())
	if !ok {
		return nil, fmt.Errorf("run %s is executing in this process already", key)
	}
	defer release()
	run := created.DeepCopy()
	if !r.store.Untouched(created) {
		run = &workflowsv1alpha1.WorkflowRun{}
		if err := r.APIReader.Get(ctx, key, run); err != nil {
			return nil, fmt.Errorf("read run %s: %w", key, err)
		}
	}
	// run holds what the API server stored after every write the execution makes.
	if _, err := r.execute(ctx, run, nil); err != nil {
		return nil, err
	}
	return run, nil
}

// executeFresh executes the run cached is the cache's lean copy of. The cache keeps no
// journal and may lag behind our own last write (a stale journal would re-run recorded
// steps), so the run is read past it, unless this manager wrote the run last and the cache
// shows that nobody wrote it since (then the copy the last write returned serves), or nobody
// ever wrote its status and the cache kept its input (then the cached copy is the whole run).
// Were the cache lagging behind another writer, the run's resourceVersion refuses our next
// write, and the run is read again.
func (r *WorkflowRunReconciler) executeFresh(ctx context.Context, cached *workflowsv1alpha1.WorkflowRun) (ctrl.Result, error) {
	if cached.Status.StartedAt == nil && !cached.Spec.Cancel && r.awaitsDefinition(cached) {
		// Decided on the cached copy: a run that waits for its workflow is not read past the
		// cache at every look.
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	if memo := r.store.Recall(cached); memo != nil {
		return r.execute(ctx, memo.Run, memo)
	}
	if r.store.Untouched(cached) {
		return r.execute(ctx, cached.DeepCopy(), nil)
	}
	run := &workflowsv1alpha1.WorkflowRun{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(cached), run); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	return r.execute(ctx, run, nil)
}

// execute executes a freshly read run unless it is being deleted or already finished; memo,
// when set, is this manager's memory of the run as it wrote it last.
func (r *WorkflowRunReconciler) execute(ctx context.Context, run *workflowsv1alpha1.WorkflowRun, memo *runstore.Memo) (ctrl.Result, error) {
	if !run.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	if run.Status.Phase.IsFinal() {
		return r.reconcileTTL(ctx, run)
	}
	return r.reconcileRun(ctx, r.store.NewWriter(run, memo))
}

// reconcileRun finishes a run its preflight stops, and otherwise executes its handler.
func (r *WorkflowRunReconciler) reconcileRun(ctx context.Context, w *runstore.Writer) (ctrl.Result, error) {
	run, now := w.Run(), r.now()
	ctx = r.traced(ctx, run)
	failure := preflight(run, now)
	if failure == nil {
		failure = r.store.InputFailure(run)
	}
	if failure != nil {
		if run.Spec.Cancel {
			if err := r.cancelChildren(ctx, run); err != nil {
				return ctrl.Result{}, err
			}
		}
		return r.finish(ctx, w, failure, nil)
	}
	wf, failure, err := r.workflowOf(ctx, run)
	switch {
	case errors.Is(err, errDefinitionsLoading):
		return ctrl.Result{RequeueAfter: time.Second}, nil
	case err != nil:
		return ctrl.Result{}, err
	case failure != nil:
		return r.finish(ctx, w, failure, nil)
	}
	if run.Status.StartedAt == nil {
		r.markStarted(w, now)
	}
	if deadline, ok := runDeadline(run); ok {
		// Step functions see the run's deadline too, so a long step cannot outlive it.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	journal, err := w.LoadJournal(ctx)
	if errors.As(err, &failure) {
		return r.finish(ctx, w, failure, nil)
	} else if err != nil {
		return ctrl.Result{}, fmt.Errorf("read the journal of run %s/%s: %w", run.Namespace, run.Name, err)
	}
	leave, failure, err := r.guard(ctx, run, wf)
	switch {
	case err != nil:
		return ctrl.Result{}, err
	case failure != nil:
		return r.finish(ctx, w, failure, nil)
	}
	outcome, death := r.executeHandler(ctx, wf, w, journal)
	bystander := leave()
	if death != nil {
		return r.sandboxDied(ctx, w, death)
	}
	res, err := r.apply(ctx, w, outcome)
	if bystander {
		r.clearCrashStrikes(ctx, run)
	}
	return res, err
}

// preflight says why run must finish before its handler executes again, from its spec, its
// status and the time: it was cancelled, its timeout passed, or its input changed after it
// started. Nil means it may execute.
func preflight(run *workflowsv1alpha1.WorkflowRun, now time.Time) *engine.Failure {
	if run.Spec.Cancel {
		return &engine.Failure{Reason: workflowsv1alpha1.ReasonCancelled, Message: "the run was cancelled (spec.cancel is true)"}
	}
	if deadline, ok := runDeadline(run); ok && !now.Before(deadline) {
		return &engine.Failure{Reason: workflowsv1alpha1.ReasonTimeout, Message: fmt.Sprintf("the run did not finish within its timeout of %s", run.Spec.Timeout.Duration)}
	}
	if inputChanged(run) {
		return &engine.Failure{Reason: workflowsv1alpha1.ReasonInputChanged,
			Message: "spec.input changed after the run started; its recorded steps belong to the old input, so start a new run with the new input"}
	}
	return nil
}

// phaseOf is the final phase of a run that ends with failure: Succeeded without one,
// Cancelled when it was cancelled, Failed otherwise.
func phaseOf(failure *engine.Failure) workflowsv1alpha1.RunPhase {
	switch {
	case failure == nil:
		return workflowsv1alpha1.PhaseSucceeded
	case failure.Reason == workflowsv1alpha1.ReasonCancelled:
		return workflowsv1alpha1.PhaseCancelled
	default:
		return workflowsv1alpha1.PhaseFailed
	}
}

// inputChanged reports whether the run's input differs from the one it started with
// (status.inputDigest). The API server keeps an input as canonical JSON, so the digest of its
// bytes as they are usually matches at once; only when it does not is the input decoded and
// re-encoded (inputDigest), which for a large input costs several times its size in garbage
// on every execution.
func inputChanged(run *workflowsv1alpha1.WorkflowRun) bool {
	recorded := run.Status.InputDigest
	if recorded == "" {
		return false
	}
	if run.Spec.Input != nil && len(run.Spec.Input.Raw) > 0 {
		if sum := sha256.Sum256(run.Spec.Input.Raw); hex.EncodeToString(sum[:]) == recorded {
			return false
		}
	}
	return inputDigest(run) != recorded
}

// inputDigest is the hex SHA-256 of the run's input in canonical JSON (object keys sorted, as
// encoding/json writes maps), so that the API server's re-encoding of the same input does not
// change it; empty input digests as "null".
func inputDigest(run *workflowsv1alpha1.WorkflowRun) string {
	raw := []byte("null")
	if run.Spec.Input != nil && len(run.Spec.Input.Raw) > 0 {
		raw = run.Spec.Input.Raw
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err == nil {
		if canonical, err := json.Marshal(v); err == nil {
			raw = canonical
		}
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// errDefinitionsLoading makes a new run whose workflow is unknown wait until every
// WorkflowDefinition has been loaded once and its grace has passed, rather than fail for a
// definition not read yet.
var errDefinitionsLoading = errors.New("workflow definitions are still loading")

// workflowOf returns the workflow run executes. A run that has not started gets the current
// code of its namespace, whose revision is stored first and then recorded with the start; a
// started run gets the revision it recorded. A failure says why the run cannot execute.
func (r *WorkflowRunReconciler) workflowOf(ctx context.Context, run *workflowsv1alpha1.WorkflowRun) (durable.Workflow, *engine.Failure, error) {
	name := run.Spec.WorkflowName
	if run.Status.StartedAt != nil {
		wf, err := r.Workflows.Resolve(ctx, run.Namespace, name, run.Status.WorkflowRevision)
		var unknown *catalog.UnknownWorkflowError
		switch {
		case err == nil:
			return wf, nil, nil
		case errors.As(err, &unknown):
			return nil, unknownWorkflow(unknown), nil
		case errors.Is(err, catalog.ErrRevisionNotFound):
			return nil, &engine.Failure{Reason: workflowsv1alpha1.ReasonRevisionNotFound, Message: err.Error()}, nil
		}
		return nil, &engine.Failure{Reason: workflowsv1alpha1.ReasonRevisionInvalid, Message: err.Error()}, nil
	}
	entry, ok := r.Workflows.Lookup(run.Namespace, name)
	if !ok {
		if r.awaitsDefinition(run) {
			return nil, nil, errDefinitionsLoading
		}
		return nil, unknownWorkflow(r.Workflows.UnknownWorkflow(run.Namespace, name)), nil
	}
	if catalog.WebhookOnly(entry.Workflow) && run.Labels[workflowsv1alpha1.LabelWebhook] == "" {
		return nil, &engine.Failure{Reason: workflowsv1alpha1.ReasonNotStartedByWebhook, Message: fmt.Sprintf(
			"workflow %q starts only from its webhooks (webhook_only), and this run was not made by a webhook delivery: send the delivery to its webhook instead", name)}, nil
	}
	if err := r.Workflows.Pin(ctx, entry); err != nil {
		return nil, nil, err
	}
	run.Status.WorkflowRevision = entry.Revision
	return entry.Workflow, nil, nil
}

// DefaultUnknownWorkflowGrace is how long a new run whose workflow nobody defines waits for a
// definition to appear before it fails with UnknownWorkflow.
const DefaultUnknownWorkflowGrace = 10 * time.Second

func (r *WorkflowRunReconciler) unknownWorkflowGrace() time.Duration {
	if r.UnknownWorkflowGrace > 0 {
		return r.UnknownWorkflowGrace
	}
	return DefaultUnknownWorkflowGrace
}

// awaitsDefinition reports whether a run that has not started names a workflow its namespace
// does not know yet and may still get: a run applied together with its WorkflowDefinition may
// be read first, so the definition gets a moment (and every definition its first load) before
// the run fails.
func (r *WorkflowRunReconciler) awaitsDefinition(run *workflowsv1alpha1.WorkflowRun) bool {
	if _, ok := r.Workflows.Lookup(run.Namespace, run.Spec.WorkflowName); ok {
		return false
	}
	return !r.Workflows.DefinitionsSynced() || r.now().Sub(run.CreationTimestamp.Time) < r.unknownWorkflowGrace()
}

// unknownWorkflow is the failure of a run whose workflow nobody defines in its namespace.
func unknownWorkflow(err *catalog.UnknownWorkflowError) *engine.Failure {
	return &engine.Failure{Reason: workflowsv1alpha1.ReasonUnknownWorkflow, Message: err.Error()}
}

// markStarted sets the fields of a run's start in memory; the first status write of the
// execution persists them together with the first step, saving a write per run, and only
// then is the start counted and its Event recorded. A run that the same write also finished
// (no step, or every step recorded at once) gets only its outcome's Event: one Event per run
// instead of two, which for a schedule's tick is one API request fewer.
func (r *WorkflowRunReconciler) markStarted(w *runstore.Writer, now time.Time) {
	run := w.Run()
	// The API server keeps microseconds of a MicroTime: truncating here makes the first
	// execution see exactly the start every replay reads back.
	start := now.UTC().Truncate(time.Microsecond)
	started := metav1.NewTime(start).Rfc3339Copy()
	run.Status.StartedAt = &started
	run.Status.StartTime = &metav1.MicroTime{Time: start}
	run.Status.InputDigest = inputDigest(run)
	run.Status.Phase = workflowsv1alpha1.PhaseRunning
	r.setCondition(run, metav1.ConditionUnknown, workflowsv1alpha1.ReasonRunning, "the workflow is running")
	w.Announce(func() {
		runsStarted.WithLabelValues(run.Spec.WorkflowName).Inc()
		if w.Run().Status.Phase.IsFinal() {
			return
		}
		r.event(run, corev1.EventTypeNormal, workflowsv1alpha1.ReasonStarted, "Start", "started workflow %q", run.Spec.WorkflowName)
	})
}

// runStart is when run started, as precisely as it was recorded: status.startTime, or
// status.startedAt (whole seconds) for a run started by a release that did not record
// startTime. The run must have started.
func runStart(run *workflowsv1alpha1.WorkflowRun) time.Time {
	if run.Status.StartTime != nil {
		return run.Status.StartTime.UTC()
	}
	return run.Status.StartedAt.UTC()
}

// execution assembles what the engine needs for one replay of run.
func (r *WorkflowRunReconciler) execution(ctx context.Context, w *runstore.Writer, journal *engine.Journal) engine.Execution {
	run := w.Run()
	logger := log.FromContext(ctx).WithValues("workflow", run.Spec.WorkflowName)
	var input []byte
	if run.Spec.Input != nil {
		input = run.Spec.Input.Raw
	}
	return engine.Execution{
		Run: durable.RunInfo{
			Namespace: run.Namespace, Name: run.Name, UID: string(run.UID),
			WorkflowName: run.Spec.WorkflowName, StartedAt: runStart(run),
		},
		Input:    input,
		Journal:  journal,
		Clock:    r.Clock,
		Recorder: r.recorder(w, traceOf(ctx)),
		Payloads: w.Payloads(),
		Logger:   slog.New(logr.ToSlogHandler(logger)),
		Limits:   r.Limits,
		Hooks:    r.hooks(w, logger, traceOf(ctx)),
		Host:     &runHost{r: r, run: run},
	}
}

// recorder persists the journal (see runstore.Writer) as the handler goes on, guarded by the
// run's resourceVersion. It reports errInterrupted once the run's timeout passed, so the
// engine stops between steps. Once a write succeeded, the entries it recorded are traced.
func (r *WorkflowRunReconciler) recorder(w *runstore.Writer, rt *tracing.Run) engine.Recorder {
	return engine.RecorderFunc(func(ctx context.Context, _ *engine.Journal, changed []engine.Entry) error {
		run := w.Run()
		last := changed[len(changed)-1]
		setPosition(run, last.Name, last.WakeAt, last.Target, last.State)
		traceRecorded(w, rt, changed)
		if err := w.WriteStep(ctx); err != nil {
			return err
		}
		if deadline, ok := runDeadline(run); ok && !r.now().Before(deadline) {
			return errInterrupted
		}
		return nil
	})
}

// hooks turn the engine's observations into metrics, events and logs. The metrics of step
// attempts count calls of step functions as they return, recorded or not: a call whose record
// a refused write lost did run, and runs again, which is what an operator counting calls
// wants to see. The StepRetrying Event says what the journal records (the attempt failed, the
// step will retry), so it waits for the write that records it; so does the attempt's span
// (rt, nil when tracing is off), which the recorder makes.
func (r *WorkflowRunReconciler) hooks(w *runstore.Writer, logger logr.Logger, rt *tracing.Run) engine.Hooks {
	run := w.Run()
	workflow := run.Spec.WorkflowName
	return engine.Hooks{
		StepAttempted: func(step string, attempt int, took time.Duration, err error, willRetry bool) {
			outcome := "succeeded"
			switch {
			case err != nil && willRetry:
				outcome = "retrying"
				w.Announce(func() {
					r.event(run, corev1.EventTypeWarning, workflowsv1alpha1.ReasonStepRetrying, "Retry", "step %q attempt %d failed, will retry: %v", step, attempt, err)
				})
			case err != nil:
				outcome = "failed"
			}
			rt.StepAttempted(step, took, err)
			stepAttempts.WithLabelValues(workflow, outcome).Inc()
			stepDuration.WithLabelValues(workflow, outcome).Observe(took.Seconds())
		},
		Panicked: func(where string, value any, stack []byte) {
			logger.Error(fmt.Errorf("panic: %v", value), "workflow code panicked", "where", where, "stack", string(stack))
		},
		StepStarting: stepContext(rt),
	}
}

// apply records the engine's outcome in status, with the entries the engine left to it
// (traced once written), and says when to come back.
func (r *WorkflowRunReconciler) apply(ctx context.Context, w *runstore.Writer, outcome engine.Outcome) (ctrl.Result, error) {
	if outcome.Kind != engine.Aborted {
		traceRecorded(w, traceOf(ctx), outcome.Unrecorded)
	}
	switch outcome.Kind {
	case engine.Aborted:
		return r.aborted(ctx, w.Run(), outcome.Err)
	case engine.Completed:
		return r.finish(ctx, w, nil, outcome.Output)
	case engine.Failed:
		return r.finish(ctx, w, outcome.Failure, nil)
	default:
		return r.suspend(ctx, w, outcome)
	}
}

// suspend records where the run stopped and requeues it for its wake time. A run that waits
// for something outside is not requeued at all (a watch wakes it) unless its timeout is due.
func (r *WorkflowRunReconciler) suspend(ctx context.Context, w *runstore.Writer, outcome engine.Outcome) (ctrl.Result, error) {
	run := w.Run()
	state := engine.StateSleeping
	if outcome.Waiting != "" || outcome.WakeAt.IsZero() {
		state = engine.StateWaiting
	}
	setPosition(run, outcome.Current, outcome.WakeAt, outcome.Waiting, state)
	if err := w.Write(ctx); err != nil {
		return r.writeFailed(ctx, w, err)
	}
	w.Suspended(outcome.WakeAt, r.now())
	return ctrl.Result{RequeueAfter: requeueAfter(run, outcome.WakeAt, r.now())}, nil
}

// requeueAfter is when a suspended run comes back: at wakeAt or at its deadline, whichever
// comes first, and at least a millisecond on. Zero (never) for a run that waits for
// something outside without a deadline: a watch wakes it.
func requeueAfter(run *workflowsv1alpha1.WorkflowRun, wakeAt, now time.Time) time.Duration {
	if deadline, ok := runDeadline(run); ok && (wakeAt.IsZero() || deadline.Before(wakeAt)) {
		wakeAt = deadline
	}
	if wakeAt.IsZero() {
		return 0
	}
	return max(wakeAt.Sub(now), time.Millisecond)
}

// writeFailed fails the run when its write can never succeed (a *engine.Failure: too large,
// over a budget), and otherwise decides as aborted.
func (r *WorkflowRunReconciler) writeFailed(ctx context.Context, w *runstore.Writer, err error) (ctrl.Result, error) {
	var failure *engine.Failure
	if errors.As(err, &failure) {
		return r.finish(ctx, w, failure, nil)
	}
	return r.aborted(ctx, w.Run(), err)
}

// aborted decides what to do after a write failed mid-execution: a conflict or an
// interruption is retried at once from a fresh read; a deleted run is dropped.
func (r *WorkflowRunReconciler) aborted(ctx context.Context, run *workflowsv1alpha1.WorkflowRun, err error) (ctrl.Result, error) {
	r.store.Forget(run.UID)
	switch {
	case apierrors.IsNotFound(err):
		return ctrl.Result{}, nil
	case apierrors.IsConflict(err), errors.Is(err, errInterrupted):
		log.FromContext(ctx).V(1).Info("execution interrupted, re-reading the run", "reason", err.Error())
		return ctrl.Result{Requeue: true}, nil
	default:
		return ctrl.Result{}, fmt.Errorf("execute run %s/%s: %w", run.Namespace, run.Name, err)
	}
}

// finish moves the run to its final phase (phaseOf failure) with its output or failure, and
// announces it once written. A final write that can never succeed (an output that does not
// fit, a budget) fails the run with that instead, with the journal as last written; when
// even that cannot be written, finish says so where people look and stops, rather than
// retry a write that cannot succeed.
func (r *WorkflowRunReconciler) finish(ctx context.Context, w *runstore.Writer, failure *engine.Failure, output []byte) (ctrl.Result, error) {
	run := w.Run()
	err := r.writeFinal(ctx, w, failure, output)
	var refused *engine.Failure
	if errors.As(err, &refused) {
		err = r.writeFinal(ctx, w, refused, nil)
	}
	switch {
	case errors.As(err, &refused):
		log.FromContext(ctx).Error(err, "cannot record the run's failure")
		r.event(run, corev1.EventTypeWarning, workflowsv1alpha1.ReasonStatusRefused, "Finish", "%s", err)
		r.store.Forget(run.UID)
		return ctrl.Result{}, nil
	case err != nil:
		return r.aborted(ctx, run, err)
	}
	if err := w.Finished(ctx); err != nil {
		log.FromContext(ctx).Error(err, "delete orphaned payloads of a finished run")
	}
	return r.reconcileTTL(ctx, run)
}

// writeFinal writes the run's final status for failure (nil: success) and output, and then
// counts it and records its Event.
func (r *WorkflowRunReconciler) writeFinal(ctx context.Context, w *runstore.Writer, failure *engine.Failure, output []byte) error {
	run := w.Run()
	phase := phaseOf(failure)
	now := metav1.NewTime(r.now()).Rfc3339Copy()
	if run.Status.StartedAt == nil {
		run.Status.StartedAt = &now
	}
	run.Status.Phase = phase
	run.Status.FinishedAt = &now
	run.Status.WakeAt, run.Status.WaitingFor = nil, ""
	run.Status.Output = runstore.RawJSON(output)
	if failure != nil {
		message := statusText(failure.Message)
		run.Status.Error = &workflowsv1alpha1.RunError{Reason: failure.Reason, Message: message}
		r.setCondition(run, metav1.ConditionFalse, failure.Reason, message)
	} else {
		run.Status.CurrentStep = ""
		run.Status.Error = nil
		r.setCondition(run, metav1.ConditionTrue, workflowsv1alpha1.ReasonSucceeded, "the workflow returned its output")
	}
	rt, end := traceOf(ctx), r.now()
	w.Announce(func() {
		rt.Finished(run, end, reasonOf(failure))
		runsFinished.WithLabelValues(run.Spec.WorkflowName, string(phase)).Inc()
		switch phase {
		case workflowsv1alpha1.PhaseSucceeded:
			if !toldBySchedule(run) {
				r.event(run, corev1.EventTypeNormal, workflowsv1alpha1.ReasonSucceeded, "Finish", "workflow %q succeeded", run.Spec.WorkflowName)
			}
		case workflowsv1alpha1.PhaseCancelled:
			r.event(run, corev1.EventTypeNormal, workflowsv1alpha1.ReasonCancelled, "Finish", "%s", failure.Message)
		default:
			r.event(run, corev1.EventTypeWarning, workflowsv1alpha1.ReasonFailed, "Finish", "%s: %s", failure.Reason, failure.Message)
		}
	})
	return w.Write(ctx)
}

// reconcileTTL deletes a finished run once ttlSecondsAfterFinished has passed.
func (r *WorkflowRunReconciler) reconcileTTL(ctx context.Context, run *workflowsv1alpha1.WorkflowRun) (ctrl.Result, error) {
	if run.Spec.TTLSecondsAfterFinished == nil || run.Status.FinishedAt == nil {
		return ctrl.Result{}, nil
	}
	expiry := run.Status.FinishedAt.Add(time.Duration(*run.Spec.TTLSecondsAfterFinished) * time.Second)
	if left := expiry.Sub(r.now()); left > 0 {
		return ctrl.Result{RequeueAfter: left}, nil
	}
	if r.BeforeTTLDelete != nil {
		if err := r.BeforeTTLDelete(ctx, run); err != nil {
			return ctrl.Result{}, fmt.Errorf("prepare the deletion of run %s/%s after its TTL: %w", run.Namespace, run.Name, err)
		}
	}
	err := r.Delete(ctx, run, client.Preconditions{UID: &run.UID}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, fmt.Errorf("delete run %s/%s after its TTL: %w", run.Namespace, run.Name, err)
	}
	return ctrl.Result{}, nil
}

func (r *WorkflowRunReconciler) setCondition(run *workflowsv1alpha1.WorkflowRun, status metav1.ConditionStatus, reason, message string) {
	setCondition(&run.Status.Conditions, metav1.Condition{
		Type: workflowsv1alpha1.ConditionSucceeded, Status: status, Reason: reason,
		Message: message, ObservedGeneration: run.Generation,
	})
}

// toldBySchedule reports whether run is a schedule's tick run, whose success its schedule's
// status tells (recentTicks[].runPhase, lastSuccessfulTime) instead of an Event of the run's:
// an Event per tick would be a request per tick on top of the three a tick needs. Failures
// and cancellations are still Events on the run, which people alert on.
func toldBySchedule(run *workflowsv1alpha1.WorkflowRun) bool {
	return run.Labels[workflowsv1alpha1.LabelSchedule] != "" && schedule.IsTickRun(run)
}

func (r *WorkflowRunReconciler) event(run *workflowsv1alpha1.WorkflowRun, eventType, reason, action, note string, args ...any) {
	emit(r.Events, run, eventType, reason, action, note, args...)
}

func (r *WorkflowRunReconciler) now() time.Time { return now(r.Clock) }

// setPosition records which primitive the run is at and what it waits for.
func setPosition(run *workflowsv1alpha1.WorkflowRun, current string, wakeAt time.Time, target string, state engine.State) {
	run.Status.CurrentStep = current
	run.Status.WakeAt, run.Status.WaitingFor = nil, ""
	switch state {
	case engine.StateSleeping, engine.StateRetrying:
		run.Status.Phase = workflowsv1alpha1.PhaseSleeping
		run.Status.WakeAt = runstore.MicroTime(wakeAt)
		setConditionReason(run, workflowsv1alpha1.ReasonSleeping, fmt.Sprintf("%q sleeps until %s", current, wakeAt.Format(time.RFC3339Nano)))
	case engine.StateWaiting:
		run.Status.Phase = workflowsv1alpha1.PhaseWaiting
		run.Status.WaitingFor = target
		setConditionReason(run, workflowsv1alpha1.ReasonWaiting, fmt.Sprintf("%q waits for %s", current, target))
	default:
		run.Status.Phase = workflowsv1alpha1.PhaseRunning
		setConditionReason(run, workflowsv1alpha1.ReasonRunning, "the workflow is running")
	}
}

// setConditionReason updates the in-flight Succeeded condition.
func setConditionReason(run *workflowsv1alpha1.WorkflowRun, reason, message string) {
	setCondition(&run.Status.Conditions, metav1.Condition{
		Type: workflowsv1alpha1.ConditionSucceeded, Status: metav1.ConditionUnknown,
		Reason: reason, Message: message, ObservedGeneration: run.Generation,
	})
}

// runDeadline is when the run's timeout expires, if it has one and has started.
func runDeadline(run *workflowsv1alpha1.WorkflowRun) (time.Time, bool) {
	if run.Spec.Timeout == nil || run.Status.StartedAt == nil {
		return time.Time{}, false
	}
	return runStart(run).Add(run.Spec.Timeout.Duration), true
}

// SetupWithManager registers the reconciler. Status-only updates (our own writes) do not
// trigger reconciles; spec changes such as cancel do.
func (r *WorkflowRunReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return r.setup(mgr, r)
}

// setup registers rec (r itself, or a wrapper of it) with the manager. A run is woken by
// changes to its spec, by its children and agent turns finishing, and by events it waits for
// (found through a field index, never by listing every run). Under sharding each replica runs
// the controller for the runs of its shard, and a drain label wakes a run to hand it over.
func (r *WorkflowRunReconciler) setup(mgr ctrl.Manager, rec reconcile.Reconciler) error {
	status, err := runstore.NewStatusClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return err
	}
	r.store = runstore.NewStore(r.Storage, mgr.GetClient(), mgr.GetAPIReader(), status)
	r.budget = newExecutionBudget(r.MaxConcurrentReconciles)
	runsInFlight.use(mgr.GetCache())
	if r.view == nil {
		r.view = mgr.GetCache()
	}
	if r.executes == nil {
		r.executes = r.shards.Executes(mgr.Elected())
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &workflowsv1alpha1.WorkflowRun{}, indexWaitingFor, waitingForIndex); err != nil {
		return fmt.Errorf("index runs by what they wait for: %w", err)
	}
	if err := r.view.IndexField(context.Background(), &workflowsv1alpha1.WorkflowRun{}, indexRunRevision, runRevisionIndex(r.Workflows.OperatorNamespace())); err != nil {
		return fmt.Errorf("index runs by the revision they replay: %w", err)
	}
	// Children may run on other shards: their parents hear of them through the view of every
	// run, and only the parent's shard reconciles it.
	children := source.Kind(r.view, client.Object(&workflowsv1alpha1.WorkflowRun{}),
		handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(), &workflowsv1alpha1.WorkflowRun{}, handler.OnlyControllerOwner()),
		finishedPredicate(runFinished))
	b := ctrl.NewControllerManagedBy(mgr).
		For(&workflowsv1alpha1.WorkflowRun{}, builder.WithPredicates(r.shards.Admit(predicate.GenerationChangedPredicate{}))).
		WatchesRawSource(children).
		Owns(&workflowsv1alpha1.AgentRun{}, builder.WithPredicates(agentProgressPredicate())).
		Watches(&workflowsv1alpha1.WorkflowEvent{}, handler.EnqueueRequestsFromMapFunc(r.runsWaitingForEvent), builder.WithPredicates(createdPredicate())).
		Named("workflowrun").
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.MaxConcurrentReconciles, 1), NeedLeaderElection: r.shards.EveryReplica()})
	if r.wake != nil {
		b = b.WatchesRawSource(source.Channel(r.wake, handler.EnqueueRequestsFromMapFunc(r.runsWaitingForEvent)))
	}
	return b.Complete(rec)
}
