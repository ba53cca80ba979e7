package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// host is the engine.Host of one local run: events from the session's pool, children run
// in-process to their end when started, agent turns answered when started. Everything is
// done by the time the run asks for its result, so no local run waits on anything but events.
type host struct {
	s      *session
	run    string
	tracer *tracer
	result *Result

	mu sync.Mutex
	// missing is the last event query no event answered, for the error that ends the run.
	missing *engine.EventQuery
	// asked holds the waits AskEvent was asked about (a wait is its query and the number of
	// events the run received before it), so that a person is asked once a wait.
	asked map[string]bool
	// started holds the result of every child run and agent turn, by id.
	started map[string]engine.Result
	// childWorkflow names the workflow of each child run, for the trace.
	childWorkflow map[string]string
}

var _ engine.Host = (*host)(nil)

// FindEvent returns the oldest event of the query's type and correlation id the run has not
// received, as the manager does over WorkflowEvents.
func (h *host) FindEvent(_ context.Context, q engine.EventQuery) (engine.EventRecord, bool, error) {
	ev, ok := h.s.events.find(q)
	if !ok {
		var err error
		if ev, ok, err = h.askEvent(q); err != nil {
			return engine.EventRecord{}, false, err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !ok {
		h.missing = &q
		return engine.EventRecord{}, false, nil
	}
	h.missing = nil
	return ev, true, nil
}

// askEvent asks Options.AskEvent, once per wait, for the event q waits for, and adds what it
// gives to the pool.
func (h *host) askEvent(q engine.EventQuery) (engine.EventRecord, bool, error) {
	wait := EventWait{Run: h.run, EventType: q.Type, CorrelationID: q.CorrelationID}
	key := fmt.Sprintf("%s\x00%s\x00%d", q.Type, q.CorrelationID, len(q.Exclude))
	h.mu.Lock()
	ask := h.s.opts.AskEvent != nil && !h.asked[key]
	if ask {
		if h.asked == nil {
			h.asked = map[string]bool{}
		}
		h.asked[key] = true
	}
	n := len(h.asked)
	h.mu.Unlock()
	if !ask {
		return engine.EventRecord{}, false, nil
	}
	payload, given, err := h.s.opts.AskEvent(wait)
	if err != nil {
		return engine.EventRecord{}, false, fmt.Errorf("ask for event %s (correlation %q): %w", q.Type, q.CorrelationID, err)
	}
	if !given {
		return engine.EventRecord{}, false, nil
	}
	h.s.events.add(childID(h.run, fmt.Sprintf("asked-%d", n)), Event{EventType: q.Type, CorrelationID: q.CorrelationID, Payload: payload})
	ev, ok := h.s.events.find(q)
	return ev, ok, nil
}

// SendEvent adds the event to the session's pool, where this run, its parent and its children
// can receive it.
func (h *host) SendEvent(_ context.Context, step string, out engine.OutgoingEvent) (string, error) {
	ref := childID(h.run, step)
	h.s.events.add(ref, Event{EventType: out.Type, CorrelationID: out.CorrelationID, Payload: out.Payload})
	return ref, nil
}

// StartChild runs the child to its end, in-process with the same options, and keeps its
// result for ChildResult. A child whose workflow is unknown fails as in the manager.
func (h *host) StartChild(ctx context.Context, step, workflowName string, input json.RawMessage) (string, error) {
	id := childID(h.run, step)
	if _, ok := h.lookup(id); ok {
		return id, nil
	}
	var w durable.Workflow
	found := false
	if h.s.opts.Workflows != nil {
		w, found = h.s.opts.Workflows(workflowName)
	}
	if !found {
		h.finish(id, workflowName, engine.Result{Done: true, Failure: &engine.Failure{Reason: engine.ReasonUnknownWorkflow,
			Message: fmt.Sprintf("no workflow named %s is loaded here: put its file in the same directory", workflowName)}})
		return id, nil
	}
	h.tracer.line("child %s (%s) started", id, workflowName)
	child, err := h.s.run(ctx, w, id, input, h.tracer.child())
	h.mu.Lock()
	h.result.Children[id] = child
	h.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("child run %s (%s): %w", id, workflowName, err)
	}
	h.finish(id, workflowName, engine.Result{Done: true, Output: child.Output, Failure: child.Failure})
	return id, nil
}

// ChildResult returns the result of a child StartChild ran.
func (h *host) ChildResult(_ context.Context, id string) (engine.Result, error) {
	return h.resultOf("child run", id)
}

// StartAgent answers the turn with Options.AgentReply and keeps the answer for AgentResult.
func (h *host) StartAgent(_ context.Context, step string, req durable.AgentRequest) (string, error) {
	id := childID(h.run, step)
	if _, ok := h.lookup(id); ok {
		return id, nil
	}
	reply := h.s.opts.AgentReply
	if reply == nil {
		return "", &MissingReplyError{Run: h.run, Turn: step}
	}
	text, err := reply(AgentTurn{Run: h.run, Name: step, Request: req})
	if missing := (*MissingReplyError)(nil); errors.As(err, &missing) {
		return "", err
	}
	if err != nil {
		h.finish(id, "", engine.Result{Done: true, Failure: &engine.Failure{Reason: engine.ReasonAgentFailed, Message: err.Error()}})
		return id, nil
	}
	out, err := json.Marshal(durable.AgentResult{Text: text, Model: "local"})
	if err != nil {
		return "", fmt.Errorf("encode the reply of agent turn %q: %w", step, err)
	}
	h.finish(id, "", engine.Result{Done: true, Output: out})
	return id, nil
}

// AgentResult returns the answer StartAgent kept.
func (h *host) AgentResult(_ context.Context, id string) (engine.Result, error) {
	return h.resultOf("agent turn", id)
}

// finish keeps the result of the child run or agent turn id.
func (h *host) finish(id, workflow string, res engine.Result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started == nil {
		h.started, h.childWorkflow = map[string]engine.Result{}, map[string]string{}
	}
	h.started[id] = res
	if workflow != "" {
		h.childWorkflow[id] = workflow
	}
}

// lookup returns the result kept for id.
func (h *host) lookup(id string) (engine.Result, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	res, ok := h.started[id]
	return res, ok
}

// resultOf returns the result kept for id, or an error for an id this run never started.
func (h *host) resultOf(what, id string) (engine.Result, error) {
	res, ok := h.lookup(id)
	if !ok {
		return engine.Result{}, fmt.Errorf("%s %s was not started by run %s", what, id, h.run)
	}
	return res, nil
}

// workflowOf names the workflow of child run id, empty when unknown.
func (h *host) workflowOf(id string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.childWorkflow[id]
}

// childID is the id of what run starts at its primitive step, as the manager derives a
// child's name from its parent's and the step's.
func childID(run, step string) string {
	return run + "-" + strings.NewReplacer("/", "-", " ", "-").Replace(step)
}

// eventPool holds the events of a session: those given in Options and those runs sent.
type eventPool struct {
	mu     sync.Mutex
	events []pooledEvent
}

// pooledEvent is an event with its ref.
type pooledEvent struct {
	ref string
	Event
}

// add appends an event under ref.
func (p *eventPool) add(ref string, ev Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, pooledEvent{ref: ref, Event: ev})
}

// find returns the oldest event that matches q and is not in q.Exclude.
func (p *eventPool) find(q engine.EventQuery) (engine.EventRecord, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ev := range p.events {
		if ev.EventType == q.Type && ev.CorrelationID == q.CorrelationID && !slices.Contains(q.Exclude, ev.ref) {
			return engine.EventRecord{Ref: ev.ref, Payload: ev.Payload}, true
		}
	}
	return engine.EventRecord{}, false
}
