package restapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// Polling of a run whose first segment another process executes.
const (
	firstPoll = 20 * time.Millisecond
	maxPoll   = 250 * time.Millisecond
)

// eagerStart lets run's first segment execute before the answer, and returns the run as it
// stands then, or as it stands when EagerStartTimeout has passed. On the replica that executes
// the run (the leader, or under sharding the run's shard) the run goes straight to the engine
// in this process (no wait for the watch); elsewhere the run's executor picks it up as usual
// and the run is polled until its first write is visible. The execution itself is never cut short
// by the bound or by the client going away: it goes on in the background, as a reconcile would,
// never at the same time as the controller's own execution of the run. The engine executes
// within the controller's budget (--max-concurrent-reconciles): when that is spent, the answer
// is the run as created, at once, and the controller runs it when a slot frees.
func (a *api) eagerStart(ctx context.Context, run *workflowsv1alpha1.WorkflowRun) *workflowsv1alpha1.WorkflowRun {
	ctx, cancel := context.WithTimeout(ctx, a.deps.EagerStartTimeout)
	defer cancel()
	key := client.ObjectKeyFromObject(run)
	if a.deps.Engine != nil && a.deps.Engine.Executes(run) {
		select {
		case res := <-a.execute(ctx, run):
			if res.err == nil && firstSegmentDone(res.run) {
				return res.run
			}
			if budgetSpent(res.err) {
				return run
			}
			if res.err != nil {
				a.log.V(1).Info("eager start handed the run back to the controller", "run", key.String(), "reason", res.err.Error())
			}
		case <-ctx.Done():
		}
	}
	return a.awaitFirstSegment(ctx, key, run)
}

// budgetSpent reports whether err says the engine did not execute the run because the
// process's execution budget is spent (controllers.ErrBudgetSpent, which offers BudgetSpent).
func budgetSpent(err error) bool {
	var spent interface{ BudgetSpent() bool }
	return errors.As(err, &spent) && spent.BudgetSpent()
}

// executeResult is what the engine's Execute returned.
type executeResult struct {
	run *workflowsv1alpha1.WorkflowRun
	err error
}

// execute runs the engine on the run as created in a goroutine whose context outlives the
// request, so that a step is never cancelled because the answer was sent. A panic becomes an
// error.
func (a *api) execute(ctx context.Context, created *workflowsv1alpha1.WorkflowRun) <-chan executeResult {
	key := client.ObjectKeyFromObject(created)
	done := make(chan executeResult, 1)
	execCtx := log.IntoContext(context.WithoutCancel(ctx), a.log.WithValues("workflowrun", key.String(), "eager", true))
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- executeResult{err: fmt.Errorf("panic in eager start: %v", v)}
			}
		}()
		run, err := a.deps.Engine.Execute(execCtx, created)
		done <- executeResult{run: run, err: err}
	}()
	return done
}

// awaitFirstSegment polls the run until its first segment executed or ctx ends, and returns
// the last copy read (last when nothing could be read).
func (a *api) awaitFirstSegment(ctx context.Context, key client.ObjectKey, last *workflowsv1alpha1.WorkflowRun) *workflowsv1alpha1.WorkflowRun {
	wait := firstPoll
	for {
		fresh := &workflowsv1alpha1.WorkflowRun{}
		// A read of its own, so that the answer reports the run even when the bound has passed.
		readCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		err := a.deps.Reader.Get(readCtx, key, fresh)
		cancel()
		if err == nil {
			last = fresh
		}
		if firstSegmentDone(last) || ctx.Err() != nil {
			return last
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, maxPoll)
	}
}

// firstSegmentDone reports whether the engine took the run as far as it could go at once:
// it is suspended (sleeping or waiting) or finished.
func firstSegmentDone(run *workflowsv1alpha1.WorkflowRun) bool {
	switch run.Status.Phase {
	case "", workflowsv1alpha1.PhasePending, workflowsv1alpha1.PhaseRunning:
		return false
	default:
		return true
	}
}
