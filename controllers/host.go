package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/tracing"
	"github.com/centaur-dev/workflow-operator/runstore"
)

// runHost implements engine.Host for one run over the Kubernetes API: events are
// WorkflowEvents, children are WorkflowRuns and agent turns are AgentRuns, all in the run's
// namespace and owned by it.
type runHost struct {
	r   *WorkflowRunReconciler
	run *workflowsv1alpha1.WorkflowRun
}

// FindEvent lists matching events straight from the API server (selectable fields on type and
// correlationId), so an event created a moment ago is never missed, and returns the oldest one
// the run has not received yet.
func (h *runHost) FindEvent(ctx context.Context, q engine.EventQuery) (engine.EventRecord, bool, error) {
	var events workflowsv1alpha1.WorkflowEventList
	err := h.r.APIReader.List(ctx, &events, client.InNamespace(h.run.Namespace), client.MatchingFieldsSelector{
		Selector: fields.AndSelectors(
			fields.OneTermEqualSelector("spec.type", q.Type),
			fields.OneTermEqualSelector("spec.correlationId", q.CorrelationID),
		),
	})
	if err != nil {
		return engine.EventRecord{}, false, fmt.Errorf("list events %s/%s: %w", q.Type, q.CorrelationID, err)
	}
	candidates := slices.DeleteFunc(events.Items, func(ev workflowsv1alpha1.WorkflowEvent) bool {
		return !ev.DeletionTimestamp.IsZero() || slices.Contains(q.Exclude, ev.Name)
	})
	if len(candidates) == 0 {
		return engine.EventRecord{}, false, nil
	}
	oldest := slices.MinFunc(candidates, func(a, b workflowsv1alpha1.WorkflowEvent) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	var payload json.RawMessage
	if oldest.Spec.Payload != nil {
		payload = oldest.Spec.Payload.Raw
	}
	return engine.EventRecord{Ref: oldest.Name, Payload: payload}, true, nil
}

// StartChild creates the child run of the parent's primitive step. Its name is derived from the
// parent's UID and the step, so AlreadyExists means "that is my child".
func (h *runHost) StartChild(ctx context.Context, step, workflowName string, input json.RawMessage) (string, error) {
	child := &workflowsv1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{
			Name:      runstore.ChildName(h.run, step),
			Namespace: h.run.Namespace,
			Labels: map[string]string{
				workflowsv1alpha1.LabelParentRun: workflowsv1alpha1.LabelValue(h.run.Name),
				workflowsv1alpha1.LabelWorkflow:  workflowsv1alpha1.LabelValue(workflowName),
			},
		},
		Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: workflowName, Input: &apiextensionsv1.JSON{Raw: input}},
	}
	if h.r.Tracing != nil {
		// The child's trace continues its parent's, under the parent's run span.
		tracing.KeepParent(child, tracing.ChildTraceparent(h.run))
	}
	existing := &workflowsv1alpha1.WorkflowRun{}
	return h.createOwned(ctx, child, existing, "child run", func() bool {
		return existing.Spec.WorkflowName == workflowName && runstore.EqualJSON(jsonOrNull(existing.Spec.Input), jsonOrNull(child.Spec.Input))
	})
}

// SendEvent creates the WorkflowEvent the run sends at its primitive step. Its name derives
// from the run's UID and the step, so AlreadyExists means the run sent it before a crash. The
// event is not owned by the run: like any event it lives for the event retention, even when
// the sender is deleted first. An event the API server refuses as invalid fails the run.
func (h *runHost) SendEvent(ctx context.Context, step string, out engine.OutgoingEvent) (string, error) {
	ev := &workflowsv1alpha1.WorkflowEvent{
		ObjectMeta: metav1.ObjectMeta{Name: runstore.ChildName(h.run, step), Namespace: h.run.Namespace},
		Spec:       workflowsv1alpha1.WorkflowEventSpec{Type: out.Type, CorrelationID: out.CorrelationID, Payload: runstore.RawJSON(out.Payload)},
	}
	err := h.r.Create(ctx, ev)
	switch {
	case err == nil, apierrors.IsAlreadyExists(err):
		return ev.Name, nil
	case apierrors.IsInvalid(err):
		return "", &engine.Failure{Reason: workflowsv1alpha1.ReasonHandlerError, Message: fmt.Sprintf("the event of %q is not valid: %v", step, err)}
	}
	return "", fmt.Errorf("create event %s: %w", ev.Name, err)
}

