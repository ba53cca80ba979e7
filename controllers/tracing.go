package controllers

import (
	"context"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/log"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/tracing"
	"github.com/centaur-dev/workflow-operator/runstore"
)

// runTraceKey carries the *tracing.Run of the execution a reconcile is making.
type runTraceKey struct{}

// traced returns ctx carrying the trace of this execution of run, or ctx itself when
// tracing is off: the recorder, the hooks and the final write find it there (traceOf). Its
// logger adds the run span's trace_id and span_id to every line about the run, so that a log
// line leads to the run's trace in the tracing tool.
func (r *WorkflowRunReconciler) traced(ctx context.Context, run *workflowsv1alpha1.WorkflowRun) context.Context {
	if r.Tracing == nil {
		return ctx
	}
	sc := tracing.RunSpanContext(run)
	ctx = log.IntoContext(ctx, log.FromContext(ctx).WithValues("trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String()))
	return context.WithValue(ctx, runTraceKey{}, r.Tracing.Run(run))
}

// traceOf is the trace of the execution ctx belongs to; nil (whose methods do nothing) when
// tracing is off.
func traceOf(ctx context.Context) *tracing.Run {
	rt, _ := ctx.Value(runTraceKey{}).(*tracing.Run)
	return rt
}

// traceRecorded has the spans of entries made once the writer's next write, which records
// them, succeeded: a write that a conflict refuses records nothing, and the execution that
// records the entries then traces them. A copy is kept, since the engine reuses its slice.
func traceRecorded(w *runstore.Writer, rt *tracing.Run, entries []engine.Entry) {
	if rt == nil || len(entries) == 0 {
		return
	}
	recorded := slices.Clone(entries)
	w.Announce(func() { rt.Recorded(recorded) })
}

// stepContext is the engine's StepStarting hook of a traced execution: a step's function gets
// its attempt's trace context. Nil when tracing is off, so that nothing is called.
func stepContext(rt *tracing.Run) func(context.Context, string, int) context.Context {
	if rt == nil {
		return nil
	}
	return rt.StepContext
}

// reasonOf is the reason of failure, "" for none.
func reasonOf(failure *engine.Failure) string {
	if failure == nil {
		return ""
	}
	return failure.Reason
}
