package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RunPhase is the coarse state of a WorkflowRun, shown in `kubectl get wfr`.
// +kubebuilder:validation:Enum=Pending;Running;Sleeping;Waiting;Succeeded;Failed;Cancelled
type RunPhase string

// The phases of a run. Succeeded, Failed and Cancelled are final.
const (
	// PhasePending: the run exists but the engine has not started it yet.
	PhasePending RunPhase = "Pending"
	// PhaseRunning: the engine is executing the handler or will again shortly (for example after a conflict).
	PhaseRunning RunPhase = "Running"
	// PhaseSleeping: the handler is suspended until status.wakeAt (a sleep or a retry backoff).
	PhaseSleeping RunPhase = "Sleeping"
	// PhaseWaiting: the handler is suspended until something outside happens (see status.waitingFor).
	PhaseWaiting RunPhase = "Waiting"
	// PhaseSucceeded: the handler returned an output.
	PhaseSucceeded RunPhase = "Succeeded"
	// PhaseFailed: the run ended with an error; status.error says why.
	PhaseFailed RunPhase = "Failed"
	// PhaseCancelled: spec.cancel stopped the run.
	PhaseCancelled RunPhase = "Cancelled"
)

// IsFinal reports whether the phase is terminal: the engine never runs the handler again.
func (p RunPhase) IsFinal() bool {
	return p == PhaseSucceeded || p == PhaseFailed || p == PhaseCancelled
}

// WorkflowRunSpec says which workflow to run, with what input, and how long the run may live.
// +kubebuilder:validation:XValidation:rule="self.workflowName == oldSelf.workflowName",message="workflowName is immutable"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.cancel) || !oldSelf.cancel || (has(self.cancel) && self.cancel)",message="cancel cannot be undone once set"
type WorkflowRunSpec struct {
	// workflowName is the registered name of the workflow to execute, for example "hello" or
	// "nightly_report". A name the manager does not know fails the run with reason
	// UnknownWorkflow and a message listing the known names. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`
	WorkflowName string `json:"workflowName"`

	// input is the workflow's input: any JSON value, decoded into the handler's input type.
	// Input that does not decode fails the run with reason InvalidInput. Changing it once the
	// run has started fails the run with reason InputChanged: replay would hand recorded results
	// to a different input.
	// Example: {"name": "Ada"}.
	// +optional
	Input *apiextensionsv1.JSON `json:"input,omitempty"`

	// cancel stops the run at its next suspension point or between two steps; the run ends in
	// phase Cancelled and its running child runs are cancelled too. Once true it stays true.
	// +optional
	Cancel bool `json:"cancel,omitempty"`

	// timeout bounds the run's whole life, measured from status.startedAt, as a Go duration
	// such as "30m" or "2h". A run still unfinished when it passes fails with reason Timeout.
	// Unset means no limit.
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// ttlSecondsAfterFinished deletes the run this many seconds after it finished (succeeded,
	// failed or was cancelled), like the field of the same name on Jobs. Unset keeps it forever.
	// +kubebuilder:validation:Minimum=0
	// +optional
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
}

// Bounds of the messages the manager copies into status: every message field of the
// operator's statuses carries one of them as its schema's maxLength. Longer messages are cut
// to fit (internal/textbound), with a note of how much was cut, so that a huge error never
// makes a status write fail.
const (
	// MaxMessageLength bounds status.error.message, as metav1.Condition bounds its message.
	MaxMessageLength = 32768
	// MaxEntryErrorLength bounds a journal entry's error.
	MaxEntryErrorLength = 32768
	// MaxTickMessageLength bounds the message of a schedule's recorded tick: the status keeps
	// many ticks, so each says its piece briefly.
	MaxTickMessageLength = 1024
)

// RunError is why a run failed: a CamelCase reason to branch on and a message for people.
type RunError struct {
	// reason is a CamelCase word such as UnknownWorkflow, InvalidInput, NonDeterministic,
	// HandlerError, StepFailed, Panic, Timeout or JournalTooLarge.
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason"`
	// message says what happened and, where it can, what to do about it. Longer messages are
	// cut to 32768 characters.
	// +kubebuilder:validation:MaxLength=32768
	Message string `json:"message"`
}

