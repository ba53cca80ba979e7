package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/runstore"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
)

// Run is a run as the REST API shows it. Keys are always present; absent values are null.
type Run struct {
	// ID is the WorkflowRun's name.
	ID string `json:"id"`
	// Namespace is the run's namespace.
	Namespace string `json:"namespace"`
	// WorkflowName is the workflow the run executes.
	WorkflowName string `json:"workflow_name"`
	// WorkflowRevision is the revision of the workflow file the run replays; absent for Go
	// workflows and before the run starts.
	WorkflowRevision string `json:"workflow_revision,omitempty"`
	// Status is the run's phase as Kubernetes shows it; "Pending" until the engine starts it.
	Status string `json:"status"`
	// CancelRequested is true once spec.cancel is set, before the run reaches Cancelled.
	CancelRequested bool `json:"cancel_requested"`
	// Input is the run's input; null when it has none.
	Input json.RawMessage `json:"input"`
	// Output is the workflow's output once the run succeeded; null before.
	Output json.RawMessage `json:"output"`
	// Error says why the run failed or was cancelled; null otherwise.
	Error *RunError `json:"error"`
	// CreatedAt is when the WorkflowRun was created.
	CreatedAt time.Time `json:"created_at"`
	// StartedAt is when the engine first ran the handler; null before.
	StartedAt *time.Time `json:"started_at"`
	// FinishedAt is when the run reached a final phase; null before.
	FinishedAt *time.Time `json:"finished_at"`
	// CurrentStep is the primitive the run is at: running, sleeping or waiting.
	CurrentStep string `json:"current_step"`
	// WakeAt is when a sleeping run wakes next; null otherwise.
	WakeAt *time.Time `json:"wake_at"`
	// WaitingFor says what a waiting run waits for, for example "event approval.decided/req-42".
	WaitingFor string `json:"waiting_for"`
	// IdempotencyKey is the key the run was started with, if any.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// URL is where to GET the run.
	URL string `json:"url"`
}

// RunDetail is a run with its steps: the answer of GET /api/workflows/runs/{id} and of the
// start and cancel calls.
type RunDetail struct {
	Run
	// Steps are the journal's entries in the order the run reached them: the first page of
	// them (steps_limit, 500 by default), then the page steps_continue asks for.
	Steps []Step `json:"steps"`
	// StepsTotal counts the run's journal entries.
	StepsTotal int64 `json:"steps_total"`
	// StepsContinue fetches the next page of steps when passed as the steps_continue query
	// parameter; empty when Steps reach the journal's end.
	StepsContinue string `json:"steps_continue"`
}

// RunError says why a run failed.
type RunError struct {
	// Reason is a CamelCase word to branch on, such as StepFailed or Cancelled.
	Reason string `json:"reason"`
	// Message is for people.
	Message string `json:"message"`
}

// Step is one durable primitive the run reached.
type Step struct {
	// Name is the primitive's name as the handler gave it.
	Name string `json:"name"`
	// Kind is Step, Sleep, Event, Child, Agent or Version.
	Kind string `json:"kind"`
	// State is Running, Retrying, Sleeping, Waiting, Completed or Failed.
	State string `json:"state"`
	// Attempts counts how many times a step's function was called.
	Attempts int32 `json:"attempts"`
	// StartedAt is when the primitive was first reached.
	StartedAt *time.Time `json:"started_at"`
	// FinishedAt is when it completed or failed for good; null before.
	FinishedAt *time.Time `json:"finished_at"`
	// WakeAt is when a sleep ends or a failed step's next attempt is due; null otherwise.
	WakeAt *time.Time `json:"wake_at"`
	// Error is the last error of a failed or retrying step.
	Error string `json:"error,omitempty"`
	// ErrorType is that error's type, when the step's function gave it one.
	ErrorType string `json:"error_type,omitempty"`
	// Result is the primitive's JSON result, with include_results=true only.
	Result json.RawMessage `json:"result,omitempty"`
}

// RunList is a page of runs, newest first for runs the REST API named.
type RunList struct {
	// Runs are the page's runs, without their steps.
	Runs []Run `json:"runs"`
	// Continue fetches the next page when passed as the continue query parameter; empty on the
	// last page.
	Continue string `json:"continue"`
}

