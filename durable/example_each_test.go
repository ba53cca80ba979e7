package durable_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/hosttest"
)

// This file has a runnable example for each primitive. Each runs its workflow the way the
// operator does, through exampleRun: execute the handler, record the journal, and when the run
// suspends, let the time pass (or the world answer) and execute again from the top.

// exampleStart is when every example run starts.
var exampleStart = time.Date(2030, time.March, 1, 9, 0, 0, 0, time.UTC)

// exampleWorld is the world outside a run, in memory, where the operator has the Kubernetes
// API: events to receive, events sent, child runs (run to their end when started) and an
// agent that answers each prompt.
type exampleWorld struct {
	hosttest.Unavailable
	events   map[string]json.RawMessage // payloads by "type/correlation id"
	sent     []engine.OutgoingEvent
	children inlineChildren
	replies  map[string]engine.Result // agent turns by id
}

func newExampleWorld(workflows ...durable.Workflow) *exampleWorld {
	w := &exampleWorld{events: map[string]json.RawMessage{}, replies: map[string]engine.Result{}}
	w.children = inlineChildren{workflows: map[string]durable.Workflow{}, results: map[string]engine.Result{}}
	for _, wf := range workflows {
		w.children.workflows[wf.Name()] = wf
	}
	return w
}

func (w *exampleWorld) FindEvent(_ context.Context, q engine.EventQuery) (engine.EventRecord, bool, error) {
	key := q.Type + "/" + q.CorrelationID
	payload, ok := w.events[key]
	return engine.EventRecord{Ref: key, Payload: payload}, ok, nil
}

func (w *exampleWorld) SendEvent(_ context.Context, step string, ev engine.OutgoingEvent) (string, error) {
	w.sent = append(w.sent, ev)
	return step, nil
}

func (w *exampleWorld) StartChild(ctx context.Context, step, workflow string, input json.RawMessage) (string, error) {
	return w.children.StartChild(ctx, step, workflow, input)
}

func (w *exampleWorld) ChildResult(ctx context.Context, id string) (engine.Result, error) {
	return w.children.ChildResult(ctx, id)
}

func (w *exampleWorld) StartAgent(_ context.Context, step string, req durable.AgentRequest) (string, error) {
	out, _ := json.Marshal(durable.AgentResult{Text: fmt.Sprintf("%d words to think about", len(req.Prompt)/5), Model: "example-model"})
	w.replies[step] = engine.Result{Done: true, Output: out}
	return step, nil
}

func (w *exampleWorld) AgentResult(_ context.Context, id string) (engine.Result, error) {
	return w.replies[id], nil
}

// exampleRun executes wf with input until it completes or fails, moving the clock to each
// wake-up time in between, and prints how it ended and what its journal holds.
func exampleRun(wf durable.Workflow, input any, world *exampleWorld) {
	raw, _ := json.Marshal(input)
	now, store := exampleStart, &memoryStore{}
	for range 10 {
		journal := engine.NewJournal(store.entries)
		out := engine.Execute(context.Background(), wf, engine.Execution{
			Run:   durable.RunInfo{Name: "example", WorkflowName: wf.Name(), StartedAt: exampleStart},
			Input: raw, Journal: journal, Recorder: store, Host: world,
			Clock: func() time.Time { return now },
		})
		_ = store.Record(context.Background(), journal, out.Unrecorded)
		if out.Kind != engine.Suspended {
			fmt.Printf("%s %s\n", out.Kind, out.Output)
			break
		}
		fmt.Printf("suspended at %q until +%s\n", out.Current, out.WakeAt.Sub(exampleStart))
		now = out.WakeAt
	}
	for _, e := range store.entries {
		fmt.Printf("  %s %s %s attempts=%d\n", e.Name, e.Kind, e.State, e.Attempts)
	}
}

// Step runs a side effect once and journals its result; a failed attempt is retried after a
// durable backoff, which is a sleep of the run rather than of a goroutine.
func ExampleStep() {
	calls := 0
	wf := durable.Define("charge", func(ctx *durable.Context, amount int) (string, error) {
		return durable.Step(ctx, "charge-card", func(context.Context) (string, error) {
			if calls++; calls == 1 {
				return "", errors.New("payment provider unavailable") // retried
			}
			return fmt.Sprintf("charged %d", amount), nil
		}, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Minute}), durable.WithTimeout(10*time.Second))
	})
	exampleRun(wf, 42, newExampleWorld())
	// Output:
	// suspended at "charge-card" until +1m0s
	// Completed "charged 42"
	//   charge-card Step Completed attempts=2
}

