package controllers

import (
	"context"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/crashguard"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/runstore"
	"github.com/centaur-dev/workflow-operator/workflowfile"
	"github.com/centaur-dev/workflow-operator/workflowfile/sandbox"
)

// guard enters a run of a WorkflowDefinition into the crash guard for its execution: it then
// executes alone when it has strikes, and fails with a failure when it is convicted. leave
// ends the record and reports whether the run was a bystander (it had strikes, executed alone
// and the process lived), whose strikes the caller clears once the outcome is written; it is a
// no-op for every other run.
func (r *WorkflowRunReconciler) guard(ctx context.Context, run *workflowsv1alpha1.WorkflowRun, wf durable.Workflow) (leave func() (bystander bool), failure *engine.Failure, err error) {
	if _, tenant := tenantCode(wf); !tenant || (r.Crashes == nil && r.Sandbox == nil) {
		return func() bool { return false }, nil, nil
	}
	strikes := crashStrikes(run)
	if strikes >= crashguard.Conviction {
		if err := r.quarantineRevision(ctx, run); err != nil {
			return nil, nil, err
		}
		return nil, &engine.Failure{Reason: workflowsv1alpha1.ReasonQuarantined, Message: fmt.Sprintf(
			"%s died while this run's code executed alone, after it was among the runs executing at an earlier death (%s: %d): its code most likely exceeds its memory bound, and the run is stopped so that it cannot take more processes down; its definition's revision %s is quarantined. Look for a step or handler that builds a very large value",
			r.executor(), workflowsv1alpha1.AnnotationCrashStrikes, strikes, run.Status.WorkflowRevision)}, nil
	}
	def, err := r.definitionQuarantining(ctx, run)
	switch {
	case err != nil:
		return nil, nil, err
	case def != "":
		return nil, &engine.Failure{Reason: workflowsv1alpha1.ReasonQuarantined, Message: fmt.Sprintf(
			"revision %s of WorkflowDefinition %s is quarantined: another run of it killed the manager's process, so this one does not execute",
			run.Status.WorkflowRevision, def)}, nil
	}
	if r.Sandbox != nil {
		// The run executes in a worker; one with strikes in a worker of its own (executeHandler).
		return func() bool { return strikes > 0 }, nil, nil
	}
	end, alone, err := r.Crashes.Enter(ctx, crashguard.Run{Namespace: run.Namespace, Name: run.Name, UID: string(run.UID)}, strikes > 0)
	if err != nil {
		return nil, nil, err
	}
	return func() bool {
		end()
		return alone
	}, nil, nil
}

// executor names the process that executes tenants' code, for status messages.
func (r *WorkflowRunReconciler) executor() string {
	if r.Sandbox != nil {
		return fmt.Sprintf("the sandbox process that executed it (memory budget %d MiB, --definition-execution-memory)", r.Sandbox.Memory()>>20)
	}
	return "the manager's process"
}

// executeHandler runs the handler of wf: in the sandbox for a WorkflowDefinition's run when there is
// one (alone, in a worker of its own, when the run has strikes), in the manager otherwise. A
// death says the sandbox's worker died under the execution.
func (r *WorkflowRunReconciler) executeHandler(ctx context.Context, wf durable.Workflow, w *runstore.Writer, journal *engine.Journal) (engine.Outcome, *sandbox.Death) {
	ex := r.execution(ctx, w, journal)
	code, ok := tenantCode(wf)
	if r.Sandbox == nil || !ok {
		return engine.Execute(ctx, wf, ex), nil
	}
	return r.Sandbox.Execute(ctx, code.Bundle(), code.Revision(), ex, crashStrikes(w.Run()) > 0)
}

// sandboxDied counts a strike on a run whose worker died under it: one when it shared the
// worker, a conviction when it had the worker alone. The run executes again (alone, since it
// has a strike), or is stopped as convicted (guard).
func (r *WorkflowRunReconciler) sandboxDied(ctx context.Context, w *runstore.Writer, death *sandbox.Death) (ctrl.Result, error) {
	run := w.Run()
	r.store.Forget(run.UID)
	strikes := crashguard.Strikes(death.Alone)
	r.event(run, corev1.EventTypeWarning, workflowsv1alpha1.ReasonSandboxDied, "Execute", "%s; %d strike(s) counted on this run (%s)",
		death.Error(), strikes, workflowsv1alpha1.AnnotationCrashStrikes)
	log.FromContext(ctx).Info("sandbox_died", "run", run.Name, "alone", death.Alone, "error", death.Error())
	if err := addCrashStrikes(ctx, r.Client, run, string(run.UID), strikes); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{Requeue: true}, nil
}

// addCrashStrikes adds strikes to the run of uid (none when run is another of its name).
func addCrashStrikes(ctx context.Context, c client.Client, run *workflowsv1alpha1.WorkflowRun, uid string, strikes int) error {
	total := crashStrikes(run) + strikes
	patch := []byte(fmt.Sprintf(`{"metadata":{"uid":%q,"annotations":{%q:%q}}}`, uid, workflowsv1alpha1.AnnotationCrashStrikes, strconv.Itoa(total)))
	if err := c.Patch(ctx, run, client.RawPatch(types.MergePatchType, patch)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("count a crash strike on run %s/%s: %w", run.Namespace, run.Name, err)
	}
	return nil
}

