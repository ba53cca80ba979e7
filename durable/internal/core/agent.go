package core

import (
	"fmt"
	"strings"
)

// AgentRequest is one turn asked of an LLM agent.
type AgentRequest struct {
	// Agent names the configured agent (backend and settings) to use; empty means "default".
	Agent string `json:"agent,omitempty"`
	// Prompt is the turn's user message.
	Prompt string `json:"prompt"`
	// ThreadKey groups turns into one conversation: the backend sees the earlier turns of the
	// same thread, in order, as history. Example: "github:acme/api:42".
	ThreadKey string `json:"threadKey,omitempty"`
	// Instructions are added to the system prompt, after the agent's configured instructions.
	Instructions string `json:"instructions,omitempty"`
	// Model picks another model than the agent's, one of those the agent allows.
	Model string `json:"model,omitempty"`
	// Temperature is the sampling temperature; the agent's configured one is the most a turn
	// may ask for.
	Temperature *float64 `json:"temperature,omitempty"`
	// MaxTokens caps the reply's length in tokens, at most the agent's configured maxTokens.
	MaxTokens int `json:"maxTokens,omitempty"`
}

// AgentResult is a finished agent turn.
type AgentResult struct {
	// Text is the agent's reply.
	Text string `json:"text"`
	// Model is the model that answered.
	Model string `json:"model,omitempty"`
	// PromptTokens, CompletionTokens and TotalTokens are the backend's usage figures.
	PromptTokens     int64 `json:"promptTokens,omitempty"`
	CompletionTokens int64 `json:"completionTokens,omitempty"`
	TotalTokens      int64 `json:"totalTokens,omitempty"`
}

// AgentError is what WaitForAgent returns when the turn failed.
type AgentError struct {
	// Turn is the agent turn's id.
	Turn string
	// Reason and Message say why it failed.
	Reason, Message string
}

func (e *AgentError) Error() string {
	return fmt.Sprintf("agent turn %s failed: %s: %s", e.Turn, e.Reason, e.Message)
}

// ReasonAgentFailed is the reason of a run that failed because it returned an *AgentError.
const ReasonAgentFailed = "AgentFailed"

// StartAgent creates an agent turn and returns its id at once; the turn runs concurrently with
// the rest of the handler. Its name derives from the run and name, so a replay or a crash never
// asks the agent twice.
func StartAgent(ctx *Context, name string, req AgentRequest) (string, error) {
	e := ctx.exec
	if err := e.enter("StartAgent", name); err != nil {
		return "", err
	}
	if strings.TrimSpace(req.Prompt) == "" {
		return "", fmt.Errorf("agent turn %q has an empty prompt", name)
	}
	target := "start agent"
	if req.Agent != "" {
		target += " " + req.Agent
	}
	return e.once(name, KindAgent, target, func() (string, error) {
		return e.host.StartAgent(e.ctx, name, req)
	}), nil
}

// WaitForAgent suspends the run until the agent turn id finishes and returns its result, or an
// *AgentError. The run is woken by a watch on its turns, never by polling.
func WaitForAgent(ctx *Context, name, id string) (AgentResult, error) {
	e := ctx.exec
	if err := e.enter("WaitForAgent", name); err != nil {
		return AgentResult{}, err
	}
	entry := e.await(name, KindAgent, "agent turn "+id, 0, func() (Result, string, error) {
		res, err := e.host.AgentResult(e.ctx, id)
		return res, id, err
	})
	if entry.State == StateFailed {
		reason, message, _ := strings.Cut(entry.Error, ": ")
		return AgentResult{}, &AgentError{Turn: id, Reason: reason, Message: message}
	}
	return decodeRecorded[AgentResult](e, entry)
}

// RunAgent starts an agent turn and waits for it: StartAgent under name, then WaitForAgent
// under name + "/result".
func RunAgent(ctx *Context, name string, req AgentRequest) (AgentResult, error) {
	if err := ctx.exec.enter("RunAgent", name); err != nil {
		return AgentResult{}, err
	}
	id, err := StartAgent(ctx, name, req)
	if err != nil {
		return AgentResult{}, err
	}
	return WaitForAgent(ctx, name+"/result", id)
}

// AgentTurnOption configures an AgentTurn.
type AgentTurnOption func(*agentTurnOptions)

type agentTurnOptions struct{ name string }

// WithTurnName names an AgentTurn, as every other primitive is named: the turn is journalled
// as RunAgent(name) would be, and it keeps its record whatever turns come before it in a
// later version of the workflow.
func WithTurnName(name string) AgentTurnOption {
	return func(o *agentTurnOptions) { o.name = name }
}

// AgentTurn is the short form of RunAgent: one turn of the default agent in the conversation
// threadKey, returning the reply's text. Name it with WithTurnName:
//
//	reply, err := durable.AgentTurn(ctx, "Triage this issue: ...", "github:acme/api:42", durable.WithTurnName("triage"))
//
// A turn without a name is journalled as "agent-turn-N", N counting the handler's unnamed
// AgentTurn calls from 1, as earlier releases named every turn; runs recorded that way replay
// as long as the order of the unnamed turns stays the same.
func AgentTurn(ctx *Context, text, threadKey string, opts ...AgentTurnOption) (string, error) {
	var o agentTurnOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := ctx.exec.enter("AgentTurn", o.name); err != nil {
		return "", err
	}
	if o.name == "" {
		ctx.exec.agentTurns++
		o.name = fmt.Sprintf("agent-turn-%d", ctx.exec.agentTurns)
	}
	res, err := RunAgent(ctx, o.name, AgentRequest{Prompt: text, ThreadKey: threadKey})
	return res.Text, err
}
