package controllers

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// indexWaitingFor indexes runs by the events they wait for.
const indexWaitingFor = "status.waitingForEvent"

// waitingForIndex returns the event targets of the run's Waiting journal entries.
func waitingForIndex(obj client.Object) []string {
	run, ok := obj.(*workflowsv1alpha1.WorkflowRun)
	if !ok || run.Status.Phase.IsFinal() {
		return nil
	}
	var keys []string
	for _, e := range run.Status.Journal {
		if e.Kind == workflowsv1alpha1.EntryKindEvent && e.State == workflowsv1alpha1.EntryStateWaiting {
			keys = append(keys, e.Target)
		}
	}
	return keys
}

// runsWaitingForEvent maps an event to the runs in its namespace that wait for its type and
// correlation id, through the field index.
func (r *WorkflowRunReconciler) runsWaitingForEvent(ctx context.Context, obj client.Object) []reconcile.Request {
	ev, ok := obj.(*workflowsv1alpha1.WorkflowEvent)
	if !ok {
		return nil
	}
	key := engine.EventTarget(ev.Spec.Type, ev.Spec.CorrelationID)
	return requestsForList(ctx, r.Client, &workflowsv1alpha1.WorkflowRunList{}, fmt.Sprintf("the runs waiting for event %s/%s", ev.Namespace, ev.Name),
		client.InNamespace(ev.Namespace), client.MatchingFields{indexWaitingFor: key})
}

// cancelChildren sets spec.cancel on the run's unfinished children, wherever they run.
func (r *WorkflowRunReconciler) cancelChildren(ctx context.Context, run *workflowsv1alpha1.WorkflowRun) error {
	var children workflowsv1alpha1.WorkflowRunList
	if err := r.view.List(ctx, &children, client.InNamespace(run.Namespace), client.MatchingLabels{workflowsv1alpha1.LabelParentRun: workflowsv1alpha1.LabelValue(run.Name)}); err != nil {
		return err
	}
	for i := range children.Items {
		child := &children.Items[i]
		if child.Spec.Cancel || child.Status.Phase.IsFinal() || !metav1.IsControlledBy(child, run) {
			continue
		}
		patch := client.MergeFrom(child.DeepCopy())
		child.Spec.Cancel = true
		if err := r.Patch(ctx, child, patch); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

// runFinished and agentFinished report whether an owned object reached its final phase.
func runFinished(obj client.Object) bool {
	run, ok := obj.(*workflowsv1alpha1.WorkflowRun)
	return ok && run.Status.Phase.IsFinal()
}

func agentFinished(obj client.Object) bool {
	turn, ok := obj.(*workflowsv1alpha1.AgentRun)
	return ok && turn.Status.Phase.IsFinal()
}

// finishedPredicate passes an owned object's update only when it just finished, so a parent
// is not woken by every step of its children.
func finishedPredicate(finished func(client.Object) bool) predicate.Funcs {
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return finished(e.Object) },
		UpdateFunc:  func(e event.UpdateEvent) bool { return !finished(e.ObjectOld) && finished(e.ObjectNew) },
		DeleteFunc:  func(event.DeleteEvent) bool { return true },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// createdPredicate passes creations only: an event's later updates are its consumers.
func createdPredicate() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return true },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return true },
	}
}
