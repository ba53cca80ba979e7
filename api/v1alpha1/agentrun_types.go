package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AgentPhase is where an agent turn stands.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed
type AgentPhase string

// The phases of an agent turn. Succeeded and Failed are final.
const (
	AgentPending   AgentPhase = "Pending"
	AgentRunning   AgentPhase = "Running"
	AgentSucceeded AgentPhase = "Succeeded"
	AgentFailed    AgentPhase = "Failed"
)

// IsFinal reports whether the turn has finished.
func (p AgentPhase) IsFinal() bool { return p == AgentSucceeded || p == AgentFailed }

// AgentRunSpec is one turn asked of an LLM agent.
type AgentRunSpec struct {
	// agent names the configured agent whose backend and settings answer this turn; see the
	// agents configuration in docs/agents.md. Empty means "default".
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Agent string `json:"agent,omitempty"`

	// prompt is the turn's user message.
	// +kubebuilder:validation:MinLength=1
	Prompt string `json:"prompt"`

	// threadKey groups turns into one conversation: the backend receives the earlier
	// succeeded turns of the same thread in this namespace, oldest first, as history.
	// Example: "github:acme/api:42".
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ThreadKey string `json:"threadKey,omitempty"`

	// instructions are added to the system prompt after the agent's configured instructions,
	// which a turn cannot replace.
	// +optional
	Instructions string `json:"instructions,omitempty"`

	// model picks another model than the agent's, one of those its settings allow (models).
	// +optional
	Model string `json:"model,omitempty"`

	// temperature is the sampling temperature, from 0 to 2; the agent's configured temperature
	// is the most a turn may ask for.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2
	// +optional
	Temperature *float64 `json:"temperature,omitempty"`

	// maxTokens caps the reply's length in tokens; it may only lower the agent's configured
	// maxTokens.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxTokens int32 `json:"maxTokens,omitempty"`
}

// TokenUsage is what a backend reported for a turn.
type TokenUsage struct {
	// promptTokens counts the input tokens, history included.
	// +optional
	PromptTokens int64 `json:"promptTokens,omitempty"`
	// completionTokens counts the reply's tokens.
	// +optional
	CompletionTokens int64 `json:"completionTokens,omitempty"`
	// totalTokens is the sum the backend reported.
	// +optional
	TotalTokens int64 `json:"totalTokens,omitempty"`
}

// AgentRunStatus is the turn's outcome. The manager writes it for built-in backends; an
// external agent runtime writes it itself (see the external-agent contract in docs/agents.md).
type AgentRunStatus struct {
	// phase is Pending until a backend takes the turn, Running while it answers, then
	// Succeeded or Failed.
	// +optional
	Phase AgentPhase `json:"phase,omitempty"`
	// backend says who answers the turn: "openai" or "external".
	// +optional
	Backend string `json:"backend,omitempty"`
	// message says in words what the turn waits for or what happened. Longer messages are
	// cut to 32768 characters.
	// +kubebuilder:validation:MaxLength=32768
	// +optional
	Message string `json:"message,omitempty"`
	// result is the agent's reply once the turn succeeded.
	// +optional
	Result string `json:"result,omitempty"`
	// model is the model that answered.
	// +optional
	Model string `json:"model,omitempty"`
	// usage holds the token counts the backend reported.
	// +optional
	Usage *TokenUsage `json:"usage,omitempty"`
	// error says why the turn failed.
	// +optional
	Error *RunError `json:"error,omitempty"`
	// attempts counts the calls made to the backend (retries after 429 and 5xx included).
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// startedAt is when a backend took the turn.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// finishedAt is when the turn succeeded or failed.
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
}

// AgentRun is one agent turn: a prompt for an LLM agent, optionally part of a thread, and its
// reply. Workflows create AgentRuns through start_agent, run_agent and agent_turn and wait for
// them; the manager answers them with a configured backend, or an external agent runtime does.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=agr,categories=centaur
// +kubebuilder:selectablefield:JSONPath=`.spec.threadKey`
// +kubebuilder:printcolumn:name="Agent",type=string,JSONPath=`.spec.agent`
// +kubebuilder:printcolumn:name="Thread",type=string,JSONPath=`.spec.threadKey`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Backend",type=string,JSONPath=`.status.backend`
// +kubebuilder:printcolumn:name="Tokens",type=integer,JSONPath=`.status.usage.totalTokens`
// +kubebuilder:printcolumn:name="Run",type=string,JSONPath=`.metadata.labels.workflows\.centaur\.dev/run`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Shard",type=string,JSONPath=`.metadata.labels.workflows\.centaur\.dev/shard`,priority=1
type AgentRun struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the turn's request.
	Spec AgentRunSpec `json:"spec"`
	// status is the turn's outcome.
	// +optional
	Status AgentRunStatus `json:"status,omitempty"`
}

// AgentRunList is a list of AgentRuns.
//
// +kubebuilder:object:root=true
type AgentRunList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AgentRun `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AgentRun{}, &AgentRunList{})
}
