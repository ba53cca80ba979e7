package controllers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// The WorkflowRun reconciler's decisions, given a run's spec and status, the clock and the
// catalog, without an API server: what the specs against the real one show end to end.

var decisionStart = time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)

// startedRun is a run that started at decisionStart with input and, when timeout is set,
// that timeout.
func startedRun(input string, timeout time.Duration) *workflowsv1alpha1.WorkflowRun {
	run := &workflowsv1alpha1.WorkflowRun{Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "wf"}}
	if input != "" {
		run.Spec.Input = &apiextensionsv1.JSON{Raw: []byte(input)}
	}
	if timeout > 0 {
		run.Spec.Timeout = &metav1.Duration{Duration: timeout}
	}
	started := metav1.NewTime(decisionStart)
	run.Status.StartedAt = &started
	run.Status.StartTime = &metav1.MicroTime{Time: decisionStart}
	run.Status.InputDigest = inputDigest(run)
	return run
}

func TestPreflightSaysWhyARunMustFinishBeforeItExecutes(t *testing.T) {
	cancelled := startedRun(`{"a":1}`, 0)
	cancelled.Spec.Cancel = true
	cancelledLate := startedRun(`{"a":1}`, time.Minute)
	cancelledLate.Spec.Cancel = true
	edited := startedRun(`{"a":1}`, 0)
	edited.Spec.Input = &apiextensionsv1.JSON{Raw: []byte(`{"a":2}`)}
	reencoded := startedRun(`{"a":1,"b":[1,2]}`, 0)
	reencoded.Spec.Input = &apiextensionsv1.JSON{Raw: []byte(`{ "b": [1, 2], "a": 1 }`)}
	notStarted := &workflowsv1alpha1.WorkflowRun{Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "wf", Timeout: &metav1.Duration{Duration: time.Second}}}

	for _, tc := range []struct {
		name   string
		run    *workflowsv1alpha1.WorkflowRun
		now    time.Time
		reason string // empty: the run may execute
	}{
		{"a running run executes", startedRun(`{"a":1}`, 0), decisionStart.Add(time.Hour), ""},
		{"cancelled", cancelled, decisionStart, workflowsv1alpha1.ReasonCancelled},
		{"a cancel wins over a passed timeout", cancelledLate, decisionStart.Add(time.Hour), workflowsv1alpha1.ReasonCancelled},
		{"just before its timeout", startedRun("", time.Minute), decisionStart.Add(time.Minute - time.Microsecond), ""},
		{"at its timeout", startedRun("", time.Minute), decisionStart.Add(time.Minute), workflowsv1alpha1.ReasonTimeout},
		{"its input edited after the start", edited, decisionStart, workflowsv1alpha1.ReasonInputChanged},
		{"its input re-encoded by the API server", reencoded, decisionStart, ""},
		{"a run not started has no deadline yet", notStarted, decisionStart.Add(time.Hour), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failure := preflight(tc.run, tc.now)
			switch {
			case tc.reason == "" && failure != nil:
				t.Fatalf("preflight stopped the run: %s: %s", failure.Reason, failure.Message)
			case tc.reason != "" && failure == nil:
				t.Fatalf("preflight let the run execute, want %s", tc.reason)
			case failure != nil && (failure.Reason != tc.reason || failure.Message == ""):
				t.Fatalf("preflight said %s (%q), want %s with a message", failure.Reason, failure.Message, tc.reason)
			}
		})
	}
}

func TestPhaseOfFollowsTheFailure(t *testing.T) {
	for _, tc := range []struct {
		failure *engine.Failure
		want    workflowsv1alpha1.RunPhase
	}{
		{nil, workflowsv1alpha1.PhaseSucceeded},
		{&engine.Failure{Reason: workflowsv1alpha1.ReasonCancelled}, workflowsv1alpha1.PhaseCancelled},
		{&engine.Failure{Reason: workflowsv1alpha1.ReasonTimeout}, workflowsv1alpha1.PhaseFailed},
		{&engine.Failure{Reason: workflowsv1alpha1.ReasonHandlerError}, workflowsv1alpha1.PhaseFailed},
	} {
		if got := phaseOf(tc.failure); got != tc.want {
			t.Errorf("phaseOf(%v) = %s, want %s", tc.failure, got, tc.want)
		}
	}
}

