package durable

import "github.com/centaur-dev/workflow-operator/durable/internal/core"

// AgentRequest is one turn asked of an LLM agent.
type AgentRequest = core.AgentRequest

// AgentResult is a finished agent turn.
type AgentResult = core.AgentResult

// AgentError is what WaitForAgent returns when the turn failed.
type AgentError = core.AgentError

// StartAgent creates an agent turn and returns its id at once; the turn runs concurrently with
// the rest of the handler. Its name derives from the run and name, so a replay or a crash never
// asks the agent twice.
func StartAgent(ctx *Context, name string, req AgentRequest) (string, error) {
	return core.StartAgent(ctx, name, req)
}

// WaitForAgent suspends the run until the agent turn id finishes and returns its result, or an
// *AgentError. The run is woken by a watch on its turns, never by polling.
func WaitForAgent(ctx *Context, name, id string) (AgentResult, error) {
	return core.WaitForAgent(ctx, name, id)
}

// RunAgent starts an agent turn and waits for it: StartAgent under name, then WaitForAgent
// under name + "/result".
func RunAgent(ctx *Context, name string, req AgentRequest) (AgentResult, error) {
	return core.RunAgent(ctx, name, req)
}

// AgentTurnOption configures an AgentTurn.
type AgentTurnOption = core.AgentTurnOption

// WithTurnName names an AgentTurn, as every other primitive is named: the turn is journalled
// as RunAgent(name) would be, and it keeps its record whatever turns come before it in a
// later version of the workflow.
func WithTurnName(name string) AgentTurnOption {
	return core.WithTurnName(name)
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
	return core.AgentTurn(ctx, text, threadKey, opts...)
}
