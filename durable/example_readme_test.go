package durable_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/hosttest"
)

// HelloInput and HelloOutput are the README's hello workflow's input and output.
type (
	HelloInput  struct{ Name string }
	HelloOutput struct{ Greeting string }
)

// Hello is the README's first Go workflow.
var Hello = durable.Define("hello", func(ctx *durable.Context, in HelloInput) (HelloOutput, error) {
	greeting, err := durable.Step(ctx, "greet", func(context.Context) (string, error) {
		return "Hello, " + in.Name + "!", nil
	})
	return HelloOutput{Greeting: greeting}, err
})

// Greetings is the README's second Go workflow: it looks up two names in parallel, then greets
// each in a child run of Hello, typed by Hello's handle.
var Greetings = durable.Define("greetings", func(ctx *durable.Context, team string) ([]string, error) {
	names, err := durable.Parallel(ctx, []durable.Branch[string]{
		{Name: "lookup-lead", Fn: func(context.Context) (string, error) { return "Ada", nil }},
		{Name: "lookup-engineer", Fn: func(context.Context) (string, error) { return "Grace", nil }},
	})
	if err != nil {
		return nil, err
	}
	var greetings []string
	for _, name := range names {
		out, err := durable.RunWorkflow(ctx, "greet-"+strings.ToLower(name), Hello, HelloInput{Name: name})
		if err != nil {
			return nil, err
		}
		greetings = append(greetings, out.Greeting)
	}
	return greetings, nil
})

// inlineChildren is a host that runs each child run to its end as soon as it is started, where
// the operator would create a WorkflowRun and wake the parent when it finishes.
type inlineChildren struct {
	hosttest.Unavailable
	workflows map[string]durable.Workflow
	results   map[string]engine.Result
}

func (h *inlineChildren) StartChild(ctx context.Context, step, workflow string, input json.RawMessage) (string, error) {
	id := "child-" + step
	out := engine.Execute(ctx, h.workflows[workflow], engine.Execution{
		Run: durable.RunInfo{Name: id, WorkflowName: workflow}, Input: input,
		Journal: engine.NewJournal(nil), Recorder: &memoryStore{},
	})
	h.results[id] = engine.Result{Done: true, Output: out.Output, Failure: out.Failure}
	return id, nil
}

func (h *inlineChildren) ChildResult(_ context.Context, id string) (engine.Result, error) {
	return h.results[id], nil
}

// Example_readme runs the README's Greetings workflow: parallel steps, then typed children.
func Example_readme() {
	host := &inlineChildren{workflows: map[string]durable.Workflow{"hello": Hello}, results: map[string]engine.Result{}}
	journal := engine.NewJournal(nil)
	out := engine.Execute(context.Background(), Greetings, engine.Execution{
		Run: durable.RunInfo{Name: "greetings-core"}, Input: json.RawMessage(`"core"`),
		Journal: journal, Recorder: &memoryStore{}, Host: host,
	})
	fmt.Printf("%s %s\n", out.Kind, out.Output)
	for _, e := range journal.Entries() {
		fmt.Println(e.Name, e.Kind, e.State)
	}
	// Output:
	// Completed ["Hello, Ada!","Hello, Grace!"]
	// lookup-lead Step Completed
	// lookup-engineer Step Completed
	// greet-ada Child Completed
	// greet-ada/result Child Completed
	// greet-grace Child Completed
	// greet-grace/result Child Completed
}
