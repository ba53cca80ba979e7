package localrun_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/localrun"
)

// ExampleRun runs a Go workflow that sleeps for a day, waits for an event and asks an agent:
// the day is skipped, the event comes from Options.Events and the agent's reply from
// Options.AgentReply.
func ExampleRun() {
	type order struct {
		ID string `json:"id"`
	}
	wf := durable.Define("ship", func(ctx *durable.Context, in order) (string, error) {
		durable.Sleep(ctx, "cool-off", 24*time.Hour)
		paid, err := durable.WaitForEvent[map[string]int](ctx, "paid", "order.paid", in.ID)
		if err != nil {
			return "", err
		}
		note, err := durable.AgentTurn(ctx, fmt.Sprintf("Write a shipping note for %d €", paid["amount"]), "order:"+in.ID, durable.WithTurnName("note"))
		if err != nil {
			return "", err
		}
		return note, nil
	})
	res, err := localrun.Run(context.Background(), wf, localrun.Options{
		Input:      json.RawMessage(`{"id": "o-1"}`),
		Events:     []localrun.Event{{EventType: "order.paid", CorrelationID: "o-1", Payload: json.RawMessage(`{"amount": 42}`)}},
		AgentReply: localrun.FixedReply("Ships tomorrow."),
		Out:        os.Stdout,
	})
	if err != nil {
		fmt.Println("cannot run locally:", err)
		return
	}
	fmt.Println("skipped at least 24h:", res.Skipped >= 24*time.Hour-time.Minute)
	// Output:
	// sleep cool-off 24h0m0s (skipped)
	// wait paid event order.paid (correlation o-1) → received {"amount": 42}
	// agent note → "Ships tomorrow."
	// output "Ships tomorrow."
	// skipped at least 24h: true
}
