// Package hosttest helps tests build an engine.Host: embed Unavailable in a test's host and
// define only the methods the test answers; every other primitive that needs the world
// outside the run aborts the execution with an error that names it.
package hosttest

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// Unavailable is an engine.Host that has nothing to offer.
type Unavailable struct{}

var _ engine.Host = Unavailable{}

// unavailable is the error of a method the test's host does not answer.
func unavailable(what string) error {
	return fmt.Errorf("%s: not available in this test's host", what)
}

// FindEvent fails: no events.
func (Unavailable) FindEvent(context.Context, engine.EventQuery) (engine.EventRecord, bool, error) {
	return engine.EventRecord{}, false, unavailable("events")
}

// SendEvent fails: no events.
func (Unavailable) SendEvent(context.Context, string, engine.OutgoingEvent) (string, error) {
	return "", unavailable("sending events")
}

// StartChild fails: no child runs.
func (Unavailable) StartChild(context.Context, string, string, json.RawMessage) (string, error) {
	return "", unavailable("child runs")
}

// ChildResult fails: no child runs.
func (Unavailable) ChildResult(context.Context, string) (engine.Result, error) {
	return engine.Result{}, unavailable("child runs")
}

// StartAgent fails: no agents.
func (Unavailable) StartAgent(context.Context, string, durable.AgentRequest) (string, error) {
	return "", unavailable("agent turns")
}

// AgentResult fails: no agents.
func (Unavailable) AgentResult(context.Context, string) (engine.Result, error) {
	return engine.Result{}, unavailable("agent turns")
}
