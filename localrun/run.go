package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/runstore"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// DefaultMaxExecutions bounds the executions of one run (each wake-up is one), so that a
// workflow that never ends (a retry policy without a bound, a loop of sleeps) ends locally.
const DefaultMaxExecutions = 10000

// Event is an event a local run may receive: the body of the REST API's
// POST /api/workflows/events, {"event_type": ..., "correlation_id": ..., "payload": ...}, so
// that what a script sends to a manager it can give a local run. Namespace is ignored.
type Event = restapi.EventRequest

// ParseEvent decodes and checks an event given as JSON, as the REST API does (its errors say
// what to fix, with an example).
func ParseEvent(data []byte) (Event, error) {
	ev, err := restapi.DecodeEvent(data)
	if err != nil {
		return Event{}, fmt.Errorf("event %s: %w", data, err)
	}
	return ev, nil
}

// AgentTurn is an agent turn a local run asks for, handed to Options.AgentReply.
type AgentTurn struct {
	// Run is the id of the run that asks (a child's id for a child's turn).
	Run string
	// Name is the turn's primitive name, such as "summarize".
	Name string
	// Request is what the workflow asked: prompt, thread key, agent, model.
	Request durable.AgentRequest
}

// EventWait is a wait for an event that no given event answers, as AskEvent is told of it.
type EventWait struct {
	// Run is the id of the waiting run (a child's id for a child's wait).
	Run string
	// EventType and CorrelationID are what the wait asks for.
	EventType, CorrelationID string
}

// FixedReply returns an Options.AgentReply that answers every turn with reply.
func FixedReply(reply string) func(AgentTurn) (string, error) {
	return func(AgentTurn) (string, error) { return reply, nil }
}

// Options configure a local run. The zero value runs a workflow without events, children or
// agents, with time skipped, printing nothing.
type Options struct {
	// Input is the run's JSON input; empty means {}.
	Input json.RawMessage
	// Events are the events the run (and its children) may receive, oldest first.
	Events []Event
	// AskEvent, when not nil, is asked for the payload of an event a run waits for and no
	// event of Events answers, once per wait (a person at a prompt): given false, the wait
	// goes on as without it (it times out, or the run stops with a *MissingEventError).
	AskEvent func(wait EventWait) (payload json.RawMessage, given bool, err error)
	// AgentReply answers agent turns; its error fails the turn (reason AgentFailed), as a
	// failed AgentRun would, except a *MissingReplyError, which ends the run as a nil
	// AgentReply does for every turn (a test's reply for some turns but not this one).
	AgentReply func(turn AgentTurn) (string, error)
	// RealTime waits out sleeps and retry backoffs instead of skipping them.
	RealTime bool
	// Out receives the printed trace; nil prints nothing.
	Out io.Writer
	// Workflows finds a child run's workflow by name (Dir.Lookup); nil: children fail with
	// reason UnknownWorkflow, as they would in a manager without that workflow.
	Workflows func(name string) (durable.Workflow, bool)
	// RunID is the top run's id (RunInfo.Name and UID); empty: "local-" + the workflow's name.
	RunID string
	// Logger receives the handlers' ctx.log lines; nil discards them.
	Logger *slog.Logger
	// Limits bound what a run stores, as the manager's flags do; zero values take the
	// engine's defaults.
	Limits engine.Limits
	// MaxExecutions bounds the executions of one run; zero means DefaultMaxExecutions.
	MaxExecutions int
	// Journal holds entries the top run starts with, as a run in a cluster starts each
	// execution with status.journal: a primitive recorded here returns its recorded result
	// without running (how a test mocks a step). Children start empty.
	Journal []engine.Entry
}

// Result is how a local run ended.
type Result struct {
	// RunID is the run's id; Workflow the workflow's name.
	RunID, Workflow string
	// Output is the run's JSON output when it succeeded.
	Output json.RawMessage
	// Failure says why the run failed (reason and message, as status.error); nil on success.
	Failure *engine.Failure
	// Journal is the run's journal, in the order its entries were first reached.
	Journal []engine.Entry
	// Children are the results of the child runs it started, by child run id.
	Children map[string]*Result
	// Executions counts the executions of the handler (1 + the wake-ups).
	Executions int
	// Skipped is the time the run skipped instead of waiting (zero with RealTime).
	Skipped time.Duration
}

// Succeeded reports whether the run completed with an output.
func (r *Result) Succeeded() bool { return r.Failure == nil }

// JournalJSON returns the journal as a JSON array of entries with the field names and time
// format of a WorkflowRun's status.journal (api/v1alpha1 JournalEntry), the form a
// `centaur run --journal` file holds.
func (r *Result) JournalJSON() ([]byte, error) {
	out, err := json.MarshalIndent(runstore.ToAPIJournal(r.Journal), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode the journal of run %s: %w", r.RunID, err)
	}
	return out, nil
}

// MissingEventError ends a local run whose handler waits for an event that Options.Events
// does not hold (or whose matching events it already received).
type MissingEventError struct {
	// Run is the waiting run's id, Step the wait's name.
	Run, Step string
	// EventType and CorrelationID are what the wait asks for.
	EventType, CorrelationID string
}

// Error names the wait and the event, and shows the event to give.
func (e *MissingEventError) Error() string {
	return fmt.Sprintf("run %s waits at %q for event %s (correlation %q), and no such event is left among those given: give it, e.g. {\"event_type\": %q, \"correlation_id\": %q, \"payload\": {}}",
		e.Run, e.Step, e.EventType, e.CorrelationID, e.EventType, e.CorrelationID)
}

// MissingReplyError ends a local run that asks for an agent turn when Options.AgentReply is
// nil.
type MissingReplyError struct {
	// Run is the run's id, Turn the turn's name.
	Run, Turn string
}