// Sleep and SleepUntil suspend the run until a time recorded in the journal; nothing waits
// meanwhile, and a restart does not start the sleep over.
func ExampleSleep() {
	wf := durable.Define("reminder", func(ctx *durable.Context, _ struct{}) (string, error) {
		durable.Sleep(ctx, "cool-down", 3*time.Hour)
		nextMorning := time.Date(2030, time.March, 2, 8, 0, 0, 0, time.UTC)
		durable.SleepUntil(ctx, "next-morning", nextMorning)
		return "reminded at " + durable.Now(ctx).Format(time.Kitchen), nil
	})
	exampleRun(wf, struct{}{}, newExampleWorld())
	// Output:
	// suspended at "cool-down" until +3h0m0s
	// suspended at "next-morning" until +23h0m0s
	// Completed "reminded at 8:00AM"
	//   cool-down Sleep Completed attempts=0
	//   next-morning Sleep Completed attempts=0
}

// Decision is the payload of an approval event.
type Decision struct {
	Approved bool   `json:"approved"`
	By       string `json:"by"`
}

// WaitForEvent suspends the run until an event of a type and correlation id exists, and
// returns its payload typed; with a timeout, it returns ErrEventTimeout when none came.
func ExampleWaitForEvent() {
	wf := durable.Define("approval", func(ctx *durable.Context, request string) (string, error) {
		d, err := durable.WaitForEvent[Decision](ctx, "decision", "approval.decided", request, durable.WithWaitTimeout(72*time.Hour))
		if errors.Is(err, durable.ErrEventTimeout) {
			return "nobody decided", nil
		}
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("approved=%t by %s", d.Approved, d.By), nil
	})
	world := newExampleWorld()
	world.events["approval.decided/req-7"] = json.RawMessage(`{"approved": true, "by": "grace"}`)
	exampleRun(wf, "req-7", world)
	exampleRun(wf, "req-8", world) // no decision comes
	// Output:
	// Completed "approved=true by grace"
	//   decision Event Completed attempts=0
	// suspended at "decision" until +72h0m0s
	// Completed "nobody decided"
	//   decision Event Failed attempts=0
}

// SendEvent delivers an event once for the run, however often the handler replays.
func ExampleSendEvent() {
	wf := durable.Define("requester", func(ctx *durable.Context, request string) (string, error) {
		if err := durable.SendEvent(ctx, "ask", "approval.requested", request, map[string]string{"by": "ada"}); err != nil {
			return "", err
		}
		durable.Sleep(ctx, "give-them-time", time.Hour) // the replay after it does not send again
		return "asked", nil
	})
	world := newExampleWorld()
	exampleRun(wf, "req-9", world)
	for _, ev := range world.sent {
		fmt.Printf("sent %s %s %s\n", ev.Type, ev.CorrelationID, ev.Payload)
	}
	// Output:
	// suspended at "give-them-time" until +1h0m0s
	// Completed "asked"
	//   ask Event Completed attempts=0
	//   give-them-time Sleep Completed attempts=0
	// sent approval.requested req-9 {"by":"ada"}
}

// RunWorkflow runs a child workflow and returns its output typed by the child's handle;
// StartWorkflow and WaitForWorkflow are its two halves, for children that run at once.
func ExampleStartWorkflow() {
	wf := durable.Define("greet-both", func(ctx *durable.Context, _ struct{}) ([]string, error) {
		ada, err := durable.StartWorkflow(ctx, "greet-ada", Hello, HelloInput{Name: "Ada"})
		if err != nil {
			return nil, err
		}
		grace, err := durable.StartWorkflow(ctx, "greet-grace", Hello, HelloInput{Name: "Grace"})
		if err != nil {
			return nil, err
		}
		var greetings []string
		for _, child := range []durable.ChildRun[HelloOutput]{ada, grace} {
			out, err := durable.WaitForWorkflow(ctx, child) // out is a HelloOutput
			if err != nil {
				return nil, err
			}
			greetings = append(greetings, out.Greeting)
		}
		return greetings, nil
	})
	exampleRun(wf, struct{}{}, newExampleWorld(Hello))
	// Output:
	// Completed ["Hello, Ada!","Hello, Grace!"]
	//   greet-ada Child Completed attempts=0
	//   greet-grace Child Completed attempts=0
	//   greet-ada/result Child Completed attempts=0
	//   greet-grace/result Child Completed attempts=0
}

// RunAgent asks an LLM agent for one turn and waits for its reply; AgentTurn is the short
// form for the default agent, named with WithTurnName.
func ExampleRunAgent() {
	wf := durable.Define("triage", func(ctx *durable.Context, title string) (string, error) {
		res, err := durable.RunAgent(ctx, "summarize", durable.AgentRequest{Prompt: "Summarize: " + title, ThreadKey: "issue-42"})
		if err != nil {
			return "", err
		}
		reply, err := durable.AgentTurn(ctx, "Label it: "+res.Text, "issue-42", durable.WithTurnName("label"))
		return res.Model + ": " + reply, err
	})
	exampleRun(wf, "The login page times out", newExampleWorld())
	// Output:
	// Completed "example-model: 6 words to think about"
	//   summarize Agent Completed attempts=0
	//   summarize/result Agent Completed attempts=0
	//   label Agent Completed attempts=0
	//   label/result Agent Completed attempts=0
}
