package tracing

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// The attributes of the spans, documented in docs/observability.md. The OpenTelemetry
// conventions' names are used where they exist (error.type, gen_ai.*).
const (
	AttrWorkflow      = "centaur.workflow.name"
	AttrRunNamespace  = "centaur.run.namespace"
	AttrRunName       = "centaur.run.name"
	AttrRunUID        = "centaur.run.uid"
	AttrRunPhase      = "centaur.run.phase"
	AttrPrimitive     = "centaur.primitive.name"
	AttrKind          = "centaur.primitive.kind"
	AttrTarget        = "centaur.primitive.target"
	AttrAttempt       = "centaur.step.attempt"
	AttrWillRetry     = "centaur.step.will_retry"
	AttrWakeAt        = "centaur.sleep.wake_at"
	AttrChildRun      = "centaur.child.run"
	AttrErrorType     = "error.type"
	AttrModel         = "gen_ai.response.model"
	AttrInputTokens   = "gen_ai.usage.input_tokens"
	AttrOutputTokens  = "gen_ai.usage.output_tokens"
	AttrTotalTokens   = "centaur.agent.total_tokens"
	otherErrorType    = "_OTHER"
	timeoutErrorType  = "timeout"
	waitTimedOutError = "timed out"
)

// Run traces the executions of one run on this manager: nil when tracing is off, and every
// method of a nil *Run does nothing. Its spans are made only for what a write has recorded
// (Recorded) and for the run's end (Finished), so a replay, which records nothing new, makes
// none.
type Run struct {
	tracer    trace.Tracer
	span      trace.SpanContext
	namespace string

	mu sync.Mutex
	// attempts holds the step attempts the engine reported and the journal has not recorded
	// yet, by step name: their exact times and their error.
	attempts map[string]attempt
}

// attempt is one call of a step's function, as the engine's StepAttempted hook saw it.
type attempt struct {
	start, end time.Time
	err        error
}

// Run starts tracing an execution of run (nil when p is nil: tracing is off).
func (p *Provider) Run(run *workflowsv1alpha1.WorkflowRun) *Run {
	if p == nil {
		return nil
	}
	return &Run{tracer: p.tracer, span: RunSpanContext(run), namespace: run.Namespace, attempts: map[string]attempt{}}
}

// StepContext is the context a step's function gets for its attempt (the engine's
// Hooks.StepStarting): ctx carrying the attempt's span context, which the attempt's span takes
// when it is made, so that the requests the function makes with it (through an OpenTelemetry
// instrumented client, or the global propagator) carry the attempt's traceparent, and spans
// the function starts are the attempt's children.
func (r *Run) StepContext(ctx context.Context, step string, attempt int) context.Context {
	if r == nil {
		return ctx
	}
	return trace.ContextWithSpanContext(ctx, r.attemptSpanContext(step, attempt))
}

// attemptSpanContext is the span context of a step's attempt: in the run's trace, with an ID
// derived from the run's span, the step and the attempt, so that the function's context and
// the span made after it name the same span.
func (r *Run) attemptSpanContext(step string, attempt int) trace.SpanContext {
	sum := sha256.Sum256([]byte("centaur/attempt\x00" + r.span.SpanID().String() + "\x00" + step + "\x00" + strconv.Itoa(attempt)))
	var sid trace.SpanID
	copy(sid[:], sum[:])
	if !sid.IsValid() {
		sid[7] = 1
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: r.span.TraceID(), SpanID: sid, TraceFlags: r.span.TraceFlags()})
}

// StepAttempted remembers that a call of step's function ended now after took, with err, for
// the span Recorded makes once the journal records the attempt. It is the engine's
// Hooks.StepAttempted and may be called from a Parallel branch's goroutine.
func (r *Run) StepAttempted(step string, took time.Duration, err error) {
	if r == nil {
		return
	}
	end := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[step] = attempt{start: end.Add(-took), end: end, err: err}
}

// Recorded makes the spans of entries, which a write has just recorded: an attempt of a step
// (failed and retrying, or final), and a sleep, wait, child run or agent turn once it is final.
// An entry still sleeping or waiting gets its span when it ends, with its whole duration.
func (r *Run) Recorded(entries []engine.Entry) {
	if r == nil {
		return
	}
	for i := range entries {
		r.recorded(&entries[i])
	}
}

// recorded makes the span of one recorded entry, if it has one now.
func (r *Run) recorded(e *engine.Entry) {
	switch {
	case e.Kind == engine.KindStep:
		r.stepSpan(e)
	case e.Kind == engine.KindVersion:
	case e.State == engine.StateCompleted || e.State == engine.StateFailed:
		r.primitiveSpan(e)
	}
}

// stepSpan makes the span of the step attempt e records, timed as the engine saw it (or, for
// an attempt made in another process, from the entry's times).
func (r *Run) stepSpan(e *engine.Entry) {
	r.mu.Lock()
	a, seen := r.attempts[e.Name]
	delete(r.attempts, e.Name)
	r.mu.Unlock()
	if !seen {
		a = attemptOf(e)
	}
	attrs := []attribute.KeyValue{attribute.Int(AttrAttempt, e.Attempts), attribute.Bool(AttrWillRetry, e.State == engine.StateRetrying)}
	errorType := e.ErrorType
	if errorType == "" && a.err != nil {
		errorType = fmt.Sprintf("%T", a.err)
	}
	r.emitAs(r.attemptSpanContext(e.Name, e.Attempts).SpanID(), e, a.start, a.end, errorType, attrs, nil)
}

