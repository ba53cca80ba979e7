package v1alpha1

// The condition types the operator sets in status.conditions (metav1.Condition), each with
// observedGeneration. The reasons they carry are the Reason constants below.
const (
	// ConditionSucceeded is the condition type that tracks a run's outcome, as in Tekton and
	// Knative: Unknown while in flight, True on success, False on failure or cancellation.
	ConditionSucceeded = "Succeeded"
	// ConditionReady is the condition type that says whether an object serves: a
	// WebhookEndpoint serves deliveries, a WorkflowDefinition's revision starts runs, a
	// WorkflowSchedule ticks.
	ConditionReady = "Ready"
)

// Every reason the operator writes into a status (status.error.reason, a condition's reason,
// a schedule tick's reason, an AgentRun's status.error.reason, a route's reason) or onto an
// Event, each defined once. They are CamelCase words a script can branch on; the message
// beside them says what to fix.
//
// Packages that know nothing of Kubernetes (the engine, durable/engine; workflowfile;
// pyworkflow; pyworker; agents) keep reasons of their own, and this package mirrors them under the
// same names: reasons_test.go fails when one of theirs has no twin here.

// Reasons of a run's Succeeded condition while it is in flight or once it ended well.
const (
	// ReasonRunning: the engine executes the handler (condition Unknown).
	ReasonRunning = "Running"
	// ReasonSleeping: the handler sleeps until status.wakeAt (condition Unknown).
	ReasonSleeping = "Sleeping"
	// ReasonWaiting: the handler waits for an event, a child run or an agent turn (condition
	// Unknown).
	ReasonWaiting = "Waiting"
	// ReasonSucceeded: the handler returned its output (condition True).
	ReasonSucceeded = "Succeeded"
	// ReasonCancelled: spec.cancel stopped the run (condition False).
	ReasonCancelled = "Cancelled"
)

// Reasons a run fails with, set by the engine (durable/engine mirrors them) in
// status.error.reason and on the Succeeded condition.
const (
	// ReasonUnknownWorkflow: spec.workflowName names no workflow the manager knows. Also the
	// reason of a WebhookEndpoint's or a WorkflowSchedule's Ready condition whose
	// workflowName is unknown.
	ReasonUnknownWorkflow = "UnknownWorkflow"
	// ReasonInvalidInput: spec.input does not decode into the handler's input type.
	ReasonInvalidInput = "InvalidInput"
	// ReasonNonDeterministic: on replay the handler asked for other primitives than its
	// journal records.
	ReasonNonDeterministic = "NonDeterministic"
	// ReasonHandlerError: the handler returned an error.
	ReasonHandlerError = "HandlerError"
	// ReasonStepFailed: a step failed for good and the handler returned its error.
	ReasonStepFailed = "StepFailed"
	// ReasonPanic: the handler (or a step) panicked.
	ReasonPanic = "Panic"
	// ReasonJournalTooLarge: the journal would outgrow the run's object.
	ReasonJournalTooLarge = "JournalTooLarge"
	// ReasonOutputTooLarge: the handler's output does not fit the run's object.
	ReasonOutputTooLarge = "OutputTooLarge"
	// ReasonHandlerExited: the handler's goroutine ended without returning (runtime.Goexit).
	ReasonHandlerExited = "HandlerExited"
	// ReasonTooManyChildren: the run asked for more child runs than the manager allows.
	ReasonTooManyChildren = "TooManyChildren"
	// ReasonChildFailed: the handler returned the error of a child run that failed.
	ReasonChildFailed = "ChildFailed"
	// ReasonAgentFailed: the handler returned the error of an agent turn that failed; also
	// the failure a waiting handler gets from a failed turn whose status gives no reason.
	ReasonAgentFailed = "AgentFailed"
	// ReasonMisuse: the handler called a durable primitive where the engine forbids it.
	ReasonMisuse = "Misuse"
	// ReasonUnsupportedVersion: the run's recorded version of a change is outside what the
	// code supports now.
	ReasonUnsupportedVersion = "UnsupportedVersion"
)

