package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/runstore"
	"github.com/centaur-dev/workflow-operator/sharding/placement"
)

// secondPassDelay is when a new event wakes its waiting runs a second time. The first wake
// happens on creation from the run controller's watch; the second covers a run whose Waiting
// status reached the cache only after the event did (two informers, no ordering between them).
const secondPassDelay = 2 * time.Second

// WorkflowEventReconciler is the one writer of WorkflowEvent status: it records when each event
// expires (and deletes it then) and lists the runs that consumed it (status.consumedBy). It
// runs on the elected replica only; the second wake-up of each new event's runs is eventWaker's,
// which runs wherever runs execute.
//
// The consumers are derived from the runs, not reported by them. A run that receives an event
// records a receipt in its journal (the entry of its wait, whose ref names the event) with the
// status write it makes anyway, and the reconciler learns of receipts from two watches:
//
//   - the runs: the manager's cache, or under sharding the view of every run, both of which
//     keep a run's receipts without their payloads (runstore.LeanRun). Every version of a run
//     passes through receiptHandler, so a receipt is seen even when the run seals it into a
//     segment, or is deleted, right after;
//   - the sealed segments that hold receipts (labelled LabelReceipts, cached lean in a cache of
//     their own), so that a newly elected replica, which lists both anew, also finds the
//     receipts that runs sealed while no replica led.
//
// Under sharding runs execute on every replica and an event may wake runs of several shards;
// a writer per shard would be several writers of one status, racing one another. Receipts
// instead cost the execution nothing beyond its own write (before, each received event cost a
// read and an update of the event, made after the run's write, so a crash in between lost the
// consumer), the consumers that a user sees are never removed, and each event's status is
// written by one reconciler, once per batch of receipts.
type WorkflowEventReconciler struct {
	client.Client
	// Retention is how long an event is kept.
	Retention time.Duration
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Runs holds every run with its receipts: the manager's cache, or under sharding the view
	// of every run. Nil means the manager's cache.
	Runs cache.Cache

	// receipts holds what the watches told of and status does not say yet.
	receipts receiptBook
}

// +kubebuilder:rbac:groups=workflows.centaur.dev,resources=workflowevents,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=workflows.centaur.dev,resources=workflowevents/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=workflows.centaur.dev,resources=workflowrunsegments,verbs=list;watch

// Reconcile brings the event's status up to date, its expiry and its consumers in one write
// (writeStatus), and deletes the event once its retention has passed.
func (r *WorkflowEventReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ev := &workflowsv1alpha1.WorkflowEvent{}
	if err := r.Get(ctx, req.NamespacedName, ev); err != nil {
		if apierrors.IsNotFound(err) {
			return r.receipts.unknownEvent(req.NamespacedName, r.now()), nil
		}
		return ctrl.Result{}, err
	}
	if !ev.DeletionTimestamp.IsZero() {
		r.receipts.forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	now := r.now()
	expiry := ev.CreationTimestamp.Add(r.Retention)
	if !now.Before(expiry) {
		err := r.Delete(ctx, ev, client.Preconditions{UID: &ev.UID})
		if client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("delete expired event %s: %w", req, err)
		}
		r.receipts.forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	updated := ev.DeepCopy()
	expiresAt := metav1.NewTime(expiry).Rfc3339Copy()
	updated.Status.ExpiresAt = &expiresAt
	consumers := r.receipts.consumers(req.NamespacedName, ev.Status.ConsumedBy)
	updated.Status.Consumers = max(int32(len(consumers)), ev.Status.Consumers)
	updated.Status.ConsumedBy = consumers[:min(len(consumers), workflowsv1alpha1.MaxEventConsumers)]
	if _, res, err := writeStatus(ctx, r.Client, ev, updated, "workflow event"); err != nil || !res.IsZero() {
		return res, err
	}
	r.receipts.settle(req.NamespacedName, updated.Status.ConsumedBy)
	return ctrl.Result{RequeueAfter: expiry.Sub(now)}, nil
}

func (r *WorkflowEventReconciler) now() time.Time { return now(r.Clock) }

// SetupWithManager registers the reconciler, on the elected replica: events on creation (their
// status writes do not trigger it), and the events that the receipts of runs and of sealed
// segments name.
func (r *WorkflowEventReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Runs == nil {
		r.Runs = mgr.GetCache()
	}
	segments, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), HTTPClient: mgr.GetHTTPClient(),
		ByObject: map[client.Object]cache.ByObject{&workflowsv1alpha1.WorkflowRunSegment{}: {
			Label:     labels.SelectorFromSet(labels.Set{workflowsv1alpha1.LabelReceipts: "true"}),
			Transform: runstore.LeanSegment,
		}},
	})
	if err != nil {
		return fmt.Errorf("make the cache of segments that hold receipts: %w", err)
	}
	if err := mgr.Add(segments); err != nil {
		return fmt.Errorf("add the cache of segments that hold receipts: %w", err)
	}
	received := r.receiptHandler()
	return ctrl.NewControllerManagedBy(mgr).
		For(&workflowsv1alpha1.WorkflowEvent{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(source.Kind(r.Runs, client.Object(&workflowsv1alpha1.WorkflowRun{}), received)).
		WatchesRawSource(source.Kind(segments, client.Object(&workflowsv1alpha1.WorkflowRunSegment{}), received)).
		Named("workflowevent").
		Complete(r)
}

// receiptHandler hands the receipts of a run or a segment to the book, those the object did
// not hold before on an update, and enqueues the events they name.
func (r *WorkflowEventReconciler) receiptHandler() handler.Funcs {
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			r.learn(q, nil, e.Object)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			r.learn(q, e.ObjectOld, e.ObjectNew)
		},
	}
}