func TestRequeueAfterIsTheWakeOrTheDeadlineWhicheverComesFirst(t *testing.T) {
	now := decisionStart.Add(10 * time.Second)
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		wakeAt  time.Time
		want    time.Duration
	}{
		{"a sleep without a timeout", 0, now.Add(time.Hour), time.Hour},
		{"a wait without a timeout is woken by a watch", 0, time.Time{}, 0},
		{"a wait with a timeout comes back at the deadline", time.Minute, time.Time{}, 50 * time.Second},
		{"a sleep past the deadline comes back at the deadline", time.Minute, now.Add(time.Hour), 50 * time.Second},
		{"a sleep before the deadline comes back at its wake", time.Hour, now.Add(time.Minute), time.Minute},
		{"a wake in the past comes back at once, not never", 0, now.Add(-time.Second), time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := requeueAfter(startedRun("", tc.timeout), tc.wakeAt, now); got != tc.want {
				t.Fatalf("requeueAfter = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSetPositionTellsPhaseAndConditionFromTheEntryState(t *testing.T) {
	wake := decisionStart.Add(time.Hour)
	for _, tc := range []struct {
		state   engine.State
		phase   workflowsv1alpha1.RunPhase
		reason  string
		wakeAt  bool
		waitFor string
	}{
		{engine.StateSleeping, workflowsv1alpha1.PhaseSleeping, workflowsv1alpha1.ReasonSleeping, true, ""},
		{engine.StateRetrying, workflowsv1alpha1.PhaseSleeping, workflowsv1alpha1.ReasonSleeping, true, ""},
		{engine.StateWaiting, workflowsv1alpha1.PhaseWaiting, workflowsv1alpha1.ReasonWaiting, false, "event:order.paid"},
		{engine.StateCompleted, workflowsv1alpha1.PhaseRunning, workflowsv1alpha1.ReasonRunning, false, ""},
	} {
		run := startedRun("", 0)
		run.Status.WaitingFor = "stale"
		setPosition(run, "step-1", wake, "event:order.paid", tc.state)
		cond := run.Status.Conditions[0]
		if run.Status.Phase != tc.phase || cond.Reason != tc.reason || cond.Status != metav1.ConditionUnknown ||
			(run.Status.WakeAt != nil) != tc.wakeAt || run.Status.WaitingFor != tc.waitFor || run.Status.CurrentStep != "step-1" {
			t.Errorf("state %s: phase %s, condition %s/%s, wakeAt %v, waitingFor %q", tc.state, run.Status.Phase, cond.Status, cond.Reason, run.Status.WakeAt, run.Status.WaitingFor)
		}
	}
}

func TestWorkflowOfPicksTheCodeARunExecutes(t *testing.T) {
	reg := engine.NewRegistry()
	noop := func(*durable.Context, map[string]any) (string, error) { return "", nil }
	for _, wf := range []durable.Workflow{
		durable.Define("plain", noop),
		durable.Define("hooked", noop, durable.WithWebhook(durable.WebhookSpec{Slug: "hooked", WebhookOnly: true,
			Auth: durable.WebhookAuth{Scheme: "github", SecretRef: "HOOK_SECRET"}})),
	} {
		if err := reg.Register(wf); err != nil {
			t.Fatal(err)
		}
	}
	synced := catalog.New(reg, catalog.Options{})
	synced.MarkDefinitionsSynced()
	loading := catalog.New(reg, catalog.Options{})
	created := metav1.NewTime(decisionStart)
	newRun := func(name string, labels map[string]string) *workflowsv1alpha1.WorkflowRun {
		return &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: "team", CreationTimestamp: created, Labels: labels},
			Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: name}}
	}

	for _, tc := range []struct {
		name    string
		catalog *catalog.Catalog
		run     *workflowsv1alpha1.WorkflowRun
		now     time.Time
		want    string // the workflow's name, a failure's reason, or "wait"
	}{
		{"a Go workflow", synced, newRun("plain", nil), decisionStart, "plain"},
		{"unknown within the grace: wait for its definition", synced, newRun("later", nil), decisionStart.Add(time.Second), "wait"},
		{"unknown after the grace", synced, newRun("later", nil), decisionStart.Add(DefaultUnknownWorkflowGrace), workflowsv1alpha1.ReasonUnknownWorkflow},
		{"unknown before every definition loaded once: wait", loading, newRun("later", nil), decisionStart.Add(time.Hour), "wait"},
		{"webhook_only, made by kubectl", synced, newRun("hooked", nil), decisionStart, workflowsv1alpha1.ReasonNotStartedByWebhook},
		{"webhook_only, made by its webhook", synced, newRun("hooked", map[string]string{workflowsv1alpha1.LabelWebhook: "hooked"}), decisionStart, "hooked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &WorkflowRunReconciler{Workflows: tc.catalog, Clock: func() time.Time { return tc.now }}
			wf, failure, err := r.workflowOf(context.Background(), tc.run)
			var got string
			switch {
			case errors.Is(err, errDefinitionsLoading):
				got = "wait"
			case err != nil:
				t.Fatalf("workflowOf: %v", err)
			case failure != nil:
				got = failure.Reason
				if !strings.Contains(failure.Message, tc.run.Spec.WorkflowName) {
					t.Errorf("the failure's message does not name the workflow: %q", failure.Message)
				}
			default:
				got = wf.Name()
			}
			if got != tc.want {
				t.Fatalf("workflowOf = %s, want %s", got, tc.want)
			}
		})
	}
}
