package durable_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// runOnce executes wf once against an empty journal with a store in memory, as the operator
// runs a new run, and returns the outcome and the journal it recorded.
func runOnce(wf durable.Workflow) (engine.Outcome, []engine.Entry) {
	store := &memoryStore{}
	journal := engine.NewJournal(nil)
	out := engine.Execute(context.Background(), wf, engine.Execution{Run: durable.RunInfo{Name: "example"}, Journal: journal, Recorder: store})
	return out, journal.Entries()
}

// Parallel runs the functions of several steps at once; each is journalled by its name.
func ExampleParallel() {
	fetch := func(page string) func(context.Context) (int, error) {
		return func(context.Context) (int, error) { return len(page), nil } // a real step would fetch it
	}
	wf := durable.Define("sizes", func(ctx *durable.Context, _ struct{}) ([]int, error) {
		return durable.Parallel(ctx, []durable.Branch[int]{
			{Name: "fetch-docs", Fn: fetch("docs")},
			{Name: "fetch-blog-post", Fn: fetch("blog post")},
		})
	})
	out, entries := runOnce(wf)
	fmt.Printf("%s %s\n", out.Kind, out.Output)
	for _, e := range entries {
		fmt.Println(e.Name, e.Kind, e.State)
	}
	// Output:
	// Completed [4,9]
	// fetch-docs Step Completed
	// fetch-blog-post Step Completed
}

// ErrNoSuchUser is a typed error a handler branches on; true makes it non-retryable.
var ErrNoSuchUser = durable.NewError("NoSuchUser", "no such user", true)

// NewError gives a step's error a type that the journal keeps, so errors.Is matches it on the
// first execution and after every replay.
func ExampleNewError() {
	wf := durable.Define("lookup", func(ctx *durable.Context, _ struct{}) (string, error) {
		_, err := durable.Step(ctx, "load-user", func(context.Context) (string, error) {
			return "", fmt.Errorf("load user 42: %w", ErrNoSuchUser)
		})
		if errors.Is(err, ErrNoSuchUser) {
			return "signed up a new user instead", nil
		}
		return "found", err
	})
	out, entries := runOnce(wf)
	fmt.Printf("%s %s\n", out.Kind, out.Output)
	fmt.Println(entries[0].Name, entries[0].State, entries[0].Attempts, entries[0].ErrorType, entries[0].Error)
	// Output:
	// Completed "signed up a new user instead"
	// load-user Failed 1 NoSuchUser load user 42: no such user
}