// clearCrashStrikes removes the strikes of a run that executed alone and did not kill the
// process: it was a bystander of the deaths it was counted for.
func (r *WorkflowRunReconciler) clearCrashStrikes(ctx context.Context, run *workflowsv1alpha1.WorkflowRun) {
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:null}}}`, workflowsv1alpha1.AnnotationCrashStrikes))
	err := r.Patch(context.WithoutCancel(ctx), &workflowsv1alpha1.WorkflowRun{ObjectMeta: run.ObjectMeta}, client.RawPatch(types.MergePatchType, patch))
	if client.IgnoreNotFound(err) != nil {
		log.FromContext(ctx).Error(err, "clear the crash strikes of a run that executed alone and let the process live")
	}
}

// +kubebuilder:rbac:groups=workflows.centaur.dev,resources=workflowdefinitions,verbs=get;list;watch;patch

// quarantineRevision marks the definitions of run's namespace whose current revision is the
// run's as quarantined, so that no new run starts on it (the definition's Ready condition
// says Quarantined) and its other runs stop before they execute.
func (r *WorkflowRunReconciler) quarantineRevision(ctx context.Context, run *workflowsv1alpha1.WorkflowRun) error {
	var defs workflowsv1alpha1.WorkflowDefinitionList
	if err := r.List(ctx, &defs, client.InNamespace(run.Namespace)); err != nil {
		return fmt.Errorf("list the definitions of namespace %s to quarantine revision %s: %w", run.Namespace, run.Status.WorkflowRevision, err)
	}
	for i := range defs.Items {
		def := &defs.Items[i]
		if def.Status.Revision != run.Status.WorkflowRevision || def.Annotations[workflowsv1alpha1.AnnotationQuarantinedRevision] == def.Status.Revision {
			continue
		}
		patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, workflowsv1alpha1.AnnotationQuarantinedRevision, def.Status.Revision))
		if err := r.Patch(ctx, def, client.RawPatch(types.MergePatchType, patch)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("quarantine revision %s of definition %s/%s: %w", def.Status.Revision, def.Namespace, def.Name, err)
		}
		log.FromContext(ctx).Info("definition_quarantined", "namespace", def.Namespace, "definition", def.Name, "revision", def.Status.Revision, "run", run.Name)
	}
	return nil
}

// definitionQuarantining returns the name of the definition of run's namespace that
// quarantined the run's revision, or "". It runs before every execution of a tenant's run, so
// it reads the cache's objects without copying them.
func (r *WorkflowRunReconciler) definitionQuarantining(ctx context.Context, run *workflowsv1alpha1.WorkflowRun) (string, error) {
	if run.Status.WorkflowRevision == "" {
		return "", nil
	}
	var defs workflowsv1alpha1.WorkflowDefinitionList
	if err := r.List(ctx, &defs, client.InNamespace(run.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return "", fmt.Errorf("list the definitions of namespace %s: %w", run.Namespace, err)
	}
	for i := range defs.Items {
		if defs.Items[i].Annotations[workflowsv1alpha1.AnnotationQuarantinedRevision] == run.Status.WorkflowRevision {
			return defs.Items[i].Name, nil
		}
	}
	return "", nil
}

// fileCode is a workflow file's compiled workflow: the bundle it was compiled from and its
// revision.
type fileCode interface {
	Bundle() workflowfile.Bundle
	Revision() string
}

// tenantCode returns wf as a WorkflowDefinition's code (tenants' Starlark, which the sandbox
// or, without one, the manager's process executes), or false for any other workflow.
func tenantCode(wf durable.Workflow) (fileCode, bool) {
	code, ok := wf.(fileCode)
	if !ok || code.Bundle().Origin != workflowfile.OriginDefinition {
		return nil, false
	}
	return code, true
}

// crashStrikes reads a run's strikes; a value that is not a count reads as none (only the
// manager writes it).
func crashStrikes(run *workflowsv1alpha1.WorkflowRun) int {
	n, err := strconv.Atoi(run.Annotations[workflowsv1alpha1.AnnotationCrashStrikes])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// CountCrashStrikes adds to each suspect run the strikes of the process death it was executing
// at, then forgets the suspect. The manager calls it when it starts, before it executes runs.
// A run that is gone (or was replaced by another of its name) is forgotten as is.
func CountCrashStrikes(ctx context.Context, c client.Client, g *crashguard.Guard, suspects []crashguard.Suspect) error {
	for _, s := range suspects {
		run := &workflowsv1alpha1.WorkflowRun{}
		err := c.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: s.Name}, run)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("read run %s/%s, which was executing when the manager's process died: %w", s.Namespace, s.Name, err)
		case string(run.UID) == s.UID:
			if err := addCrashStrikes(ctx, c, run, s.UID, s.Strikes()); err != nil {
				return err
			}
		}
		if err := g.Forget(s); err != nil {
			return err
		}
	}
	return nil
}