// Reasons a run fails with, set by the manager around the engine.
const (
	// ReasonTimeout: the run outlived spec.timeout. Also an AgentRun's reason when no reply
	// arrived within the turn's timeout (package agents mirrors it).
	ReasonTimeout = "Timeout"
	// ReasonRevisionNotFound: the revision of the workflow file the run started on is no
	// longer stored (its ControllerRevision was deleted by hand).
	ReasonRevisionNotFound = "RevisionNotFound"
	// ReasonRevisionInvalid: the stored revision does not compile, does not match its name,
	// or (Python) imports a module gone from the worker's interpreter (pyworkflow mirrors it).
	ReasonRevisionInvalid = "RevisionInvalid"
	// ReasonInputChanged: spec.input was edited after the run started.
	ReasonInputChanged = "InputChanged"
	// ReasonNotStartedByWebhook: the workflow starts only from its webhooks (webhook_only),
	// and the run was made another way. Only the manager may set the label that marks a
	// webhook's runs (config/policy), so the label cannot be forged.
	ReasonNotStartedByWebhook = "NotStartedByWebhook"
	// ReasonQuarantined: the run's code killed the process that executed it (a sandbox
	// worker, or the manager's process without a sandbox; see packages sandbox and
	// crashguard), so the run fails instead of executing again. Also the reason of a
	// WorkflowDefinition's Ready condition once a run of its current revision killed the
	// manager's process (AnnotationQuarantinedRevision names the revision); new runs do not
	// start on it until the source changes.
	ReasonQuarantined = "Quarantined"
	// ReasonChildDeleted: the child run the handler waits for was deleted before it finished;
	// the handler gets it as the child's failure.
	ReasonChildDeleted = "ChildDeleted"
	// ReasonAgentRunDeleted: the agent turn the handler waits for was deleted before it
	// finished; the handler gets it as the turn's failure.
	ReasonAgentRunDeleted = "AgentRunDeleted"
	// ReasonForeignObject: the run's child run or agent turn exists already, under the name
	// the run gives it, with another spec than the run's: someone made it by hand.
	ReasonForeignObject = "ForeignObject"
	// ReasonJournalLost: a segment or payload the run's status counts on is gone or altered.
	ReasonJournalLost = "JournalLost"
	// ReasonInputTooLarge: the input leaves no room in the run's object for its status.
	ReasonInputTooLarge = "InputTooLarge"
	// ReasonNamespaceBudgetExceeded: the namespace's runs store more than
	// --max-namespace-bytes.
	ReasonNamespaceBudgetExceeded = "NamespaceBudgetExceeded"
)

// Reasons of the Kubernetes Events the operator records (kubectl describe, kubectl get
// events) that no status carries; an Event of a status change carries the status's reason
// (ReasonWaiting, ReasonSucceeded, ReasonCancelled, a Ready condition's).
const (
	// ReasonStarted: a run started, a schedule started a tick's run, or an agent turn asked
	// its backend.
	ReasonStarted = "Started"
	// ReasonFailed: a run or an agent turn failed; the message leads with the failure's own
	// reason.
	ReasonFailed = "Failed"
	// ReasonRetrying: an agent turn's call failed and will be retried.
	ReasonRetrying = "Retrying"
	// ReasonStepRetrying: a step's attempt failed and the step will be retried.
	ReasonStepRetrying = "StepRetrying"
	// ReasonStatusRefused: the API server refused a run's final status write.
	ReasonStatusRefused = "StatusRefused"
	// ReasonReplaced: a schedule cancelled a run because concurrencyPolicy Replace started a
	// new tick.
	ReasonReplaced = "Replaced"
	// ReasonDeclaredScheduleNameTaken: a declared schedule's WorkflowSchedule name is held by
	// a schedule the operator does not keep.
	ReasonDeclaredScheduleNameTaken = "DeclaredScheduleNameTaken"
	// ReasonSandboxDied: a run's sandbox worker died under it.
	ReasonSandboxDied = "SandboxDied"
)