// EntryKind is the kind of durable primitive a journal entry records.
// +kubebuilder:validation:Enum=Step;Sleep;Event;Child;Agent;Version
type EntryKind string

// The kinds of journal entry, one for each durable primitive. They mirror the engine's
// (durable/engine.Kind); runstore.ToAPIJournal and FromAPIJournal convert between the two.
const (
	// EntryKindStep records a step: a function whose result is kept.
	EntryKindStep EntryKind = "Step"
	// EntryKindSleep records a sleep until a wake time.
	EntryKindSleep EntryKind = "Sleep"
	// EntryKindEvent records a wait for a WorkflowEvent.
	EntryKindEvent EntryKind = "Event"
	// EntryKindChild records a child run started or waited for.
	EntryKindChild EntryKind = "Child"
	// EntryKindAgent records an agent turn started or waited for.
	EntryKindAgent EntryKind = "Agent"
	// EntryKindVersion records the version of a change the run took.
	EntryKindVersion EntryKind = "Version"
)

// EntryState is where a journalled primitive stands.
// +kubebuilder:validation:Enum=Running;Retrying;Sleeping;Waiting;Completed;Failed
type EntryState string

// The states of a journal entry. Completed and Failed are final: replay returns them as
// recorded. All but Running mirror the engine's (durable/engine.State).
const (
	// EntryStateRunning is accepted by the schema; the engine records none of its entries in
	// it today (a primitive is written once it retries, sleeps, waits or ends).
	EntryStateRunning EntryState = "Running"
	// EntryStateRetrying: a step failed and waits for its next attempt at wakeAt.
	EntryStateRetrying EntryState = "Retrying"
	// EntryStateSleeping: a timer runs until wakeAt.
	EntryStateSleeping EntryState = "Sleeping"
	// EntryStateWaiting: something outside the run (an event, a child, an agent) is awaited.
	EntryStateWaiting EntryState = "Waiting"
	// EntryStateCompleted: the primitive finished; result holds its value.
	EntryStateCompleted EntryState = "Completed"
	// EntryStateFailed: the primitive failed for good; error holds the message.
	EntryStateFailed EntryState = "Failed"
)

// IsFinal reports whether the entry is Completed or Failed: replay returns it as recorded.
func (s EntryState) IsFinal() bool { return s == EntryStateCompleted || s == EntryStateFailed }

// JournalEntry records one durable primitive of a run, keyed by its name. On replay the
// engine returns the recorded result instead of running the primitive again.
type JournalEntry struct {
	// name is the primitive's name as the handler gave it, unique within the run.
	Name string `json:"name"`
	// kind is the primitive: Step, Sleep, Event, Child or Agent; Version records the version
	// of a change the run took (durable.GetVersion, ctx.get_version), its result the number.
	Kind EntryKind `json:"kind"`
	// state is Completed or Failed once final; Retrying while a step waits for its next
	// attempt; Sleeping while a timer runs; Waiting while an external result is awaited.
	State EntryState `json:"state"`
	// attempts counts how many times a step's function has been called.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// startedAt is when the primitive was first reached.
	// +optional
	StartedAt *metav1.MicroTime `json:"startedAt,omitempty"`
	// finishedAt is when the primitive completed or failed for good.
	// +optional
	FinishedAt *metav1.MicroTime `json:"finishedAt,omitempty"`
	// wakeAt is the absolute time a sleep ends, or a failed step's next attempt is due.
	// +optional
	WakeAt *metav1.MicroTime `json:"wakeAt,omitempty"`
	// target says what the primitive acted on or waits for: "event approval.decided/req-1"
	// (a wait for an event of that type and correlation id), "start hello" (a child run of
	// workflow hello started), "workflow parent-fetch" (a wait for child run parent-fetch),
	// "start agent" or "start agent triage" (an agent turn started), "agent turn
	// parent-triage" (a wait for that AgentRun).
	// +optional
	Target string `json:"target,omitempty"`
	// ref names the object the primitive used: the WorkflowEvent it received, the child
	// WorkflowRun or the AgentRun it started.
	// +optional
	Ref string `json:"ref,omitempty"`
	// result is the primitive's JSON result, returned as-is on replay. A result larger than
	// the manager's --inline-result-bytes is stored in WorkflowRunPayload objects instead, and
	// payload says where.
	// +optional
	Result *apiextensionsv1.JSON `json:"result,omitempty"`
	// payload references the WorkflowRunPayload objects holding a result stored out of line.
	// +optional
	Payload *PayloadRef `json:"payload,omitempty"`
	// error is the last error message of a failed or retrying step (cut to 32768 characters).
	// +kubebuilder:validation:MaxLength=32768
	// +optional
	Error string `json:"error,omitempty"`
	// errorType is the type the step's function gave its error (durable.NewError in Go, for
	// example "NotFound"), so that the handler can branch on it after replay; absent when the
	// error had none.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	ErrorType string `json:"errorType,omitempty"`
}

