package agents

import (
	"context"
	"fmt"
)

// Roles of the messages of a conversation, as the Chat Completions API names them.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one message of a conversation.
type Message struct {
	// Role is RoleSystem, RoleUser or RoleAssistant.
	Role string `json:"role"`
	// Content is the message's text.
	Content string `json:"content"`
}

// Request is one turn asked of a backend: the turn's prompt with the earlier turns of its
// thread and the model parameters, all already resolved from the agent's configuration and
// the turn's overrides.
type Request struct {
	// Model is the model to ask; backends may reject an empty one.
	Model string
	// Instructions is the system prompt; empty sends none.
	Instructions string
	// History holds the earlier turns of the thread, oldest first: for each, the user's
	// prompt and the assistant's reply.
	History []Message
	// Prompt is this turn's user message.
	Prompt string
	// Temperature is the sampling temperature; nil leaves the backend's default.
	Temperature *float64
	// MaxTokens caps the reply's length; zero leaves the backend's default.
	MaxTokens int
}

// Messages returns the conversation as a backend receives it: the system prompt (when there
// are instructions), the history in order, then the prompt.
func (r Request) Messages() []Message {
	msgs := make([]Message, 0, len(r.History)+2)
	if r.Instructions != "" {
		msgs = append(msgs, Message{Role: RoleSystem, Content: r.Instructions})
	}
	msgs = append(msgs, r.History...)
	return append(msgs, Message{Role: RoleUser, Content: r.Prompt})
}

// Usage holds the token counts a backend reported for a turn.
type Usage struct {
	PromptTokens     int64
	CompletionTokens int64
	TotalTokens      int64
}

// Response is a backend's answer to a turn.
type Response struct {
	// Text is the reply.
	Text string
	// Model is the model that answered, as the backend reported it.
	Model string
	// Usage holds the token counts.
	Usage Usage
	// Attempts counts the calls made, retries included.
	Attempts int
}

// Backend answers agent turns. Complete blocks until the reply arrives, the backend gives up
// (an *Error), or ctx is cancelled (ctx's error, unwrapped into no *Error).
type Backend interface {
	Complete(ctx context.Context, req Request) (Response, error)
}

// Reasons of failed turns, recorded in the AgentRun's status.error.reason. The package knows
// nothing of Kubernetes, so api/v1alpha1 mirrors them under the same names (its reasons_test.go
// fails on a reason added here without its twin there).
const (
	// ReasonUpstreamRejected: the backend refused the request for good (a 4xx other than
	// 408 and 429): a wrong model, a bad API key, a prompt too long. Retrying cannot help.
	ReasonUpstreamRejected = "UpstreamRejected"
	// ReasonUpstreamUnavailable: the backend kept answering 429 or 5xx, or could not be
	// reached, until the retries ran out.
	ReasonUpstreamUnavailable = "UpstreamUnavailable"
	// ReasonTimeout: no reply arrived within the turn's timeout.
	ReasonTimeout = "Timeout"
	// ReasonInvalidResponse: the backend answered 2xx with a body that is not a Chat
	// Completions response.
	ReasonInvalidResponse = "InvalidResponse"
	// ReasonConfigInvalid: the agents' configuration does not parse, or lacks what the
	// agent needs (a base URL, a model).
	ReasonConfigInvalid = "ConfigInvalid"
	// ReasonSecretNotFound: the Secret or the key holding the agent's API key is missing.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonNotAllowed: the agent's policy does not answer this turn: no WorkflowRun owns it
	// and its namespace is not in standaloneNamespaces, or it asks for a model not in models.
	ReasonNotAllowed = "NotAllowed"
)

// Error is a turn's failure: why (Reason), what to do about it (Message) and how many calls
// were made.
type Error struct {
	// Reason is one of the Reason constants.
	Reason string
	// Message says what happened, with the upstream's own error message when there is one.
	Message string
	// StatusCode is the last HTTP status received; zero when none was.
	StatusCode int
	// Attempts counts the calls made.
	Attempts int
	// Err is the underlying error, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Reason, e.Message) }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }
