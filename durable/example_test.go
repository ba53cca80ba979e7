package durable_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// TrialInput is what a run of the trial workflow is started with.
type TrialInput struct {
	Email string `json:"email"`
}

// TrialOutput is what a finished run reports.
type TrialOutput struct {
	Account  string `json:"account"`
	Reminded bool   `json:"reminded"`
}

// Trial opens an account, waits out a two-week trial and sends a reminder. The handler reads
// like straight-line code; the engine makes it durable: each Step runs once and its result is
// journalled, and the Sleep costs nothing while it lasts.
var Trial = durable.Define("trial", func(ctx *durable.Context, in TrialInput) (TrialOutput, error) {
	account, err := durable.Step(ctx, "open-account", func(context.Context) (string, error) {
		// A real step would call a billing API here.
		return "acct-" + strings.Split(in.Email, "@")[0], nil
	})
	if err != nil {
		return TrialOutput{}, err
	}
	durable.Logger(ctx).Info("trial started", "account", account)

	durable.Sleep(ctx, "trial-period", 14*24*time.Hour)

	sent, err := durable.Step(ctx, "send-reminder", func(context.Context) (bool, error) {
		return true, nil // a real step would send an email
	}, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 5}))
	if err != nil {
		return TrialOutput{}, err
	}
	return TrialOutput{Account: account, Reminded: sent}, nil
})

// memoryStore keeps a run's journal in memory. In the operator the journal lives in the
// WorkflowRun (its status and sealed segments); the engine only needs something that persists
// it as the handler goes on, and the host persists it once more with each outcome.
type memoryStore struct{ entries []engine.Entry }

func (s *memoryStore) Record(_ context.Context, journal *engine.Journal, _ []engine.Entry) error {
	s.entries = append([]engine.Entry(nil), journal.Entries()...)
	return nil
}

// Example runs the trial workflow the way the operator does: each execution replays the
// handler from the top against the stored journal, until it completes.
func Example() {
	now := time.Date(2030, time.March, 1, 9, 0, 0, 0, time.UTC)
	store := &memoryStore{}

	execute := func() engine.Outcome {
		journal := engine.NewJournal(store.entries) // what earlier executions recorded
		out := engine.Execute(context.Background(), Trial, engine.Execution{
			Run:      durable.RunInfo{Name: "trial-ada", WorkflowName: Trial.Name(), StartedAt: now},
			Input:    json.RawMessage(`{"email": "ada@example.com"}`),
			Journal:  journal,
			Clock:    func() time.Time { return now }, // a fake clock, to skip the two weeks
			Recorder: store,
		})
		if out.Kind != engine.Aborted {
			_ = store.Record(context.Background(), journal, out.Unrecorded) // stored with the outcome
		}
		return out
	}

	out := execute()
	if out.Kind == engine.Suspended {
		fmt.Printf("suspended at %q until %s\n", out.Current, out.WakeAt.Format(time.DateOnly))
	}

	now = out.WakeAt // two weeks pass; the operator wakes the run
	out = execute()  // "open-account" is not run again: its result comes from the journal
	if out.Kind == engine.Completed {
		fmt.Printf("completed: %s\n", out.Output)
	}

	for _, e := range store.entries {
		fmt.Printf("%-14s %-5s %s\n", e.Name, e.Kind, e.State)
	}
	// Output:
	// suspended at "trial-period" until 2030-03-15
	// completed: {"account":"acct-ada","reminded":true}
	// open-account   Step  Completed
	// trial-period   Sleep Completed
	// send-reminder  Step  Completed
}
