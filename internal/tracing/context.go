package tracing

import (
	"context"
	"crypto/sha256"
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// TraceparentHeader is the W3C Trace Context header a request that starts a run may carry.
const TraceparentHeader = "traceparent"

// ParseTraceparent returns the span context of a W3C traceparent value, invalid when the
// value is not one.
func ParseTraceparent(value string) trace.SpanContext {
	if value == "" {
		return trace.SpanContext{}
	}
	carrier := propagation.MapCarrier{TraceparentHeader: value}
	return trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), carrier))
}

// FormatTraceparent is the W3C traceparent value of sc ("" when sc is invalid).
func FormatTraceparent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), carrier)
	return carrier[TraceparentHeader]
}

// Incoming is the traceparent to keep on a run that a request with header starts: the
// header's value normalised, or "" when the request carries none or an invalid one (which is
// ignored, as the W3C recommendation asks, rather than refused).
func Incoming(header http.Header) string {
	return FormatTraceparent(ParseTraceparent(header.Get(TraceparentHeader)))
}

// KeepParent stores traceparent on run as the parent of its trace
// (AnnotationTraceparent); an empty traceparent leaves run as it is.
func KeepParent(run *workflowsv1alpha1.WorkflowRun, traceparent string) {
	if traceparent == "" {
		return
	}
	if run.Annotations == nil {
		run.Annotations = map[string]string{}
	}
	run.Annotations[workflowsv1alpha1.AnnotationTraceparent] = traceparent
}

// parentOf is the span context run's trace continues (AnnotationTraceparent), invalid for
// a run whose trace starts with it.
func parentOf(run *workflowsv1alpha1.WorkflowRun) trace.SpanContext {
	return ParseTraceparent(run.Annotations[workflowsv1alpha1.AnnotationTraceparent])
}

// RunSpanContext is the identity of run's span, the parent of everything the run does. It
// derives from the run alone, so every execution on every replica finds the same one without
// a write: the trace ID is its parent's (AnnotationTraceparent), or one derived from the
// run's UID for a run that starts its own trace; the span ID derives from the trace ID, the
// namespace and the name, so that a parent can name the span of a child it created
// (childSpanContext). The sampled flag follows the parent's.
func RunSpanContext(run *workflowsv1alpha1.WorkflowRun) trace.SpanContext {
	parent := parentOf(run)
	tid, flags := parent.TraceID(), parent.TraceFlags()
	if !parent.IsValid() {
		tid, flags = traceIDOf(string(run.UID)), trace.FlagsSampled
	}
	return runSpanContext(tid, flags, run.Namespace, run.Name)
}

// runSpanContext is the span context of the run namespace/name in the trace tid.
func runSpanContext(tid trace.TraceID, flags trace.TraceFlags, namespace, name string) trace.SpanContext {
	sum := sha256.Sum256([]byte("centaur/run-span\x00" + tid.String() + "\x00" + namespace + "\x00" + name))
	var sid trace.SpanID
	copy(sid[:], sum[:])
	if !sid.IsValid() {
		sid[7] = 1
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags})
}

// traceIDOf derives the trace ID of a run that starts its own trace from its UID.
func traceIDOf(uid string) trace.TraceID {
	sum := sha256.Sum256([]byte("centaur/run-trace\x00" + uid))
	var tid trace.TraceID
	copy(tid[:], sum[:])
	if !tid.IsValid() {
		tid[15] = 1
	}
	return tid
}

// ChildTraceparent is the traceparent to keep on a child run that parent creates: the child's
// span is then a child of the parent's run span, in the parent's trace.
func ChildTraceparent(parent *workflowsv1alpha1.WorkflowRun) string {
	return FormatTraceparent(RunSpanContext(parent))
}

// childSpanContext is the span of the child run named name that the run of span parent
// created in namespace (see ChildTraceparent): the target of its Child entries' links.
func childSpanContext(parent trace.SpanContext, namespace, name string) trace.SpanContext {
	return runSpanContext(parent.TraceID(), parent.TraceFlags(), namespace, name)
}
