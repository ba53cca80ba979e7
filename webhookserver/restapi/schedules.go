package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/runstore"
	"github.com/centaur-dev/workflow-operator/schedule"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
)

// Schedules through the REST API: list them, trigger one now, pause it with a note and resume
// it, and backfill a past time range. Pause and resume change spec.suspend and
// spec.suspendNote, as kubectl patch would; trigger and backfill create runs named and owned
// exactly as the schedule's controller names and owns them (package schedule), so a backfilled
// tick is the tick's one run, whoever comes first.

// Limits of the schedule endpoints.
const (
	// maxBackfillTicks bounds the ticks one backfill request may start.
	maxBackfillTicks = 1000
	// maxPauseNoteLength is spec.suspendNote's limit.
	maxPauseNoteLength = 1024
	// restFieldOwner is the field manager of the REST API's changes to schedules.
	restFieldOwner = "centaur-rest-api"
)

// Schedule is a WorkflowSchedule as the REST API shows it.
type Schedule struct {
	// Name is the WorkflowSchedule's name.
	Name string `json:"name"`
	// Namespace is where the schedule and its runs live.
	Namespace string `json:"namespace"`
	// WorkflowName is the workflow each tick starts.
	WorkflowName string `json:"workflow_name"`
	// Schedule is the cron expression, macro or @every interval.
	Schedule string `json:"schedule"`
	// TimeZone is the IANA zone the cron expression is read in.
	TimeZone string `json:"time_zone"`
	// Input is every run's input; null when none.
	Input json.RawMessage `json:"input"`
	// ConcurrencyPolicy is Allow, Forbid or Replace.
	ConcurrencyPolicy string `json:"concurrency_policy"`
	// CatchUp is None, Latest or All.
	CatchUp string `json:"catch_up"`
	// StartingDeadline is how late a tick may start, as a Go duration; empty means no limit.
	StartingDeadline string `json:"starting_deadline"`
	// Paused is spec.suspend.
	Paused bool `json:"paused"`
	// PauseNote says why it is paused.
	PauseNote string `json:"pause_note"`
	// Ready says whether the schedule's ticks are computed; Reason and Message say why not.
	Ready   bool   `json:"ready"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// LastScheduleTime is the latest tick that started a run; null before the first.
	LastScheduleTime *time.Time `json:"last_schedule_time"`
	// LastSuccessfulTime is when the newest of its runs that succeeded finished; null before.
	LastSuccessfulTime *time.Time `json:"last_successful_time"`
	// NextScheduleTime is the next tick; null while the schedule is not ready.
	NextScheduleTime *time.Time `json:"next_schedule_time"`
	// ActiveRuns are the schedule's runs in flight.
	ActiveRuns []string `json:"active_runs"`
	// RecentTicks are the last records of what happened to ticks, oldest first.
	RecentTicks []ScheduleTick `json:"recent_ticks"`
	// RunsStarted and TicksSkipped count ticks over the schedule's life.
	RunsStarted  int64 `json:"runs_started"`
	TicksSkipped int64 `json:"ticks_skipped"`
	// DeclaredBy is go, file or definition when a workflow declares the schedule; empty otherwise.
	DeclaredBy string `json:"declared_by"`
	// URL is where to GET the schedule; RunsURL lists its runs.
	URL     string `json:"url"`
	RunsURL string `json:"runs_url"`
}

// ScheduleTick is what happened to a tick, or to a stretch of ticks skipped for one reason.
type ScheduleTick struct {
	// ScheduledTime is the tick (the first of a stretch).
	ScheduledTime time.Time `json:"scheduled_time"`
	// LastScheduledTime is the last tick of a stretch; null for one tick.
	LastScheduledTime *time.Time `json:"last_scheduled_time"`
	// Count is how many ticks the record stands for.
	Count int64 `json:"count"`
	// Outcome is Started or Skipped; Reason says why (see docs/schedules.md).
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
	// Run is the tick's run, when it started.
	Run string `json:"run,omitempty"`
	// StartedAt is when the run was created.
	StartedAt *time.Time `json:"started_at"`
	// RunPhase is how the run ended (Succeeded, Failed or Cancelled); empty while it runs.
	RunPhase string `json:"run_phase,omitempty"`
	// Message says more about a skip.
	Message string `json:"message,omitempty"`
}

// ScheduleList is the answer of GET /api/workflows/schedules.
type ScheduleList struct {
	// Schedules are the page's schedules, in name order.
	Schedules []Schedule `json:"schedules"`
	// Continue fetches the next page; empty on the last.
	Continue string `json:"continue"`
}

// PauseRequest is the optional body of POST /api/workflows/schedules/{name}/pause.
type PauseRequest struct {
	// Note says why, for the next person who looks.
	Note string `json:"note"`
}

// BackfillRequest is the body of POST /api/workflows/schedules/{name}/backfill.
type BackfillRequest struct {
	// StartTime is the range's start (RFC 3339), included.
	StartTime time.Time `json:"start_time"`
	// EndTime is the range's end (RFC 3339), excluded; not in the future.
	EndTime time.Time `json:"end_time"`
}

// BackfillTick is one tick a backfill handled.
type BackfillTick struct {
	// ScheduledTime is the tick.
	ScheduledTime time.Time `json:"scheduled_time"`
	// Run is the tick's run.
	Run string `json:"run"`
	// Created is false when the tick's run existed already.
	Created bool `json:"created"`
}

// BackfillResult is the answer of a backfill.
type BackfillResult struct {
	// Ticks are the range's ticks, in order.
	Ticks []BackfillTick `json:"ticks"`
	// Created counts the runs the backfill created; Existing the ticks that had a run.
	Created  int `json:"created"`
	Existing int `json:"existing"`
}

// listSchedules answers GET /api/workflows/schedules: a page of the namespace's schedules.
func (a *api) listSchedules(ctx context.Context, c *call) (int, any, error) {
	q, err := parsePage(c)
	if err != nil {
		return 0, nil, err
	}
	list := &workflowsv1alpha1.WorkflowScheduleList{}
	opts := []client.ListOption{client.InNamespace(q.namespace), client.Limit(int64(q.limit)), client.Continue(q.cont)}
	if err := a.deps.Reader.List(ctx, list, opts...); err != nil {
		return 0, nil, listFailure(err, q.cont)
	}
	base := BaseURL(c.r)
	out := ScheduleList{Schedules: []Schedule{}, Continue: list.Continue}
	for i := range list.Items {
		out.Schedules = append(out.Schedules, ScheduleView(&list.Items[i], base))
	}
	return http.StatusOK, out, nil
}

// getSchedule answers GET /api/workflows/schedules/{name}.
func (a *api) getSchedule(ctx context.Context, c *call) (int, any, error) {
	ws, err := a.lookupSchedule(ctx, c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ScheduleView(ws, BaseURL(c.r)), nil
}

// lookupSchedule reads the schedule named by the path in the request's namespace.
func (a *api) lookupSchedule(ctx context.Context, c *call) (*workflowsv1alpha1.WorkflowSchedule, error) {
	ws := &workflowsv1alpha1.WorkflowSchedule{}
	if err := a.lookup(ctx, c, "name", "schedule", "; GET /api/workflows/schedules lists them", ws); err != nil {
		return nil, err
	}
	return ws, nil
}

// triggerSchedule answers POST /api/workflows/schedules/{name}/trigger: it starts a run of the
// schedule now, under its concurrency policy (409 when Forbid finds a run in flight; Replace
// cancels the runs in flight). 201 with the run, or 200 with the run a trigger in the same
// second started. A paused schedule can be triggered.
func (a *api) triggerSchedule(ctx context.Context, c *call) (int, any, error) {
	ws, err := a.lookupSchedule(ctx, c)
	if err != nil {
		return 0, nil, err
	}
	if err := a.checkWorkflow(ws); err != nil {
		return 0, nil, err
	}
	active, _, err := schedule.Runs(ctx, a.deps.Reader, ws)
	if err != nil {
		return 0, nil, err
	}
	start, replace := schedule.Admit(ws.Spec.ConcurrencyPolicy, len(active))
	if !start {
		return 0, nil, apierror.Errorf(http.StatusConflict, apierror.CodeConflict,
			"run %q of schedule %q is in flight and its concurrencyPolicy is Forbid; wait for it to finish or cancel it (POST /api/workflows/runs/%s/cancel)",
			active[0].Name, ws.Name, active[0].Name)
	}
	if replace {
		if err := schedule.Cancel(ctx, a.deps.Client, active); err != nil {
			return 0, nil, err
		}
	}
	run, created, err := schedule.StartRun(ctx, a.deps.Client, a.deps.Reader, ws, time.Now().Truncate(time.Second), schedule.TriggerManual)
	if err != nil {
		return 0, nil, startFailure(err)
	}
	c.w.Header().Set("Location", runURL("", run.Namespace, run.Name))
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	return a.answerRun(ctx, status, run, BaseURL(c.r), runstore.ReadOptions{})
}

// checkWorkflow answers 422 when the schedule's workflow is not registered.
func (a *api) checkWorkflow(ws *workflowsv1alpha1.WorkflowSchedule) error {
	if _, ok := a.deps.Workflows.Lookup(ws.Namespace, ws.Spec.WorkflowName); ok {
		return nil
	}
	unknown := a.deps.Workflows.UnknownWorkflow(ws.Namespace, ws.Spec.WorkflowName)
	unknown.Field = "spec.workflowName"
	return apierror.Errorf(http.StatusUnprocessableEntity, apierror.CodeUnknownWorkflow, "schedule %q: %s", ws.Name, unknown)
}

// startFailure explains a run that could not be created because its name is taken.
func startFailure(err error) error {
	var taken *schedule.NameTakenError
	if errors.As(err, &taken) {
		return apierror.Errorf(http.StatusConflict, apierror.CodeConflict, "%s", taken.Error())
	}
	return err
}

// pauseSchedule answers POST /api/workflows/schedules/{name}/pause: spec.suspend becomes true
// with the body's note (optional) in spec.suspendNote. Ticks from now on are recorded as
// skipped; runs in flight carry on.
func (a *api) pauseSchedule(ctx context.Context, c *call) (int, any, error) {
	body, err := readBody(c.w, c.r)
	if err != nil {
		return 0, nil, err
	}
	var req PauseRequest
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := decodeObject(body, &req, `{"note": "paused during the database migration"}`); err != nil {
			return 0, nil, decodeFailure(err)
		}
	}
	if len(req.Note) > maxPauseNoteLength {
		return 0, nil, apierror.Errorf(http.StatusBadRequest, apierror.CodeInvalidRequest, "note is longer than %d characters", maxPauseNoteLength)
	}
	return a.patchSchedule(ctx, c, PauseSpec(req.Note))
}

// PauseSpec is the merge patch of a schedule's spec that pauses it with note (none when
// empty). The CLI pauses schedules with a kubeconfig through it too.
func PauseSpec(note string) map[string]any {
	spec := map[string]any{"suspend": true, "suspendNote": note}
	if note == "" {
		spec["suspendNote"] = nil
	}
	return spec
}

// ResumeSpec is the merge patch of a schedule's spec that lets it tick again, without a note.
func ResumeSpec() map[string]any {
	return map[string]any{"suspend": false, "suspendNote": nil}
}

// resumeSchedule answers POST /api/workflows/schedules/{name}/resume: spec.suspend becomes
// false and the note goes. The ticks skipped while paused stay skipped (backfill them).
func (a *api) resumeSchedule(ctx context.Context, c *call) (int, any, error) {
	return a.patchSchedule(ctx, c, ResumeSpec())
}

// patchSchedule merges spec into the schedule's spec and answers with the schedule.
func (a *api) patchSchedule(ctx context.Context, c *call, spec map[string]any) (int, any, error) {
	ws, err := a.lookupSchedule(ctx, c)
	if err != nil {
		return 0, nil, err
	}
	patch, err := json.Marshal(map[string]any{"spec": spec})
	if err != nil {
		return 0, nil, fmt.Errorf("encode the patch: %w", err)
	}
	if err := a.deps.Client.Patch(ctx, ws, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(restFieldOwner)); err != nil {
		return 0, nil, fmt.Errorf("change schedule %s/%s: %w", ws.Namespace, ws.Name, err)
	}
	return http.StatusOK, ScheduleView(ws, BaseURL(c.r)), nil
}

// backfillSchedule answers POST /api/workflows/schedules/{name}/backfill: it starts the run of
// every tick in [start_time, end_time) that has none, all at once whatever the concurrency
// policy, and answers with each tick's run. Runs are named as the schedule names them, so a
// repeated backfill creates nothing twice and a tick the schedule started keeps its one run.
func (a *api) backfillSchedule(ctx context.Context, c *call) (int, any, error) {
	body, err := readBody(c.w, c.r)
	if err != nil {
		return 0, nil, err
	}
	const example = `{"start_time": "2026-11-01T00:00:00Z", "end_time": "2026-11-08T00:00:00Z"}`
	var req BackfillRequest
	if err := decodeObject(body, &req, example); err != nil {
		return 0, nil, decodeFailure(err)
	}
	ws, err := a.lookupSchedule(ctx, c)
	if err != nil {
		return 0, nil, err
	}
	ticks, err := backfillTicks(ws, req, time.Now())
	if err != nil {
		return 0, nil, err
	}
	if err := a.checkWorkflow(ws); err != nil {
		return 0, nil, err
	}
	out := BackfillResult{Ticks: make([]BackfillTick, 0, len(ticks))}
	for _, tick := range ticks {
		run, created, err := schedule.StartRun(ctx, a.deps.Client, a.deps.Reader, ws, tick, schedule.TriggerBackfill)
		if err != nil {
			return 0, nil, fmt.Errorf("backfill the tick at %s (repeat the request to finish: ticks done so far are not started again): %w",
				tick.UTC().Format(time.RFC3339), startFailure(err))
		}
		out.Ticks = append(out.Ticks, BackfillTick{ScheduledTime: tick.UTC(), Run: run.Name, Created: created})
		if created {
			out.Created++
		} else {
			out.Existing++
		}
	}
	return http.StatusOK, out, nil
}

// backfillTicks checks the range and returns its ticks.
func backfillTicks(ws *workflowsv1alpha1.WorkflowSchedule, req BackfillRequest, now time.Time) ([]time.Time, error) {
	bad := func(format string, args ...any) error {
		return apierror.Errorf(http.StatusUnprocessableEntity, apierror.CodeInvalidRequest, format, args...)
	}
	switch {
	case req.StartTime.IsZero() || req.EndTime.IsZero():
		return nil, bad("start_time and end_time are required, in RFC 3339, for example 2026-11-01T00:00:00Z")
	case !req.StartTime.Before(req.EndTime):
		return nil, bad("start_time (%s) must come before end_time (%s)", req.StartTime.Format(time.RFC3339), req.EndTime.Format(time.RFC3339))
	case req.EndTime.After(now):
		return nil, bad("end_time (%s) lies in the future; a backfill covers past ticks, the schedule starts the coming ones itself", req.EndTime.Format(time.RFC3339))
	}
	sched, err := schedule.Parse(ws.Spec.Schedule, ws.Spec.TimeZone, ws.CreationTimestamp.Time)
	if err != nil {
		return nil, bad("schedule %q cannot be backfilled: %v", ws.Name, err)
	}
	var ticks []time.Time
	for t := sched.Next(req.StartTime.Add(-time.Nanosecond)); !t.IsZero() && t.Before(req.EndTime); t = sched.Next(t) {
		if len(ticks) == maxBackfillTicks {
			return nil, bad("the range holds more than %d ticks; split it into smaller ranges", maxBackfillTicks)
		}
		ticks = append(ticks, t)
	}
	return ticks, nil
}

// scheduleView is the schedule as the REST API shows it.
func ScheduleView(ws *workflowsv1alpha1.WorkflowSchedule, base string) Schedule {
	st := ws.Status
	v := Schedule{
		Name: ws.Name, Namespace: ws.Namespace, WorkflowName: ws.Spec.WorkflowName, Schedule: ws.Spec.Schedule,
		TimeZone: ws.Spec.TimeZone, ConcurrencyPolicy: string(ws.Spec.ConcurrencyPolicy), CatchUp: string(ws.Spec.CatchUp),
		Paused: ws.Spec.Suspend, PauseNote: ws.Spec.SuspendNote,
		LastScheduleTime: timeOf(st.LastScheduleTime), LastSuccessfulTime: timeOf(st.LastSuccessfulTime), NextScheduleTime: timeOf(st.NextScheduleTime),
		ActiveRuns: []string{}, RecentTicks: make([]ScheduleTick, 0, len(st.RecentTicks)),
		RunsStarted: st.RunsStarted, TicksSkipped: st.TicksSkipped, DeclaredBy: ws.Labels[workflowsv1alpha1.LabelDeclaredBy],
		URL:     base + "/api/workflows/schedules/" + url.PathEscape(ws.Name) + "?namespace=" + url.QueryEscape(ws.Namespace),
		RunsURL: base + "/api/workflows/runs?schedule=" + url.QueryEscape(ws.Name) + "&namespace=" + url.QueryEscape(ws.Namespace),
	}
	if ws.Spec.Input != nil && len(ws.Spec.Input.Raw) > 0 {
		v.Input = json.RawMessage(ws.Spec.Input.Raw)
	}
	if d := ws.Spec.StartingDeadline; d != nil {
		v.StartingDeadline = d.Duration.String()
	}
	if cond := meta.FindStatusCondition(st.Conditions, workflowsv1alpha1.ConditionReady); cond != nil && cond.ObservedGeneration == ws.Generation {
		v.Ready, v.Reason, v.Message = cond.Status == "True", cond.Reason, cond.Message
	}
	for _, run := range st.Active {
		v.ActiveRuns = append(v.ActiveRuns, run.Name)
	}
	for _, t := range st.RecentTicks {
		v.RecentTicks = append(v.RecentTicks, ScheduleTick{
			ScheduledTime: t.ScheduledTime.UTC(), LastScheduledTime: timeOf(t.LastScheduledTime), Count: max(t.Count, 1),
			Outcome: string(t.Outcome), Reason: t.Reason, Run: t.Run, StartedAt: microTimeOf(t.StartedAt), RunPhase: string(t.RunPhase), Message: t.Message,
		})
	}
	return v
}
