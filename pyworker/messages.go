package pyworker

import (
	"encoding/json"
	"fmt"
	"time"
)

// Bundle is a revision's source: the workflow file and its helpers, by path relative to the
// workflow directory. Its JSON form is the one workflowfile.Bundle stores.
type Bundle struct {
	Origin string            `json:"origin"`
	Entry  string            `json:"entry"`
	Files  map[string]string `json:"files"`
}

// LoadRequest asks a worker to import a revision.
type LoadRequest struct {
	// Digest is the bundle's digest (see Digest); the worker checks it before running anything.
	Digest string
	// Revision, when set, is the revision's name, which must end with the digest's prefix.
	Revision string
	// Dir is the directory the files came from, shown in file names of errors and tracebacks.
	Dir string
	// Bundle is the source.
	Bundle Bundle
}

// Meta is what a worker reports of a loaded workflow file.
type Meta struct {
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	ExampleInput json.RawMessage `json:"example_input"`
	// Input lists the fields of the file's Input dataclass; nil when it declares none.
	Input      []InputField   `json:"input"`
	Webhooks   []WebhookDecl  `json:"webhooks"`
	Schedules  []ScheduleDecl `json:"schedules"`
	Namespaces []string       `json:"namespaces"`
}

// InputField is one field of an Input dataclass; Type is the annotation written canonically
// (str, int, float, bool, Any, list[T], dict[str, T], Optional[T]).
type InputField struct {
	Name     string          `json:"name"`
	Type     string          `json:"type"`
	Required bool            `json:"required"`
	Default  json.RawMessage `json:"default,omitempty"`
}

// WebhookDecl is one entry of a file's WEBHOOKS.
type WebhookDecl struct {
	Slug                string    `json:"slug"`
	Provider            string    `json:"provider"`
	Auth                *AuthDecl `json:"auth"`
	TriggerKey          string    `json:"trigger_key"`
	TriggerBodyField    string    `json:"trigger_body_field"`
	AllowedMethods      []string  `json:"allowed_methods"`
	AllowedContentTypes []string  `json:"allowed_content_types"`
	ReplayProtection    string    `json:"replay_protection"`
	WebhookOnly         bool      `json:"webhook_only"`
}

// AuthDecl is a WebhookDecl's auth: HmacAuth(...), TokenAuth(...), their presets, or "none".
// TimestampTolerance is seconds.
type AuthDecl struct {
	Scheme             string   `json:"scheme"`
	SecretRef          string   `json:"secret_ref"`
	Header             string   `json:"header"`
	Prefix             string   `json:"prefix"`
	Algorithm          string   `json:"algorithm"`
	Encoding           string   `json:"encoding"`
	SignedTemplate     string   `json:"signed_template"`
	TimestampHeader    string   `json:"timestamp_header"`
	TimestampKey       string   `json:"timestamp_key"`
	SignatureKey       string   `json:"signature_key"`
	IDHeader           string   `json:"id_header"`
	TimestampField     string   `json:"timestamp_field"`
	TimestampTolerance *float64 `json:"timestamp_tolerance"`
}

// ScheduleDecl is one entry of a file's SCHEDULES; durations are seconds.
type ScheduleDecl struct {
	Cron              string          `json:"cron"`
	TimeZone          string          `json:"time_zone"`
	Input             json.RawMessage `json:"input"`
	Name              string          `json:"name"`
	ConcurrencyPolicy string          `json:"concurrency_policy"`
	CatchUp           string          `json:"catch_up"`
	MaxCatchUp        int             `json:"max_catch_up"`
	StartingDeadline  *float64        `json:"starting_deadline"`
	Jitter            *float64        `json:"jitter"`
}

// ReasonLoadFailed is the reason of a file whose top level the worker could not finish
// importing (it ran past the deadline, or the worker died). The package knows nothing of
// Kubernetes, so api/v1alpha1 mirrors it (its reasons_test.go compares the two). The worker's
// own reasons (SyntaxError, ImportError, MissingWorkflowName, ...) come from the Python side.
const ReasonLoadFailed = "LoadFailed"

// LoadError says why a file does not load, and where.
type LoadError struct {
	Reason    string `json:"reason"`
	File      string `json:"file"`
	Line      int    `json:"line"`
	Column    int    `json:"column"`
	Message   string `json:"message"`
	Traceback string `json:"traceback"`
}

// Error formats the error as "reason: file:line:column: message".
func (e *LoadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: %s:%d:%d: %s", e.Reason, e.File, e.Line, e.Column, e.Message)
	}
	return fmt.Sprintf("%s: %s: %s", e.Reason, e.File, e.Message)
}

// RunInfo identifies the run a session executes.
type RunInfo struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	UID       string    `json:"uid"`
	Workflow  string    `json:"workflow"`
	Revision  string    `json:"revision"`
	StartedAt time.Time `json:"started_at"`
}

// JournalEnd says where a run's journal ends (engine.JournalEnd); the worker only compares it.
type JournalEnd struct {
	Entries int    `json:"n"`
	Digest  string `json:"d"`
}

