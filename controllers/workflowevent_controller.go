package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// secondPassDelay is when a new event wakes its waiting runs a second time. The first wake
// happens on creation from the run controller's watch; the second covers a run whose Waiting
// status reached the cache only after the event did (two informers, no ordering between them).
const secondPassDelay = 2 * time.Second

// WorkflowEventReconciler keeps events for their retention period and then deletes them. It
// runs on the leader; the second wake-up of each new event's runs is eventWaker's, which runs
// wherever runs execute.
type WorkflowEventReconciler struct {
	client.Client
	// Retention is how long an event is kept.
	Retention time.Duration
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
}

// +kubebuilder:rbac:groups=workflows.centaur.dev,resources=workflowevents,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=workflows.centaur.dev,resources=workflowevents/status,verbs=get;update;patch

// Reconcile records the event's expiry and deletes it when its retention has passed.
func (r *WorkflowEventReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ev := &workflowsv1alpha1.WorkflowEvent{}
	if err := r.Get(ctx, req.NamespacedName, ev); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ev.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	now := r.now()
	expiry := ev.CreationTimestamp.Add(r.Retention)
	if !now.Before(expiry) {
		err := r.Delete(ctx, ev, client.Preconditions{UID: &ev.UID})
		if client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("delete expired event %s: %w", req, err)
		}
		return ctrl.Result{}, nil
	}
	if ev.Status.ExpiresAt == nil || !ev.Status.ExpiresAt.Time.Equal(expiry) {
		ev.Status.ExpiresAt = &metav1.Time{Time: expiry}
		if err := r.Status().Update(ctx, ev); err != nil && !apierrors.IsConflict(err) {
			return ctrl.Result{}, fmt.Errorf("record the expiry of event %s: %w", req, err)
		}
	}
	return ctrl.Result{RequeueAfter: expiry.Sub(now)}, nil
}

func (r *WorkflowEventReconciler) now() time.Time { return now(r.Clock) }

// SetupWithManager registers the reconciler; status writes (consumers) do not trigger it.
func (r *WorkflowEventReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&workflowsv1alpha1.WorkflowEvent{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("workflowevent").
		Complete(r)
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
func (w *eventWaker) setup(mgr ctrl.Manager, shards *Sharding) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&workflowsv1alpha1.WorkflowEvent{}, builder.WithPredicates(createdPredicate())).
		Named("workflowevent-wake").
		WithOptions(controller.Options{NeedLeaderElection: shards.everyReplica()}).
		Complete(w)
}
