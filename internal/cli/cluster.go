package cli

import (
	"context"

	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// cluster is what the cluster commands (start, runs, journal, events, schedules, workflows)
// ask of a Centaur installation, in the REST API's own types. The REST API (apiClient) is its
// one implementation; a backend that works on the custom resources with only a kubeconfig
// could be a second without changing the commands.
type cluster interface {
	// StartRun starts a run and returns it.
	StartRun(ctx context.Context, req restapi.StartRunRequest) (restapi.RunDetail, error)
	// GetRun reads run id of namespace (empty: the default one) with one page of its steps.
	GetRun(ctx context.Context, namespace, id string, page stepsPage) (restapi.RunDetail, error)
	// ListRuns reads one page of runs.
	ListRuns(ctx context.Context, f runFilter) (restapi.RunList, error)
	// CancelRun asks run id to stop and returns it.
	CancelRun(ctx context.Context, id string) (restapi.RunDetail, error)
	// SendEvent delivers an event to the runs that wait for it.
	SendEvent(ctx context.Context, req restapi.EventRequest) (restapi.Event, error)
	// Workflows lists the workflows the namespace can run.
	Workflows(ctx context.Context) (restapi.WorkflowList, error)
	// ListSchedules reads the page of schedules that token continues (empty: the first).
	ListSchedules(ctx context.Context, token string) (restapi.ScheduleList, error)
	// TriggerSchedule starts a run of schedule name now and returns it.
	TriggerSchedule(ctx context.Context, name string) (restapi.RunDetail, error)
	// PauseSchedule stops the ticks of schedule name, with a note saying why.
	PauseSchedule(ctx context.Context, name, note string) (restapi.Schedule, error)
	// ResumeSchedule lets schedule name tick again.
	ResumeSchedule(ctx context.Context, name string) (restapi.Schedule, error)
}

// stepsPage selects a page of a run's steps.
type stepsPage struct {
	// Limit is the most steps to return; zero means the API's default.
	Limit int
	// Continue is the StepsContinue of the previous page; empty starts at the first step.
	Continue string
	// Results asks for each step's JSON result.
	Results bool
}

// runFilter selects a page of runs.
type runFilter struct {
	// Workflow keeps the runs of this workflow; empty keeps all.
	Workflow string
	// Phases keeps the runs in these phases, comma-separated; empty keeps all.
	Phases string
	// Limit is the most runs of the page.
	Limit int
	// Continue is the Continue of the previous page; empty starts at the first.
	Continue string
}
