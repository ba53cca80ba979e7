package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConcurrencyPolicy says what a schedule does when a tick falls due while a run it started
// earlier is still in flight.
// +kubebuilder:validation:Enum=Allow;Forbid;Replace
type ConcurrencyPolicy string

// The concurrency policies, as in Kubernetes CronJobs.
const (
	// ConcurrencyAllow starts the tick's run next to the runs still in flight.
	ConcurrencyAllow ConcurrencyPolicy = "Allow"
	// ConcurrencyForbid skips the tick (recorded with reason ConcurrencyForbidden) while a run
	// of the schedule is in flight.
	ConcurrencyForbid ConcurrencyPolicy = "Forbid"
	// ConcurrencyReplace cancels the runs in flight (spec.cancel) and starts the tick's run.
	ConcurrencyReplace ConcurrencyPolicy = "Replace"
)

// CatchUpPolicy says which ticks missed while no manager could start them (the operator was
// down, the API server unreachable) run once a manager is back.
// +kubebuilder:validation:Enum=None;Latest;All
type CatchUpPolicy string

// The catch-up policies.
const (
	// CatchUpNone runs no missed tick; the schedule goes on with its next tick.
	CatchUpNone CatchUpPolicy = "None"
	// CatchUpLatest runs the most recent missed tick, once, and skips the older ones.
	CatchUpLatest CatchUpPolicy = "Latest"
	// CatchUpAll runs every missed tick, oldest first, up to maxCatchUp of the most recent.
	CatchUpAll CatchUpPolicy = "All"
)

// TickOutcome is what a schedule did with a tick.
// +kubebuilder:validation:Enum=Started;Skipped
type TickOutcome string

// The outcomes of a tick.
const (
	// TickStarted: the tick's run exists.
	TickStarted TickOutcome = "Started"
	// TickSkipped: the tick has no run, for the record's reason.
	TickSkipped TickOutcome = "Skipped"
)

// DefaultMaxCatchUp is how many missed ticks catchUp All runs at most when maxCatchUp is unset.
const DefaultMaxCatchUp = 100