// Reasons of a workflow file that does not load: a WorkflowDefinition's Ready condition, a
// failed revision of a WORKFLOW_DIRS file. Package workflowfile mirrors them, pyworkflow the
// Python ones.
const (
	// ReasonLoaded: the source compiled and runs of its workflow start on this revision.
	ReasonLoaded = "Loaded"
	// ReasonNameConflict: a workflow of the manager (Go or WORKFLOW_DIRS) or an older
	// definition in the namespace has the same WORKFLOW_NAME; this one is not used.
	ReasonNameConflict = "NameConflict"
	// ReasonDuplicateWorkflowName: two files of one directory declare the same
	// WORKFLOW_NAME.
	ReasonDuplicateWorkflowName = "DuplicateWorkflowName"
	// ReasonSyntaxError: the file does not parse.
	ReasonSyntaxError = "SyntaxError"
	// ReasonMissingWorkflowName: the file sets no WORKFLOW_NAME.
	ReasonMissingWorkflowName = "MissingWorkflowName"
	// ReasonMissingHandler: the file defines no handler(inp, ctx).
	ReasonMissingHandler = "MissingHandler"
	// ReasonInvalidWebhook: an entry of WEBHOOKS is unusable.
	ReasonInvalidWebhook = "InvalidWebhook"
	// ReasonInvalidInputDecl: the file's Input declaration is unusable.
	ReasonInvalidInputDecl = "InvalidInputDeclaration"
	// ReasonInvalidSchedule: an entry of SCHEDULES, or a WorkflowSchedule's spec.schedule,
	// does not parse or never falls (also a schedule's Ready condition).
	ReasonInvalidSchedule = "InvalidSchedule"
	// ReasonLoadFailed: executing the file's top level failed.
	ReasonLoadFailed = "LoadFailed"
	// ReasonModuleNotFound: the file loads a module that does not exist.
	ReasonModuleNotFound = "ModuleNotFound"
	// ReasonMemoryLimitExceeded: loading the file needs more than the manager's
	// --definition-load-memory.
	ReasonMemoryLimitExceeded = "MemoryLimitExceeded"
	// ReasonPythonNotSupported: a WorkflowDefinition's source is Python; definitions are
	// Starlark.
	ReasonPythonNotSupported = "PythonNotSupported"
	// ReasonExecutionLimit: a run's handler (a workflow file) ran more steps in one execution
	// than the manager allows: almost always an endless loop.
	ReasonExecutionLimit = "ExecutionLimitExceeded"
	// ReasonRevisionTooLarge: a Python file and its helpers do not fit the object that
	// stores a revision.
	ReasonRevisionTooLarge = "RevisionTooLarge"
	// ReasonPythonUnavailable: the manager has no usable Python interpreter.
	ReasonPythonUnavailable = "PythonUnavailable"
)

// Reasons of a WorkflowSchedule's Ready condition and of its recorded ticks
// (status.recentTicks[].reason).
const (
	// ReasonScheduled: the schedule's ticks are computed and start runs (Ready True); a
	// recorded tick started its run on time.
	ReasonScheduled = "Scheduled"
	// ReasonSuspended: spec.suspend is true, so ticks are computed and recorded as skipped
	// (Ready True); a recorded tick fell due while suspended.
	ReasonSuspended = "Suspended"
	// ReasonInvalidTimeZone: spec.timeZone names no zone the manager knows (Ready False).
	ReasonInvalidTimeZone = "InvalidTimeZone"
	// ReasonCaughtUp: a missed tick started its run late, as catchUp asked.
	ReasonCaughtUp = "CaughtUp"
	// ReasonAlreadyStarted: the tick's run existed already (a backfill, or a manager that
	// stopped before it could record the tick, created it).
	ReasonAlreadyStarted = "AlreadyStarted"
	// ReasonConcurrencyForbidden: concurrencyPolicy Forbid and a run of the schedule was in
	// flight.
	ReasonConcurrencyForbidden = "ConcurrencyForbidden"
	// ReasonStartingDeadlineExceeded: the tick could not start within
	// spec.startingDeadline.
	ReasonStartingDeadlineExceeded = "StartingDeadlineExceeded"
	// ReasonNotCaughtUp: a missed tick that catchUp (None, or Latest for all but the most
	// recent) does not run.
	ReasonNotCaughtUp = "NotCaughtUp"
	// ReasonMaxCatchUpExceeded: a missed tick older than the maxCatchUp most recent ones.
	ReasonMaxCatchUpExceeded = "MaxCatchUpExceeded"
	// ReasonRunNameTaken: the tick's run's name is held by an object the schedule does not
	// control.
	ReasonRunNameTaken = "RunNameTaken"
	// ReasonOverQuota: the namespace's quota or the cluster's budget refused the tick's run
	// (package runquota); the message says which.
	ReasonOverQuota = "OverQuota"
)