// phaseOf is the run's phase, "Pending" before the engine wrote one.
func phaseOf(run *workflowsv1alpha1.WorkflowRun) string {
	if run.Status.Phase == "" {
		return string(workflowsv1alpha1.PhasePending)
	}
	return string(run.Status.Phase)
}

// RunView is the run as the REST API shows it in lists; base is the scheme and host of the
// request (BaseURL), for the run's URL.
func RunView(run *workflowsv1alpha1.WorkflowRun, base string) Run {
	v := Run{
		ID:               run.Name,
		Namespace:        run.Namespace,
		WorkflowName:     run.Spec.WorkflowName,
		Status:           phaseOf(run),
		WorkflowRevision: run.Status.WorkflowRevision,
		CancelRequested:  run.Spec.Cancel,
		CreatedAt:        run.CreationTimestamp.UTC(),
		StartedAt:        timeOf(run.Status.StartedAt),
		FinishedAt:       timeOf(run.Status.FinishedAt),
		CurrentStep:      run.Status.CurrentStep,
		WakeAt:           microTimeOf(run.Status.WakeAt),
		WaitingFor:       run.Status.WaitingFor,
		IdempotencyKey:   run.Annotations[workflowsv1alpha1.AnnotationIdempotencyKey],
		URL:              runURL(base, run.Namespace, run.Name),
	}
	if run.Spec.Input != nil && len(run.Spec.Input.Raw) > 0 {
		v.Input = json.RawMessage(run.Spec.Input.Raw)
	}
	if run.Status.Output != nil && len(run.Status.Output.Raw) > 0 {
		v.Output = json.RawMessage(run.Status.Output.Raw)
	}
	if e := run.Status.Error; e != nil {
		v.Error = &RunError{Reason: e.Reason, Message: e.Message}
	}
	return v
}

// RunDetailOf is the run with a page of its steps, read with reader from its whole journal
// (sealed segments, payloads and status) by runstore.ReadJournal: the answer of GET
// /api/workflows/runs/{id}, and what the CLI shows of a run it read with a kubeconfig.
func RunDetailOf(ctx context.Context, reader client.Reader, run *workflowsv1alpha1.WorkflowRun, base string, page runstore.ReadOptions) (RunDetail, error) {
	journal, err := runstore.ReadJournal(ctx, reader, run, page)
	if errors.Is(err, runstore.ErrBadContinue) {
		return RunDetail{}, apierror.Errorf(http.StatusBadRequest, apierror.CodeInvalidRequest, "steps_continue is not valid: pass the steps_continue value of the previous answer unchanged")
	}
	if err != nil {
		return RunDetail{}, fmt.Errorf("read the journal of run %s/%s: %w", run.Namespace, run.Name, err)
	}
	d := RunDetail{Run: RunView(run, base), Steps: make([]Step, 0, len(journal.Entries)), StepsTotal: journal.Total, StepsContinue: journal.Continue}
	for i := range journal.Entries {
		step := StepView(&journal.Entries[i])
		if page.Results && journal.Entries[i].Result != nil {
			step.Result = json.RawMessage(journal.Entries[i].Result.Raw)
		}
		d.Steps = append(d.Steps, step)
	}
	return d, nil
}

// StepView is a journal entry as the REST API shows it.
func StepView(e *workflowsv1alpha1.JournalEntry) Step {
	return Step{
		Name: e.Name, Kind: string(e.Kind), State: string(e.State), Attempts: e.Attempts,
		StartedAt: microTimeOf(e.StartedAt), FinishedAt: microTimeOf(e.FinishedAt),
		WakeAt: microTimeOf(e.WakeAt), Error: e.Error, ErrorType: e.ErrorType,
	}
}

func timeOf(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func microTimeOf(t *metav1.MicroTime) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// runURL is the run's REST URL.
func runURL(base, namespace, name string) string {
	return base + "/api/workflows/runs/" + url.PathEscape(name) + "?namespace=" + url.QueryEscape(namespace)
}

// BaseURL is the scheme and host the client used, honouring X-Forwarded-Proto from a proxy
// that terminates TLS.
func BaseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = "localhost"
	}
	return scheme + "://" + host
}