// WorkflowScheduleSpec says when to start runs of which workflow, with what input, and what to
// do about overlapping runs and ticks missed during downtime.
// +kubebuilder:validation:XValidation:rule="!has(self.maxCatchUp) || self.catchUp == 'All'",message="maxCatchUp applies only to catchUp All"
// +kubebuilder:validation:XValidation:rule="!has(self.startingDeadline) || duration(self.startingDeadline) >= duration('1s')",message="startingDeadline must be at least 1s"
// +kubebuilder:validation:XValidation:rule="!has(self.jitter) || duration(self.jitter) >= duration('0s')",message="jitter must not be negative"
type WorkflowScheduleSpec struct {
	// schedule says when ticks fall, each tick starting one run. It takes:
	//
	//   - a standard five-field cron expression, minute hour day-of-month month day-of-week,
	//     for example "0 2 * * *" (02:00 every day) or "*/15 9-17 * * 1-5" (every 15 minutes
	//     during office hours on weekdays);
	//   - a macro: @yearly (or @annually), @monthly, @weekly, @daily (or @midnight), @hourly;
	//   - "@every <duration>", for example "@every 90s" or "@every 6h": ticks at the schedule's
	//     creation time plus whole multiples of the duration (at least 1s; fractions of a
	//     second are dropped), so every replica computes the same ticks.
	//
	// Cron expressions are read in spec.timeZone. An expression the manager cannot parse sets
	// the Ready condition to False with reason InvalidSchedule.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('TZ=') && !self.startsWith('CRON_TZ=')",message="set the time zone in spec.timeZone, not in spec.schedule"
	Schedule string `json:"schedule"`

	// timeZone is the IANA time zone the cron expression is read in, for example
	// "Europe/Berlin" or "America/New_York". Defaults to UTC. Daylight-saving changes follow
	// cron(8): a tick at a fixed time of day that the clock skips in spring (02:30 when clocks
	// jump from 02:00 to 03:00) starts right after the jump, and one the clock passes twice
	// in autumn starts only the first time; schedules with "*" in the minute or hour field
	// (and @hourly) follow the clock as it is. The zone database is built into the manager.
	// An unknown zone sets Ready to False with reason InvalidTimeZone.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_+/-]*$`
	// +kubebuilder:validation:XValidation:rule="self != 'Local'",message="Local is the manager's own zone and differs between machines; name a zone, for example UTC or Europe/Berlin"
	// +kubebuilder:default=UTC
	// +optional
	TimeZone string `json:"timeZone,omitempty"`

	// workflowName is the registered workflow each tick starts, in this namespace, for
	// example "nightly_report". A name the manager does not know sets Ready to False with
	// reason UnknownWorkflow, and its ticks are recorded as skipped.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`
	WorkflowName string `json:"workflowName"`

	// input is every run's input: any JSON value, decoded into the workflow's input type.
	// Example: {"channel": "ops", "topic": "open incidents"}.
	// +optional
	Input *apiextensionsv1.JSON `json:"input,omitempty"`

	// concurrencyPolicy says what a tick does while an earlier run of this schedule is still
	// in flight: Allow (the default) starts it anyway; Forbid skips the tick, recorded with
	// reason ConcurrencyForbidden; Replace cancels the runs in flight and starts the new one.
	// +kubebuilder:default=Allow
	// +optional
	ConcurrencyPolicy ConcurrencyPolicy `json:"concurrencyPolicy,omitempty"`

	// startingDeadline is how late a tick may still start, as a Go duration such as "5m" or
	// "72h": the catch-up window. A tick that cannot start within it (the operator was down,
	// the schedule's workflow was unknown) is recorded as skipped with reason
	// StartingDeadlineExceeded. Unset means no limit: catchUp alone decides.
	// +optional
	StartingDeadline *metav1.Duration `json:"startingDeadline,omitempty"`

	// catchUp says which missed ticks within the startingDeadline run once a manager is back:
	// None runs none of them, Latest (the default) runs the most recent one, All runs each of
	// them, oldest first, up to maxCatchUp. A tick counts as missed when a manager first sees
	// it due more than a minute late, or when a later tick is due as well. The ticks that do
	// not run are recorded as skipped (reason NotCaughtUp or MaxCatchUpExceeded), never lost
	// silently.
	// +kubebuilder:default=Latest
	// +optional
	CatchUp CatchUpPolicy `json:"catchUp,omitempty"`

	// maxCatchUp bounds how many missed ticks catchUp All runs after downtime: the most recent
	// ones run, older ones are recorded as skipped with reason MaxCatchUpExceeded. Defaults
	// to 100. Only with catchUp All.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	MaxCatchUp *int32 `json:"maxCatchUp,omitempty"`

	// suspend pauses the schedule: ticks that fall due while it is true are recorded as
	// skipped with reason Suspended and do not run when the schedule resumes (backfill them
	// through the REST API if they should). Runs already started carry on.
	// +kubebuilder:default=false
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// suspendNote says why the schedule is suspended, for the next person who looks, for
	// example "paused during the database migration, ask #ops". The REST API's pause sets it.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	SuspendNote string `json:"suspendNote,omitempty"`

	// jitter delays each tick's start by a random amount below this duration, for example
	// "30s", so that many schedules on the same minute do not all start at once. The delay is
	// derived from the schedule's UID and the tick, so every replica and every restart agrees
	// on it. Keep it shorter than the time between ticks. Unset means no delay.
	// +optional
	Jitter *metav1.Duration `json:"jitter,omitempty"`

	// successfulRunsHistoryLimit is how many succeeded runs of the schedule are kept; older
	// ones are deleted. Defaults to 3, as for CronJobs.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +kubebuilder:default=3
	// +optional
	SuccessfulRunsHistoryLimit *int32 `json:"successfulRunsHistoryLimit,omitempty"`

	// failedRunsHistoryLimit is how many failed or cancelled runs of the schedule are kept;
	// older ones are deleted. Defaults to 1, as for CronJobs.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +kubebuilder:default=1
	// +optional
	FailedRunsHistoryLimit *int32 `json:"failedRunsHistoryLimit,omitempty"`
}

// ScheduledRun names a run of the schedule that is still in flight.
type ScheduledRun struct {
	// name is the WorkflowRun's name, in the schedule's namespace.
	Name string `json:"name"`
	// scheduledTime is the tick the run belongs to (for a manual trigger, when it was triggered).
	ScheduledTime metav1.Time `json:"scheduledTime"`
}

// ScheduleTick records what the schedule did with one tick, or with a stretch of consecutive
// ticks skipped for the same reason.
type ScheduleTick struct {
	// scheduledTime is the tick's time (the first tick's, for a stretch).
	ScheduledTime metav1.Time `json:"scheduledTime"`
	// lastScheduledTime is the last tick's time of a stretch of skipped ticks.
	// +optional
	LastScheduledTime *metav1.Time `json:"lastScheduledTime,omitempty"`
	// count is how many ticks the record stands for; absent means one.
	// +optional
	Count int64 `json:"count,omitempty"`
	// outcome is Started (the tick's run exists) or Skipped.
	Outcome TickOutcome `json:"outcome"`
	// reason says why, in a CamelCase word. Started: Scheduled (on time), CaughtUp (a missed
	// tick run late) or AlreadyStarted (the run existed: a backfill or an earlier manager
	// started it). Skipped: Suspended, ConcurrencyForbidden, StartingDeadlineExceeded,
	// NotCaughtUp, MaxCatchUpExceeded or UnknownWorkflow.
	Reason string `json:"reason"`
	// run is the name of the tick's WorkflowRun.
	// +optional
	Run string `json:"run,omitempty"`
	// startedAt is when the manager created the run; minus scheduledTime, how late it started.
	// +optional
	StartedAt *metav1.MicroTime `json:"startedAt,omitempty"`
	// runPhase is how the tick's run ended (Succeeded, Failed or Cancelled), written once it
	// did; absent while it runs. A scheduled run that succeeds records no Event of its own:
	// this field, lastSuccessfulTime and the run's Succeeded condition say so (failures and
	// cancellations still record one on the run).
	// +optional
	RunPhase RunPhase `json:"runPhase,omitempty"`
	// message says more, for a skipped tick what to do about it (at most 1024 characters).
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
}

// WorkflowScheduleStatus is what the schedule did and will do next. Only the manager writes it.
type WorkflowScheduleStatus struct {
	// conditions hold Ready: True (reason Scheduled, or Suspended while suspended) when ticks
	// are computed; False with reason InvalidSchedule, InvalidTimeZone or UnknownWorkflow and
	// a message that says what to fix.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// lastScheduleTime is the most recent tick that started a run.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`

	// lastSuccessfulTime is when the most recent of the schedule's runs that succeeded
	// finished, as a CronJob's status says of its Jobs.
	// +optional
	LastSuccessfulTime *metav1.Time `json:"lastSuccessfulTime,omitempty"`
	// lastTickTime is the most recent tick the manager handled, by starting its run or
	// recording it as skipped. Ticks after it are still to come; a manager that was down
	// resumes from here, so no tick is handled twice or forgotten.
	// +optional
	LastTickTime *metav1.Time `json:"lastTickTime,omitempty"`

	// nextScheduleTime is the next tick (before jitter); absent while the schedule is not Ready.
	// +optional
	NextScheduleTime *metav1.Time `json:"nextScheduleTime,omitempty"`

	// active lists the schedule's runs that are still in flight, oldest tick first (the
	// newest 100 of them).
	// +optional
	Active []ScheduledRun `json:"active,omitempty"`

	// activeCount is how many runs of the schedule are in flight, for `kubectl get wfs`.
	// +optional
	ActiveCount int32 `json:"activeCount"`

	// recentTicks are the last ten records of what happened to ticks, oldest first; a stretch
	// of ticks skipped for the same reason is one record with a count.
	// +optional
	RecentTicks []ScheduleTick `json:"recentTicks,omitempty"`

	// runsStarted counts the runs the schedule's ticks started, over its life.
	// +optional
	RunsStarted int64 `json:"runsStarted,omitempty"`

	// ticksSkipped counts the ticks recorded as skipped, over its life.
	// +optional
	TicksSkipped int64 `json:"ticksSkipped,omitempty"`
}

// WorkflowSchedule starts runs of a workflow on a cron schedule, in a time zone. Each tick
// starts at most one run, named after the schedule and the tick, so a restart of the manager,
// a change of leader or two managers never start a tick twice; a tick that cannot run is
// recorded as skipped with a reason, never lost silently. Workflows may also declare schedules
// in code or in their file; the operator keeps those in step.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=wfs,categories=centaur
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`
// +kubebuilder:printcolumn:name="Zone",type=string,JSONPath=`.spec.timeZone`
// +kubebuilder:printcolumn:name="Workflow",type=string,JSONPath=`.spec.workflowName`
// +kubebuilder:printcolumn:name="Suspended",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="Last",type=date,JSONPath=`.status.lastScheduleTime`
// +kubebuilder:printcolumn:name="Next",type=string,JSONPath=`.status.nextScheduleTime`
// +kubebuilder:printcolumn:name="Active",type=integer,JSONPath=`.status.activeCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type WorkflowSchedule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says when to start runs of which workflow, and the policies for overlaps and
	// missed ticks.
	Spec WorkflowScheduleSpec `json:"spec"`
	// status records the last and next ticks, the runs in flight and the recent ticks.
	// +optional
	Status WorkflowScheduleStatus `json:"status,omitempty"`
}

// WorkflowScheduleList is a list of WorkflowSchedules.
//
// +kubebuilder:object:root=true
type WorkflowScheduleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WorkflowSchedule `json:"items"`
}

func init() {
	SchemeBuilder.Register(&WorkflowSchedule{}, &WorkflowScheduleList{})
}