// PayloadRef says where a result stored out of line lives: WorkflowRunPayload objects in the
// run's namespace named name (the first part), name-1, name-2 and so on.
type PayloadRef struct {
	// name is the WorkflowRunPayload holding the first part of the result.
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// parts is how many WorkflowRunPayloads hold the result.
	// +kubebuilder:validation:Minimum=1
	Parts int32 `json:"parts"`
	// bytes is the result's size as JSON.
	// +kubebuilder:validation:Minimum=0
	Bytes int64 `json:"bytes"`
	// sha256 is the hex SHA-256 digest of the result's JSON, checked when it is read back.
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	SHA256 string `json:"sha256"`
}

// JournalHistory summarises a run's whole journal: the part sealed into WorkflowRunSegments,
// what status.journal holds, and how much the run has stored in all.
type JournalHistory struct {
	// segments counts the run's sealed WorkflowRunSegments (indexes 0 to segments-1). List
	// them with `kubectl get wfrs -l workflows.centaur.dev/run=NAME --sort-by=.spec.index`.
	// +optional
	Segments int32 `json:"segments,omitempty"`
	// sealedEntries counts the entries in those segments; status.journal holds the entries
	// after them.
	// +optional
	SealedEntries int64 `json:"sealedEntries,omitempty"`
	// sealedBytes is the size of the sealed entries as JSON.
	// +optional
	SealedBytes int64 `json:"sealedBytes,omitempty"`
	// entries counts every entry of the journal, sealed or not: the position the run has
	// reached.
	// +optional
	Entries int64 `json:"entries,omitempty"`
	// payloads counts the results stored out of line in WorkflowRunPayloads.
	// +optional
	Payloads int64 `json:"payloads,omitempty"`
	// payloadBytes is the size of those results.
	// +optional
	PayloadBytes int64 `json:"payloadBytes,omitempty"`
	// recordedBytes is everything the run has stored: its input, its whole journal, its
	// payloads and its output. The manager's --max-run-bytes bounds it, and the sum over a
	// namespace's runs is bounded by --max-namespace-bytes.
	// +optional
	RecordedBytes int64 `json:"recordedBytes,omitempty"`
}