// learn holds the receipts obj has and old had not, and enqueues their events.
func (r *WorkflowEventReconciler) learn(q workqueue.TypedRateLimitingInterface[reconcile.Request], old, obj client.Object) {
	run, receipts := receiptsOf(obj)
	if old != nil {
		_, before := receiptsOf(old)
		receipts = slices.DeleteFunc(receipts, func(e workflowsv1alpha1.JournalEntry) bool {
			return slices.ContainsFunc(before, func(b workflowsv1alpha1.JournalEntry) bool { return b.Name == e.Name && b.Ref == e.Ref })
		})
	}
	for _, key := range r.receipts.learn(obj.GetNamespace(), run, receipts, r.now(), r.Retention) {
		q.Add(reconcile.Request{NamespacedName: key})
	}
}

// receiptsOf returns the run whose receipts obj holds (obj is the run or one of its segments),
// and the receipts.
func receiptsOf(obj client.Object) (string, []workflowsv1alpha1.JournalEntry) {
	switch o := obj.(type) {
	case *workflowsv1alpha1.WorkflowRun:
		return o.Name, runstore.Receipts(o.Status.Journal)
	case *workflowsv1alpha1.WorkflowRunSegment:
		return o.Spec.RunName, runstore.Receipts(o.Spec.Entries)
	}
	return "", nil
}

// eventWaker gives each new event a second chance to wake the runs waiting for it, through
// the run controller's wake channel, secondPassDelay after its creation. It runs where the run
// controller runs: on the leader, or under sharding on every replica, each for its own runs.
type eventWaker struct {
	client.Client
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	wake  chan<- event.GenericEvent
}

// Reconcile waits until the event's second pass is due, then wakes its runs once.
func (w *eventWaker) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ev := &workflowsv1alpha1.WorkflowEvent{}
	if err := w.Get(ctx, req.NamespacedName, ev); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	now := now(w.Clock)
	secondPass := ev.CreationTimestamp.Add(secondPassDelay)
	switch {
	case !ev.DeletionTimestamp.IsZero():
	case now.Before(secondPass):
		return ctrl.Result{RequeueAfter: secondPass.Sub(now)}, nil
	case now.Before(secondPass.Add(secondPassDelay)):
		select {
		case w.wake <- event.GenericEvent{Object: ev}:
		case <-ctx.Done():
		}
	}
	return ctrl.Result{}, nil
}

// setup registers the waker, on every replica under sharding.
func (w *eventWaker) setup(mgr ctrl.Manager, shards *placement.Sharding) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&workflowsv1alpha1.WorkflowEvent{}, builder.WithPredicates(createdPredicate())).
		Named("workflowevent-wake").
		WithOptions(controller.Options{NeedLeaderElection: shards.EveryReplica()}).
		Complete(w)
}