// Reasons of a failed agent turn (an AgentRun's status.error.reason). Package agents mirrors
// the backends' reasons; ReasonTimeout and ReasonSecretNotFound serve here too.
const (
	// ReasonUpstreamRejected: the backend refused the request for good (a 4xx other than
	// 408 and 429): a wrong model, a bad API key, a prompt too long.
	ReasonUpstreamRejected = "UpstreamRejected"
	// ReasonUpstreamUnavailable: the backend kept answering 429 or 5xx, or could not be
	// reached, until the retries ran out.
	ReasonUpstreamUnavailable = "UpstreamUnavailable"
	// ReasonInvalidResponse: the backend answered 2xx with a body that is not a Chat
	// Completions response.
	ReasonInvalidResponse = "InvalidResponse"
	// ReasonConfigInvalid: the agents' configuration does not parse, or lacks what the agent
	// needs (a base URL, a model).
	ReasonConfigInvalid = "ConfigInvalid"
	// ReasonNotAllowed: the agent's policy does not answer this turn.
	ReasonNotAllowed = "NotAllowed"
	// ReasonResultTooLarge: the reply does not fit an AgentRun's status.
	ReasonResultTooLarge = "ResultTooLarge"
	// ReasonBackendError: the backend failed in a way it did not classify.
	ReasonBackendError = "BackendError"
)

// Reasons of a WebhookEndpoint's Ready condition, also carried by a declared webhook's route
// that does not serve. Each comes with a message that says what to fix.
const (
	// ReasonReady: the endpoint serves deliveries.
	ReasonReady = "Ready"
	// ReasonSecretNotFound: a Secret the object names (spec.auth.secretRefs, an agent's API
	// key) does not exist.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonSecretKeyMissing: the Secret exists but lacks the key, or its value is empty.
	ReasonSecretKeyMissing = "SecretKeyMissing"
	// ReasonSecretNotReadable: the manager may not read a Secret a webhook names: its
	// namespace is not one the manager serves, or the manager has no RoleBinding there.
	ReasonSecretNotReadable = "SecretNotReadable"
	// ReasonSecretInvalid: the value cannot be used by the provider, for example a "whsec_"
	// secret whose remainder is not base64.
	ReasonSecretInvalid = "SecretInvalid"
	// ReasonSlugConflict: an older endpoint, or a workflow of the manager, serves the slug.
	ReasonSlugConflict = "SlugConflict"
	// ReasonSlugNotGranted: the operator's --webhook-slug-grants does not let the namespace
	// claim the slug.
	ReasonSlugNotGranted = "SlugNotGranted"
	// ReasonNotServed: a WorkflowDefinition declares a webhook, and this manager serves no
	// webhooks (status.webhooks[].reason).
	ReasonNotServed = "NotServed"
	// ReasonPending: a WorkflowDefinition's webhook route is being set up
	// (status.webhooks[].reason).
	ReasonPending = "Pending"
	// ReasonInvalidSpec: the provider settings are unusable (for example an hmac header that
	// is not a valid header name).
	ReasonInvalidSpec = "InvalidSpec"
)
