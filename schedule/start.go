package schedule

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// The few calls that read and write a schedule's runs, shared by the schedule's controller
// (ticks) and the REST API (backfills and manual triggers), so both name, own and find runs
// the same way.

// NameTakenError says that the name of a tick's run is held by an object the schedule does not
// control, so the tick cannot start.
type NameTakenError struct {
	// Name is the run's name.
	Name string
}

func (e *NameTakenError) Error() string {
	return fmt.Sprintf("WorkflowRun %s exists and does not belong to this schedule; delete or rename it so the tick can start", e.Name)
}

// StartRun creates the run of ws for tick (see NewRun) and reports true, or, when the run
// exists already (an earlier manager, replica or backfill created it), returns that run and
// false. The API server lets exactly one creator win, so a tick never starts twice. An object
// of that name that ws does not control is a *NameTakenError.
func StartRun(ctx context.Context, c client.Client, reader client.Reader, ws *workflowsv1alpha1.WorkflowSchedule, tick time.Time, trigger string) (*workflowsv1alpha1.WorkflowRun, bool, error) {
	run := NewRun(ws, tick, trigger)
	err := c.Create(ctx, run)
	if err == nil {
		return run, true, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, false, fmt.Errorf("create run %s of schedule %s/%s: %w", run.Name, ws.Namespace, ws.Name, err)
	}
	existing := &workflowsv1alpha1.WorkflowRun{}
	if err := reader.Get(ctx, client.ObjectKeyFromObject(run), existing); err != nil {
		return nil, false, fmt.Errorf("read the existing run %s of schedule %s/%s: %w", run.Name, ws.Namespace, ws.Name, err)
	}
	if !metav1.IsControlledBy(existing, ws) {
		return nil, false, &NameTakenError{Name: run.Name}
	}
	return existing, false, nil
}

// Runs lists the runs ws controls, through reader (the manager's cache, or the API server):
// those in flight and those finished, each sorted by tick, oldest first.
func Runs(ctx context.Context, reader client.Reader, ws *workflowsv1alpha1.WorkflowSchedule) (active, finished []*workflowsv1alpha1.WorkflowRun, err error) {
	var list workflowsv1alpha1.WorkflowRunList
	if err := reader.List(ctx, &list, client.InNamespace(ws.Namespace),
		client.MatchingLabels{workflowsv1alpha1.LabelSchedule: workflowsv1alpha1.LabelValue(ws.Name)}); err != nil {
		return nil, nil, fmt.Errorf("list the runs of schedule %s/%s: %w", ws.Namespace, ws.Name, err)
	}
	for i := range list.Items {
		run := &list.Items[i]
		switch {
		case !metav1.IsControlledBy(run, ws) || !run.DeletionTimestamp.IsZero():
		case run.Status.Phase.IsFinal():
			finished = append(finished, run)
		default:
			active = append(active, run)
		}
	}
	byTick := func(a, b *workflowsv1alpha1.WorkflowRun) int {
		ta, _ := TickOf(a)
		tb, _ := TickOf(b)
		if c := ta.Compare(tb); c != 0 {
			return c
		}
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	}
	slices.SortFunc(active, byTick)
	slices.SortFunc(finished, byTick)
	return active, finished, nil
}

// Cancel asks each run to stop (spec.cancel), as concurrencyPolicy Replace does before it
// starts the next; runs that finished or were deleted meanwhile are left alone.
func Cancel(ctx context.Context, c client.Client, runs []*workflowsv1alpha1.WorkflowRun) error {
	for _, run := range runs {
		if run.Spec.Cancel || run.Status.Phase.IsFinal() {
			continue
		}
		patch := client.MergeFrom(run.DeepCopy())
		run.Spec.Cancel = true
		if err := c.Patch(ctx, run, patch); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("cancel run %s/%s: %w", run.Namespace, run.Name, err)
		}
	}
	return nil
}