// ChildResult looks at the child in the cache, where the watch that woke the parent put its
// final phase; a finished child is read from the API server for its output and error, which
// the cache does not keep (see runstore.LeanRun).
func (h *runHost) ChildResult(ctx context.Context, id string) (engine.Result, error) {
	child := &workflowsv1alpha1.WorkflowRun{}
	err := h.getOwned(ctx, id, child)
	if err == nil && child.Status.Phase.IsFinal() {
		err = h.r.APIReader.Get(ctx, client.ObjectKeyFromObject(child), child)
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			return engine.Result{Done: true, Failure: &engine.Failure{Reason: workflowsv1alpha1.ReasonChildDeleted, Message: "the child run was deleted before it finished"}}, nil
		}
		return engine.Result{}, err
	}
	status := child.Status
	switch status.Phase {
	case workflowsv1alpha1.PhaseSucceeded:
		var out json.RawMessage
		if status.Output != nil {
			out = status.Output.Raw
		}
		return engine.Result{Done: true, Output: out}, nil
	case workflowsv1alpha1.PhaseFailed, workflowsv1alpha1.PhaseCancelled:
		failure := &engine.Failure{Reason: string(status.Phase), Message: "the child run ended " + strings.ToLower(string(status.Phase))}
		if status.Error != nil {
			failure = &engine.Failure{Reason: status.Error.Reason, Message: status.Error.Message}
		}
		return engine.Result{Done: true, Failure: failure}, nil
	default:
		return engine.Result{Pending: fmt.Sprintf("child wfr/%s (%s)", id, phaseOrPending(status.Phase))}, nil
	}
}

// createOwned creates obj owned by the run, or adopts the object of that name the run made
// before a crash (existing receives it): it must be controlled by the run and hold what obj
// holds (same says so), so that an object an editor made ahead of the run, under the name the
// run would give it and with a forged owner, is refused rather than taken for the run's.
func (h *runHost) createOwned(ctx context.Context, obj, existing client.Object, what string, same func() bool) (string, error) {
	if err := controllerutil.SetControllerReference(h.run, obj, h.r.Scheme()); err != nil {
		return "", fmt.Errorf("own %s: %w", obj.GetName(), err)
	}
	err := h.r.Create(ctx, obj)
	switch {
	case err == nil:
		return obj.GetName(), nil
	case apierrors.IsInvalid(err):
		// The API server will refuse it however often it is tried (a temperature over 2, a
		// child name that is not a name): fail the run and say why.
		return "", &engine.Failure{Reason: workflowsv1alpha1.ReasonHandlerError, Message: fmt.Sprintf("the %s the run asked for is not valid: %v", what, err)}
	case !apierrors.IsAlreadyExists(err):
		return "", fmt.Errorf("create %s: %w", obj.GetName(), err)
	}
	if err := h.r.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), existing); err != nil {
		return "", fmt.Errorf("read existing %s: %w", obj.GetName(), err)
	}
	if !metav1.IsControlledBy(existing, h.run) {
		return "", fmt.Errorf("%s already exists and does not belong to run %s", obj.GetName(), h.run.Name)
	}
	if !same() {
		return "", &engine.Failure{Reason: workflowsv1alpha1.ReasonForeignObject, Message: fmt.Sprintf(
			"the %s %s exists and claims to belong to this run, but holds something else than the run asked for: someone made it by hand, so the run cannot take it for its own",
			what, obj.GetName())}
	}
	return obj.GetName(), nil
}

// jsonOrNull is v's JSON, or null for none.
func jsonOrNull(v *apiextensionsv1.JSON) []byte {
	if v == nil || len(v.Raw) == 0 {
		return []byte("null")
	}
	return v.Raw
}