// Error names the turn and says how to answer it.
func (e *MissingReplyError) Error() string {
	return fmt.Sprintf("run %s asks agent turn %q and no agent reply is configured: give one with --agent-reply", e.Run, e.Turn)
}

// Run executes w with opts until it completes or fails, and returns how it ended. A failed
// run is a Result with a Failure and a nil error; the error is for a run that cannot go on
// locally: a wait no event answers (*MissingEventError), an agent turn without a reply
// (*MissingReplyError), an aborted execution, too many executions, or ctx's end. The Result
// then holds the journal so far.
func Run(ctx context.Context, w durable.Workflow, opts Options) (*Result, error) {
	if w == nil {
		return nil, errors.New("localrun: no workflow to run")
	}
	id := opts.RunID
	if id == "" {
		id = "local-" + w.Name()
	}
	s := &session{opts: opts, clock: newClock(opts.RealTime), events: &eventPool{}, seed: opts.Journal}
	tr := &tracer{out: opts.Out, real: opts.RealTime, now: s.clock.now}
	for i, ev := range opts.Events {
		s.events.add(fmt.Sprintf("event-%d", i+1), ev)
	}
	input := opts.Input
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	return s.run(ctx, w, id, input, tr)
}

// session is what the runs of one local run tree share: the options, the clock and the
// events.
type session struct {
	opts   Options
	clock  *clock
	events *eventPool
	// seed is Options.Journal until the top run takes it.
	seed []engine.Entry
}

// run executes one run (the top one or a child) to its end: the controller's loop of
// execute, suspend, wake.
func (s *session) run(ctx context.Context, w durable.Workflow, id string, input json.RawMessage, tr *tracer) (*Result, error) {
	res := &Result{RunID: id, Workflow: w.Name(), Children: map[string]*Result{}}
	host := &host{s: s, run: id, tracer: tr, result: res}
	tr.host = host
	journal := engine.NewJournal(s.seed)
	s.seed = nil
	ex := engine.Execution{
		Run:     durable.RunInfo{Namespace: "local", Name: id, UID: id, WorkflowName: w.Name(), StartedAt: s.clock.now()},
		Input:   input,
		Journal: journal,
		Clock:   s.clock.now,
		Recorder: engine.RecorderFunc(func(_ context.Context, _ *engine.Journal, changed []engine.Entry) error {
			tr.entries(changed)
			return nil
		}),
		Logger: s.opts.Logger,
		Limits: s.opts.Limits,
		Host:   host,
	}
	maxExec := s.opts.MaxExecutions
	if maxExec <= 0 {
		maxExec = DefaultMaxExecutions
	}
	defer func() { res.Journal = slices.Clone(journal.Entries()) }()
	for res.Executions < maxExec {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("run %s: %w", id, err)
		}
		res.Executions++
		out := engine.Execute(ctx, w, ex)
		tr.entries(out.Unrecorded)
		switch out.Kind {
		case engine.Completed:
			res.Output = out.Output
			tr.outcome(res)
			return res, nil
		case engine.Failed:
			res.Failure = out.Failure
			tr.outcome(res)
			return res, nil
		case engine.Aborted:
			return res, fmt.Errorf("run %s stopped at %q: %w", id, out.Current, out.Err)
		}
		if out.WakeAt.IsZero() {
			return res, host.stuck(out)
		}
		skipped, err := s.clock.until(ctx, out.WakeAt)
		res.Skipped += skipped
		if err != nil {
			return res, fmt.Errorf("run %s sleeping until %s: %w", id, out.WakeAt.Format(time.RFC3339), err)
		}
	}
	return res, fmt.Errorf("run %s did not end after %d executions: it keeps sleeping or retrying; raise Options.MaxExecutions if that is meant", id, maxExec)
}

// stuck is the error of a run suspended with nothing local to wake it.
func (h *host) stuck(out engine.Outcome) error {
	if q := h.missing; q != nil {
		return &MissingEventError{Run: h.run, Step: out.Current, EventType: q.Type, CorrelationID: q.CorrelationID}
	}
	return fmt.Errorf("run %s waits at %q for %s, which nothing local will bring", h.run, out.Current, strings.TrimSpace(out.Waiting))
}

// clock is the runs' clock. With time skipped it is virtual: the session's start plus the
// time skipped so far, so that a run's time moves only by what it sleeps or backs off (a 1 h
// sleep skips exactly 1 h, however long the steps take on the machine). With real time it is
// the wall clock.
type clock struct {
	real    bool
	start   time.Time
	skipped atomic.Int64
}

// newClock starts a session's clock now, to the microsecond as the engine reads clocks.
func newClock(real bool) *clock {
	return &clock{real: real, start: time.Now().UTC().Truncate(time.Microsecond)}
}

// now is the wall-clock time, or with time skipped the start plus the time skipped.
func (c *clock) now() time.Time {
	if c.real {
		return time.Now()
	}
	return c.start.Add(time.Duration(c.skipped.Load()))
}

// until waits for t: it jumps there (and returns how far), or sleeps there with real time.
// A jump lands on t rounded up to the microsecond, since the engine reads its clock to the
// microsecond: landing between would leave it a little before t, suspended again.
func (c *clock) until(ctx context.Context, t time.Time) (time.Duration, error) {
	if !c.real {
		if due := t.Truncate(time.Microsecond); due.Before(t) {
			t = due.Add(time.Microsecond)
		}
	}
	d := t.Sub(c.now())
	if d <= 0 {
		return 0, nil
	}
	if !c.real {
		c.skipped.Add(int64(d))
		return d, nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return 0, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