// WorkflowRunStatus is the engine's view of a run, journal included. Only the manager writes it.
type WorkflowRunStatus struct {
	// phase is the run's coarse state: Pending, Running, Sleeping, Waiting, Succeeded, Failed
	// or Cancelled.
	// +optional
	Phase RunPhase `json:"phase,omitempty"`

	// conditions hold the Succeeded condition: Unknown while the run is in flight, True when
	// it succeeded, False when it failed or was cancelled. `kubectl wait
	// --for=condition=Succeeded` waits on it.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation the engine last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// startedAt is when the engine first ran the handler, in whole seconds.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`

	// startTime is startedAt to the microsecond, for example "2026-12-01T02:00:00.123456Z".
	// It is the time durable.Now (ctx.now() in workflow files) returns until the run reaches
	// its first primitive, so a sleep counted from the start ends exactly that long after it.
	// Runs started by a release without this field replay with startedAt instead.
	// +optional
	StartTime *metav1.MicroTime `json:"startTime,omitempty"`

	// finishedAt is when the run reached a final phase.
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`

	// workflowRevision identifies the code the run executes when its workflow comes from a
	// workflow file (WORKFLOW_DIRS or a WorkflowDefinition): a digest of the file and every
	// module it loads. It is recorded when the run starts, and the run replays that revision to
	// its end even after the file changes; new runs take the new code. Empty for workflows
	// compiled into the manager. Example: "nightly-report-3f9a2c81d04b".
	// +optional
	WorkflowRevision string `json:"workflowRevision,omitempty"`

	// inputDigest is the SHA-256 of spec.input (in canonical JSON) when the run started. The
	// engine replays recorded results against the input, so a run whose input changes after it
	// started fails with reason InputChanged instead.
	// +optional
	InputDigest string `json:"inputDigest,omitempty"`

	// currentStep is the name of the primitive the run is at: running, sleeping or waiting.
	// +optional
	CurrentStep string `json:"currentStep,omitempty"`

	// wakeAt is when a sleeping run wakes up next (a sleep's end or a retry's next attempt).
	// +optional
	WakeAt *metav1.MicroTime `json:"wakeAt,omitempty"`

	// waitingFor says in words what a Waiting run waits for.
	// +optional
	WaitingFor string `json:"waitingFor,omitempty"`

	// output is the handler's JSON output once the run succeeded.
	// +optional
	Output *apiextensionsv1.JSON `json:"output,omitempty"`

	// error says why the run failed.
	// +optional
	Error *RunError `json:"error,omitempty"`

	// journal is the open part of the run's journal: the durable primitives the handler
	// reached after those sealed into WorkflowRunSegments (see history), in the order reached.
	// Once enough entries are final the manager seals them into a segment, always keeping the
	// last few here, so this list stays short however long the run is. A run recorded by a
	// release without segments has its whole journal here; it is sealed on its next execution.
	// +optional
	Journal []JournalEntry `json:"journal,omitempty"`

	// journalBytes is the size as JSON of the whole journal, sealed segments included.
	// +optional
	JournalBytes int64 `json:"journalBytes,omitempty"`

	// history summarises the whole journal: sealed segments, payloads and the bytes the run
	// has stored.
	// +optional
	History *JournalHistory `json:"history,omitempty"`
}

// WorkflowRun is one durable execution of a registered workflow. The manager replays the
// workflow's handler against the run's journal (the WorkflowRunSegments it owns, then
// status.journal), so completed steps never run again and a run survives restarts of the
// manager. Create one with kubectl, the REST API or a webhook.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=wfr,categories=centaur
// +kubebuilder:printcolumn:name="Workflow",type=string,JSONPath=`.spec.workflowName`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Step",type=string,JSONPath=`.status.currentStep`
// +kubebuilder:printcolumn:name="Entries",type=integer,JSONPath=`.status.history.entries`,priority=1
// +kubebuilder:printcolumn:name="Parent",type=string,JSONPath=`.metadata.labels.workflows\.centaur\.dev/parent-run`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.error.reason`
// +kubebuilder:printcolumn:name="Started",type=date,JSONPath=`.status.startedAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Shard",type=string,JSONPath=`.metadata.labels.workflows\.centaur\.dev/shard`,priority=1
type WorkflowRun struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says which workflow to run and with what input.
	Spec WorkflowRunSpec `json:"spec"`
	// status is the engine's record of the run, journal included.
	// +optional
	Status WorkflowRunStatus `json:"status,omitempty"`
}

// WorkflowRunList is a list of WorkflowRuns.
//
// +kubebuilder:object:root=true
type WorkflowRunList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WorkflowRun `json:"items"`
}

func init() {
	SchemeBuilder.Register(&WorkflowRun{}, &WorkflowRunList{})
}