// attemptOf is what an entry says of its last attempt when the engine's hook did not: its
// end, and its start when it was the first.
func attemptOf(e *engine.Entry) attempt {
	end := e.FinishedAt
	if end.IsZero() {
		end = time.Now()
	}
	start := end
	if e.Attempts <= 1 && !e.StartedAt.IsZero() {
		start = e.StartedAt
	}
	return attempt{start: start, end: end}
}

// primitiveSpan makes the span of a final sleep, event, child or agent entry, from when the
// run reached it to when it ended.
func (r *Run) primitiveSpan(e *engine.Entry) {
	var (
		attrs []attribute.KeyValue
		links []trace.Link
	)
	switch e.Kind {
	case engine.KindSleep:
		attrs = append(attrs, attribute.String(AttrWakeAt, e.WakeAt.UTC().Format(time.RFC3339Nano)))
	case engine.KindChild:
		if e.Ref != "" {
			attrs = append(attrs, attribute.String(AttrChildRun, e.Ref))
			links = append(links, trace.Link{SpanContext: childSpanContext(r.span, r.namespace, e.Ref)})
		}
	case engine.KindAgent:
		attrs = append(attrs, agentAttributes(e)...)
	}
	errorType := ""
	if e.State == engine.StateFailed {
		errorType = waitErrorType(e.Error)
	}
	r.emit(e, e.StartedAt, e.FinishedAt, errorType, attrs, links)
}

// waitErrorType is the error.type of a failed wait: "timeout", or the reason its error
// starts with ("Reason: message").
func waitErrorType(message string) string {
	if message == waitTimedOutError {
		return timeoutErrorType
	}
	if reason, _, ok := strings.Cut(message, ": "); ok && reason != "" && !strings.Contains(reason, " ") {
		return reason
	}
	return otherErrorType
}

// agentAttributes are the model and token counts of an agent turn's recorded result; never
// its prompt nor its text. A result stored out of line is not read for them.
func agentAttributes(e *engine.Entry) []attribute.KeyValue {
	if len(e.Result) == 0 {
		return nil
	}
	var res durable.AgentResult
	if json.Unmarshal(e.Result, &res) != nil {
		return nil
	}
	var attrs []attribute.KeyValue
	if res.Model != "" {
		attrs = append(attrs, attribute.String(AttrModel, res.Model))
	}
	return append(attrs, attribute.Int64(AttrInputTokens, res.PromptTokens),
		attribute.Int64(AttrOutputTokens, res.CompletionTokens), attribute.Int64(AttrTotalTokens, res.TotalTokens))
}

// emit makes the span of entry e, a child of the run's span, from start to end; a non-empty
// errorType marks it failed with the entry's error.
func (r *Run) emit(e *engine.Entry, start, end time.Time, errorType string, attrs []attribute.KeyValue, links []trace.Link) {
	r.emitAs(trace.SpanID{}, e, start, end, errorType, attrs, links)
}

// emitAs is emit with the span ID sid (a random one when sid is invalid).
func (r *Run) emitAs(sid trace.SpanID, e *engine.Entry, start, end time.Time, errorType string, attrs []attribute.KeyValue, links []trace.Link) {
	attrs = append(attrs, attribute.String(AttrPrimitive, e.Name), attribute.String(AttrKind, string(e.Kind)))
	if e.Target != "" {
		attrs = append(attrs, attribute.String(AttrTarget, e.Target))
	}
	if errorType != "" {
		attrs = append(attrs, attribute.String(AttrErrorType, errorType))
	}
	ctx := trace.ContextWithSpanContext(context.Background(), r.span)
	if sid.IsValid() {
		ctx = withIDs(ctx, r.span.TraceID(), sid)
	}
	_, span := r.tracer.Start(ctx, strings.ToLower(string(e.Kind))+" "+e.Name,
		trace.WithTimestamp(start), trace.WithAttributes(attrs...), trace.WithLinks(links...))
	if errorType != "" {
		span.SetStatus(codes.Error, e.Error)
	}
	span.End(trace.WithTimestamp(end))
}

// Finished makes run's span, once the write that made the run final succeeded: from the
// run's create to end, with the identity every span of the run has named as its parent
// (RunSpanContext), a child of the context the run was started in (AnnotationTraceparent).
// failureReason is the reason of a run that did not succeed.
func (r *Run) Finished(run *workflowsv1alpha1.WorkflowRun, end time.Time, failureReason string) {
	if r == nil {
		return
	}
	ctx := context.Background()
	if parent := parentOf(run); parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	ctx = withIDs(ctx, r.span.TraceID(), r.span.SpanID())
	attrs := []attribute.KeyValue{
		attribute.String(AttrWorkflow, run.Spec.WorkflowName), attribute.String(AttrRunNamespace, run.Namespace),
		attribute.String(AttrRunName, run.Name), attribute.String(AttrRunUID, string(run.UID)),
		attribute.String(AttrRunPhase, string(run.Status.Phase)),
	}
	if failureReason != "" {
		attrs = append(attrs, attribute.String(AttrErrorType, failureReason))
	}
	_, span := r.tracer.Start(ctx, "run "+run.Spec.WorkflowName, trace.WithTimestamp(run.CreationTimestamp.Time),
		trace.WithAttributes(attrs...))
	if failureReason != "" && run.Status.Error != nil {
		span.SetStatus(codes.Error, run.Status.Error.Message)
	}
	span.End(trace.WithTimestamp(end))
}
