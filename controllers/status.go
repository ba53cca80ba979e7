package controllers

import (
	"context"
	"fmt"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// Every reconciler writes its object's status the same way, as Flux's controllers do: it
// computes the whole status first, writes it in one place, and only once the write succeeded
// records the Events and metrics that describe what it wrote. A write that is refused
// announces nothing; the next reconcile computes the status again and announces it then.
//
// The places that write: the WorkflowRun reconciler's runstore.Writer (the run's journal goes
// with its status), and patchStatus below for the others: AgentRun (writeStatus), WebhookEndpoint
// (writeStatus), WorkflowDefinition (writeStatus), WorkflowSchedule (summarize) and
// WorkflowEvent (writeStatus).

// statusRetryAfter is when a reconcile whose status write lost a race reads its object again.
const statusRetryAfter = 250 * time.Millisecond

// patchStatus writes obj's status when it differs from base's, base being obj as it was read:
// one merge patch of the status subresource, guarded by base's resourceVersion, so that a
// status computed from a stale read is refused as a conflict instead of undoing someone
// else's write. It reports whether it wrote; on success obj holds what the API server stored.
// Only the status of obj may differ from base.
func patchStatus(ctx context.Context, c client.Client, base, obj client.Object) (bool, error) {
	if apiequality.Semantic.DeepEqual(base, obj) {
		return false, nil
	}
	if err := c.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return false, err
	}
	return true, nil
}

// writeStatus is patchStatus for a reconcile that ends with the write: it also returns the
// reconcile's outcome (see requeueOnConflict), an error naming what, and which object, it
// was writing.
func writeStatus(ctx context.Context, c client.Client, base, obj client.Object, what string) (bool, ctrl.Result, error) {
	written, err := patchStatus(ctx, c, base, obj)
	if err != nil {
		res, err := requeueOnConflict(fmt.Errorf("write the status of %s %s/%s: %w", what, base.GetNamespace(), base.GetName(), err))
		return false, res, err
	}
	return written, ctrl.Result{}, nil
}

// requeueOnConflict is the outcome of a reconcile that failed with err. A conflict, or an
// object that is gone, means someone else changed the object since it was read: the reconcile
// comes back shortly to read it again (the change may be one its watch does not pass on, such
// as a label). Any other error goes to the controller's backoff.
func requeueOnConflict(err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return ctrl.Result{RequeueAfter: statusRetryAfter}, nil
	}
	return ctrl.Result{}, err
}

// finding is a reason (one of api/v1alpha1's) with a message for people that says what
// happened and, where something is wrong, what to fix: what a reconcile decided about an
// object, or why one of its references (a Secret, a webhook's secret_ref) does not resolve.
// Packages outside controllers have their own: engine.Failure for a run's failure, the API's
// RunError in a status, schedule.SpecError for an unusable schedule.
type finding struct {
	reason, message string
}

// readiness is what a reconcile decided for an object's Ready condition.
type readiness struct {
	status metav1.ConditionStatus
	finding
}

// setIn records the readiness as the Ready condition among conditions, for generation.
func (r readiness) setIn(conditions *[]metav1.Condition, generation int64) {
	setCondition(conditions, metav1.Condition{Type: workflowsv1alpha1.ConditionReady, Status: r.status,
		Reason: r.reason, Message: r.message, ObservedGeneration: generation})
}

// changes reports whether the readiness says something else than the Ready condition among
// conditions (as last written): a change worth a log line and an Event.
func (r readiness) changes(conditions []metav1.Condition) bool {
	return !conditionSays(meta.FindStatusCondition(conditions, workflowsv1alpha1.ConditionReady), r.status, r.reason, r.message)
}

// readyAs and unready are the readiness of an object that is Ready, or not, for reason.
func readyAs(reason, message string) readiness {
	return readiness{status: metav1.ConditionTrue, finding: finding{reason, message}}
}

func unready(reason, message string) readiness {
	return readiness{status: metav1.ConditionFalse, finding: finding{reason, message}}
}

// requestsForList is the map function of a watch that wakes the objects a list finds: it
// lists list with opts and returns a reconcile request per item. A failed list wakes nothing
// and is logged as listing what.
func requestsForList(ctx context.Context, c client.Reader, list client.ObjectList, what string, opts ...client.ListOption) []reconcile.Request {
	if err := c.List(ctx, list, opts...); err != nil {
		log.FromContext(ctx).Error(err, "list "+what)
		return nil
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		log.FromContext(ctx).Error(err, "list "+what)
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(items))
	for _, item := range items {
		if obj, ok := item.(client.Object); ok {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
		}
	}
	return reqs
}