// Call is one primitive of a turn, with the arguments of its kind (python/PROTOCOL.md,
// "Calls").
type Call struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Site is where the handler's code made the call, "FILE:LINE in FUNCTION", for reports
	// that point at it (centaur replay); empty when the worker could not tell.
	Site string `json:"site"`
	// step and parallel
	Retry    *RetryDecl `json:"retry"`
	Timeout  *float64   `json:"timeout"`
	Batched  bool       `json:"batched"`
	Async    bool       `json:"async"`
	Branches []Branch   `json:"branches"`
	// sleep and sleep_until
	Seconds float64 `json:"seconds"`
	Until   string  `json:"until"`
	// events
	EventType     string          `json:"event_type"`
	CorrelationID string          `json:"correlation_id"`
	Payload       json.RawMessage `json:"payload"`
	// children
	WorkflowName string          `json:"workflow_name"`
	Input        json.RawMessage `json:"input"`
	RunID        string          `json:"run_id"`
	// agents
	Request *AgentDecl `json:"request"`
	TurnID  string     `json:"turn_id"`
	// versions
	ChangeID     string `json:"change_id"`
	MinSupported int    `json:"min_supported"`
	MaxSupported int    `json:"max_supported"`
}

// Branch is one branch of a parallel call.
type Branch struct {
	Name  string `json:"name"`
	Async bool   `json:"async"`
}

// RetryDecl is a step's retry policy; durations are seconds, nil fields take the defaults.
type RetryDecl struct {
	MaxAttempts            *int     `json:"max_attempts"`
	InitialBackoff         *float64 `json:"initial_backoff"`
	Multiplier             *float64 `json:"multiplier"`
	MaxBackoff             *float64 `json:"max_backoff"`
	NonRetryableErrorTypes []string `json:"non_retryable_error_types"`
}

// AgentDecl is the request of an agent turn.
type AgentDecl struct {
	Prompt       string   `json:"prompt"`
	Agent        string   `json:"agent"`
	ThreadKey    string   `json:"thread_key"`
	Instructions string   `json:"instructions"`
	Model        string   `json:"model"`
	Temperature  *float64 `json:"temperature"`
	MaxTokens    int      `json:"max_tokens"`
}

// Result answers one call of a turn: a value, an error, or pending (a gathered step left
// unresolved).
type Result struct {
	Value   json.RawMessage `json:"value,omitempty"`
	Error   *CallError      `json:"error,omitempty"`
	Pending bool            `json:"pending,omitempty"`
}

// CallError is the error a call raises in the handler (python/PROTOCOL.md, "Results").
type CallError struct {
	Kind      string `json:"kind"`
	Step      string `json:"step,omitempty"`
	Attempts  int    `json:"attempts,omitempty"`
	Child     string `json:"child,omitempty"`
	Turn      string `json:"turn,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Message   string `json:"message"`
	ErrorType string `json:"error_type,omitempty"`
	Type      string `json:"type,omitempty"`
}

// StepError is how a step function failed in the worker.
type StepError struct {
	Type         string `json:"type"`
	Message      string `json:"message"`
	NonRetryable bool   `json:"non_retryable"`
	Traceback    string `json:"traceback"`
}

// HandlerError is an exception that left the handler; Reason is StepFailed, ChildFailed or
// AgentFailed when it was the exception of a failed primitive.
type HandlerError struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	Traceback string `json:"traceback"`
	Reason    string `json:"reason"`
}

// Stats are a worker's figures.
type Stats struct {
	Cached    int64 `json:"cached"`
	RSSBytes  int64 `json:"rss_bytes"`
	Revisions int64 `json:"revisions"`
	Hits      int64 `json:"hits"`
	Misses    int64 `json:"misses"`
}

// frame is every message of the protocol in one shape: the fields of each op are set, the
// others zero.
type frame struct {
	Op string `json:"op"`
	ID int64  `json:"id,omitempty"`
	S  int64  `json:"s,omitempty"`

	// ready
	Python string `json:"python,omitempty"`
	PID    int    `json:"pid,omitempty"`
	// load, loaded, load_failed
	Digest   string          `json:"digest,omitempty"`
	Revision *string         `json:"revision,omitempty"`
	Dir      string          `json:"dir,omitempty"`
	Bundle   *Bundle         `json:"bundle,omitempty"`
	Workflow *Meta           `json:"workflow,omitempty"`
	Error    json.RawMessage `json:"error,omitempty"`
	// run
	Run   *RunInfo        `json:"run,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
	End   *JournalEnd     `json:"end,omitempty"`
	// turn, return, fail
	Resumed bool            `json:"resumed,omitempty"`
	Calls   []Call          `json:"calls,omitempty"`
	Output  json.RawMessage `json:"output,omitempty"`
	Reason  string          `json:"reason,omitempty"`
	Message string          `json:"message,omitempty"`
	// results
	Now     *time.Time `json:"now,omitempty"`
	Results []Result   `json:"results,omitempty"`
	// call_step, step_done, cancel_step
	Call    *int            `json:"call,omitempty"`
	Branch  *int            `json:"branch,omitempty"`
	Attempt int             `json:"attempt,omitempty"`
	Value   json.RawMessage `json:"value,omitempty"`
	// Traceparent is the W3C trace context of a traced step attempt (call_step), which
	// api.workflow_engine.trace_headers hands the step function.
	Traceparent string `json:"traceparent,omitempty"`
	// end
	Keep *bool `json:"keep,omitempty"`
	// log
	Level  string                     `json:"level,omitempty"`
	Msg    string                     `json:"msg,omitempty"`
	Fields map[string]json.RawMessage `json:"fields,omitempty"`
	// stats
	*Stats
}