// getOwned reads an object of the run's from the cache, falling back to the API server when
// the cache has not seen it yet.
func (h *runHost) getOwned(ctx context.Context, name string, obj client.Object) error {
	key := client.ObjectKey{Namespace: h.run.Namespace, Name: name}
	err := h.r.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) {
		err = h.r.APIReader.Get(ctx, key, obj)
	}
	return err
}

func phaseOrPending(p workflowsv1alpha1.RunPhase) string {
	if p == "" {
		return string(workflowsv1alpha1.PhasePending)
	}
	return string(p)
}

// StartAgent creates the AgentRun of the run's primitive step, owned by and labelled with the
// run (and, under sharding, with its shard); AlreadyExists means "that is my turn".
func (h *runHost) StartAgent(ctx context.Context, step string, req durable.AgentRequest) (string, error) {
	if req.MaxTokens > math.MaxInt32 {
		return "", &engine.Failure{Reason: workflowsv1alpha1.ReasonHandlerError, Message: fmt.Sprintf("agent turn %q asks for %d tokens, more than an AgentRun holds (%d)", step, req.MaxTokens, math.MaxInt32)}
	}
	turn := &workflowsv1alpha1.AgentRun{
		ObjectMeta: metav1.ObjectMeta{
			Name:      runstore.ChildName(h.run, step),
			Namespace: h.run.Namespace,
			Labels:    map[string]string{workflowsv1alpha1.LabelRun: workflowsv1alpha1.LabelValue(h.run.Name)},
		},
		Spec: workflowsv1alpha1.AgentRunSpec{
			Agent: req.Agent, Prompt: req.Prompt, ThreadKey: req.ThreadKey, Instructions: req.Instructions,
			Model: req.Model, Temperature: req.Temperature, MaxTokens: int32(req.MaxTokens),
		},
	}
	if shard := h.run.Labels[workflowsv1alpha1.LabelShard]; shard != "" {
		turn.Labels[workflowsv1alpha1.LabelShard] = shard // a turn is answered by its run's shard
	}
	existing := &workflowsv1alpha1.AgentRun{}
	return h.createOwned(ctx, turn, existing, "agent turn", func() bool { return apiequality.Semantic.DeepEqual(existing.Spec, turn.Spec) })
}

// AgentResult reads the turn from the cache (the watch that woke the run put its final status
// there) and reports its outcome.
func (h *runHost) AgentResult(ctx context.Context, id string) (engine.Result, error) {
	turn := &workflowsv1alpha1.AgentRun{}
	if err := h.getOwned(ctx, id, turn); err != nil {
		if apierrors.IsNotFound(err) {
			return engine.Result{Done: true, Failure: &engine.Failure{Reason: workflowsv1alpha1.ReasonAgentRunDeleted, Message: "the agent turn was deleted before it finished"}}, nil
		}
		return engine.Result{}, err
	}
	status := turn.Status
	switch status.Phase {
	case workflowsv1alpha1.AgentSucceeded:
		res := durable.AgentResult{Text: status.Result, Model: status.Model}
		if u := status.Usage; u != nil {
			res.PromptTokens, res.CompletionTokens, res.TotalTokens = u.PromptTokens, u.CompletionTokens, u.TotalTokens
		}
		out, err := json.Marshal(res)
		if err != nil {
			return engine.Result{}, fmt.Errorf("encode the result of agent turn %s: %w", id, err)
		}
		return engine.Result{Done: true, Output: out}, nil
	case workflowsv1alpha1.AgentFailed:
		failure := &engine.Failure{Reason: workflowsv1alpha1.ReasonAgentFailed, Message: "the agent turn failed"}
		if status.Error != nil {
			failure = &engine.Failure{Reason: status.Error.Reason, Message: status.Error.Message}
		}
		return engine.Result{Done: true, Failure: failure}, nil
	default:
		pending := fmt.Sprintf("agent turn agr/%s (%s)", id, agentPhaseOrPending(status.Phase))
		if status.Message != "" {
			pending += ": " + status.Message
		}
		return engine.Result{Pending: pending}, nil
	}
}

func agentPhaseOrPending(p workflowsv1alpha1.AgentPhase) string {
	if p == "" {
		return string(workflowsv1alpha1.AgentPending)
	}
	return string(p)
}
